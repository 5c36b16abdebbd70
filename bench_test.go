package eventstore_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/memory"
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
