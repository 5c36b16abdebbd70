package eventstore

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/retry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// InstrumentationName is the OpenTelemetry instrumentation scope of the
// Store's spans and metrics.
const InstrumentationName = "github.com/eventkit/eventstore"

// Attribute keys of the Store's spans and metrics; docs/observability.md
// lists which carries which.
const (
	attrSystem    = attribute.Key("db.system.name")    // OTel database semantic conventions
	attrOperation = attribute.Key("db.operation.name") // on spans; "operation" on metrics
	attrErrorType = attribute.Key("error.type")
	attrOutcome   = attribute.Key("outcome")
	attrOp        = attribute.Key("operation")
	attrSubName   = attribute.Key("subscription")
	attrCategory  = attribute.Key("eventstore.stream.category")
	attrCount     = attribute.Key("eventstore.event.count")
	attrBytes     = attribute.Key("eventstore.event.bytes")
	attrExpected  = attribute.Key("eventstore.expected_version")
	attrEventType = attribute.Key("eventstore.event.type")
	attrBackwards = attribute.Key("eventstore.read.backwards")
	attrFiltered  = attribute.Key("eventstore.read.filtered")
	attrSubMember = attribute.Key("eventstore.subscription.member")
	attrSpanSub   = attribute.Key("eventstore.subscription.name")
)

// Operation names: the db.operation.name of spans and the operation
// attribute of eventstore.operation.duration.
const (
	opAppend     = "append"
	opReadStream = "read_stream"
	opReadAll    = "read_all"
	opImport     = "import"
	opBatch      = "subscription.batch"
	opHandler    = "handler"
)

// Outcomes of an operation, the outcome attribute.
const (
	outcomeOK        = "ok"
	outcomeConflict  = "conflict"
	outcomeInvalid   = "invalid"
	outcomeTransient = "transient"
	outcomeError     = "error"
)

var outcomes = [...]string{outcomeOK, outcomeConflict, outcomeInvalid, outcomeTransient, outcomeError}

// outcomeOf classifies err for the outcome attribute.
func outcomeOf(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrWrongExpectedVersion):
		return 1
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrDuplicateEventID):
		return 2
	case errors.Is(err, ErrTransient):
		return 3
	}
	return 4
}

// telemetry holds a Store's tracer and instruments. With the no-op
// providers (the default until an application installs an SDK) no span is
// started and the measurements go to no-op instruments through option
// slices built once here, so the hot path allocates nothing more.
type telemetry struct {
	system string

	// tracer is the tracer of an explicit TracerProvider; nil when tracing
	// is off for good or follows the global provider (global set).
	tracer trace.Tracer
	global bool
	cache  atomic.Pointer[tracerCache] // the global provider last seen

	appends        metric.Int64Counter
	eventsAppended metric.Int64Counter
	bytesAppended  metric.Int64Counter
	conflicts      metric.Int64Counter
	retries        metric.Int64Counter
	duration       metric.Float64Histogram
	registration   metric.Registration // the gauges' callback; nil without one

	sysOpts     []metric.AddOption                  // db.system.name
	appendOpts  [len(outcomes)]([]metric.AddOption) // db.system.name and outcome
	durationOps map[string][]metric.RecordOption    // db.system.name and operation

	// What spans start and end with, built once so that a span costs the
	// Store as few allocations as it can (BenchmarkAppendTelemetry).
	sys       attribute.KeyValue                                // db.system.name
	spanKinds [trace.SpanKindConsumer + 1]trace.SpanStartOption // trace.WithSpanKind, by kind

	// driverRetried counts a retry of the driver's own (internal/retry)
	// during operation op; nil when metrics are off, so that no context
	// is built for it.
	driverRetried map[string]func(context.Context)
}

// tracerCache is the tracer of the global provider tp; on is false when tp
// is a no-op.
type tracerCache struct {
	tp         trace.TracerProvider
	comparable bool
	tracer     trace.Tracer
	on         bool
}

