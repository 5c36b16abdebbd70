package driver

import "time"

// AppendRequest is a validated append: the stream and type rules hold, there
// is at least one event, every event has a non-zero unique ID, and the limits
// the driver reported are kept.
type AppendRequest struct {
	Stream   string
	Expected ExpectedVersion
	Events   []Event
	// RecordedAt is the time to record, UTC at microsecond precision. A driver
	// whose server stamps events itself may use the server's time instead.
	RecordedAt time.Time
}

// AppendResult is what an append wrote (or, for a retry, what the original
// append wrote).
type AppendResult struct {
	// Version is the stream's version after the append: the version of the
	// last event written.
	Version uint64
	// Position is the global position of the last event written.
	Position Position
}

// StreamQuery is one page of a stream read.
type StreamQuery struct {
	Stream string
	// From is the first version returned (inclusive). Forwards it is at least
	// 1; backwards, 0 means from the last event.
	From      uint64
	Limit     int // at least 1
	Backwards bool
}

// AllQuery is one page of a global-log read: events strictly between After
// and Before (a zero Before means no upper bound) matching Filter, in
// position order (newest first when Backwards), at most Limit of them.
type AllQuery struct {
	After     Position
	Before    Position
	Backwards bool
	Limit     int // at least 1
	Filter    Filter
}

// Filter selects events of the global log. An empty list does not filter;
// values in one list are alternatives (OR); the two lists combine with AND.
// The Store has validated every value.
type Filter struct {
	Categories []string // stream categories, see [Category]
	EventTypes []string // exact event types
}

// IsEmpty reports whether f keeps every event.
func (f Filter) IsEmpty() bool { return len(f.Categories) == 0 && len(f.EventTypes) == 0 }

// Matches reports whether f keeps ev.
func (f Filter) Matches(ev RecordedEvent) bool { return f.Keeps(ev.StreamID, ev.Type) }

// Keeps reports whether f keeps an event of eventType in stream.
func (f Filter) Keeps(stream, eventType string) bool {
	return matchAny(f.Categories, Category(stream)) && matchAny(f.EventTypes, eventType)
}

func matchAny(list []string, s string) bool {
	if len(list) == 0 {
		return true
	}
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ImportRequest is a validated import. Every event has a valid stream ID and
// type, a non-zero ID unique among its stream's events in the request, a
// payload that Append would accept, a version of at least 1 that follows the
// previous event of its stream in the request (if any), and a UTC recorded
// time at microsecond precision; the limits the driver reported hold for the
// whole request. Position is zero and ignored.
type ImportRequest struct {
	Events []RecordedEvent
	// Firsts indexes into Events the first event of each stream, in the
	// order the streams first appear: the versions a driver checks (each
	// stream must be at the version before it) and where each stream's part
	// of the import begins.
	Firsts []int
}
