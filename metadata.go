package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/tracemeta"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Well-known metadata keys. The correlation and causation keys follow the
// KurrentDB convention, so correlation chains survive a migration to or
// from KurrentDB.
//
// MetadataTraceParent and MetadataTraceState hold the W3C trace context
// (the traceparent and tracestate headers, as strings) of the span an
// append ran in. The Store records them in every appended event whose
// metadata is empty or a JSON object without either key, when the append's
// context carries a valid span context; it never overwrites a key the
// caller set, and leaves out an event the two keys would push over
// [Store.Limits]. The keys are inserted first in the object and the
// caller's bytes follow unchanged. A subscription handler's span links to
// the span context found there; see docs/observability.md.
//
// MetadataSchemaVersion holds the schema version of an event's payload, a
// JSON integer (1, 2, …), as package codec writes it; an event without it
// is at version 1. It lives in metadata, not in the event type, so that
// subscriptions and queries filtering by type see every version of an event.
const (
	MetadataCorrelationID = "$correlationId"
	MetadataCausationID   = "$causationId"
	MetadataSchemaVersion = "$schemaVersion"
	MetadataTraceParent   = driver.MetadataTraceParent // "$traceparent"
	MetadataTraceState    = driver.MetadataTraceState  // "$tracestate"
)

// CorrelationID returns the correlation ID in metadata, if any.
func CorrelationID(metadata []byte) (string, bool) {
	return metadataString(metadata, MetadataCorrelationID)
}

// CausationID returns the causation ID in metadata, if any.
func CausationID(metadata []byte) (string, bool) {
	return metadataString(metadata, MetadataCausationID)
}

// SchemaVersion returns the schema version recorded in metadata under
// [MetadataSchemaVersion], if any: a JSON integer of at least 1. It reports
// false when there is none, when metadata is not a JSON object, and when the
// value is not such an integer.
func SchemaVersion(metadata []byte) (int, bool) {
	if len(metadata) == 0 {
		return 0, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(metadata, &m) != nil {
		return 0, false
	}
	raw, ok := m[MetadataSchemaVersion]
	if !ok {
		return 0, false
	}
	var n int
	if json.Unmarshal(raw, &n) != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// TraceParent returns the W3C traceparent recorded in metadata under
// [MetadataTraceParent], if any.
func TraceParent(metadata []byte) (string, bool) {
	return metadataString(metadata, MetadataTraceParent)
}

// TraceState returns the W3C tracestate recorded in metadata under
// [MetadataTraceState], if any.
func TraceState(metadata []byte) (string, bool) {
	return metadataString(metadata, MetadataTraceState)
}

func metadataString(metadata []byte, key string) (string, bool) {
	if len(metadata) == 0 {
		return "", false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(metadata, &m) != nil {
		return "", false
	}
	var s string
	if raw, ok := m[key]; !ok || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// CausedBy returns e with metadata that records cause: its causation ID is
// cause's event ID and its correlation ID is cause's correlation ID (or cause's
// event ID when cause has none). Other keys in e.Metadata are kept; the
// metadata is re-encoded, so key order and spacing may change. It fails with
// [ErrInvalidPayload] when e.Metadata is not a JSON object.
func CausedBy(e Event, cause RecordedEvent) (Event, error) {
	m := map[string]json.RawMessage{}
	if len(e.Metadata) > 0 {
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			return e, fmt.Errorf("eventstore: %w: metadata is not a JSON object: %v", ErrInvalidPayload, err)
		}
	}
	corr, ok := CorrelationID(cause.Metadata)
	if !ok {
		corr = cause.ID.String()
	}
	m[MetadataCorrelationID], _ = json.Marshal(corr)
	m[MetadataCausationID], _ = json.Marshal(cause.ID.String())
	b, err := json.Marshal(m)
	if err != nil {
		return e, err
	}
	e.Metadata = b
	return e, nil
}

// recordTraceContext records sc in the metadata of evs under
// MetadataTraceParent and MetadataTraceState, where it may (see there).
// The members are formatted once, straight into bytes, and events with no
// metadata share one read-only object holding only them.
func recordTraceContext(evs []driver.Event, sc trace.SpanContext, lim Limits) {
	var ts string
	if sc.TraceState().Len() > 0 {
		ts = sc.TraceState().String()
	}
	obj := make([]byte, 0, 80+len(ts))
	obj = append(tracemeta.AppendMembers(append(obj, '{'), sc.TraceID(), sc.SpanID(), byte(sc.TraceFlags()), ts), '}')
	obj = obj[:len(obj):len(obj)]           // {members}: an append to it copies
	ins := obj[1 : len(obj)-1 : len(obj)-1] // the members
	total := 0
	for _, e := range evs {
		total += len(e.Data) + len(e.Metadata)
	}
	for i := range evs {
		e := &evs[i]
		if len(e.Data)+len(e.Metadata)+len(ins)+2 > lim.MaxEventSize ||
			lim.MaxAppendSize > 0 && total+len(ins)+2 > lim.MaxAppendSize {
			continue
		}
		if len(e.Metadata) == 0 {
			e.Metadata = obj
			total += len(obj)
			continue
		}
		if md, ok := tracemeta.Insert(e.Metadata, ins); ok {
			total += len(md) - len(e.Metadata)
			e.Metadata = md
		}
	}
}

// spanContextOf returns the span context recorded in metadata under
// MetadataTraceParent and MetadataTraceState, marked remote; it is not
// valid when there is none or it does not parse.
func spanContextOf(metadata []byte) trace.SpanContext {
	if !bytes.Contains(metadata, []byte("traceparent")) && !bytes.Contains(metadata, []byte(`\u`)) {
		return trace.SpanContext{}
	}
	tp, ok := metadataString(metadata, MetadataTraceParent)
	if !ok {
		return trace.SpanContext{}
	}
	carrier := propagation.MapCarrier{"traceparent": tp}
	if ts, ok := metadataString(metadata, MetadataTraceState); ok {
		carrier["tracestate"] = ts
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
}
