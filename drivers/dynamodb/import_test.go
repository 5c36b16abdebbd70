package dynamodb_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// imported returns an event to import: version v of stream, recorded at at.
func imported(stream string, v uint64, at time.Time) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{StreamID: stream, Version: v, ID: uuid.New(), Type: "Imported",
		Data: fmt.Appendf(nil, `{"v":%d}`, v), RecordedAt: at}
}

// interleave returns n events of each stream, taking one of each in turn,
// from the version after from[stream]; event i is recorded at base + i ms
// and 7 µs.
func interleave(streams []string, n int, from map[string]uint64, base time.Time) []eventstore.RecordedEvent {
	var evs []eventstore.RecordedEvent
	for k := range n {
		for _, s := range streams {
			at := base.Add(time.Duration(len(evs))*time.Millisecond + 7*time.Microsecond)
			evs = append(evs, imported(s, from[s]+uint64(k)+1, at))
		}
	}
	return evs
}

// checkLogDense reads the whole log and checks positions are 1, 2, 3… and
// returns it.
func checkLogDense(t *testing.T, store *eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	all := readAllAfter(t, store, eventstore.Position{})
	for i, ev := range all {
		require.Equal(t, eventstore.Position{Commit: uint64(i + 1)}, ev.Position, "event %d of the log", i)
	}
	return all
}

// TestImportInterleavedStreams imports events of three streams, taking
// turns, one of which already has events: they come back in the request's
// order at the next positions, with their versions, IDs and exact recorded
// times; streams read back the same; a retried append of imported events is
// recognised as already written (the by_id index holds them).
func TestImportInterleavedStreams(t *testing.T) {
	store, _ := newStore(t, newClient(t, nil), dynamodb.Options{})
	ctx := t.Context()
	_, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
	require.NoError(t, err)

	base := time.Date(1999, 12, 31, 23, 59, 58, 123456000, time.UTC)
	streams := []string{"Order-1", "Order-2", "Invoice-1"}
	req := interleave(streams, 4, map[string]uint64{"Order-1": 1}, base)
	require.NoError(t, store.Import(ctx, req))

	all := checkLogDense(t, store)
	require.Len(t, all, 1+len(req))
	for i, want := range req {
		got := all[i+1]
		assert.Equal(t, want.StreamID, got.StreamID, "event %d", i)
		assert.Equal(t, want.Version, got.Version, "event %d", i)
		assert.Equal(t, want.ID, got.ID, "event %d", i)
		assert.Equal(t, want.Data, got.Data, "event %d", i)
		assert.True(t, want.RecordedAt.Equal(got.RecordedAt), "event %d recorded at %s, read back %s", i, want.RecordedAt, got.RecordedAt)
		assert.Equal(t, time.UTC, got.RecordedAt.Location())
	}
	for _, s := range streams {
		var n uint64
		for ev, err := range store.ReadStream(ctx, s, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			n++
			assert.Equal(t, n, ev.Version)
		}
		want := uint64(4)
		if s == "Order-1" {
			want = 5
		}
		assert.Equal(t, want, n, "events of %s", s)
	}

	// Filters read the runs of the import's log entry.
	var invoices []eventstore.RecordedEvent
	for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Invoice"}}}) {
		require.NoError(t, err)
		invoices = append(invoices, ev)
	}
	require.Len(t, invoices, 4)
	for i, ev := range invoices {
		assert.Equal(t, "Invoice-1", ev.StreamID)
		assert.Equal(t, uint64(i+1), ev.Version)
	}
	// Pages of 5 events start and end inside the import's log entry.
	var paged []eventstore.RecordedEvent
	for after := (eventstore.Position{}); ; {
		n := 0
		for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 5}) {
			require.NoError(t, err)
			paged = append(paged, ev)
			after = ev.Position
			n++
		}
		if n == 0 {
			break
		}
	}
	require.Len(t, paged, len(all))
	for i := range all {
		assert.Equal(t, all[i].ID, paged[i].ID, "paged read, event %d", i)
	}
	back := 0
	for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{Backwards: true}) {
		require.NoError(t, err)
		assert.Equal(t, all[len(all)-1-back].ID, ev.ID, "backwards, event %d", back)
		back++
	}
	assert.Equal(t, len(all), back)

	// A retried append of the imported events of Order-2 is recognised.
	var batch []eventstore.Event
	for _, e := range req {
		if e.StreamID == "Order-2" {
			batch = append(batch, eventstore.Event{ID: e.ID, Type: e.Type, Data: e.Data})
		}
	}
	res, err := store.Append(ctx, "Order-2", eventstore.NoStream, batch...)
	require.NoError(t, err, "a retry of an append of the imported events")
	assert.Equal(t, uint64(4), res.Version)
	assert.Len(t, readAllAfter(t, store, eventstore.Position{}), len(all), "the retry wrote nothing")

	// The store goes on at the next position.
	res, err = store.Append(ctx, "Order-2", eventstore.Exact(4), eventstore.NewEvent("Shipped", nil))
	require.NoError(t, err)
	assert.Equal(t, eventstore.Position{Commit: uint64(len(all) + 1)}, res.Position)
}

