package kurrentdb

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// The mapping between the event store's numbers and KurrentDB's. Versions
// count events from 1 (version N = N events); KurrentDB revisions count
// from 0, so the event at version N has revision N−1.

// streamState returns the stream state KurrentDB checks for an expected
// version: Any → any, StreamExists → stream_exists, NoStream (= Exact(0))
// → no_stream, Exact(n) for n ≥ 1 → revision n−1 (the revision of the
// stream's last event).
func streamState(e driver.ExpectedVersion) kdb.StreamState {
	switch e.Kind() {
	case driver.ExpectAny:
		return kdb.Any{}
	case driver.ExpectStreamExists:
		return kdb.StreamExists{}
	}
	if e.Version() == 0 {
		return kdb.NoStream{}
	}
	return kdb.StreamRevision{Value: e.Version() - 1}
}

// versionOf returns the version of the event at a revision.
func versionOf(revision uint64) uint64 { return revision + 1 }

// revisionOf returns the revision of the event at a version (≥ 1).
func revisionOf(version uint64) uint64 { return version - 1 }

// positionOf converts a KurrentDB $all position; it keeps both parts.
func positionOf(p kdb.Position) driver.Position {
	return driver.Position{Commit: p.Commit, Prepare: p.Prepare}
}

// allPosition returns where a read or subscription of $all starts for a
// position: the start of the log for the zero position.
func allPosition(p driver.Position) kdb.AllPosition {
	if p.IsZero() {
		return kdb.Start{}
	}
	return kdb.Position{Commit: p.Commit, Prepare: p.Prepare}
}

// recordedAt is the time an event was recorded, as the event store keeps
// it: the server's clock, in UTC, at microsecond precision.
func recordedAt(created time.Time) time.Time { return created.UTC().Truncate(time.Microsecond) }

// recorded converts an event read from KurrentDB. It reports false for
// events a portable reader does not see: those of other namespaces and
// internal streams, system streams and system event types ("$…"), links
// and tombstones.
func (d *Driver) recorded(ev *kdb.RecordedEvent) (driver.RecordedEvent, bool) {
	if ev == nil {
		return driver.RecordedEvent{}, false
	}
	stream, ok := d.userStream(ev.StreamID)
	if !ok || eventstore.ValidateEventType(ev.EventType) != nil {
		return driver.RecordedEvent{}, false
	}
	return convert(ev, stream), true
}

// convert converts an event of a user stream.
func convert(ev *kdb.RecordedEvent, stream string) driver.RecordedEvent {
	ct := driver.Binary
	if ev.ContentType == "application/json" {
		ct = driver.JSON
	}
	return driver.RecordedEvent{
		StreamID:    stream,
		Version:     versionOf(ev.EventNumber),
		Position:    positionOf(ev.Position),
		ID:          ev.EventID,
		Type:        ev.EventType,
		ContentType: ct,
		Data:        ev.Data,
		Metadata:    unwrapMetadata(ev.UserMetadata, ev.EventType),
		RecordedAt:  recordedAt(ev.CreatedDate),

		MetadataContentType: metadataType(ev.UserMetadata),
	}
}

// metadataType returns the content type of an event's metadata, which
// KurrentDB does not record (it takes any bytes): JSON when it is empty or
// valid UTF-8 JSON (every event the driver appends: an object), otherwise
// Binary.
func metadataType(md []byte) driver.ContentType {
	if len(md) == 0 || utf8.Valid(md) && json.Valid(md) {
		return driver.JSON
	}
	return driver.Binary
}
