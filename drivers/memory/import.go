package memory

import (
	"context"
	"slices"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

var _ driver.Importer = (*Driver)(nil)

// Import implements [driver.Importer].
func (d *Driver) Import(ctx context.Context, req driver.ImportRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, i := range req.Firsts {
		e := req.Events[i]
		current := d.version(e.StreamID)
		// A stream with no events may start later (a truncated stream's
		// copy), but after every version it ever had.
		if current != e.Version-1 && (current != 0 || e.Version <= uint64(len(d.streams[e.StreamID]))) {
			return &eventstore.WrongExpectedVersionError{Stream: e.StreamID, Expected: eventstore.Exact(e.Version - 1), Actual: current}
		}
	}
	for _, i := range req.Firsts {
		e := req.Events[i]
		delete(d.deleted, e.StreamID)
		if st := d.streams[e.StreamID]; uint64(len(st)) < e.Version-1 {
			for uint64(len(st)) < e.Version-1 {
				st = append(st, -1)
			}
			d.streams[e.StreamID] = st
			d.first[e.StreamID] = e.Version
		}
	}
	for _, e := range req.Events {
		idx := len(d.log)
		e.Position = driver.Position{Commit: uint64(idx) + 1}
		e.Data = slices.Clone(e.Data)
		e.Metadata = slices.Clone(e.Metadata)
		e.Tags = slices.Clone(e.Tags)
		d.log = append(d.log, e)
		d.streams[e.StreamID] = append(d.streams[e.StreamID], idx)
		ids := d.ids[e.StreamID]
		if ids == nil {
			ids = map[uuid.UUID]int{}
			d.ids[e.StreamID] = ids
		}
		ids[e.ID] = idx
	}
	now := time.Now()
	for _, i := range req.Firsts {
		d.applyRetention(req.Events[i].StreamID, now)
	}
	d.signal()
	return nil
}
