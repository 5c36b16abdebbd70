package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
)

// Driver is the in-memory driver. Use [New] or the "memory://" URL.
type Driver struct {
	mu          sync.RWMutex // protects everything below
	log         []eventstore.RecordedEvent
	streams     map[string][]int               // stream → indexes into log, by version
	ids         map[string]map[uuid.UUID]int   // stream → event ID → index into log
	snapshots   map[string]eventstore.Snapshot // stream → latest snapshot
	checkpoints map[string]eventstore.Position
	watchers    map[chan struct{}]struct{}
}

// New returns an empty in-memory driver. Pass it to [eventstore.New]. It
// always creates a store, so it has no MustExist option: to share a store,
// share the driver.
func New() *Driver {
	return &Driver{
		streams:     map[string][]int{},
		ids:         map[string]map[uuid.UUID]int{},
		snapshots:   map[string]eventstore.Snapshot{},
		checkpoints: map[string]eventstore.Position{},
		watchers:    map[chan struct{}]struct{}{},
	}
}

var (
	_ eventstore.Driver  = (*Driver)(nil)
	_ eventstore.Watcher = (*Driver)(nil)
)

// Append implements [eventstore.Driver].
func (d *Driver) Append(ctx context.Context, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	stream := d.streams[req.Stream]
	current := uint64(len(stream))
	if res, ok, err := d.retried(req, stream); ok || err != nil {
		return res, err
	}
	if !req.Expected.Matches(current) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: req.Expected, Actual: current}
	}
	ids := d.ids[req.Stream]
	if ids == nil {
		ids = map[uuid.UUID]int{}
		d.ids[req.Stream] = ids
	}
	for i, e := range req.Events {
		idx := len(d.log)
		d.log = append(d.log, eventstore.RecordedEvent{
			StreamID:    req.Stream,
			Version:     current + uint64(i) + 1,
			Position:    eventstore.Position{Commit: uint64(idx) + 1},
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
	return eventstore.AppendResult{Version: last.Version, Position: last.Position}, nil
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
func (d *Driver) retried(req eventstore.AppendRequest, stream []int) (eventstore.AppendResult, bool, error) {
	first, ok := d.ids[req.Stream][req.Events[0].ID]
	if !ok {
		return eventstore.AppendResult{}, false, nil
	}
	startVersion := d.log[first].Version
	conflict := &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: req.Expected, Actual: uint64(len(stream))}
	if req.Expected.Kind() == eventstore.ExactVersion && startVersion != req.Expected.Version()+1 {
		return eventstore.AppendResult{}, false, conflict
	}
	for i, e := range req.Events {
		v := startVersion + uint64(i)
		if v > uint64(len(stream)) || d.log[stream[v-1]].ID != e.ID {
			return eventstore.AppendResult{}, false, conflict
		}
	}
	stored := make([]eventstore.RecordedEvent, len(req.Events))
	for i := range stored {
		stored[i] = d.log[stream[startVersion+uint64(i)-1]]
	}
	if err := eventstore.CheckRetry(req.Stream, stored, req.Events); err != nil {
		return eventstore.AppendResult{}, false, err
	}
	last := stored[len(stored)-1]
	return eventstore.AppendResult{Version: last.Version, Position: last.Position}, true, nil
}

// ReadStream implements [eventstore.Driver].
func (d *Driver) ReadStream(ctx context.Context, q eventstore.StreamQuery) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	stream := d.streams[q.Stream]
	var out []eventstore.RecordedEvent
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

// ReadAll implements [eventstore.Driver].
func (d *Driver) ReadAll(ctx context.Context, q eventstore.AllQuery) ([]eventstore.RecordedEvent, error) {
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
	var out []eventstore.RecordedEvent
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

func clone(ev eventstore.RecordedEvent) eventstore.RecordedEvent {
	ev.Data = slices.Clone(ev.Data)
	ev.Metadata = slices.Clone(ev.Metadata)
	return ev
}

// StreamVersion implements [eventstore.Driver].
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return uint64(len(d.streams[stream])), nil
}

// SaveSnapshot implements [eventstore.Driver].
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap eventstore.Snapshot) error {
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

// LoadSnapshot implements [eventstore.Driver].
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Snapshot{}, false, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	snap, ok := d.snapshots[stream]
	snap.Data = slices.Clone(snap.Data)
	return snap, ok, nil
}

// SaveCheckpoint implements [eventstore.Driver].
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos eventstore.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkpoints[name] = pos
	return nil
}

// LoadCheckpoint implements [eventstore.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (eventstore.Position, bool, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Position{}, false, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	pos, ok := d.checkpoints[name]
	return pos, ok, nil
}

// Watch implements [eventstore.Watcher]: appends signal every watcher.
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

// Close implements [eventstore.Driver]. It drops nothing: the Store stops
// calling the driver, and the memory is freed with it.
func (d *Driver) Close() error { return nil }