// TestImportWrongVersionWritesNothing imports three streams, the last of
// which is not at the version before its first event: behind it (found by
// the read before the transaction) or ahead of it (found by the
// transaction's conditional puts). Neither events nor log entries are
// written, and the error names that stream.
func TestImportWrongVersionWritesNothing(t *testing.T) {
	store, _ := newStore(t, newClient(t, nil), dynamodb.Options{})
	ctx := t.Context()
	_, err := store.Append(ctx, "Order-9", eventstore.NoStream, eventstore.NewEvent("A", nil), eventstore.NewEvent("B", nil), eventstore.NewEvent("C", nil))
	require.NoError(t, err)
	_, err = store.Append(ctx, "Order-8", eventstore.NoStream, eventstore.NewEvent("A", nil))
	require.NoError(t, err)
	at := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, first := range []uint64{2, 3, 5} { // Order-9 is at 3: first 4 is right
		req := interleave([]string{"Order-1", "Order-8"}, 2, map[string]uint64{"Order-8": 1}, at)
		req = append(req, imported("Order-9", first, at), imported("Order-9", first+1, at))
		err := store.Import(ctx, req)
		var wrong *eventstore.WrongExpectedVersionError
		require.ErrorAs(t, err, &wrong, "import into Order-9 at version 3 from version %d", first)
		assert.Equal(t, "Order-9", wrong.Stream)
		assert.Equal(t, eventstore.Exact(first-1), wrong.Expected)
		assert.Equal(t, uint64(3), wrong.Actual)

		for s, v := range map[string]uint64{"Order-1": 0, "Order-8": 1, "Order-9": 3} {
			got, err := store.StreamVersion(ctx, s)
			require.NoError(t, err)
			assert.Equal(t, v, got, "version of %s after a failed import (first %d)", s, first)
		}
		assert.Len(t, checkLogDense(t, store), 4, "no log entry written")
	}
	res, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("A", nil))
	require.NoError(t, err)
	assert.Equal(t, eventstore.Position{Commit: 5}, res.Position, "the failed imports took no position")
}

// TestImportRacesAppends races, round after round, four writers on the
// same stream at the same version: two append, two import (each with a new
// stream of its own before it, which must not be written when it loses).
// Exactly one wins per round, versions never repeat, and the log stays
// dense.
func TestImportRacesAppends(t *testing.T) {
	store, _ := newStore(t, newClient(t, nil), dynamodb.Options{})
	ctx := t.Context()
	const rounds, writers = 5, 4
	var version uint64
	for round := range rounds {
		gate := make(chan struct{})
		errs := make([]error, writers)
		others := make([]string, writers)
		var wg sync.WaitGroup
		for i := range writers {
			others[i] = fmt.Sprintf("Other-%d-%d", round, i)
			wg.Go(func() {
				<-gate
				if i%2 == 0 {
					_, errs[i] = store.Append(ctx, "Race-1", eventstore.Exact(version), eventstore.NewEvent("Appended", nil), eventstore.NewEvent("Appended", nil))
					return
				}
				at := time.Now()
				errs[i] = store.Import(ctx, []eventstore.RecordedEvent{
					imported(others[i], 1, at), imported("Race-1", version+1, at), imported(others[i], 2, at), imported("Race-1", version+2, at),
				})
			})
		}
		close(gate)
		wg.Wait()
		winners := 0
		for i, err := range errs {
			if err == nil {
				winners++
				continue
			}
			var wrong *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, err, &wrong, "round %d, writer %d", round, i)
			assert.Equal(t, "Race-1", wrong.Stream)
			assert.Equal(t, version+2, wrong.Actual)
			if i%2 == 1 {
				v, err := store.StreamVersion(ctx, others[i])
				require.NoError(t, err)
				assert.Zero(t, v, "round %d: the losing import wrote its other stream", round)
			}
		}
		require.Equal(t, 1, winners, "round %d: %v", round, errs)
		version += 2
		var n uint64
		for ev, err := range store.ReadStream(ctx, "Race-1", eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			n++
			require.Equal(t, n, ev.Version)
		}
		require.Equal(t, version, n)
	}
	all := checkLogDense(t, store)
	assert.Len(t, all, rounds*2+countImportWins(all), "the raced stream's events and the winning imports' other streams")
}

// countImportWins counts the events of the log's Other- streams: what the
// winning imports wrote besides the raced stream.
func countImportWins(all []eventstore.RecordedEvent) int {
	n := 0
	for _, ev := range all {
		if strings.HasPrefix(ev.StreamID, "Other-") {
			n++
		}
	}
	return n
}

