package driver

import "time"

// AppendRequest is a validated append: the stream and type rules hold, there
// is at least one event, every event has a non-zero unique ID, and the limits
// the driver reported are kept. The events' bytes are read-only to the
// driver: Data is the caller's, and the Store may give several events one
// shared Metadata slice (the trace context it records); a driver that keeps
// them copies them.
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
	// MaxBytes bounds the page in bytes of Data plus Metadata: a driver
	// stops adding events once the page holds MaxBytes or more (so a page
	// cut short by it holds at least MaxBytes, and always one event at
	// least). Zero means no bound.
	MaxBytes int
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
	// MaxBytes bounds the page in bytes, as StreamQuery.MaxBytes does.
	MaxBytes int
}

// PageBytes returns the bytes of Data plus Metadata of events, which
// MaxBytes bounds.
func PageBytes(events []RecordedEvent) int {
	n := 0
	for _, e := range events {
		n += len(e.Data) + len(e.Metadata)
	}
	return n
}

// PageFull reports whether a page of events answering a query with limit
// and maxBytes is full: it holds limit events, or maxBytes or more. A page
// that is not full ends the read.
func PageFull(events []RecordedEvent, limit, maxBytes int) bool {
	return len(events) >= limit || (maxBytes > 0 && PageBytes(events) >= maxBytes)
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
// payload that Append would accept except that metadata may be any JSON value
// or, with MetadataContentType Binary, any bytes (stored with its content
// type, byte for byte), a version of at least 1 that follows the
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

// Page gathers the events of one read page, up to a query's Limit and
// MaxBytes. A driver adds events in order until Add reports the page full.
type Page struct {
	Events []RecordedEvent

	limit, maxBytes, bytes int
}

// NewPage starts a page for a query's Limit and MaxBytes.
func NewPage(limit, maxBytes int) Page { return Page{limit: limit, maxBytes: maxBytes} }

// NewPageIn starts a page as NewPage does, filling room (an empty slice,
// from a PagePool for example) before it allocates.
func NewPageIn(room []RecordedEvent, limit, maxBytes int) Page {
	return Page{Events: room[:0], limit: limit, maxBytes: maxBytes}
}

// Add appends ev and reports whether the page is now full.
func (p *Page) Add(ev RecordedEvent) (full bool) {
	p.Events = append(p.Events, ev)
	p.bytes += len(ev.Data) + len(ev.Metadata)
	return p.Full()
}

// Next appends a zero event to the page and returns it, for the caller to
// fill in place (a driver decoding rows saves a copy of each event); it
// must then call Added.
func (p *Page) Next() *RecordedEvent {
	p.Events = append(p.Events, RecordedEvent{})
	return &p.Events[len(p.Events)-1]
}

// Added counts the event Next returned, once filled in, and reports
// whether the page is now full, as Add does.
func (p *Page) Added() (full bool) {
	ev := &p.Events[len(p.Events)-1]
	p.bytes += len(ev.Data) + len(ev.Metadata)
	return p.Full()
}

// Full reports whether the page holds Limit events, or MaxBytes or more.
func (p *Page) Full() bool {
	return len(p.Events) >= p.limit || (p.maxBytes > 0 && p.bytes >= p.maxBytes)
}