// newTelemetry builds the instruments of a Store over the backend system.
func newTelemetry(s *Store, opts Options, system string) *telemetry {
	t := &telemetry{system: system}
	sys := attribute.String(string(attrSystem), system)
	t.sys = sys
	for k := range t.spanKinds {
		t.spanKinds[k] = trace.WithSpanKind(trace.SpanKind(k))
	}
	if opts.TracerProvider == nil || isGlobalDelegate(opts.TracerProvider) {
		// The global provider: it may be set after New, so it is looked
		// up again on each operation.
		t.global = true
	} else if tracerOn(opts.TracerProvider) {
		t.tracer = opts.TracerProvider.Tracer(InstrumentationName)
	}

	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(InstrumentationName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil || c == nil {
			errs = append(errs, err)
			return metricnoop.Int64Counter{}
		}
		return c
	}
	t.appends = counter("eventstore.appends", "{append}", "Appends, by outcome.")
	t.eventsAppended = counter("eventstore.events.appended", "{event}", "Events written by appends that succeeded.")
	t.bytesAppended = counter("eventstore.bytes.appended", "By", "Bytes of data and metadata written by appends that succeeded.")
	t.conflicts = counter("eventstore.conflicts", "{append}", "Appends and imports refused for a wrong expected version.")
	t.retries = counter("eventstore.retries", "{retry}", "Operations tried again after a transient failure, by the Store or inside the driver.")
	h, err := m.Float64Histogram("eventstore.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of store operations, subscription batches and handler calls."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err != nil || h == nil {
		errs = append(errs, err)
		h = metricnoop.Float64Histogram{}
	}
	t.duration = h

	sysSet := attribute.NewSet(sys)
	t.sysOpts = []metric.AddOption{metric.WithAttributeSet(sysSet)}
	for i, o := range outcomes {
		t.appendOpts[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(sys, attrOutcome.String(o)))}
	}
	t.durationOps = map[string][]metric.RecordOption{}
	for _, op := range []string{opAppend, opReadStream, opReadAll, opImport, opBatch, opHandler} {
		t.durationOps[op] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(sys, attrOp.String(op)))}
	}

	if meterOn(mp) {
		t.driverRetried = map[string]func(context.Context){}
		for _, op := range []string{opAppend, opReadStream, opReadAll, opImport, opBatch} {
			opts := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(sys, attrOp.String(op)))}
			t.driverRetried[op] = func(ctx context.Context) { t.retries.Add(ctx, 1, opts...) }
		}
	}

	if reg, err := registerGauges(s, m, sys); err != nil {
		errs = append(errs, err)
	} else {
		t.registration = reg
	}
	if err := errors.Join(errs...); err != nil {
		s.logger.Warn("some metrics are unavailable", "error", err)
	}
	return t
}

// close unregisters the gauges' callback.
func (t *telemetry) close() {
	if t.registration != nil {
		t.registration.Unregister()
	}
}

// tracerOn reports whether tp may record spans: false for the no-op
// providers, and for the global provider while no SDK was installed (once
// one is, otel.GetTracerProvider returns it instead).
func tracerOn(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return false
	}
	// The global delegate with no SDK yet, and trace.NewNoopTracerProvider.
	return !isGlobalDelegate(tp) && typePkg(tp) != "go.opentelemetry.io/otel/trace"
}

// isGlobalDelegate reports whether tp is the provider otel.GetTracerProvider
// returns before an SDK is installed.
func isGlobalDelegate(tp trace.TracerProvider) bool {
	return typePkg(tp) == "go.opentelemetry.io/otel/internal/global"
}

// typePkg returns the package path of v's type, or of what it points to.
func typePkg(v any) string {
	rt := reflect.TypeOf(v)
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	return rt.PkgPath()
}

