package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/errkind"
	"github.com/eventkit/eventstore/internal/verbatim"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is an SDK tracer and meter provider whose spans and metrics a
// test reads back.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

func (tel *telemetry) options() eventstore.Options {
	return eventstore.Options{TracerProvider: tel.tp, MeterProvider: tel.mp}
}

// ended returns the ended spans named name.
func (tel *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// collect returns the metrics collected now, by name.
func (tel *telemetry) collect(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, eventstore.InstrumentationName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sum returns the value of the counter name at the data point with attrs
// (and any others), and whether there is one.
func sum(ms map[string]metricdata.Metrics, name string, attrs ...attribute.KeyValue) (int64, bool) {
	s, ok := ms[name].Data.(metricdata.Sum[int64])
	if !ok {
		return 0, false
	}
	for _, dp := range s.DataPoints {
		if hasAll(dp.Attributes, attrs) {
			return dp.Value, true
		}
	}
	return 0, false
}

func hasAll(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// histogramCount returns how many durations of operation op were recorded.
func histogramCount(ms map[string]metricdata.Metrics, op string) uint64 {
	h, _ := ms["eventstore.operation.duration"].Data.(metricdata.Histogram[float64])
	for _, dp := range h.DataPoints {
		if v, ok := dp.Attributes.Value("operation"); ok && v.AsString() == op {
			return dp.Count
		}
	}
	return 0
}

// spanAttr returns the value of attribute key on span.
func spanAttr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// traceParent formats sc as a W3C traceparent.
func traceParent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

var memorySystem = attribute.String("db.system.name", "memory")

// TestTelemetryAppends: three appends of two events and one conflict give
// the counters, spans and recorded trace context the docs promise.
func TestTelemetryAppends(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	ctx, parent := tel.tp.Tracer("test").Start(t.Context(), "command")
	size := 0
	for i := range 3 {
		evs := []eventstore.Event{eventstore.NewEvent("Placed", []byte(`{"n":1}`)), eventstore.NewEvent("Paid", nil)}
		_, err := s.Append(ctx, fmt.Sprintf("Order-%d", i), eventstore.NoStream, evs...)
		require.NoError(t, err)
		for ev, err := range s.ReadStream(t.Context(), fmt.Sprintf("Order-%d", i), eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			size += len(ev.Data) + len(ev.Metadata)
		}
	}
	_, err := s.Append(ctx, "Order-0", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	_, err = s.Append(ctx, "$system", eventstore.Any, eventstore.NewEvent("Placed", nil))
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	parent.End()

	ms := tel.collect(t)
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"eventstore.appends", []attribute.KeyValue{attribute.String("outcome", "ok")}, 3},
		{"eventstore.appends", []attribute.KeyValue{attribute.String("outcome", "conflict")}, 1},
		{"eventstore.appends", []attribute.KeyValue{attribute.String("outcome", "invalid")}, 1},
		{"eventstore.conflicts", nil, 1},
		{"eventstore.events.appended", nil, 6},
		{"eventstore.bytes.appended", nil, int64(size)},
	} {
		got, ok := sum(ms, c.name, append(c.attrs, memorySystem)...)
		assert.True(t, ok, "%s%v: no data point", c.name, c.attrs)
		assert.Equal(t, c.want, got, "%s%v", c.name, c.attrs)
	}
	assert.Equal(t, uint64(5), histogramCount(ms, "append"))

	spans := tel.ended("append")
	require.Len(t, spans, 5)
	for i, sp := range spans {
		assert.Equal(t, trace.SpanKindClient, sp.SpanKind())
		assert.Equal(t, parent.SpanContext().SpanID(), sp.Parent().SpanID(), "a child of the caller's span")
		assert.Equal(t, "memory", spanAttr(sp, "db.system.name").AsString())
		assert.Equal(t, "append", spanAttr(sp, "db.operation.name").AsString())
		want := map[int]string{3: "conflict", 4: "invalid"}[i]
		if want == "" {
			want = "ok"
			assert.Equal(t, int64(2), spanAttr(sp, "eventstore.event.count").AsInt64())
			assert.Equal(t, codes.Unset, sp.Status().Code)
		} else {
			assert.Equal(t, codes.Error, sp.Status().Code)
			assert.Equal(t, want, spanAttr(sp, "error.type").AsString())
			assert.NotContains(t, sp.Status().Description, "Order-0", "no stream ID in the status")
		}
		assert.Equal(t, want, spanAttr(sp, "outcome").AsString(), "span %d", i)
		if i < 4 {
			assert.Equal(t, "Order", spanAttr(sp, "eventstore.stream.category").AsString())
			assert.Equal(t, "no_stream", spanAttr(sp, "eventstore.expected_version").AsString())
		}
		for _, kv := range sp.Attributes() {
			assert.NotContains(t, kv.Value.String(), "Order-", "no stream ID in %s", kv.Key)
		}
	}
	// Each event records the span of its append.
	for i := range 3 {
		for ev, err := range s.ReadStream(t.Context(), fmt.Sprintf("Order-%d", i), eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			var md map[string]string
			require.NoError(t, json.Unmarshal(ev.Metadata, &md))
			assert.Equal(t, traceParent(spans[i].SpanContext()), md[eventstore.MetadataTraceParent])
		}
	}
}

// TestTelemetryTraceContextInMetadata: the trace context goes first into
// metadata that is empty or a JSON object, never over a key the caller set,
// with the append's own span as the root of a trace when the caller has none.
func TestTelemetryTraceContextInMetadata(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	const theirs = `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01`
	tests := []struct {
		name     string
		inSpan   bool
		metadata string
		want     string // %s is the traceparent of the append span
	}{
		{"empty", true, ``, `{"$traceparent":"%s"}`},
		{"object", true, ` {"$correlationId": "c-1",  "n":1}`, ` {"$traceparent":"%s","$correlationId": "c-1",  "n":1}`},
		{"empty object", true, `{ }`, `{"$traceparent":"%s" }`},
		{"caller's traceparent", true, `{"$traceparent":"` + theirs + `"}`, `{"$traceparent":"` + theirs + `"}`},
		{"caller's tracestate only", true, `{"$tracestate":"k=v"}`, `{"$tracestate":"k=v"}`},
		{"no caller span", false, `{"n":1}`, `{"$traceparent":"%s","n":1}`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, parent := t.Context(), trace.Span(nil)
			if tc.inSpan {
				ctx, parent = tel.tp.Tracer("test").Start(ctx, "command")
				defer parent.End()
			}
			stream := fmt.Sprintf("Meta-%d", i)
			_, err := s.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: "Noted", Metadata: []byte(tc.metadata)})
			require.NoError(t, err)
			want := tc.want
			ended := tel.ended("append")
			appendSpan := ended[len(ended)-1]
			if tc.inSpan {
				require.Equal(t, parent.SpanContext().SpanID(), appendSpan.Parent().SpanID())
			} else {
				require.False(t, appendSpan.Parent().IsValid(), "a root span")
			}
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, traceParent(appendSpan.SpanContext()))
			}
			for ev, err := range s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{}) {
				require.NoError(t, err)
				assert.Equal(t, want, string(ev.Metadata))
			}
		})
	}
}

