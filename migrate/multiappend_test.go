package migrate_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// interleavedSource returns a memory store of events over streams, the
// streams taking turns every 1 to 3 events, with event types every driver
// takes in a multi-stream append.
func interleavedSource(tb testing.TB, seed uint64, events, streams int) *eventstore.Store {
	tb.Helper()
	s := storetest.Memory(tb)
	rng := rand.New(rand.NewPCG(seed, seed))
	versions := make([]uint64, streams)
	for written := 0; written < events; {
		i := rng.IntN(streams)
		n := min(1+rng.IntN(3), events-written)
		evs := make([]eventstore.Event, n)
		for j := range evs {
			evs[j] = eventstore.Event{ID: uuid.New(), Type: []string{"Opened", "Deposited", "Withdrawn"}[rng.IntN(3)],
				Data: []byte(`{"amount":100,"note":"a typical small event"}`), Metadata: []byte(`{"by": "teller-7"}`)}
		}
		_, err := s.Append(tb.Context(), fmt.Sprintf("Account-%d", i), eventstore.Exact(versions[i]), evs...)
		require.NoError(tb, err)
		versions[i] += uint64(n)
		written += n
	}
	return s
}

// A destination that cannot import but appends to several streams at once
// (KurrentDB 26.1) takes a batch of interleaved events in one append; one
// without (25.1) takes one append per run of a stream. A batch holding an
// event type the server's multi-stream append refuses is split until the
// rest goes through. Either way the copy is complete and a rerun writes
// nothing.
func TestCopyMultiAppends(t *testing.T) {
	src := interleavedSource(t, 1, 1000, 20)
	runs := len(readAll(t, src)) // an upper bound; checked below
	for _, tc := range []struct {
		name  string
		open  func(testing.TB) *eventstore.Store
		multi bool
	}{
		{"kurrentdb-26.1", newKurrentDB, true},
		{"kurrentdb-25.1", newKurrentDBWithoutMulti, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := tc.open(t)
			st, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
			require.NoError(t, err)
			assert.Equal(t, 1000, st.Copied)
			if tc.multi {
				assert.Equal(t, 2, st.Appends, "1000 events in batches of %d", migrate.DefaultBatchSize)
				assert.Equal(t, 2, st.MultiAppends)
			} else {
				assert.Zero(t, st.MultiAppends)
				assert.Greater(t, st.Appends, 200, "one append per run")
				assert.Less(t, st.Appends, runs)
			}
			r, err := migrate.Verify(t.Context(), migrate.From(src), migrate.To(dst))
			require.NoError(t, err)
			require.True(t, r.Equal, "%s", r)
			again, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
			require.NoError(t, err)
			assert.Zero(t, again.Copied)
			assert.Equal(t, 1000, again.Skipped)
		})
	}
	t.Run("refused-type", func(t *testing.T) {
		src := interleavedSource(t, 2, 200, 10)
		_, err := src.Append(t.Context(), "Account-3", eventstore.Any, eventstore.NewEvent("Ünïcode✓", []byte(`{}`)))
		require.NoError(t, err)
		dst := newKurrentDB(t)
		st, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
		require.NoError(t, err)
		assert.Equal(t, 201, st.Copied)
		assert.Positive(t, st.MultiAppends, "the rest of the batch still goes in multi-stream appends")
		r, err := migrate.Verify(t.Context(), migrate.From(src), migrate.To(dst))
		require.NoError(t, err)
		require.True(t, r.Equal, "%s", r)
	})
}

// Streams of the source may share an event ID, which one multi-stream
// append may not hold twice: the batch is split between them.
func TestCopyMultiAppendsSharedEventID(t *testing.T) {
	src := interleavedSource(t, 4, 100, 5)
	shared := readAll(t, src)[0]
	_, err := src.Append(t.Context(), "Other-1", eventstore.NoStream, eventstore.Event{ID: shared.ID, Type: shared.Type, Data: shared.Data})
	require.NoError(t, err)
	_, err = src.Append(t.Context(), "Account-0", eventstore.Any, eventstore.NewEvent("Deposited", []byte(`{}`)))
	require.NoError(t, err)
	dst := newKurrentDB(t)
	st, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)
	assert.Equal(t, 102, st.Copied)
	assert.Positive(t, st.MultiAppends)
	r, err := migrate.Verify(t.Context(), migrate.From(src), migrate.To(dst))
	require.NoError(t, err)
	require.True(t, r.Equal, "%s", r)
}

// BenchmarkCopyToKurrentDB copies an interleaved log of 10k events over 500
// streams from memory into a fresh KurrentDB double per iteration: a 25.1
// server, without AppendRecords, where Copy appends run by run ("before"),
// and a 26.1 server, where it appends each batch of up to 500 events of any
// streams at once ("after"). Two sources: "interleaved", streams taking
// turns every 1 to 3 events with plain event types; "dataset", the test
// data set (turns of 1 to 5 events), where one event in five has a type
// ("Ünïcode✓") AppendRecords refuses, so batches are split around them. It
// reports appends (each one round trip) and events/s. The double answers
// in-process, so the time saved is the client's and gRPC's per-call cost,
// not a real server's network and disk latency, which would widen the gap.
func BenchmarkCopyToKurrentDB(b *testing.B) {
	dataset, _ := newSource(b, 3, 10_000, 500)
	for _, shape := range []struct {
		name string
		src  *eventstore.Store
	}{
		{"interleaved", interleavedSource(b, 7, 10_000, 500)},
		{"dataset", dataset},
	} {
		for _, tc := range []struct {
			name string
			open func(testing.TB) *eventstore.Store
		}{
			{"before", newKurrentDBWithoutMulti},
			{"after", newKurrentDB},
		} {
			b.Run(shape.name+"/"+tc.name, func(b *testing.B) {
				var d time.Duration
				var events, appends int
				for b.Loop() {
					dst := tc.open(b)
					start := time.Now()
					st, err := migrate.Copy(b.Context(), migrate.From(shape.src), migrate.To(dst), migrate.Options{})
					d += time.Since(start)
					require.NoError(b, err)
					events += st.Copied
					appends += st.Appends
					require.NoError(b, dst.Close())
				}
				b.ReportMetric(float64(events)/d.Seconds(), "events/s")
				b.ReportMetric(float64(appends)/float64(b.N), "appends/copy")
			})
		}
	}
}
