package zzscratch

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func Benchmark(b *testing.B) {
	for _, c := range []struct {
		name          string
		span, metrics bool
		proc          string
		exemplars     bool
	}{
		{"span+batch", true, false, "batch", true},
		{"span+simple", true, false, "simple", true},
		{"span+none", true, false, "none", true},
		{"metrics+exemplars", false, true, "", true},
		{"metrics-noexemplars", false, true, "", false},
		{"all", true, true, "batch", true},
		{"all-noexemplars", true, true, "batch", false},
		{"clock", false, false, "", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			var tpo []sdktrace.TracerProviderOption
			switch c.proc {
			case "batch":
				tpo = append(tpo, sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			case "simple":
				tpo = append(tpo, sdktrace.WithSyncer(tracetest.NewNoopExporter()))
			}
			tp := sdktrace.NewTracerProvider(tpo...)
			mpo := []sdkmetric.Option{sdkmetric.WithReader(sdkmetric.NewManualReader())}
			if !c.exemplars {
				mpo = append(mpo, sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
			}
			mp := sdkmetric.NewMeterProvider(mpo...)
			b.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
			tr := tp.Tracer("x")
			m := mp.Meter("x")
			c1, _ := m.Int64Counter("a")
			c2, _ := m.Int64Counter("b")
			c3, _ := m.Int64Counter("c")
			h, _ := m.Float64Histogram("d")
			sys := attribute.String("db.system.name", "sqlite")
			o1 := metric.WithAttributeSet(attribute.NewSet(sys, attribute.String("outcome", "ok")))
			o2 := metric.WithAttributeSet(attribute.NewSet(sys))
			o3 := metric.WithAttributeSet(attribute.NewSet(sys, attribute.String("operation", "append")))
			// a sampled parent so that exemplars are offered in the metrics-only cases
			var scc trace.SpanContextConfig
			scc.TraceID[0], scc.SpanID[0], scc.TraceFlags = 1, 1, trace.FlagsSampled
			ctx := trace.ContextWithSpanContext(b.Context(), trace.NewSpanContext(scc))
			b.ReportAllocs()
			c0 := cpuNow()
			for b.Loop() {
				start := time.Now()
				sctx := ctx
				var sp trace.Span
				if c.span {
					sctx, sp = tr.Start(ctx, "append", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(sys,
						attribute.String("db.operation.name", "append"), attribute.String("eventstore.stream.category", "Bench"),
						attribute.Int("eventstore.event.count", 1), attribute.String("eventstore.expected_version", "exact")))
				}
				if c.metrics {
					c1.Add(sctx, 1, o1)
					c2.Add(sctx, 1, o2)
					c3.Add(sctx, 100, o2)
					h.Record(sctx, time.Since(start).Seconds(), o3)
				}
				if c.span {
					sp.SetAttributes(attribute.Int("eventstore.event.bytes", 100), attribute.String("outcome", "ok"))
					sp.End()
				}
			}
			b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}