// TestTelemetryRetryInAnotherSpan: an idempotent retry of an append made in
// another span (so with another trace context) returns the original result
// instead of a duplicate-ID error.
func TestTelemetryRetryInAnotherSpan(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	ev := eventstore.NewEvent("Placed", nil)
	ev.Metadata = []byte(`{"n":1}`)
	tr := tel.tp.Tracer("test")
	ctx1, sp1 := tr.Start(t.Context(), "first")
	first, err := s.Append(ctx1, "Order-1", eventstore.NoStream, ev)
	sp1.End()
	require.NoError(t, err)
	for _, ctx := range []context.Context{t.Context(), func() context.Context { c, sp := tr.Start(t.Context(), "second"); sp.End(); return c }()} {
		again, err := s.Append(ctx, "Order-1", eventstore.NoStream, ev)
		require.NoError(t, err, "a retry")
		assert.Equal(t, first, again)
	}
	ev.Metadata = []byte(`{"n":2}`)
	_, err = s.Append(ctx1, "Order-1", eventstore.NoStream, ev)
	require.ErrorIs(t, err, eventstore.ErrDuplicateEventID, "other metadata is still another event")
}

// TestTelemetrySubscription: handler spans are children of their batch's
// span and link to the append's span; the subscription gauges and
// durations are recorded.
func TestTelemetrySubscription(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	ctx, cmd := tel.tp.Tracer("test").Start(t.Context(), "command")
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("Paid", nil))
	require.NoError(t, err)
	cmd.End()
	_, err = s.Append(t.Context(), "Order-2", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	appendSpans := tel.ended("append")

	sctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	caughtUp := make(chan struct{})
	handled := make(chan trace.SpanContext, 3)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(sctx, eventstore.SubscribeOptions{Name: "projector", OnCaughtUp: func(eventstore.SubscriptionState) { close(caughtUp) }},
			func(ctx context.Context, ev eventstore.RecordedEvent) error {
				handled <- trace.SpanContextFromContext(ctx)
				return nil
			})
	}()
	select {
	case <-caughtUp:
	case <-t.Context().Done():
		t.Fatal("no catch-up")
	}
	ms := tel.collect(t)
	sub := attribute.String("subscription", "projector")
	gauge := func(name string) (float64, bool) {
		switch g := ms[name].Data.(type) {
		case metricdata.Gauge[int64]:
			for _, dp := range g.DataPoints {
				if hasAll(dp.Attributes, []attribute.KeyValue{sub, memorySystem}) {
					return float64(dp.Value), true
				}
			}
		case metricdata.Gauge[float64]:
			for _, dp := range g.DataPoints {
				if hasAll(dp.Attributes, []attribute.KeyValue{sub, memorySystem}) {
					return dp.Value, true
				}
			}
		}
		return 0, false
	}
	for name, want := range map[string]float64{"eventstore.subscription.live": 1, "eventstore.subscription.lag.events": 0, "eventstore.subscription.lag.seconds": 0} {
		got, ok := gauge(name)
		assert.True(t, ok, "%s observed", name)
		assert.Equal(t, want, got, name)
	}
	age, ok := gauge("eventstore.checkpoint.age")
	assert.True(t, ok, "checkpoint age observed")
	assert.GreaterOrEqual(t, age, 0.0)
	assert.Equal(t, uint64(3), histogramCount(ms, "handler"))
	assert.GreaterOrEqual(t, histogramCount(ms, "subscription.batch"), uint64(1))
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	handlers := tel.ended("handler")
	require.Len(t, handlers, 3)
	batches := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, b := range tel.ended("subscription.batch") {
		batches[b.SpanContext().SpanID()] = b
		assert.Equal(t, trace.SpanKindConsumer, b.SpanKind())
		assert.Equal(t, "projector", spanAttr(b, "eventstore.subscription.name").AsString())
	}
	for i, h := range handlers {
		assert.Equal(t, h.SpanContext(), <-handled, "the handler's context carries its span")
		assert.Contains(t, batches, h.Parent().SpanID(), "a child of its batch")
		assert.Equal(t, "ok", spanAttr(h, "outcome").AsString())
		assert.Equal(t, "Order", spanAttr(h, "eventstore.stream.category").AsString())
		appendSpan := appendSpans[min(i, 2)/2] // events 0 and 1 in the first append
		require.Len(t, h.Links(), 1, "linked to the append")
		assert.Equal(t, appendSpan.SpanContext().TraceID(), h.Links()[0].SpanContext.TraceID())
		assert.Equal(t, appendSpan.SpanContext().SpanID(), h.Links()[0].SpanContext.SpanID())
		assert.True(t, h.Links()[0].SpanContext.IsRemote())
	}
}

