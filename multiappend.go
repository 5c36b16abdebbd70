package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/verbatim"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Record is one event of a multi-stream append and the stream it goes to.
type Record struct {
	Stream string
	Event  Event
}

// StreamExpectation is the version one stream must be at for a
// [MultiAppend] to go ahead.
type StreamExpectation struct {
	Stream   string
	Expected ExpectedVersion
}

// MultiAppend is an atomic append to several streams: all records are
// written or none.
type MultiAppend struct {
	// Records are the events to write, each with its stream, in the order
	// they take in the global log. A stream may appear several times; its
	// events take consecutive versions in this order.
	Records []Record
	// Expect holds at most one expectation per stream. A written stream
	// without one may be at any version; a stream that is only checked (no
	// record) needs an expectation other than [Any].
	Expect []StreamExpectation
	// Condition, when set, fails the append if an event matching its query
	// follows its After position (Dynamic Consistency Boundaries). Only
	// drivers that read by query support it.
	Condition *AppendCondition
}

// MultiAppendResult is what a multi-stream append wrote.
type MultiAppendResult struct {
	// Position is the global position of the last event written.
	Position Position
	// Versions holds the version of every written stream after the append;
	// check-only streams are absent.
	Versions map[string]uint64
	// EventIDs are the IDs of the records' events, in order, including those
	// the store generated for zero IDs.
	EventIDs []uuid.UUID
}

// AppendMulti writes the records of a to their streams atomically, if every
// expectation in a.Expect holds and a.Condition (when set) does not fail.
// The events take consecutive positions in the global log, in the order of
// a.Records. Zero event IDs are replaced by new random ones; retrying with
// the same IDs returns the original result, as for [Store.Append].
//
// Errors: an *[AppendConflictError] matching [ErrWrongExpectedVersion] (it
// names every stream whose expectation failed) or [ErrAppendConditionFailed];
// [ErrInvalidArgument] or a specific form of it for no records, a bad stream
// ID, event, tag or query, two expectations for one stream, [Any] for a
// stream that is only checked, or a request over [Store.Limits] (which apply
// to the whole request) or over a limit of the driver's own
// ([ErrBatchTooLarge]; a request is never split); [ErrDuplicateEventID];
// [ErrNotSupported] when the driver cannot append to several streams
// atomically, or cannot keep tags or conditions; [ErrClosed]; the context's
// error. In every error case nothing was written (see [Store.Append] for a
// write whose outcome is unknown).
func (s *Store) AppendMulti(ctx context.Context, a MultiAppend) (MultiAppendResult, error) {
	start := time.Now()
	var span trace.Span
	if tr := s.tel.activeTracer(); tr != nil {
		ctx, span = s.tel.start(ctx, tr, opAppend, trace.SpanKindClient, multiAppendAttrs(a))
	}
	res, size, err := s.appendMulti(s.tel.withDriverRetries(ctx, opAppend), a)
	s.tel.appended(ctx, start, len(a.Records), size, err)
	if span != nil {
		end(span, err, attrBytes.Int(size))
	}
	return res, err
}

