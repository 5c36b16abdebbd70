// Package minimaldriver is the smallest complete driver: one slice of events
// in memory behind one mutex, and none of the optional capabilities. It
// passes the whole conformance suite (see its test), and
// docs/writing-a-driver.md walks through it. It scans the whole log for
// every stream read, so use package memory for a real in-memory store.
package minimaldriver

import (
	"context"
	"slices"
	"sync"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Driver keeps a store in memory. Pass it to [eventstore.New].
type Driver struct {
	mu          sync.Mutex             // protects everything below
	log         []driver.RecordedEvent // event i has position {i + 1, 0}
	snapshots   map[string]driver.Snapshot
	checkpoints map[string]driver.Position
}

// New returns an empty store.
func New() *Driver {
	return &Driver{snapshots: map[string]driver.Snapshot{}, checkpoints: map[string]driver.Position{}}
}

var _ driver.Driver = (*Driver)(nil)

// stream returns the events of one stream in version order; d.mu is held.
func (d *Driver) stream(id string) []driver.RecordedEvent {
	var evs []driver.RecordedEvent
	for _, ev := range d.log {
		if ev.StreamID == id {
			evs = append(evs, ev)
		}
	}
	return evs
}

// Append checks the expectation and writes under one lock, so the check and
// the write are atomic and positions are given in commit order.
func (d *Driver) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return driver.AppendResult{}, err
	}
	evs := d.stream(req.Stream)
	if res, ok, err := retried(req, evs); ok || err != nil {
		return res, err
	}
	if !req.Expected.Matches(uint64(len(evs))) {
		return driver.AppendResult{}, &eventstore.WrongExpectedVersionError{
			Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: uint64(len(evs))}
	}
	for i, e := range req.Events {
		d.log = append(d.log, driver.RecordedEvent{
			StreamID: req.Stream, Version: uint64(len(evs) + i + 1), Position: driver.Position{Commit: uint64(len(d.log) + 1)},
			ID: e.ID, Type: e.Type, ContentType: e.ContentType,
			Data: slices.Clone(e.Data), Metadata: slices.Clone(e.Metadata), RecordedAt: req.RecordedAt,
		})
	}
	last := d.log[len(d.log)-1]
	return driver.AppendResult{Version: last.Version, Position: last.Position}, nil
}

// retried recognises a retry of an append that succeeded (docs/semantics.md,
// "Idempotent appends"): the batch's first event ID is in the stream, the
// stored events from there carry the batch's IDs in order and, for an exact
// expectation, start right after the expected version. It then returns the
// original result, or driver.CheckRetry's error when the content differs.
// A batch whose first ID is stored but that does not match conflicts.
func retried(req driver.AppendRequest, evs []driver.RecordedEvent) (driver.AppendResult, bool, error) {
	start := slices.IndexFunc(evs, func(ev driver.RecordedEvent) bool { return ev.ID == req.Events[0].ID })
	if start < 0 {
		return driver.AppendResult{}, false, nil
	}
	conflict := &eventstore.WrongExpectedVersionError{
		Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: uint64(len(evs))}
	if req.Expected.Kind() == driver.ExpectExact && uint64(start) != req.Expected.Version() {
		return driver.AppendResult{}, false, conflict
	}
	if start+len(req.Events) > len(evs) {
		return driver.AppendResult{}, false, conflict
	}
	stored := evs[start : start+len(req.Events)]
	for i, ev := range stored {
		if ev.ID != req.Events[i].ID {
			return driver.AppendResult{}, false, conflict
		}
	}
	if err := driver.CheckRetry(stored, req.Events); err != nil {
		return driver.AppendResult{}, false, err
	}
	last := stored[len(stored)-1]
	return driver.AppendResult{Version: last.Version, Position: last.Position}, true, nil
}

// ReadStream returns one page of a stream, copied.
func (d *Driver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	evs := d.stream(q.Stream)
	if q.Backwards {
		slices.Reverse(evs)
		if q.From > 0 && q.From < uint64(len(evs)) {
			evs = evs[uint64(len(evs))-q.From:] // start at version From
		}
	} else {
		evs = evs[min(q.From-1, uint64(len(evs))):]
	}
	page := driver.NewPage(q.Limit, q.MaxBytes)
	for _, ev := range evs {
		if page.Add(ev) {
			break
		}
	}
	return clone(page.Events), nil
}

// ReadAll returns one page of the global log, copied. Positions are given
// under the lock in order, so a reader never misses an event. A page ends
// at q.Limit events or once it holds q.MaxBytes bytes (driver.Page).
func (d *Driver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	page := driver.NewPage(q.Limit, q.MaxBytes)
	for i := range d.log {
		ev := d.log[i]
		if q.Backwards {
			ev = d.log[len(d.log)-1-i]
		}
		inRange := q.After.Less(ev.Position) && (q.Before.IsZero() || ev.Position.Less(q.Before))
		if inRange && q.Filter.Matches(ev) && page.Add(ev) {
			break
		}
	}
	return clone(page.Events), nil
}

// StreamVersion counts the stream's events.
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return uint64(len(d.stream(stream))), nil
}

// SaveSnapshot keeps the snapshot with the highest version.
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap driver.Snapshot) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.snapshots[stream]; !ok || old.Version <= snap.Version {
		d.snapshots[stream] = driver.Snapshot{Version: snap.Version, Data: slices.Clone(snap.Data)}
	}
	return nil
}

// LoadSnapshot returns a copy of the stream's snapshot.
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	snap, ok := d.snapshots[stream]
	snap.Data = slices.Clone(snap.Data)
	return snap, ok, nil
}

// SaveCheckpoint stores a subscription's position.
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkpoints[name] = pos
	return nil
}

// LoadCheckpoint returns a subscription's position.
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pos, ok := d.checkpoints[name]
	return pos, ok, nil
}

// Close releases nothing: the events stay with the Driver value.
func (d *Driver) Close() error { return nil }

// clone copies events so callers never share the driver's byte slices.
func clone(evs []driver.RecordedEvent) []driver.RecordedEvent {
	out := make([]driver.RecordedEvent, len(evs))
	for i, ev := range evs {
		ev.Data, ev.Metadata = slices.Clone(ev.Data), slices.Clone(ev.Metadata)
		out[i] = ev
	}
	return out
}
