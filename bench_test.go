package eventstore_test

import (
	"context"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/telemetrytest"
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
// with telemetry off (the no-op providers), on (the SDK as an operator
// runs it: internal/telemetrytest), and off inside the SDK calls the Store
// makes when on (floor: telemetrytest.SDK.Floor), reporting the process's
// CPU time per append beside the wall time. on − floor is what the
// Store's own telemetry code costs, floor − off what the SDK costs,
// without the I/O of a real backend (drivers/sqlite
// BenchmarkTracingOverhead has that).
//
// Finding (-benchmem): off 4 allocations per append, floor 14, on 17 (27
// before the Store built its span options once and formatted the trace
// context straight into bytes). Of the 13 telemetry adds, 6 are the
// Store's (the span's attributes and options, the end attributes, the
// trace-context metadata, the retry observer's context), 6 the SDK's (the
// span, its attributes twice, its start config, its end snapshot, its
// context) and 1 the memory driver's copy of the larger metadata.
func BenchmarkAppendTelemetry(b *testing.B) {
	ev := eventstore.NewEvent("Placed", []byte(`{"sku":"A-1","qty":2}`))
	ev.ID = [16]byte{} // a new one for each append
	for _, c := range []struct {
		name   string
		append func(b *testing.B) func(ctx context.Context) error
	}{
		{"off", func(b *testing.B) func(ctx context.Context) error {
			s := eventstore.New(memory.New(), eventstore.Options{})
			b.Cleanup(func() { s.Close() })
			return func(ctx context.Context) error {
				_, err := s.Append(ctx, "Order-1", eventstore.Any, ev)
				return err
			}
		}},
		{"on", func(b *testing.B) func(ctx context.Context) error {
			sdk := telemetrytest.New(b)
			s := eventstore.New(memory.New(), eventstore.Options{TracerProvider: sdk.TracerProvider, MeterProvider: sdk.MeterProvider})
			b.Cleanup(func() { s.Close() })
			return func(ctx context.Context) error {
				_, err := s.Append(ctx, "Order-1", eventstore.Any, ev)
				return err
			}
		}},
		{"floor", func(b *testing.B) func(ctx context.Context) error {
			wrap := telemetrytest.New(b).Floor("memory")
			s := eventstore.New(memory.New(), eventstore.Options{})
			b.Cleanup(func() { s.Close() })
			return func(ctx context.Context) error {
				return wrap(ctx, func() (int, error) {
					_, err := s.Append(ctx, "Order-1", eventstore.Any, ev)
					return len(ev.Data), err
				})
			}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			appendOne := c.append(b)
			ctx := b.Context()
			b.ReportAllocs()
			u0 := telemetrytest.ProcessUsage(b)
			for b.Loop() {
				if err := appendOne(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(telemetrytest.ProcessUsage(b).Sub(u0).CPU)/float64(b.N), "cpu-ns/op")
		})
	}
}
