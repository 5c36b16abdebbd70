package kurrentdb

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Snapshots and subscription checkpoints are events in KurrentDB itself,
// one stream per snapshotted stream and per subscription (see
// [SnapshotStream] and [CheckpointStream]), each with $maxCount 1 so the
// server keeps only the latest (older ones go at the next scavenge).

// Event types of the internal streams.
const (
	snapshotType   = "snapshot"
	checkpointType = "checkpoint"
)

// snapshotMeta is the metadata of a snapshot event.
type snapshotMeta struct {
	Version uint64 `json:"version"`
}

// saveAttempts bounds how often SaveSnapshot retries when another writer
// saves a snapshot of the same stream at the same time.
const saveAttempts = 10

// SaveSnapshot implements [driver.Driver]. It appends to the snapshot
// stream expecting the snapshot it read, so a concurrent save of a higher
// version is never overwritten.
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap driver.Snapshot) error {
	name := SnapshotStream(d.opts.Namespace, stream)
	meta, _ := json.Marshal(snapshotMeta{Version: snap.Version})
	for range saveAttempts {
		last, ok, err := d.lastInternal(ctx, name)
		if err != nil {
			return wrapError(ctx, err)
		}
		var state kdb.StreamState = kdb.NoStream{}
		if ok {
			var m snapshotMeta
			if json.Unmarshal(last.UserMetadata, &m) == nil && m.Version > snap.Version {
				return nil // a newer snapshot is stored
			}
			state = kdb.StreamRevision{Value: last.EventNumber}
		}
		err = d.appendInternal(ctx, name, state, kdb.EventData{
			EventID: uuid.New(), EventType: snapshotType, ContentType: kdb.ContentTypeBinary, Data: snap.Data, Metadata: meta,
		})
		if hasCode(err, kdb.ErrorCodeWrongExpectedVersion) {
			continue // another save came first: look again
		}
		return wrapError(ctx, err)
	}
	return fmt.Errorf("kurrentdb: save snapshot: %d concurrent saves in a row", saveAttempts)
}

// LoadSnapshot implements [driver.Driver].
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
	last, ok, err := d.lastInternal(ctx, SnapshotStream(d.opts.Namespace, stream))
	if err != nil || !ok {
		return driver.Snapshot{}, false, wrapError(ctx, err)
	}
	var m snapshotMeta
	if err := json.Unmarshal(last.UserMetadata, &m); err != nil {
		return driver.Snapshot{}, false, fmt.Errorf("kurrentdb: snapshot of %q: bad metadata: %w", stream, err)
	}
	return driver.Snapshot{Version: m.Version, Data: last.Data}, true, nil
}

// lastInternal reads the last event of an internal stream.
func (d *Driver) lastInternal(ctx context.Context, name string) (*kdb.RecordedEvent, bool, error) {
	evs, err := d.readStream(ctx, name, kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	if err != nil || len(evs) == 0 {
		return nil, false, err
	}
	return evs[0], true, nil
}

// appendInternal appends one event to an internal stream. After the
// stream's first event it sets $maxCount 1 on the stream; if that fails
// the event is still written, and the failure is logged. Like an exact
// append it is retried when the server was unavailable: a snapshot expects
// an exact state, and a checkpoint written twice is harmless.
func (d *Driver) appendInternal(ctx context.Context, name string, state kdb.StreamState, ev kdb.EventData) error {
	opts := kdb.AppendToStreamOptions{StreamState: state}
	res, err := call(ctx, d, true, func(c *kdb.Client) (*kdb.WriteResult, error) {
		return c.AppendToStream(ctx, name, opts, ev)
	})
	if err != nil || res.NextExpectedVersion != 0 {
		return err
	}
	var meta kdb.StreamMetadata
	meta.SetMaxCount(1)
	_, err = call(ctx, d, true, func(c *kdb.Client) (*kdb.WriteResult, error) {
		return c.SetStreamMetadata(ctx, name, kdb.AppendToStreamOptions{StreamState: kdb.Any{}}, meta)
	})
	if err != nil {
		d.opts.Logger.Warn("could not set $maxCount 1 on an internal stream: older entries are kept", "driver", "kurrentdb", "error", err)
	}
	return nil
}
