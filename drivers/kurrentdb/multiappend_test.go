package kurrentdb_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readAllIDs returns the IDs of every event a store's ReadAll returns.
func readAllIDs(t testing.TB, s *eventstore.Store) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		ids = append(ids, ev.ID)
	}
	return ids
}

func transfer(from, to string, expectFrom, expectTo eventstore.ExpectedVersion) eventstore.MultiAppend {
	return eventstore.MultiAppend{
		Records: []eventstore.Record{
			{Stream: from, Event: eventstore.NewEvent("Debited", []byte(`{"amount":5}`))},
			{Stream: to, Event: eventstore.NewEvent("Credited", []byte(`{"amount":5}`))},
		},
		Expect: []eventstore.StreamExpectation{{Stream: from, Expected: expectFrom}, {Stream: to, Expected: expectTo}},
	}
}

// A server without AppendRecords gets nothing: the client finds no
// "appendrecords" among its features, and separate appends never stand in.
func TestAppendMultiNeedsAppendRecords(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"", "24.10.0", "25.1.0"} {
		t.Run("Version"+version, func(t *testing.T) {
			t.Parallel()
			srv := kurrentdbtest.Start(t, kurrentdbtest.Options{ServerVersion: version})
			s := newStore(t, srv.URL(), kurrentdb.Options{})
			_, err := s.Append(t.Context(), "Acct-1", eventstore.NoStream, newEvents(1)...)
			require.NoError(t, err)
			before := readAllIDs(t, s)
			_, err = s.AppendMulti(t.Context(), transfer("Acct-1", "Acct-2", eventstore.Exact(1), eventstore.NoStream))
			assert.ErrorIs(t, err, eventstore.ErrNotSupported)
			assert.ErrorIs(t, err, errors.ErrUnsupported)
			assert.Equal(t, before, readAllIDs(t, s), "nothing written")
		})
	}
}

// Metadata travels as a record property and comes back byte for byte on
// every read path, for JSON and binary events; an event appended with the
// v1 API whose metadata merely looks like a v2 record's is left alone.
func TestAppendMultiKeepsMetadata(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{ServerVersion: serverVersion})
	s := newStore(t, srv.URL(), kurrentdb.Options{Namespace: "ns"})
	withMeta := eventstore.NewEvent("Placed", []byte(`{"n":1}`))
	withMeta.Metadata = []byte(`{ "b": [1, 2],"a":"x\u00e9" }`)
	bin := eventstore.Event{ID: uuid.New(), Type: "Blob", ContentType: eventstore.Binary, Data: []byte{0, 1, 2, 255}}
	plain := eventstore.NewEvent("Plain", nil)
	lookalike := eventstore.NewEvent("Single", nil)
	lookalike.Metadata = []byte(`{"$schema.name":"Other","$schema.format":"Json"}`)
	_, err := s.Append(t.Context(), "Order-0", eventstore.NoStream, lookalike)
	require.NoError(t, err)
	_, err = s.AppendMulti(t.Context(), eventstore.MultiAppend{Records: []eventstore.Record{
		{Stream: "Order-1", Event: withMeta}, {Stream: "Order-2", Event: bin}, {Stream: "Order-1", Event: plain},
	}})
	require.NoError(t, err)
	want := map[uuid.UUID]eventstore.Event{withMeta.ID: withMeta, bin.ID: bin, plain.ID: plain, lookalike.ID: lookalike}
	check := func(path string, ev eventstore.RecordedEvent) {
		w, ok := want[ev.ID]
		if !assert.True(t, ok, "%s: unknown event %s", path, ev.ID) {
			return
		}
		assert.Equal(t, string(w.Metadata), string(ev.Metadata), "%s: metadata of %s", path, ev.Type)
		assert.Equal(t, w.ContentType, ev.ContentType, "%s: content type of %s", path, ev.Type)
		assert.Equal(t, w.Data, ev.Data, "%s: data of %s", path, ev.Type)
	}
	n := 0
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		check("ReadAll", ev)
		n++
	}
	assert.Equal(t, 4, n)
	for _, stream := range []string{"Order-0", "Order-1", "Order-2"} {
		for ev, err := range s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			check("ReadStream", ev)
		}
	}
}

// What AppendRecords cannot carry is refused before anything is sent.
func TestAppendMultiRefusesWhatAppendRecordsCannotCarry(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{ServerVersion: serverVersion})
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	for name, ma := range map[string]eventstore.MultiAppend{
		"a type with a space": {Records: []eventstore.Record{{Stream: "A-1", Event: eventstore.NewEvent("Money moved", nil)}}},
		"streams differing only in case": {Records: []eventstore.Record{
			{Stream: "Acct-1", Event: eventstore.NewEvent("Debited", nil)}, {Stream: "acct-1", Event: eventstore.NewEvent("Credited", nil)},
		}},
	} {
		_, err := s.AppendMulti(t.Context(), ma)
		assert.ErrorIs(t, err, eventstore.ErrNotSupported, name)
	}
	assert.Empty(t, readAllIDs(t, s), "nothing written")
}