// TestTelemetryReads: one span per read, ended when the loop ends, with the
// number of events it yielded.
func TestTelemetryReads(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	for i := range 5 {
		_, err := s.Append(t.Context(), "Order-1", eventstore.Any, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err, "append %d", i)
	}
	for _, err := range s.ReadStream(t.Context(), "Order-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		assert.Empty(t, tel.ended("read_stream"), "not ended while the loop runs")
	}
	n := 0
	for _, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		if n++; n == 2 {
			break
		}
	}
	for range s.ReadStream(t.Context(), "$bad", eventstore.ReadStreamOptions{}) {
	}
	rs := tel.ended("read_stream")
	require.Len(t, rs, 2)
	assert.Equal(t, int64(5), spanAttr(rs[0], "eventstore.event.count").AsInt64())
	assert.Equal(t, "Order", spanAttr(rs[0], "eventstore.stream.category").AsString())
	assert.Equal(t, "ok", spanAttr(rs[0], "outcome").AsString())
	assert.Equal(t, "invalid", spanAttr(rs[1], "outcome").AsString())
	ra := tel.ended("read_all")
	require.Len(t, ra, 1)
	assert.Equal(t, int64(2), spanAttr(ra[0], "eventstore.event.count").AsInt64(), "ended at the break")
	ms := tel.collect(t)
	assert.Equal(t, uint64(2), histogramCount(ms, "read_stream"))
	assert.Equal(t, uint64(1), histogramCount(ms, "read_all"))
}

