package memory

import (
	"context"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

var (
	_ driver.StreamDeleter    = (*Driver)(nil)
	_ driver.StreamTruncater  = (*Driver)(nil)
	_ driver.RetentionKeeper  = (*Driver)(nil)
	_ driver.RetentionApplier = (*Driver)(nil)
)

// DeleteStream implements [driver.StreamDeleter]. The removed events' slots
// in the log stay, emptied, so no position is given twice.
func (d *Driver) DeleteStream(ctx context.Context, stream string, expected driver.ExpectedVersion) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	current := d.version(stream)
	if !expected.Matches(current) {
		return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: eventstore.ExpectedVersion(expected), Actual: current}
	}
	if current == 0 {
		return nil
	}
	d.remove(stream, current+1)
	d.deleted[stream] = true
	delete(d.ids, stream)
	delete(d.snapshots, stream)
	delete(d.retention, stream)
	return nil
}

// TruncateStream implements [driver.StreamTruncater].
func (d *Driver) TruncateStream(ctx context.Context, stream string, before uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if !d.deleted[stream] {
		d.remove(stream, before)
	}
	return nil
}

// SetStreamRetention implements [driver.RetentionKeeper].
func (d *Driver) SetStreamRetention(ctx context.Context, stream string, r driver.Retention) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.IsZero() {
		delete(d.retention, stream)
		return nil
	}
	d.retention[stream] = r
	d.applyRetention(stream, time.Now())
	return nil
}

// StreamRetention implements [driver.RetentionKeeper].
func (d *Driver) StreamRetention(ctx context.Context, stream string) (driver.Retention, error) {
	if err := ctx.Err(); err != nil {
		return driver.Retention{}, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.retention[stream], nil
}

// ApplyRetention implements [driver.RetentionApplier]: it applies the
// retention of each stream that has one, holding the driver's lock.
func (d *Driver) ApplyRetention(ctx context.Context) (driver.RetentionResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res driver.RetentionResult
	now := time.Now()
	for stream := range d.retention {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Streams++
		res.Events += d.applyRetention(stream, now)
	}
	return res, nil
}

// version is the stream's version as appends and readers see it: 0 for a
// deleted stream not appended to since. d.mu is held.
func (d *Driver) version(stream string) uint64 {
	if d.deleted[stream] {
		return 0
	}
	return uint64(len(d.streams[stream]))
}

// firstKept is the lowest version of stream that may still be stored.
// d.mu is held.
func (d *Driver) firstKept(stream string) uint64 { return max(d.first[stream], 1) }

// remove empties the log slots of the stream's events below before (at
// most up to its last) and moves its first kept version there, returning
// how many events it removed. d.mu is held for writing.
func (d *Driver) remove(stream string, before uint64) (removed uint64) {
	st := d.streams[stream]
	before = min(before, uint64(len(st))+1)
	first := d.firstKept(stream)
	if before <= first {
		return 0
	}
	for v := first; v < before; v++ {
		if i := st[v-1]; i >= 0 {
			d.log[i] = driver.RecordedEvent{Position: d.log[i].Position}
			st[v-1] = -1
			removed++
		}
	}
	d.first[stream] = before
	return removed
}

// applyRetention removes the events of stream that its retention no
// longer keeps at time now, returning how many. d.mu is held for writing.
func (d *Driver) applyRetention(stream string, now time.Time) uint64 {
	r, ok := d.retention[stream]
	if !ok || d.deleted[stream] {
		return 0
	}
	st := d.streams[stream]
	before := max(r.Cutoff(uint64(len(st))), d.firstKept(stream))
	if r.MaxAge > 0 {
		oldest := now.Add(-r.MaxAge)
		for before <= uint64(len(st)) {
			i := st[before-1]
			if i >= 0 && !d.log[i].RecordedAt.Before(oldest) {
				break
			}
			before++
		}
	}
	return d.remove(stream, before)
}

// removed reports whether the log slot of ev was emptied.
func removed(ev driver.RecordedEvent) bool { return ev.StreamID == "" }
