package memory

import (
	"context"
	"slices"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

var (
	_ driver.MultiAppender = (*Driver)(nil)
	_ driver.QueryReader   = (*Driver)(nil)
)

// AppendMulti implements [driver.MultiAppender]. It holds the driver's one
// lock throughout, so the expectations, the condition and the write are one
// atomic step and the records take consecutive positions in slice order.
func (d *Driver) AppendMulti(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return driver.MultiAppendResult{}, err
	}
	res, held, err := d.multiRetried(req)
	if err != nil || res.Versions != nil {
		return res, err
	}
	conflict := &eventstore.AppendConflictError{}
	for _, e := range req.Expect {
		if actual := d.version(e.Stream); !e.Expected.Matches(actual) || held[e.Stream] {
			conflict.Streams = append(conflict.Streams, d.wrongVersion(e))
		}
	}
	if c := req.Condition; c != nil {
		conflict.Condition = d.anyMatch(c.FailIfEventsMatch, c.After)
	}
	if len(conflict.Streams) > 0 || conflict.Condition {
		return driver.MultiAppendResult{}, conflict
	}
	res = driver.MultiAppendResult{Versions: make(map[string]uint64, len(req.Expect))}
	for _, e := range req.Expect {
		delete(d.deleted, e.Stream)
	}
	for _, r := range req.Records {
		idx := len(d.log)
		version := uint64(len(d.streams[r.Stream])) + 1
		d.log = append(d.log, driver.RecordedEvent{
			StreamID:    r.Stream,
			Version:     version,
			Position:    driver.Position{Commit: uint64(idx) + 1},
			ID:          r.Event.ID,
			Type:        r.Event.Type,
			ContentType: r.Event.ContentType,
			Data:        slices.Clone(r.Event.Data),
			Metadata:    slices.Clone(r.Event.Metadata),
			RecordedAt:  req.RecordedAt,
			Tags:        slices.Clone(r.Event.Tags),
		})
		d.streams[r.Stream] = append(d.streams[r.Stream], idx)
		ids := d.ids[r.Stream]
		if ids == nil {
			ids = map[uuid.UUID]int{}
			d.ids[r.Stream] = ids
		}
		ids[r.Event.ID] = idx
		res.Versions[r.Stream] = version
	}
	res.Position = d.log[len(d.log)-1].Position
	for _, e := range req.Expect {
		d.applyRetention(e.Stream, req.RecordedAt)
	}
	d.signal()
	return res, nil
}

// wrongVersion is the conflict of expectation e with its stream as it is.
// d.mu is held.
func (d *Driver) wrongVersion(e driver.StreamExpectation) eventstore.WrongExpectedVersionError {
	return eventstore.WrongExpectedVersionError{Stream: e.Stream, Expected: eventstore.ExpectedVersion(e.Expected), Actual: d.version(e.Stream)}
}

// multiRetried recognises a retry of a multi-stream append that already
// succeeded: some record's event ID is already in its stream. If the
// records are in the log as one contiguous run, in order, with the same
// content, each stream's first record right after an exact expectation, it
// returns the original result (non-nil Versions); if the content differs,
// the *driver.RetryMismatchError of driver.CheckRetry (Index counts
// records). Otherwise it returns the streams that already hold one of the
// IDs: they conflict, as a single Append's would. d.mu is held.
func (d *Driver) multiRetried(req driver.MultiAppendRequest) (driver.MultiAppendResult, map[string]bool, error) {
	var held map[string]bool
	for _, r := range req.Records {
		if _, ok := d.ids[r.Stream][r.Event.ID]; ok {
			if held == nil {
				held = map[string]bool{}
			}
			held[r.Stream] = true
		}
	}
	if held == nil {
		return driver.MultiAppendResult{}, nil, nil
	}
	if res, ok := d.originalResult(req); ok {
		stored := make([]driver.RecordedEvent, len(req.Records))
		first := int(res.Position.Commit) - len(req.Records)
		events := make([]driver.Event, len(req.Records))
		for i, r := range req.Records {
			stored[i], events[i] = d.log[first+i], r.Event
		}
		if err := driver.CheckRetry(stored, events); err != nil {
			return driver.MultiAppendResult{}, nil, err
		}
		return res, nil, nil
	}
	return driver.MultiAppendResult{}, held, nil
}

// originalResult returns the result of the append req retries, if the log
// holds its records as one run in slice order and each stream's first
// record follows its exact expectation. d.mu is held.
func (d *Driver) originalResult(req driver.MultiAppendRequest) (driver.MultiAppendResult, bool) {
	first, ok := d.ids[req.Records[0].Stream][req.Records[0].Event.ID]
	if !ok || first+len(req.Records) > len(d.log) {
		return driver.MultiAppendResult{}, false
	}
	res := driver.MultiAppendResult{Versions: map[string]uint64{}}
	for i, r := range req.Records {
		ev := d.log[first+i]
		if ev.ID != r.Event.ID || ev.StreamID != r.Stream {
			return driver.MultiAppendResult{}, false
		}
		if _, later := res.Versions[r.Stream]; !later {
			exp := req.Expect[slices.IndexFunc(req.Expect, func(e driver.StreamExpectation) bool { return e.Stream == r.Stream })].Expected
			if exp.Kind() == driver.ExpectExact && ev.Version != exp.Version()+1 {
				return driver.MultiAppendResult{}, false
			}
		}
		res.Versions[r.Stream] = ev.Version
	}
	res.Position = d.log[first+len(req.Records)-1].Position
	return res, true
}

// anyMatch reports whether an event after position after matches q. d.mu
// is held.
func (d *Driver) anyMatch(q driver.Query, after driver.Position) bool {
	for _, ev := range d.log[min(after.Commit, uint64(len(d.log))):] {
		if !removed(ev) && q.Matches(ev.Type, ev.Tags) {
			return true
		}
	}
	return false
}

// ReadQuery implements [driver.QueryReader]. Positions are in commit order,
// so every page is gap-safe.
func (d *Driver) ReadQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := driver.NewPage(q.Limit, q.MaxBytes)
	for _, ev := range d.log[min(q.After.Commit, uint64(len(d.log))):] {
		if !removed(ev) && q.Query.Matches(ev.Type, ev.Tags) && out.Add(clone(ev)) {
			break
		}
	}
	return out.Events, nil
}