// activeTracer returns the tracer to start spans with, nil when tracing is off.
func (t *telemetry) activeTracer() trace.Tracer {
	if !t.global {
		return t.tracer
	}
	tp := otel.GetTracerProvider()
	if c := t.cache.Load(); c != nil && c.comparable && c.tp == tp {
		return c.tracer
	}
	c := &tracerCache{tp: tp, comparable: reflect.TypeOf(tp).Comparable(), on: tracerOn(tp)}
	if c.on {
		c.tracer = tp.Tracer(InstrumentationName)
	}
	t.cache.Store(c)
	return c.tracer
}

// start starts a span of operation op with tr, the tracer activeTracer
// returned (callers check it is not nil first, so that nothing is built
// for a span when tracing is off). The span starts with db.system.name,
// db.operation.name and attrs; attrs is copied, so callers may build it on
// their stack.
func (t *telemetry) start(ctx context.Context, tr trace.Tracer, op string, kind trace.SpanKind, attrs []attribute.KeyValue, extra ...trace.SpanStartOption) (context.Context, trace.Span) {
	kv := make([]attribute.KeyValue, 0, 2+len(attrs))
	kv = append(append(kv, t.sys, attrOperation.String(op)), attrs...)
	o := make([]trace.SpanStartOption, 0, 2+len(extra))
	o = append(append(o, t.spanKinds[kind], trace.WithAttributes(kv...)), extra...)
	return tr.Start(ctx, op, o...)
}

// appended records the metrics of an append of n events and size bytes
// that began at start and returned err.
func (t *telemetry) appended(ctx context.Context, start time.Time, n, size int, err error) {
	oc := outcomeOf(err)
	t.appends.Add(ctx, 1, t.appendOpts[oc]...)
	switch oc {
	case 0:
		t.eventsAppended.Add(ctx, int64(n), t.sysOpts...)
		t.bytesAppended.Add(ctx, int64(size), t.sysOpts...)
	case 1:
		t.conflicts.Add(ctx, 1, t.sysOpts...)
	}
	t.observe(ctx, opAppend, start)
}

// end ends span (nil: no-op) with the outcome of err and the attributes
// extra (copied). The error's message is not recorded: it may hold a
// stream ID.
func end(span trace.Span, err error, extra ...attribute.KeyValue) {
	if span == nil {
		return
	}
	o := outcomeOf(err)
	kv := make([]attribute.KeyValue, 0, len(extra)+2)
	kv = append(append(kv, extra...), attrOutcome.String(outcomes[o]))
	if err != nil {
		kv = append(kv, attrErrorType.String(outcomes[o]))
		span.SetStatus(codes.Error, outcomes[o])
	}
	span.SetAttributes(kv...)
	span.End()
}

// imported records the metrics of an import that began at start and
// returned err.
func (t *telemetry) imported(ctx context.Context, start time.Time, err error) {
	if outcomeOf(err) == 1 {
		t.conflicts.Add(ctx, 1, t.sysOpts...)
	}
	t.observe(ctx, opImport, start)
}

// observe records the duration of operation op since start.
func (t *telemetry) observe(ctx context.Context, op string, start time.Time) {
	t.duration.Record(ctx, time.Since(start).Seconds(), t.durationOps[op]...)
}

// withDriverRetries returns ctx carrying an observer that counts the
// driver's own retries (internal/retry) as retries of operation op; ctx
// itself when metrics are off.
func (t *telemetry) withDriverRetries(ctx context.Context, op string) context.Context {
	if f := t.driverRetried[op]; f != nil {
		return retry.WithObserver(ctx, f)
	}
	return ctx
}

// meterOn reports whether mp records anything: not a no-op provider, and
// not the global delegate before an SDK was installed.
func meterOn(mp metric.MeterProvider) bool {
	switch typePkg(mp) {
	case "go.opentelemetry.io/otel/metric/noop", "go.opentelemetry.io/otel/internal/global", "go.opentelemetry.io/otel/metric":
		return false
	}
	return true
}

