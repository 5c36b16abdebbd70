package driver

import (
	"context"
	"slices"
	"time"
)

// MultiAppender is implemented by a driver that appends to several streams
// in one atomic write. Without it, eventstore.Store.AppendMulti returns
// eventstore.ErrNotSupported before anything is written: a driver must never
// stand in for it with separate appends.
type MultiAppender interface {
	// AppendMulti writes every record, all or none, if every expectation
	// holds and, when req.Condition is set (only a QueryReader gets one), no
	// event matching the condition's query follows its After position. The
	// records' events take consecutive positions in the global log, in the
	// slice's order.
	//
	// When expectations fail it returns an *eventstore.AppendConflictError
	// naming every failed stream with its actual version and nothing else;
	// when the condition fails, the same error with Condition set. A retry
	// of an append that succeeded (the same event IDs, recognised as for
	// Append and checked with CheckRetry per stream) returns the original
	// result and writes nothing. A request over one of the driver's own
	// limits fails with an error matching eventstore.ErrBatchTooLarge,
	// before anything is written: it is never split.
	AppendMulti(ctx context.Context, req MultiAppendRequest) (MultiAppendResult, error)
}

// Record is one event of a multi-stream append and the stream it goes to.
type Record struct {
	Stream string
	Event  Event
}

// StreamExpectation is the version one stream must be at for a multi-stream
// append to go ahead.
type StreamExpectation struct {
	Stream   string
	Expected ExpectedVersion
}

// MultiAppendRequest is a validated multi-stream append: every stream ID,
// event and tag is valid, event IDs are non-zero and distinct, the limits the
// driver reported hold for the whole request, and Expect holds exactly one
// expectation per stream, sorted by stream ID: one for every stream written
// (ExpectAny where the caller gave none) and one, never ExpectAny, for each
// stream that is only checked.
type MultiAppendRequest struct {
	Records []Record
	Expect  []StreamExpectation
	// Condition is the DCB condition; nil when there is none.
	Condition *AppendCondition
	// RecordedAt is the time to record, as for AppendRequest.
	RecordedAt time.Time
}

// MultiAppendResult is what a multi-stream append wrote (or, for a retry,
// what the original wrote).
type MultiAppendResult struct {
	// Position is the global position of the last event written.
	Position Position
	// Versions holds the version of every written stream after the append;
	// check-only streams are absent.
	Versions map[string]uint64
}

// QueryReader is implemented by a driver that stores event tags and reads
// events by query (Dynamic Consistency Boundaries). It must also honour
// MultiAppendRequest.Condition. Without it the Store rejects tags, queries
// and conditions with eventstore.ErrNotSupported.
type QueryReader interface {
	// ReadQuery returns up to q.Limit events that match q.Query with
	// positions after q.After, in position order. Like ReadAll it never
	// returns an event while one with a lower position may still become
	// visible, so the position of the last event of a page is a safe
	// AppendCondition.After for what the page showed. A page shorter than
	// q.Limit (see PageFull) means no more events match yet.
	ReadQuery(ctx context.Context, q QueryPage) ([]RecordedEvent, error)
}

// QueryPage is one page of a read by query.
type QueryPage struct {
	Query Query
	After Position // zero: from the start of the log
	Limit int      // at least 1
	// MaxBytes caps the page's data and metadata as for StreamQuery; 0 is none.
	MaxBytes int
}

// Query selects events by type and tags: an event matches when it matches
// any item. A query without items matches every event.
type Query struct {
	Items []QueryItem
}

// QueryItem matches an event whose type is one of Types (any type when
// Types is empty) and whose tags include every one of Tags. At least one of
// the two is non-empty.
type QueryItem struct {
	Types []string
	Tags  []string
}

// AppendCondition is a DCB append condition: the append fails if an event
// matching FailIfEventsMatch has a position after After (the zero After:
// anywhere in the log).
type AppendCondition struct {
	FailIfEventsMatch Query
	After             Position
}

// Matches reports whether an event of type eventType with tags matches q.
func (q Query) Matches(eventType string, tags []string) bool {
	if len(q.Items) == 0 {
		return true
	}
	for _, it := range q.Items {
		if it.Matches(eventType, tags) {
			return true
		}
	}
	return false
}

// Matches reports whether an event of type eventType with tags matches the item.
func (it QueryItem) Matches(eventType string, tags []string) bool {
	if len(it.Types) > 0 && !slices.Contains(it.Types, eventType) {
		return false
	}
	for _, t := range it.Tags {
		if !slices.Contains(tags, t) {
			return false
		}
	}
	return true
}