// TestImportAtTheLimits imports what the reported limits allow: 98 events,
// each its own run of a stream that already has an event (the most items an
// import can need: 98 events and one log entry, the versions read before),
// and 98 events of MaxAppendSize in all with the longest stream IDs and
// event types, in two runs. An import whose log entry would carry 98 runs
// of 255-byte stream IDs and types on top of MaxAppendSize does not fit 4 MB:
// it is refused with ErrBatchTooLarge, nothing written.
func TestImportAtTheLimits(t *testing.T) {
	store, _ := newStore(t, newClient(t, nil), dynamodb.Options{})
	ctx := t.Context()
	lim := store.Limits()
	at := time.Date(2020, 2, 29, 12, 0, 0, 1000, time.UTC)

	streams := make([]string, lim.MaxAppendEvents)
	from := map[string]uint64{}
	for i := range streams {
		streams[i] = fmt.Sprintf("Many-%02d", i)
		from[streams[i]] = 1
	}
	for _, s := range streams {
		_, err := store.Append(ctx, s, eventstore.NoStream, eventstore.NewEvent("First", nil))
		require.NoError(t, err)
	}
	req := interleave(streams, 1, from, at)
	require.Len(t, req, lim.MaxAppendEvents)
	require.NoError(t, store.Import(ctx, req), "%d runs of continuing streams", len(req))
	all := checkLogDense(t, store)
	require.Len(t, all, 2*lim.MaxAppendEvents)
	for i, ev := range all[lim.MaxAppendEvents:] {
		assert.Equal(t, req[i].ID, ev.ID)
		assert.Equal(t, uint64(2), ev.Version)
	}

	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	long := func(prefix string, c string) string { return prefix + strings.Repeat(c, 255-len(prefix)) }
	typ := long("T", "t")
	big := func(streams ...string) []eventstore.RecordedEvent {
		evs := make([]eventstore.RecordedEvent, lim.MaxAppendEvents)
		next := map[string]uint64{}
		for i := range evs {
			s := streams[i*len(streams)/len(evs)]
			next[s]++
			size := lim.MaxAppendSize / len(evs)
			if i == 0 {
				size += lim.MaxAppendSize % len(evs)
			}
			evs[i] = eventstore.RecordedEvent{StreamID: s, Version: next[s], ID: uuid.New(), Type: typ,
				ContentType: eventstore.Binary, Data: random(size), RecordedAt: at}
		}
		return evs
	}
	req = big(long("Big-", "a"), long("Big-", "b"))
	require.NoError(t, store.Import(ctx, req), "%d events of %d bytes in all, 2 runs", len(req), lim.MaxAppendSize)
	all = checkLogDense(t, store)
	require.Len(t, all, 3*lim.MaxAppendEvents)

	manyRuns := make([]string, lim.MaxAppendEvents)
	for i := range manyRuns {
		manyRuns[i] = long(fmt.Sprintf("Long-%02d-", i), "x")
	}
	err := store.Import(ctx, big(manyRuns...))
	require.ErrorIs(t, err, eventstore.ErrBatchTooLarge)
	assert.Len(t, checkLogDense(t, store), len(all), "nothing written")
	v, err := store.StreamVersion(ctx, manyRuns[0])
	require.NoError(t, err)
	assert.Zero(t, v)
}

// TestImportRetried injects throttling, transaction conflicts, a 500 and a
// lost response into the import's requests: the import succeeds, written
// once, at the next positions.
func TestImportRetried(t *testing.T) {
	cases := []struct {
		op    string
		fault fault
		n     int
	}{
		{"TransactWriteItems", throttle, 2},
		{"TransactWriteItems", conflict, 3},
		{"TransactWriteItems", serverError, 2},
		{"TransactWriteItems", lost, 1},
		{"BatchGetItem", provisioned, 2},
	}
	for _, tc := range cases {
		t.Run(tc.op+"/"+tc.fault.String(), func(t *testing.T) {
			t.Parallel()
			store, tr, retried := faultyStore(t, dynamodb.Options{})
			ctx := t.Context()
			_, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
			require.NoError(t, err)

			tr.arm(tc.op, tc.fault, tc.n)
			req := interleave([]string{"Order-1", "Order-2"}, 2, map[string]uint64{"Order-1": 1}, time.Date(2005, 5, 5, 5, 5, 5, 5000, time.UTC))
			require.NoError(t, store.Import(ctx, req), "import with %d injected %s on %s", tc.n, tc.fault, tc.op)
			all := checkLogDense(t, store)
			require.Len(t, all, 1+len(req), "the import is written once")
			for i, ev := range all[1:] {
				assert.Equal(t, req[i].ID, ev.ID)
				assert.True(t, req[i].RecordedAt.Equal(ev.RecordedAt))
			}
			assert.Zero(t, tr.remaining(), "every injected failure was met")
			assert.Len(t, *retried, tc.n, "one retry per injected failure: %v", *retried)
		})
	}
}