// retried counts a retry of a subscription's operation what.
func (t *telemetry) retried(ctx context.Context, what string) {
	t.retries.Add(ctx, 1, metric.WithAttributes(attribute.String(string(attrSystem), t.system), attrOp.String(what)))
}

// withCategory returns kv with the category attribute of stream, when it
// has one: only a stream ID with a "-" has one. The part before it names a
// kind of stream ("Order-42" → "Order"); a stream ID without one is the
// whole ID, which may be personal data ("alice@example.com"), so it is
// left out.
func withCategory(kv []attribute.KeyValue, stream string) []attribute.KeyValue {
	if !strings.Contains(stream, "-") {
		return kv
	}
	return append(kv, attrCategory.String(driver.Category(stream)))
}

// expectedKind names an expected version's kind for the span attribute.
func expectedKind(e driver.ExpectedVersion) string {
	switch {
	case e.Kind() == driver.ExpectAny:
		return "any"
	case e.Kind() == driver.ExpectStreamExists:
		return "stream_exists"
	case e.Version() == 0:
		return "no_stream"
	}
	return "exact"
}

// systemName returns the backend name of d for db.system.name.
func systemName(d driver.Driver, scheme string) string {
	if n, ok := d.(driver.SystemNamer); ok {
		if name := n.SystemName(); name != "" {
			return name
		}
	}
	if scheme != "" {
		return scheme
	}
	return "unknown"
}

// metricsLagCap bounds the events one collection of
// eventstore.subscription.lag.events counts per subscription.
const metricsLagCap = 10_000

// registerGauges registers the subscription gauges and the callback that
// observes them, once per collection, for each named subscription running
// on s.
func registerGauges(s *Store, m metric.Meter, sys attribute.KeyValue) (metric.Registration, error) {
	lagEvents, err1 := m.Int64ObservableGauge("eventstore.subscription.lag.events", metric.WithUnit("{event}"),
		metric.WithDescription("Events after the subscription's read position that its filter keeps (0 when live; capped at 10000)."))
	lagSeconds, err2 := m.Float64ObservableGauge("eventstore.subscription.lag.seconds", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest event the subscription has yet to handle (0 when live)."))
	age, err3 := m.Float64ObservableGauge("eventstore.checkpoint.age", metric.WithUnit("s"),
		metric.WithDescription("Time since the subscription last saved its checkpoint."))
	live, err4 := m.Int64ObservableGauge("eventstore.subscription.live", metric.WithUnit("1"),
		metric.WithDescription("1 while the subscription is live (its last read reached the end of the log), 0 while it catches up."))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		s.subMu.Lock()
		subs := make([]*subscription, 0, len(s.running))
		for _, sub := range s.running {
			subs = append(subs, sub)
		}
		s.subMu.Unlock()
		now := time.Now()
		for _, sub := range subs {
			st, from, savedAt := sub.state.metricsState()
			if st.Name == "" {
				continue // no name to tell it by
			}
			kv := []attribute.KeyValue{sys, attrSubName.String(CheckpointName(st.Name, st.Group))}
			if st.Member != "" {
				kv = append(kv, attrSubMember.String(st.Member))
			}
			attrs := metric.WithAttributeSet(attribute.NewSet(kv...))
			var l int64
			var behind time.Duration
			if !st.Live {
				if lag, err := s.countLag(ctx, later(st.Position, from), st.Filter, metricsLagCap); err == nil {
					l = int64(lag.Events)
					if !lag.Oldest.IsZero() {
						behind = max(now.Sub(lag.Oldest), 0)
					}
				}
			}
			o.ObserveInt64(lagEvents, l, attrs)
			o.ObserveFloat64(lagSeconds, behind.Seconds(), attrs)
			var isLive int64
			if st.Live {
				isLive = 1
			}
			o.ObserveInt64(live, isLive, attrs)
			if !savedAt.IsZero() {
				o.ObserveFloat64(age, now.Sub(savedAt).Seconds(), attrs)
			}
		}
		return nil
	}, lagEvents, lagSeconds, age, live)
}
