package memory

import (
	"context"
	"slices"

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
		if current := uint64(len(d.streams[e.StreamID])); current != e.Version-1 {
			return &eventstore.WrongExpectedVersionError{Stream: e.StreamID, Expected: eventstore.Exact(e.Version - 1), Actual: current}
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
	d.signal()
	return nil
}
