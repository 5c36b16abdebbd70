package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// ListStreams implements [driver.StreamLister]: streams by ID in byte
// order; the cursor is the last ID of the page. It sorts the matching IDs
// on every call, which is fine for the stores this driver is for.
func (d *Driver) ListStreams(ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error) {
	if req.Cursor != "" && !strings.HasPrefix(req.Cursor, req.Prefix) {
		return driver.StreamPage{}, fmt.Errorf("%w: %q is not a stream of prefix %q", eventstore.ErrInvalidCursor, req.Cursor, req.Prefix)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	var ids []string
	for id := range d.streams {
		if !d.deleted[id] && strings.HasPrefix(id, req.Prefix) && id > req.Cursor {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var page driver.StreamPage
	if len(ids) > req.Limit {
		ids = ids[:req.Limit]
		page.Next = ids[len(ids)-1]
	}
	for _, id := range ids {
		page.Streams = append(page.Streams, driver.StreamInfo{ID: id, Version: uint64(len(d.streams[id]))})
	}
	return page, nil
}
