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
	var out []driver.RecordedEvent
	if q.Backwards {
		from := q.From
		if from == 0 || from > uint64(len(stream)) {
			from = uint64(len(stream))
		}
		for v := from; v >= 1 && len(out) < q.Limit; v-- {
			out = append(out, clone(d.log[stream[v-1]]))
		}
		return out, nil
	}
	for v := q.From; v <= uint64(len(stream)) && len(out) < q.Limit; v++ {
		out = append(out, clone(d.log[stream[v-1]]))
	}
	return out, nil
}

// ReadAll implements [driver.Driver].
func (d *Driver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	// The event at position {n, 0} is log[n-1]; Prepare is always 0, so
	// events after {c, p} start at index c, and events before {c, p} end
	// below index c-1 (p == 0) or c (p > 0).
	lo := min(q.After.Commit, uint64(len(d.log)))
	hi := uint64(len(d.log)) // exclusive
	if !q.Before.IsZero() {
		bound := q.Before.Commit
		if q.Before.Prepare == 0 {
			bound-- // Before.Commit >= 1 here, as Before is not zero
		}
		hi = min(hi, bound)
	}
	var out []driver.RecordedEvent
	keep := func(i uint64) bool {
		ev := d.log[i]
		if q.Filter.Matches(ev) {
			out = append(out, clone(ev))
		}
		return len(out) < q.Limit
	}
	if q.Backwards {
		for i := hi; i > lo; i-- {
			if !keep(i - 1) {
				break
			}
		}
		return out, nil
	}
	for i := lo; i < hi; i++ {
		if !keep(i) {
			break
		}
	}
	return out, nil
}

// StreamVersion implements [driver.Driver].
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return uint64(len(d.streams[stream])), nil
}

func clone(ev driver.RecordedEvent) driver.RecordedEvent {
	ev.Data = slices.Clone(ev.Data)
	ev.Metadata = slices.Clone(ev.Metadata)
	return ev
}
