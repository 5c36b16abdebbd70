package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

// Driver is the in-memory driver. Use [New] or the "memory://" URL.
type Driver struct {
	mu          sync.RWMutex // protects everything below
	log         []driver.RecordedEvent
	streams     map[string][]int             // stream → indexes into log, by version
	ids         map[string]map[uuid.UUID]int // stream → event ID → index into log
	snapshots   map[string]driver.Snapshot   // stream → latest snapshot
	checkpoints map[string]driver.Position
	watchers    map[chan struct{}]struct{}
}

// New returns an empty in-memory driver. Pass it to [eventstore.New]. It
// always creates a store, so it has no MustExist option: to share a store,
// share the driver.
func New() *Driver {
	return &Driver{
		streams:     map[string][]int{},
		ids:         map[string]map[uuid.UUID]int{},
		snapshots:   map[string]driver.Snapshot{},
		checkpoints: map[string]driver.Position{},
		watchers:    map[chan struct{}]struct{}{},
	}
}

var (
	_ driver.Driver  = (*Driver)(nil)
	_ driver.Watcher = (*Driver)(nil)
)

// Append implements [driver.Driver].
func (d *Driver) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return driver.AppendResult{}, err
	}
	stream := d.streams[req.Stream]
	current := uint64(len(stream))
	if res, ok, err := d.retried(req, stream); ok || err != nil {
		return res, err
	}
	if !req.Expected.Matches(current) {
		return driver.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: current}
	}
	ids := d.ids[req.Stream]
	if ids == nil {
		ids = map[uuid.UUID]int{}
		d.ids[req.Stream] = ids
	}
	for i, e := range req.Events {
		idx := len(d.log)
		d.log = append(d.log, driver.RecordedEvent{
			StreamID:    req.Stream,
			Version:     current + uint64(i) + 1,
			Position:    driver.Position{Commit: uint64(idx) + 1},
			ID:          e.ID,
			Type:        e.Type,
			ContentType: e.ContentType,
			Data:        slices.Clone(e.Data),
			Metadata:    slices.Clone(e.Metadata),
			RecordedAt:  req.RecordedAt,
		})
		stream = append(stream, idx)
		ids[e.ID] = idx
	}
	d.streams[req.Stream] = stream
	last := d.log[len(d.log)-1]
	d.signal()
	return driver.AppendResult{Version: last.Version, Position: last.Position}, nil
}

// signal wakes every watcher; d.mu is held.
func (d *Driver) signal() {
	for ch := range d.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// retried recognises a retry of an append that already succeeded: the batch's
// first event ID is already in the stream. If the events from there on carry
// the batch's IDs in order (and, for an exact expectation, start right after
// the expected version) and the same content, it returns the original
// result; if their content differs, a *DuplicateEventIDError; otherwise the
// append conflicts.
func (d *Driver) retried(req driver.AppendRequest, stream []int) (driver.AppendResult, bool, error) {
	first, ok := d.ids[req.Stream][req.Events[0].ID]
	if !ok {
		return driver.AppendResult{}, false, nil
	}
	startVersion := d.log[first].Version
	conflict := &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: uint64(len(stream))}
	if req.Expected.Kind() == driver.ExpectExact && startVersion != req.Expected.Version()+1 {
		return driver.AppendResult{}, false, conflict
	}
	for i, e := range req.Events {
		v := startVersion + uint64(i)
		if v > uint64(len(stream)) || d.log[stream[v-1]].ID != e.ID {
			return driver.AppendResult{}, false, conflict
		}
	}
	stored := make([]driver.RecordedEvent, len(req.Events))
	for i := range stored {
		stored[i] = d.log[stream[startVersion+uint64(i)-1]]
	}
	if err := driver.CheckRetry(stored, req.Events); err != nil {
		return driver.AppendResult{}, false, err
	}
	last := stored[len(stored)-1]
	return driver.AppendResult{Version: last.Version, Position: last.Position}, true, nil
}

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

func clone(ev driver.RecordedEvent) driver.RecordedEvent {
	ev.Data = slices.Clone(ev.Data)
	ev.Metadata = slices.Clone(ev.Metadata)
	return ev
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

// SaveSnapshot implements [driver.Driver].
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap driver.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.snapshots[stream]; ok && old.Version > snap.Version {
		return nil
	}
	snap.Data = slices.Clone(snap.Data)
	d.snapshots[stream] = snap
	return nil
}

// LoadSnapshot implements [driver.Driver].
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return driver.Snapshot{}, false, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	snap, ok := d.snapshots[stream]
	snap.Data = slices.Clone(snap.Data)
	return snap, ok, nil
}

// SaveCheckpoint implements [driver.Driver].
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkpoints[name] = pos
	return nil
}

// LoadCheckpoint implements [driver.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	if err := ctx.Err(); err != nil {
		return driver.Position{}, false, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	pos, ok := d.checkpoints[name]
	return pos, ok, nil
}

// Watch implements [driver.Watcher]: appends signal every watcher.
func (d *Driver) Watch(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.watchers[ch] = struct{}{}
	d.mu.Unlock()
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		delete(d.watchers, ch)
		d.mu.Unlock()
	})
	return ch, nil
}

// Close implements [driver.Driver]. It drops nothing: the Store stops
// calling the driver, and the memory is freed with it.
func (d *Driver) Close() error { return nil }