// As for Append, a record batch whose first ID is already in its stream,
// at the version the append expects, is a retry at the wrong version: the
// server would write it again, the driver names the stream instead.
func TestAppendMultiRetryAtCurrentVersionConflicts(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{ServerVersion: serverVersion})
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	ma := transfer("Acct-1", "Acct-2", eventstore.NoStream, eventstore.NoStream)
	_, err := s.AppendMulti(t.Context(), ma)
	require.NoError(t, err)
	before := readAllIDs(t, s)
	again := ma
	again.Expect = []eventstore.StreamExpectation{{Stream: "Acct-1", Expected: eventstore.Exact(1)}, {Stream: "Acct-2", Expected: eventstore.Exact(1)}}
	_, err = s.AppendMulti(t.Context(), again)
	var ce *eventstore.AppendConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, []eventstore.WrongExpectedVersionError{
		{Stream: "Acct-1", Expected: eventstore.Exact(1), Actual: 1},
		{Stream: "Acct-2", Expected: eventstore.Exact(1), Actual: 1},
	}, ce.Streams)
	assert.Equal(t, before, readAllIDs(t, s), "nothing written")
}

// A tombstoned stream fails the append whatever its expectation; the
// conflict names it.
func TestAppendMultiTombstonedStream(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{ServerVersion: serverVersion})
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	_, err := s.Append(t.Context(), "Gone-1", eventstore.NoStream, newEvents(2)...)
	require.NoError(t, err)
	var c *kdb.Client
	require.True(t, s.As(&c))
	_, err = c.TombstoneStream(t.Context(), "Gone-1", kdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	_, err = s.AppendMulti(t.Context(), transfer("Gone-1", "Acct-2", eventstore.Any, eventstore.NoStream))
	var ce *eventstore.AppendConflictError
	require.ErrorAs(t, err, &ce, "err: %v", err)
	require.Len(t, ce.Streams, 1)
	assert.Equal(t, "Gone-1", ce.Streams[0].Stream)
	_, err = s.StreamVersion(t.Context(), "Acct-2")
	assert.NoError(t, err)
}

// BenchmarkTransfer moves an amount between two accounts: one multi-stream
// append of two events with two exact expectations (…/multi), beside the
// same two events as two single appends (…/two-appends), which is not
// atomic. It runs against the in-process double (26.1), and against the
// server of EVENTSTORE_KURRENTDB_URL when set. The double measures the
// client, the driver and one in-process gRPC round trip, not a server's
// storage: it shows what one round trip saves over two, not what a real
// server costs.
func BenchmarkTransfer(b *testing.B) {
	targets := map[string]func(b *testing.B) string{
		"double": func(b *testing.B) string {
			return kurrentdbtest.Start(b, kurrentdbtest.Options{ServerVersion: serverVersion, NoSeed: true}).URL()
		},
	}
	if url := os.Getenv("EVENTSTORE_KURRENTDB_URL"); url != "" {
		targets["server"] = func(*testing.B) string { return url }
	}
	for target, start := range targets {
		for _, clients := range []int{1, 8} {
			for _, mode := range []string{"multi", "two-appends"} {
				b.Run(fmt.Sprintf("%s/clients=%d/%s", target, clients, mode), func(b *testing.B) {
					s := newStore(b, start(b), kurrentdb.Options{Namespace: newNamespace()})
					var left atomic.Int64
					left.Store(int64(b.N))
					b.ReportAllocs()
					b.ResetTimer()
					var wg sync.WaitGroup
					for c := range clients {
						// Each client moves money between its own two
						// accounts, so the appends never conflict.
						from, to := fmt.Sprintf("Acct-%d-a", c), fmt.Sprintf("Acct-%d-b", c)
						wg.Go(func() {
							var version uint64
							for left.Add(-1) >= 0 {
								var err error
								ma := transfer(from, to, eventstore.Exact(version), eventstore.Exact(version))
								if mode == "multi" {
									_, err = s.AppendMulti(b.Context(), ma)
								} else if _, err = s.Append(b.Context(), from, eventstore.Exact(version), ma.Records[0].Event); err == nil {
									_, err = s.Append(b.Context(), to, eventstore.Exact(version), ma.Records[1].Event)
								}
								if err != nil {
									b.Error(err)
									return
								}
								version++
							}
						})
					}
					wg.Wait()
				})
			}
		}
	}
}