// appendMulti is AppendMulti without telemetry; it also returns the bytes of
// data and metadata written.
func (s *Store) appendMulti(ctx context.Context, a MultiAppend) (MultiAppendResult, int, error) {
	req, size, err := validateMultiAppend(a, s.limits)
	if err != nil {
		return MultiAppendResult{}, 0, multiErr(err)
	}
	if s.multi == nil {
		return MultiAppendResult{}, 0, multiErr(fmt.Errorf("append to several streams atomically: %w", ErrNotSupported))
	}
	if s.querier == nil && req.Condition != nil {
		return MultiAppendResult{}, 0, multiErr(fmt.Errorf("append condition: %w", ErrNotSupported))
	}
	evs := make([]driver.Event, len(req.Records))
	for i, r := range req.Records {
		evs[i] = r.Event
	}
	if err := s.checkTags(evs); err != nil {
		return MultiAppendResult{}, 0, multiErr(err)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !verbatim.Is(ctx) {
		recordTraceContext(evs, sc, s.limits)
		for i := range req.Records {
			req.Records[i].Event = evs[i]
		}
	}
	if err := ctx.Err(); err != nil {
		return MultiAppendResult{}, 0, multiErr(err)
	}
	if err := s.acquire(); err != nil {
		return MultiAppendResult{}, 0, multiErr(err)
	}
	defer s.release()
	req.RecordedAt = driver.Now()
	var clamped map[string]ExpectedVersion
	for i, e := range req.Expect {
		if sent, ok := clampExpected(e.Expected); ok {
			if clamped == nil {
				clamped = map[string]ExpectedVersion{}
			}
			clamped[e.Stream] = ExpectedVersion(e.Expected)
			req.Expect[i].Expected = sent
		}
	}
	dres, err := s.multi.AppendMulti(ctx, req)
	if err != nil {
		restoreExpected(err, clamped)
		return MultiAppendResult{}, 0, multiErr(multiDuplicateEventID(req, err))
	}
	res := MultiAppendResult{Position: Position(dres.Position), Versions: dres.Versions, EventIDs: make([]uuid.UUID, len(req.Records))}
	for i, r := range req.Records {
		res.EventIDs[i] = r.Event.ID
	}
	return res, size, nil
}

// validateMultiAppend checks a against the rules and limits and returns the
// driver's request (without RecordedAt) and the bytes of data and metadata.
func validateMultiAppend(a MultiAppend, lim Limits) (driver.MultiAppendRequest, int, error) {
	if len(a.Records) == 0 {
		return driver.MultiAppendRequest{}, 0, invalid(ErrInvalidArgument, "no records to append")
	}
	if lim.MaxAppendEvents > 0 && len(a.Records) > lim.MaxAppendEvents {
		return driver.MultiAppendRequest{}, 0, invalid(ErrBatchTooLarge, "%d events, over the limit of %d per append", len(a.Records), lim.MaxAppendEvents)
	}
	req := driver.MultiAppendRequest{Records: make([]driver.Record, len(a.Records))}
	expect := map[string]driver.ExpectedVersion{}
	for i, e := range a.Expect {
		if err := ValidateStreamID(e.Stream); err != nil {
			return driver.MultiAppendRequest{}, 0, fmt.Errorf("expectation %d: %w", i, err)
		}
		exp := driver.ExpectedVersion(e.Expected)
		if exp.Kind() > driver.ExpectStreamExists {
			return driver.MultiAppendRequest{}, 0, fmt.Errorf("expectation %d: %w", i, invalid(ErrInvalidVersion, "unknown expected version kind %d", exp.Kind()))
		}
		if _, dup := expect[e.Stream]; dup {
			return driver.MultiAppendRequest{}, 0, invalid(ErrInvalidArgument, "two expectations for stream %q", e.Stream)
		}
		expect[e.Stream] = exp
	}
	seen := make(map[uuid.UUID]int, len(a.Records))
	written := map[string]bool{}
	total := 0
	for i, r := range a.Records {
		if err := ValidateStreamID(r.Stream); err != nil {
			return driver.MultiAppendRequest{}, 0, fmt.Errorf("record %d: %w", i, err)
		}
		if err := validateEvent(r.Event, lim); err != nil {
			return driver.MultiAppendRequest{}, 0, fmt.Errorf("record %d: %w", i, err)
		}
		total += len(r.Event.Data) + len(r.Event.Metadata)
		if r.Event.ID == uuid.Nil {
			r.Event.ID = uuid.New()
		}
		if j, dup := seen[r.Event.ID]; dup {
			return driver.MultiAppendRequest{}, 0, fmt.Errorf("record %d: %w", i, invalid(ErrInvalidArgument, "event id %s repeats record %d", r.Event.ID, j))
		}
		seen[r.Event.ID] = i
		written[r.Stream] = true
		req.Records[i] = driver.Record{Stream: r.Stream, Event: eventToDriver(r.Event)}
	}
	if err := checkAppendSize(total, lim); err != nil {
		return driver.MultiAppendRequest{}, 0, err
	}
	for stream, exp := range expect {
		if !written[stream] && exp.Kind() == driver.ExpectAny {
			return driver.MultiAppendRequest{}, 0, invalid(ErrInvalidVersion, "stream %q is only checked, so it needs an expectation other than Any", stream)
		}
	}
	for stream := range written {
		if _, ok := expect[stream]; !ok {
			expect[stream] = driver.ExpectedVersion(Any)
		}
	}
	req.Expect = make([]driver.StreamExpectation, 0, len(expect))
	for stream, exp := range expect {
		req.Expect = append(req.Expect, driver.StreamExpectation{Stream: stream, Expected: exp})
	}
	slices.SortFunc(req.Expect, func(x, y driver.StreamExpectation) int { return cmp.Compare(x.Stream, y.Stream) })
	if a.Condition != nil {
		q, err := validateQuery(a.Condition.FailIfEventsMatch)
		if err != nil {
			return driver.MultiAppendRequest{}, 0, fmt.Errorf("append condition: %w", err)
		}
		req.Condition = &driver.AppendCondition{FailIfEventsMatch: q, After: driver.Position(a.Condition.After)}
	}
	return req, total, nil
}

// multiDuplicateEventID turns a driver's *driver.RetryMismatchError (Index
// counts records) into a *DuplicateEventIDError.
func multiDuplicateEventID(req driver.MultiAppendRequest, err error) error {
	var m *driver.RetryMismatchError
	if !errors.As(err, &m) || m.Index < 0 || m.Index >= len(req.Records) {
		return err
	}
	r := req.Records[m.Index]
	return &DuplicateEventIDError{Stream: r.Stream, ID: r.Event.ID, Version: m.Version, Field: m.Field}
}

func multiErr(err error) error { return fmt.Errorf("eventstore: append to several streams: %w", err) }

// multiAppendAttrs are the span attributes of a multi-stream append: the
// event count and the category when every record has the same one.
func multiAppendAttrs(a MultiAppend) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attrCount.Int(len(a.Records)), attrExpected.String("multi")}
	if len(a.Records) > 0 && !slices.ContainsFunc(a.Records, func(r Record) bool { return Category(r.Stream) != Category(a.Records[0].Stream) }) {
		attrs = withCategory(attrs, a.Records[0].Stream)
	}
	return attrs
}
