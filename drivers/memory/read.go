package memory

import (
	"context"
	"slices"

	"github.com/eventkit/eventstore/driver"
)

// ReadStream implements [driver.Driver].
func (d *Driver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	stream := d.streams[q.Stream]
	first := d.firstKept(q.Stream)
	out := driver.NewPage(q.Limit, q.MaxBytes)
	if q.Backwards {
		from := q.From
		if from == 0 || from > uint64(len(stream)) {
			from = uint64(len(stream))
		}
		for v := from; v >= first; v-- {
			if out.Add(clone(d.log[stream[v-1]])) {
				break
			}
		}
		return out.Events, nil
	}
	for v := max(q.From, first); v <= uint64(len(stream)); v++ {
		if out.Add(clone(d.log[stream[v-1]])) {
			break
		}
	}
	return out.Events, nil
}

// ReadAll implements [driver.Driver].
func (d *Driver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	lo, hi := d.span(q)
	out := driver.NewPage(q.Limit, q.MaxBytes)
	keep := func(i uint64) bool {
		ev := d.log[i]
		return removed(ev) || !q.Filter.Matches(ev) || !out.Add(clone(ev))
	}
	if q.Backwards {
		for i := hi; i > lo; i-- {
			if !keep(i - 1) {
				break
			}
		}
		return out.Events, nil
	}
	for i := lo; i < hi; i++ {
		if !keep(i) {
			break
		}
	}
	return out.Events, nil
}

// StreamVersion implements [driver.Driver].
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.version(stream), nil
}

func clone(ev driver.RecordedEvent) driver.RecordedEvent {
	ev.Data = slices.Clone(ev.Data)
	ev.Metadata = slices.Clone(ev.Metadata)
	ev.Tags = slices.Clone(ev.Tags)
	return ev
}

// scanBound is how many events ReadAllScan examines at most per page.
const scanBound = 4096

// ReadAllScan implements [driver.ScanReader]: it examines at most
// scanBound events after q.After and says how far it got.
func (d *Driver) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	if err := ctx.Err(); err != nil {
		return driver.ScanPage{}, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	lo, hi := d.span(q)
	out := driver.NewPage(q.Limit, q.MaxBytes)
	var res driver.ScanPage
	i := lo
	for ; i < hi && i-lo < scanBound; i++ {
		ev := d.log[i]
		res.Scanned = ev.Position
		if !removed(ev) && q.Filter.Matches(ev) && out.Add(clone(ev)) {
			i++
			break
		}
	}
	res.Events, res.End = out.Events, i >= hi
	return res, nil
}

// span returns the indexes into d.log of the events strictly between
// q.After and q.Before: [lo, hi). d.mu is held.
func (d *Driver) span(q driver.AllQuery) (lo, hi uint64) {
	// The event at position {n, 0} is log[n-1]; Prepare is always 0, so
	// events after {c, p} start at index c, and events before {c, p} end
	// below index c-1 (p == 0) or c (p > 0).
	lo = min(q.After.Commit, uint64(len(d.log)))
	hi = uint64(len(d.log)) // exclusive
	if !q.Before.IsZero() {
		bound := q.Before.Commit
		if q.Before.Prepare == 0 {
			bound-- // Before.Commit >= 1 here, as Before is not zero
		}
		hi = min(hi, bound)
	}
	return lo, max(lo, hi)
}
