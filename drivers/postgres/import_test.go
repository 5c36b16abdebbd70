package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordedEvents returns n events of stream from version from, recorded at
// microsecond times in the past.
func recordedEvents(stream string, from uint64, n int) []eventstore.RecordedEvent {
	at := time.Date(2019, 3, 4, 5, 6, 7, 123456000, time.UTC)
	evs := make([]eventstore.RecordedEvent, n)
	for i := range evs {
		evs[i] = eventstore.RecordedEvent{StreamID: stream, Version: from + uint64(i), ID: uuid.New(), Type: "Imported",
			Data: fmt.Appendf(nil, `{"n": %d}`, i), Metadata: []byte(`{"k":"v"}`), RecordedAt: at.Add(time.Duration(i) * time.Microsecond * 1001)}
	}
	return evs
}

// interleave merges streams' events round-robin.
func interleave(streams ...[]eventstore.RecordedEvent) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for i := 0; ; i++ {
		more := false
		for _, s := range streams {
			if i < len(s) {
				out = append(out, s[i])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

func readAll(t testing.TB, s *eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

func TestImport(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()

	t.Run("InterleavedStreamsKeepOrderAndTimes", func(t *testing.T) {
		s, _ := newStore(t, pool)
		_, err := s.Append(ctx, "Order-'; DROP TABLE events; --", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
		imp := interleave(
			recordedEvents("Order-'; DROP TABLE events; --", 2, 3),
			recordedEvents(`Cart-"$1"\x`, 1, 5),
			recordedEvents("Ünï-%_*", 1, 2))
		require.NoError(t, s.Import(ctx, imp))
		all := readAll(t, s)
		require.Len(t, all, 1+len(imp))
		for i, want := range imp {
			got := all[i+1]
			assert.Equal(t, want.StreamID, got.StreamID)
			assert.Equal(t, want.Version, got.Version)
			assert.Equal(t, want.ID, got.ID)
			assert.Equal(t, want.Data, got.Data)
			assert.Equal(t, want.Metadata, got.Metadata)
			assert.True(t, want.RecordedAt.Equal(got.RecordedAt), "recorded time %v, want %v", got.RecordedAt, want.RecordedAt)
			assert.True(t, all[i].Position.Less(got.Position), "positions follow the request's order")
		}
		// A retried append of an imported stream run is recognised by its
		// first event, as for an append (with the same content).
		cart := imp[1]
		res, err := s.Append(ctx, cart.StreamID, eventstore.NoStream,
			eventstore.Event{ID: cart.ID, Type: cart.Type, ContentType: cart.ContentType, Data: cart.Data, Metadata: cart.Metadata})
		require.NoError(t, err)
		assert.Equal(t, uint64(1), res.Version)
	})

	t.Run("WrongVersionWritesNothing", func(t *testing.T) {
		s, _ := newStore(t, pool)
		_, err := s.Append(ctx, "B-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
		imp := interleave(recordedEvents("A-1", 1, 2), recordedEvents("B-1", 1, 2), recordedEvents("C-1", 5, 2))
		err = s.Import(ctx, imp)
		var wrong *eventstore.WrongExpectedVersionError
		require.ErrorAs(t, err, &wrong)
		assert.Equal(t, "B-1", wrong.Stream, "the first stream in the request that is not at its version")
		assert.Equal(t, eventstore.Exact(0), wrong.Expected)
		assert.Equal(t, uint64(1), wrong.Actual)
		assert.Len(t, readAll(t, s), 1, "nothing written")
	})

	t.Run("FiveThousandEvents", func(t *testing.T) {
		s, _ := newStore(t, pool)
		var streams [][]eventstore.RecordedEvent
		for i := range 50 {
			streams = append(streams, recordedEvents(fmt.Sprintf("Big-%d", i), 1, 100))
		}
		imp := interleave(streams...)
		require.Len(t, imp, 5000)
		require.NoError(t, s.Import(ctx, imp))
		all := readAll(t, s)
		require.Len(t, all, 5000)
		for i := range imp {
			require.Equal(t, imp[i].ID, all[i].ID)
		}
	})

	t.Run("RacesAppend", func(t *testing.T) {
		s, _ := newStore(t, pool)
		for round := range 5 {
			stream := fmt.Sprintf("Race-%d", round)
			gate := make(chan struct{})
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() {
					<-gate
					if i%2 == 0 {
						_, errs[i] = s.Append(ctx, stream, eventstore.NoStream, conformance.BenchEvents(1+i%3)...)
					} else {
						errs[i] = s.Import(ctx, interleave(recordedEvents(stream, 1, 1+i%3), recordedEvents(fmt.Sprintf("Side-%d-%d", round, i), 1, 1)))
					}
				})
			}
			close(gate)
			wg.Wait()
			winners := 0
			for _, err := range errs {
				if err == nil {
					winners++
				} else {
					require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
				}
			}
			assert.Equal(t, 1, winners, "round %d", round)
			v := uint64(0)
			for ev, err := range s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
				require.NoError(t, err)
				v++
				require.Equal(t, v, ev.Version)
			}
		}
	})
}

// BenchmarkImport: a 500-event import of 5 interleaved streams, beside the
// minimal twin's 100-event insert (the largest batch the other benchmarks
// write), in turns in one benchmark as BenchmarkInterleaved does.
func BenchmarkImport(b *testing.B) {
	bn := newBench(b)
	var importEvents, minimalEvents int
	var importTime, minimalTime time.Duration
	round := 0
	for b.Loop() {
		var streams [][]eventstore.RecordedEvent
		for range 5 {
			streams = append(streams, recordedEvents(conformance.BenchStream("Import"), 1, 100))
		}
		imp := interleave(streams...)
		start := time.Now()
		if err := bn.store.Import(b.Context(), imp); err != nil {
			b.Fatal(err)
		}
		importTime += time.Since(start)
		importEvents += len(imp)
		start = time.Now()
		for range 5 {
			if err := bn.minimalAppend(b.Context(), conformance.BenchStream("Minimal"), 0, conformance.BenchEvents(100)); err != nil {
				b.Fatal(err)
			}
		}
		minimalTime += time.Since(start)
		minimalEvents += 500
		round++
	}
	b.ReportMetric(float64(importEvents)/importTime.Seconds(), "import-ev/s")
	b.ReportMetric(float64(minimalEvents)/minimalTime.Seconds(), "minimal-ev/s")
	b.ReportMetric(0, "ns/op")
}
