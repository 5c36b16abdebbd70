package memory_test

import (
	"fmt"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/memory"
)

// The memory driver has no client to compare with: these benchmarks give the
// Store's own overhead (validation, paging, the subscription engine), a floor
// for every other driver.

func newStore(b *testing.B) *eventstore.Store {
	s := eventstore.New(memory.New(), eventstore.Options{})
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct{ batch, clients int }{{1, 1}, {100, 1}, {1, 8}} {
		name := fmt.Sprintf("batch=%d", c.batch)
		if c.clients > 1 {
			name += fmt.Sprintf("/clients=%d", c.clients)
		}
		b.Run(name+"/store", func(b *testing.B) {
			conformance.BenchmarkAppend(b, newStore(b), c.batch, c.clients)
		})
	}
}

func BenchmarkReadStream(b *testing.B) {
	b.Run("events=1000/store", func(b *testing.B) {
		conformance.BenchmarkReadStream(b, newStore(b), 1000)
	})
}

func BenchmarkReadAll(b *testing.B) {
	b.Run("events=100000/store", func(b *testing.B) {
		conformance.BenchmarkReadAll(b, newStore(b), 100_000)
	})
}

func BenchmarkLive(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		conformance.BenchmarkLive(b, newStore(b))
	})
}

func BenchmarkCatchUp(b *testing.B) {
	b.Run("events=100000/store", func(b *testing.B) {
		conformance.BenchmarkCatchUp(b, newStore(b), 100_000)
	})
}

func BenchmarkFilteredCatchUp(b *testing.B) {
	b.Run("events=200000/share=1000/store", func(b *testing.B) {
		conformance.BenchmarkFilteredCatchUp(b, newStore(b), 200_000, 1000)
	})
}
