package driver

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// ContentType says how an event's data is encoded; drivers store it with the
// event.
type ContentType uint8

// The content types.
const (
	JSON   ContentType = iota // empty, or one valid JSON value
	Binary                    // any bytes
)

// Event is an event to append, validated by the Store.
type Event struct {
	ID          uuid.UUID // never zero
	Type        string
	ContentType ContentType
	Data        []byte
	Metadata    []byte   // empty or a JSON object
	Tags        []string // distinct valid names, in the caller's order; only for a QueryReader
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
	// MetadataContentType is JSON for every appended event (Metadata empty
	// or a JSON object). An imported event may have JSON metadata that is
	// any JSON value, or Binary metadata (any bytes); a driver that imports
	// stores it with the event, as it stores ContentType.
	MetadataContentType ContentType
	RecordedAt          time.Time // UTC, microsecond precision
	Tags                []string  // as appended, in order; nil when none
}

// Snapshot is saved state of a stream as of Version.
type Snapshot struct {
	Version uint64 // at least 1
	Data    []byte // opaque bytes, round-tripped exactly
}

// Category returns the text of a stream ID before its first "-"
// ("Order-42" → "Order"), or the whole ID when it has no "-". It is what a
// [Filter]'s Categories match.
func Category(streamID string) string {
	c, _, _ := strings.Cut(streamID, "-")
	return c
}

// Now returns the current time as events are recorded: UTC, truncated to
// microseconds.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
