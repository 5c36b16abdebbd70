package eventstore_test

import (
	"context"

	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/memory"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkAppend appends single events to the memory driver with the
// default Options: with no OpenTelemetry SDK installed the Store starts no
// span and allocates no more than before it had telemetry: 4 allocations
// per append before and after (-benchmem; docs/observability.md).
func BenchmarkAppend(b *testing.B) {
	s := eventstore.New(memory.New(), eventstore.Options{})
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	ev := eventstore.NewEvent("Placed", []byte(`{"sku":"A-1","qty":2}`))
	b.ReportAllocs()
	for b.Loop() {
		ev.ID = [16]byte{}
		if _, err := s.Append(ctx, "Order-1", eventstore.Any, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadStream reads a stream of 100 events from the memory driver.
func BenchmarkReadStream(b *testing.B) {
	s := eventstore.New(memory.New(), eventstore.Options{})
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	for range 100 {
		if _, err := s.Append(ctx, "Order-1", eventstore.Any, eventstore.NewEvent("Placed", nil)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkAppendTelemetry appends single events to the memory driver
// with telemetry off (the no-op providers) and on (an SDK tracer with the
// batch span processor and a discarding exporter, an SDK meter with a
// manual reader): the difference is the CPU and allocations the Store's
// telemetry and the SDK add to an append, without the I/O of a real
// backend (drivers/sqlite BenchmarkTracingOverhead has that).
//
// Finding (-benchmem): off 4 allocations per append, on 17 (27 before the
// Store built its span options once and formatted the trace context
// straight into bytes). Of the 13 telemetry adds, 6 are the Store's (the
// span's attributes and options, the end attributes, the trace-context
// metadata, the retry observer's context), 6 the SDK's (the span, its
// attributes twice, its start config, its end snapshot, its context) and
// 1 the memory driver's copy of the larger metadata.
func BenchmarkAppendTelemetry(b *testing.B) {
	for _, c := range []struct {
		name string
		opts func(b *testing.B) eventstore.Options
	}{
		{"off", func(*testing.B) eventstore.Options { return eventstore.Options{} }},
		{"on", func(b *testing.B) eventstore.Options {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				_ = tp.Shutdown(context.Background())
				_ = mp.Shutdown(context.Background())
			})
			return eventstore.Options{TracerProvider: tp, MeterProvider: mp}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := eventstore.New(memory.New(), c.opts(b))
			b.Cleanup(func() { s.Close() })
			ctx := b.Context()
			ev := eventstore.NewEvent("Placed", []byte(`{"sku":"A-1","qty":2}`))
			b.ReportAllocs()
			for b.Loop() {
				ev.ID = [16]byte{}
				if _, err := s.Append(ctx, "Order-1", eventstore.Any, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
