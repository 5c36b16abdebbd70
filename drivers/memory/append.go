package memory

import (
	"context"
	"slices"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
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
	if actual := d.version(req.Stream); !req.Expected.Matches(actual) {
		return driver.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: actual}
	}
	delete(d.deleted, req.Stream)
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
			Tags:        slices.Clone(e.Tags),
		})
		stream = append(stream, idx)
		ids[e.ID] = idx
	}
	d.streams[req.Stream] = stream
	last := d.log[len(d.log)-1]
	d.applyRetention(req.Stream, req.RecordedAt)
	d.signal()
	return driver.AppendResult{Version: last.Version, Position: last.Position}, nil
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
	conflict := &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: d.version(req.Stream)}
	if removed(d.log[first]) {
		// The first event was truncated since: never write it again.
		return driver.AppendResult{}, false, conflict
	}
	if req.Expected.Kind() == driver.ExpectExact && startVersion != req.Expected.Version()+1 {
		return driver.AppendResult{}, false, conflict
	}
	for i, e := range req.Events {
		v := startVersion + uint64(i)
		if v > uint64(len(stream)) || stream[v-1] < 0 || d.log[stream[v-1]].ID != e.ID {
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