// TestTelemetryRetries counts a subscription's retries of transient
// failures.
func TestTelemetryRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		d := &flakyDriver{Driver: memory.New(), err: errkind.Transient(errors.New("connection reset by peer")),
			failReads: map[int]bool{1: true, 2: true}}
		s := eventstore.New(d, tel.options())
		defer s.Close()
		ctx, cancel := context.WithCancel(t.Context())
		_, err := s.Append(ctx, "Order-1", eventstore.Any, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
		err = s.Subscribe(ctx, eventstore.SubscribeOptions{Name: "projector"}, func(context.Context, eventstore.RecordedEvent) error {
			cancel()
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		got, ok := sum(tel.collect(t), "eventstore.retries", memorySystem, attribute.String("operation", "read"))
		assert.True(t, ok)
		assert.Equal(t, int64(2), got)
	})
}

// TestTelemetryOffStartsNoSpan: with the global providers and no SDK
// installed the Store starts no span, but an append inside the caller's
// span still records the caller's trace context.
func TestTelemetryOffStartsNoSpan(t *testing.T) {
	s := eventstore.New(memory.New(), eventstore.Options{})
	defer s.Close()
	tel := newTelemetry(t)
	ctx, sp := tel.tp.Tracer("test").Start(t.Context(), "command")
	_, err := s.Append(ctx, "Order-1", eventstore.Any, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	sp.End()
	require.Len(t, tel.spans.Ended(), 1, "only the caller's span")
	_, err = s.Append(t.Context(), "Order-2", eventstore.Any, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	for ev, err := range s.ReadStream(t.Context(), "Order-2", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		assert.Empty(t, ev.Metadata, "no span, no trace context")
	}
	for ev, err := range s.ReadStream(t.Context(), "Order-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		assert.Contains(t, string(ev.Metadata), traceParent(sp.SpanContext()), "the caller's trace context still travels")
	}
}

// TestTelemetryLagWhileCatchingUp: while a subscription works through a
// backlog, the gauges say it is not live and how many events, and how old
// the oldest, it has yet to handle.
func TestTelemetryLagWhileCatchingUp(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	for range 3 {
		_, err := s.Append(t.Context(), "Order-1", eventstore.Any, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	inHandler, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, eventstore.SubscribeOptions{Name: "slow", BatchSize: 1}, func(ctx context.Context, ev eventstore.RecordedEvent) error {
			if ev.Version == 2 {
				close(inHandler)
				<-release
			}
			return nil
		})
	}()
	select {
	case <-inHandler:
	case <-t.Context().Done():
		t.Fatal("the handler never got event 2")
	}
	ms := tel.collect(t)
	close(release)
	sub := []attribute.KeyValue{attribute.String("subscription", "slow"), memorySystem}
	var live, lag int64 = -1, -1
	for _, dp := range ms["eventstore.subscription.live"].Data.(metricdata.Gauge[int64]).DataPoints {
		if hasAll(dp.Attributes, sub) {
			live = dp.Value
		}
	}
	for _, dp := range ms["eventstore.subscription.lag.events"].Data.(metricdata.Gauge[int64]).DataPoints {
		if hasAll(dp.Attributes, sub) {
			lag = dp.Value
		}
	}
	assert.Equal(t, int64(0), live, "catching up")
	assert.Equal(t, int64(2), lag, "events 2 (being handled) and 3")
	seconds := ms["eventstore.subscription.lag.seconds"].Data.(metricdata.Gauge[float64]).DataPoints
	require.Len(t, seconds, 1)
	assert.Greater(t, seconds[0].Value, 0.0)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// TestTelemetryProjectionAndGroup: a projection's handler span links to
// the appends of its batch's events; a consumer group member's handler
// spans carry the member's name.
func TestTelemetryProjectionAndGroup(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	for i := range 2 {
		_, err := s.Append(t.Context(), fmt.Sprintf("Order-%d", i), eventstore.NoStream, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
	}
	appends := tel.ended("append")
	require.Len(t, appends, 2)

	ctx, cancel := context.WithCancel(t.Context())
	err := s.Project(ctx, eventstore.SubscribeOptions{Name: "counts"}, func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
		cancel()
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	handlers := tel.ended("handler")
	require.Len(t, handlers, 1)
	assert.Equal(t, int64(2), spanAttr(handlers[0], "eventstore.event.count").AsInt64())
	require.Len(t, handlers[0].Links(), 2)
	for i, l := range handlers[0].Links() {
		assert.Equal(t, appends[i].SpanContext().SpanID(), l.SpanContext.SpanID())
	}
	assert.NotEmpty(t, tel.ended("subscription.batch"))

	tel.spans.Reset()
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	n := 0
	err = s.SubscribeGroup(ctx, eventstore.GroupOptions{SubscribeOptions: eventstore.SubscribeOptions{Name: "mailer"}, Member: "m1", Partitions: 2},
		func(ctx context.Context, ev eventstore.RecordedEvent) error {
			if n++; n == 2 {
				cancel()
			}
			return nil
		})
	require.ErrorIs(t, err, context.Canceled)
	handlers = tel.ended("handler")
	require.Len(t, handlers, 2)
	for _, h := range handlers {
		assert.Equal(t, "mailer", spanAttr(h, "eventstore.subscription.name").AsString())
		assert.Equal(t, "m1", spanAttr(h, "eventstore.subscription.member").AsString())
		assert.Len(t, h.Links(), 1)
	}
}

// TestTelemetryVerbatimAppend: an append whose context is marked verbatim
// (a migration's) keeps the metadata as given, inside a span too.
func TestTelemetryVerbatimAppend(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	ctx, sp := tel.tp.Tracer("test").Start(t.Context(), "migrate")
	defer sp.End()
	_, err := s.Append(verbatim.With(ctx), "Order-1", eventstore.NoStream, eventstore.Event{Type: "Placed", Metadata: []byte(`{"n":1}`)})
	require.NoError(t, err)
	for ev, err := range s.ReadStream(t.Context(), "Order-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		assert.Equal(t, `{"n":1}`, string(ev.Metadata))
	}
	require.Len(t, tel.ended("append"), 1, "the append still has its span")
}

// TestTelemetryImportLeavesMetadataAlone: an import in a span records no
// trace context, in metadata that is a JSON object or not; a handler links
// to a trace context found in JSON metadata only, never in binary metadata
// that looks like it.
func TestTelemetryImportLeavesMetadataAlone(t *testing.T) {
	tel := newTelemetry(t)
	s := eventstore.New(memory.New(), tel.options())
	defer s.Close()
	const theirs = `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01`
	tests := []struct {
		name string
		ct   eventstore.ContentType
		md   string
		link bool
	}{
		{"empty", eventstore.JSON, ``, false},
		{"object", eventstore.JSON, `{"n":1}`, false},
		{"null", eventstore.JSON, `null`, false},
		{"array", eventstore.JSON, `[{"$traceparent":"` + theirs + `"}]`, false},
		{"binary", eventstore.Binary, "\x00\xff{}", false},
		{"JSON with a trace context", eventstore.JSON, `{"$traceparent":"` + theirs + `"}`, true},
		{"binary like a trace context", eventstore.Binary, `{"$traceparent":"` + theirs + `"}`, false},
	}
	evs := make([]eventstore.RecordedEvent, len(tests))
	for i, tc := range tests {
		evs[i] = eventstore.RecordedEvent{StreamID: "Legacy-1", Version: uint64(i) + 1, ID: uuid.New(), Type: "Noted",
			Metadata: []byte(tc.md), MetadataContentType: tc.ct}
	}
	ctx, parent := tel.tp.Tracer("test").Start(t.Context(), "command")
	require.NoError(t, s.Import(ctx, evs))
	parent.End()
	i := 0
	for ev, err := range s.ReadStream(t.Context(), "Legacy-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		assert.Equal(t, tests[i].md, string(ev.Metadata), "%s: metadata as imported", tests[i].name)
		assert.Equal(t, tests[i].ct, ev.MetadataContentType, "%s", tests[i].name)
		i++
	}
	require.Equal(t, len(tests), i)

	sctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(sctx, eventstore.SubscribeOptions{OnCaughtUp: func(eventstore.SubscriptionState) { cancel() }},
			func(context.Context, eventstore.RecordedEvent) error { return nil })
	}()
	require.ErrorIs(t, <-done, context.Canceled)
	handlers := tel.ended("handler")
	require.Len(t, handlers, len(tests))
	for i, h := range handlers {
		if tests[i].link {
			require.Len(t, h.Links(), 1, "%s: linked", tests[i].name)
			assert.Equal(t, theirs[36:52], h.Links()[0].SpanContext.SpanID().String(), tests[i].name)
		} else {
			assert.Empty(t, h.Links(), "%s: no link", tests[i].name)
		}
	}
}
