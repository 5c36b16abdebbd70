package eventstore

import (
	"strconv"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

// ContentType says how an event's data is encoded. It is stored with the
// event and preserved by every driver and by migration.
type ContentType uint8

const (
	// JSON data: empty, or one valid JSON value. It is stored byte for byte,
	// never re-encoded. This is the zero value.
	JSON ContentType = iota
	// Binary data: any bytes.
	Binary
)

// String returns "json" or "binary".
func (c ContentType) String() string {
	switch c {
	case JSON:
		return "json"
	case Binary:
		return "binary"
	}
	return "ContentType(" + strconv.Itoa(int(c)) + ")"
}

// Event is an event to append.
type Event struct {
	// ID identifies the event. A zero ID is replaced by a new random UUID; the
	// IDs used are in [AppendResult.EventIDs]. Retrying an append with the
	// same IDs is idempotent, so set IDs yourself when you may retry.
	ID uuid.UUID
	// Type names what happened, e.g. "OrderPlaced". Same rules as a stream ID.
	Type string
	// ContentType says whether Data is JSON (the zero value) or binary.
	ContentType ContentType
	// Data is the payload. It round-trips byte for byte.
	Data []byte
	// Metadata is empty or a JSON object, stored byte for byte, except that
	// an append inside a span records its trace context first in the
	// object ([MetadataTraceParent]). See [MetadataCorrelationID] and
	// [MetadataCausationID] for other well-known keys.
	Metadata []byte
	// Tags label the event for reads by [Query] and [AppendCondition]
	// (Dynamic Consistency Boundaries), e.g. "course:c42". Each is a valid
	// name (the rules of a stream ID, [ErrInvalidTag]); at most
	// [MaxEventTags], no repeats. They are stored in the given order. Only
	// drivers that read by query keep tags; the others reject an event with
	// tags with [ErrNotSupported].
	Tags []string
}

// NewEvent returns a JSON event with a fresh random ID.
func NewEvent(eventType string, data []byte) Event {
	return Event{ID: uuid.New(), Type: eventType, Data: data}
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	StreamID    string
	Version     uint64   // 1-based, contiguous within the stream
	Position    Position // place in the global log
	ID          uuid.UUID
	Type        string
	ContentType ContentType
	Data        []byte
	Metadata    []byte
	// MetadataContentType says how Metadata is encoded. Appends always
	// record JSON (Metadata empty or a JSON object). An import may record
	// other metadata, byte for byte, as history written elsewhere holds it:
	// any valid JSON value as JSON (such as null or an array), and any
	// bytes as Binary. See [Store.Import].
	MetadataContentType ContentType
	RecordedAt          time.Time // UTC, microsecond precision
	Tags                []string  // as appended; nil when none
}

// Category returns the category of the event's stream; see [Category].
func (e RecordedEvent) Category() string { return Category(e.StreamID) }

// Category returns the text of a stream ID before its first "-"
// ("Order-42" → "Order"), or the whole ID when it has no "-".
func Category(streamID string) string { return driver.Category(streamID) }

// Snapshot is saved state of a stream as of Version.
type Snapshot struct {
	Version uint64 // the stream version the state reflects; at least 1
	Data    []byte // opaque bytes, round-tripped exactly
}

// AppendResult reports what an append wrote (or, for an idempotent retry,
// what the original append wrote).
type AppendResult struct {
	// Version is the stream's version after the append: the version of the
	// last event written.
	Version uint64
	// Position is the global position of the last event written.
	Position Position
	// EventIDs are the IDs of the events, in order, including those the
	// store generated for zero IDs.
	EventIDs []uuid.UUID
}

// FirstVersion returns the version of the first event the append wrote.
func (r AppendResult) FirstVersion() uint64 { return r.Version - uint64(len(r.EventIDs)) + 1 }
