// Package telemetrytest is the OpenTelemetry SDK as an operator runs it,
// for the benchmarks that measure what the Store's telemetry costs, and
// the floor of that cost: the SDK calls the Store makes for an append,
// around anything else.
package telemetrytest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// SDK is a TracerProvider with the batch span processor and an exporter,
// and a MeterProvider with a reader (a manual one), as eventstore.Options
// take them. The exporter converts the spans it gets as the SDK's
// in-memory exporter does (tracetest.SpanStubsFromReadOnlySpans), then
// drops them, so that a long benchmark does not pile them up.
type SDK struct {
	TracerProvider *sdktrace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider
}

// New returns an SDK that tb's cleanup shuts down.
func New(tb testing.TB) *SDK {
	tb.Helper()
	s := &SDK{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{})),
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())),
	}
	tb.Cleanup(func() {
		_ = s.TracerProvider.Shutdown(context.Background())
		_ = s.MeterProvider.Shutdown(context.Background())
	})
	return s
}

// discardExporter reads each span into a stub, as tracetest's in-memory
// exporter does, and keeps nothing.
type discardExporter struct{}

func (discardExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	_ = tracetest.SpanStubsFromReadOnlySpans(spans)
	return nil
}

func (discardExporter) Shutdown(context.Context) error { return nil }

// Floor returns a function that wraps f, an append of one event that
// returns the bytes it wrote, in the SDK calls the Store makes for such an
// append with telemetry on (Store.Append, telemetry.go): a client span
// with the same attributes at its start and its end, the three append
// counters and the duration histogram, with attribute sets built once, in
// an instrumentation scope of its own. f does not get the span's context,
// so what it appends carries no trace context. Its cost over f's is the
// SDK's share of the Store's telemetry, which no code of the Store can
// remove.
func (s *SDK) Floor(system string) func(ctx context.Context, f func() (int, error)) error {
	tr := s.TracerProvider.Tracer("floor")
	m := s.MeterProvider.Meter("floor")
	appends, _ := m.Int64Counter("eventstore.appends")
	appended, _ := m.Int64Counter("eventstore.events.appended")
	bytes, _ := m.Int64Counter("eventstore.bytes.appended")
	duration, _ := m.Float64Histogram("eventstore.operation.duration")
	sys := attribute.String("db.system.name", system)
	okSet := metric.WithAttributeSet(attribute.NewSet(sys, attribute.String("outcome", "ok")))
	sysSet := metric.WithAttributeSet(attribute.NewSet(sys))
	opSet := metric.WithAttributeSet(attribute.NewSet(sys, attribute.String("operation", "append")))
	client := trace.WithSpanKind(trace.SpanKindClient)
	return func(ctx context.Context, f func() (int, error)) error {
		start := time.Now()
		sctx, span := tr.Start(ctx, "append", client, trace.WithAttributes(sys, attribute.String("db.operation.name", "append"),
			attribute.Int("eventstore.event.count", 1), attribute.String("eventstore.expected_version", "exact"),
			attribute.String("eventstore.stream.category", "Bench")))
		n, err := f()
		if err != nil {
			span.End()
			return err
		}
		appends.Add(sctx, 1, okSet)
		appended.Add(sctx, 1, sysSet)
		bytes.Add(sctx, int64(n), sysSet)
		duration.Record(sctx, time.Since(start).Seconds(), opSet)
		span.SetAttributes(attribute.Int("eventstore.event.bytes", n), attribute.String("outcome", "ok"))
		span.End()
		return nil
	}
}

// Usage is what the process used: CPU time (user and system, all threads)
// and context switches (the voluntary ones are mostly a thread going to
// sleep, to be woken again by another).
type Usage struct {
	CPU      time.Duration
	Switches int64
}

// Add returns u + v.
func (u Usage) Add(v Usage) Usage { return Usage{u.CPU + v.CPU, u.Switches + v.Switches} }

// Sub returns u − v.
func (u Usage) Sub(v Usage) Usage { return Usage{u.CPU - v.CPU, u.Switches - v.Switches} }

// ProcessUsage returns what the process has used so far (getrusage).
func ProcessUsage(tb testing.TB) Usage {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return Usage{time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw}
}
