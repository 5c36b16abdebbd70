package kurrentdb

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// A checkpoint is the last event of its stream, [CheckpointStream](ns,
// name), which has $maxCount 1.
//
// Listing: the names come from one read of $all filtered on the server by
// the stream-name prefix CheckpointStream(ns, "") (a filtered subscription
// from the start of the log, ended when it catches up: the client's ReadAll
// takes no filter), and each position from a read of its stream, as
// LoadCheckpoint does. $all keeps every checkpoint event until a scavenge,
// and the events of deleted checkpoints, so the stream read also decides
// which ones exist. No system projection ($streams) is needed: a default
// server has none running.
//
// Deleting: a soft delete written as the stream's metadata, {"$maxCount":
// 1, "$tb": 2^63−1}. KurrentDB's Delete writes the same $tb but replaces
// the whole metadata; writing it ourselves keeps $maxCount, which the
// server carries over when a later save recreates the stream (only $tb
// changes), so a checkpoint saved again still keeps only its latest event.
// A tombstone would forbid saving it again.

// checkpointData is the data of a checkpoint event.
type checkpointData struct {
	Position driver.Position `json:"position"`
}

// SaveCheckpoint implements [driver.Driver].
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	data, _ := json.Marshal(checkpointData{Position: pos})
	err := d.appendInternal(ctx, CheckpointStream(d.opts.Namespace, name), kdb.Any{}, kdb.EventData{
		EventID: uuid.New(), EventType: checkpointType, ContentType: kdb.ContentTypeJson, Data: data,
	})
	return wrapError(ctx, err)
}

// LoadCheckpoint implements [driver.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	pos, ok, err := d.loadCheckpoint(ctx, name)
	return pos, ok, wrapError(ctx, err)
}

// loadCheckpoint reads the checkpoint saved under name; errors are the
// client's, unwrapped.
func (d *Driver) loadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	last, ok, err := d.lastInternal(ctx, CheckpointStream(d.opts.Namespace, name))
	if err != nil || !ok {
		return driver.Position{}, false, err
	}
	var c checkpointData
	if err := json.Unmarshal(last.Data, &c); err != nil {
		return driver.Position{}, false, fmt.Errorf("kurrentdb: checkpoint %q: bad data: %w", name, err)
	}
	return c.Position, true, nil
}

// Checkpoints implements [driver.CheckpointManager]: the checkpoints of
// this store's namespace, sorted by name. It reads $all from its start,
// filtered on the server to this namespace's checkpoint streams, then the
// last event of each stream found; its cost grows with the server's log,
// not with the number of checkpoints (see docs/kurrentdb.md).
func (d *Driver) Checkpoints(ctx context.Context) ([]driver.Checkpoint, error) {
	streams, err := d.streamsWithPrefix(ctx, CheckpointStream(d.opts.Namespace, ""))
	if err != nil {
		return nil, wrapError(ctx, err)
	}
	names := make([]string, 0, len(streams))
	for s := range streams {
		names = append(names, strings.TrimPrefix(s, CheckpointStream(d.opts.Namespace, "")))
	}
	slices.SortFunc(names, strings.Compare)
	out := make([]driver.Checkpoint, 0, len(names))
	for _, name := range names {
		pos, ok, err := d.loadCheckpoint(ctx, name)
		if err != nil {
			return nil, wrapError(ctx, err)
		}
		if ok { // deleted ones stay in $all
			out = append(out, driver.Checkpoint{Name: name, Position: pos})
		}
	}
	return out, nil
}

// deletedCheckpoint is the metadata of a deleted checkpoint stream: a soft
// delete ($tb at the largest event number) that keeps $maxCount 1.
func deletedCheckpoint() kdb.StreamMetadata {
	var m kdb.StreamMetadata
	m.SetMaxCount(1)
	m.SetTruncateBefore(math.MaxInt64)
	return m
}

// DeleteCheckpoint implements [driver.CheckpointManager]. It soft-deletes
// the checkpoint's stream through its metadata, so LoadCheckpoint finds no
// stream and a later SaveCheckpoint recreates it. A checkpoint that is not
// there is left alone: nothing is written.
func (d *Driver) DeleteCheckpoint(ctx context.Context, name string) error {
	stream := CheckpointStream(d.opts.Namespace, name)
	_, ok, err := d.lastInternal(ctx, stream)
	if err != nil || !ok {
		return wrapError(ctx, err)
	}
	// Writing the same metadata twice is harmless: retried like a read.
	_, err = call(ctx, d, true, func(c *kdb.Client) (*kdb.WriteResult, error) {
		return c.SetStreamMetadata(ctx, stream, kdb.AppendToStreamOptions{StreamState: kdb.Any{}}, deletedCheckpoint())
	})
	return wrapError(ctx, err)
}

// streamsWithPrefix returns the names of the streams with events in $all
// whose names start with prefix, as the server has them when the read
// catches up. It reads through a filtered subscription from the start,
// which the server evaluates, and ends it at caught-up.
func (d *Driver) streamsWithPrefix(ctx context.Context, prefix string) (map[string]struct{}, error) {
	return call(ctx, d, true, func(c *kdb.Client) (map[string]struct{}, error) {
		sub, err := c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{
			From:            kdb.Start{},
			Filter:          &kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{prefix}},
			MaxSearchWindow: filterWindow, CheckpointInterval: 1,
		})
		if err != nil {
			return nil, err
		}
		defer sub.Close()
		streams := map[string]struct{}{}
		for {
			ev := sub.Recv()
			switch {
			case ev.SubscriptionDropped != nil:
				return nil, droppedError(ev.SubscriptionDropped.Error)
			case ev.EventAppeared != nil:
				if rec := ev.EventAppeared.Event; rec != nil && strings.HasPrefix(rec.StreamID, prefix) {
					streams[rec.StreamID] = struct{}{}
				}
			case ev.CheckPointReached != nil, ev.FellBehind != nil:
			default:
				// Caught up (servers 24.2 to 25.0 send it without fields,
				// which the client reports as an event with every field nil).
				return streams, nil
			}
		}
	})
}
