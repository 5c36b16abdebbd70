package migrate_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCopyAcrossBackends copies a generated data set around every backend
// make test runs, as issue 6 lists them: SQLite → PostgreSQL → DynamoDB
// (Local) → KurrentDB (the in-process double) → memory → SQLite, then back
// the other way, so each pair is crossed in both directions. Every hop
// copies snapshots too and is verified equal to the source; a second copy
// over the same pair writes nothing. Under -short the set is smaller and
// only the first half of the round runs.
func TestCopyAcrossBackends(t *testing.T) {
	events, streams := datasetSize()
	mem, ds := newSource(t, 1, events, streams)
	src := storetest.SQLite(t)
	_, err := migrate.Copy(t.Context(), migrate.From(mem), migrate.To(src), migrate.Options{Snapshots: true})
	require.NoError(t, err)
	hops := []hop{
		{"sqlite-to-postgres", storetest.Postgres},
		{"postgres-to-dynamodb", storetest.DynamoDB},
		{"dynamodb-to-kurrentdb", newKurrentDB},
		{"kurrentdb-to-memory", storetest.Memory},
		{"memory-to-sqlite", storetest.SQLite},
		{"sqlite-to-memory", storetest.Memory},
		{"memory-to-kurrentdb", newKurrentDB},
		{"kurrentdb-to-dynamodb", storetest.DynamoDB},
		{"dynamodb-to-postgres", storetest.Postgres},
		{"postgres-to-sqlite", storetest.SQLite},
	}
	if testing.Short() {
		hops = hops[:5]
	}
	testHops(t, src, ds, hops)
}

type hop struct {
	name string
	open func(testing.TB) *eventstore.Store
}

// testHops copies src along hops, each hop from the previous destination,
// and checks every destination against src.
func testHops(t *testing.T, src *eventstore.Store, ds dataset, hops []hop) {
	events, streams := ds.events, len(ds.streams)
	prev := src
	for _, hop := range hops {
		dst := hop.open(t)
		ok := t.Run(hop.name, func(t *testing.T) {
			ctx := t.Context()
			st, err := migrate.Copy(ctx, migrate.From(prev), migrate.To(dst), migrate.Options{Snapshots: true})
			require.NoError(t, err)
			assert.Equal(t, events, st.Read)
			assert.Equal(t, events, st.Copied)
			assert.Equal(t, 0, st.Skipped)
			assert.Equal(t, streams, st.Streams)
			assert.Equal(t, len(ds.snapshots), st.Snapshots)
			requireEqualStores(t, src, dst)
			for id, want := range ds.snapshots {
				got, ok, err := dst.LoadSnapshot(ctx, id)
				require.NoError(t, err)
				require.True(t, ok, "snapshot of %q", id)
				require.Equal(t, want.Version, got.Version, "snapshot of %q", id)
				require.Equal(t, string(want.Data), string(got.Data), "snapshot of %q", id)
			}

			again, err := migrate.Copy(ctx, migrate.From(prev), migrate.To(dst), migrate.Options{Snapshots: true})
			require.NoError(t, err)
			assert.Equal(t, 0, again.Copied)
			assert.Equal(t, events, again.Skipped)
			assert.Equal(t, 0, again.Snapshots)
			requireEqualStores(t, src, dst)
		})
		if !ok {
			return
		}
		prev = dst
	}
}

// TestCopyResumesAfterCancel cancels copies into SQLite and PostgreSQL at
// random points (between appends and, by a timer, inside them), opening the
// destination anew each time as a restarted process would, and proves the
// reruns end with an identical copy holding each event once.
func TestCopyResumesAfterCancel(t *testing.T) {
	events, streams := datasetSize()
	src, _ := newSource(t, 2, events, streams)
	tests := []struct {
		name    string
		storage func(testing.TB) func() *eventstore.Store
	}{
		{"sqlite", func(t testing.TB) func() *eventstore.Store {
			path := filepath.Join(t.TempDir(), "events.db")
			return func() *eventstore.Store { return storetest.SQLiteAt(t, path) }
		}},
		{"postgres", storetest.PostgresOpener},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testResume(t, src, events, tc.storage(t), uint64(i))
		})
	}
}

func testResume(t *testing.T, src *eventstore.Store, events int, open func() *eventstore.Store, seed uint64) {
	rng := rand.New(rand.NewPCG(7, seed))
	var copied, attempts, cancelled int
	for {
		attempts++
		require.Less(t, attempts, 10_000, "copy never finished")
		dst := open()
		ctx, cancel := context.WithCancel(t.Context())
		opts := migrate.Options{BatchSize: 1 + rng.IntN(8)}
		// About ten of each kind of cancel over the data set's appends.
		n := 1 + rng.IntN(events/15)
		var timer *time.Timer
		if attempts%2 == 0 {
			// Cancel between appends, after a random number of them.
			opts.Progress = func(st migrate.Stats) {
				if st.Appends+st.Imports >= n {
					cancel()
				}
			}
		} else {
			// Cancel wherever the copy is, often inside an append, a
			// random delay after its first append.
			delay := time.Duration(rng.IntN(300_000)) * time.Microsecond
			opts.Progress = func(st migrate.Stats) {
				if st.Appends+st.Imports >= 1 && timer == nil {
					timer = time.AfterFunc(delay, cancel)
				}
			}
		}
		st, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), opts)
		if timer != nil {
			timer.Stop()
		}
		cancel()
		copied += st.Copied
		require.NoError(t, dst.Close())
		if err == nil {
			break
		}
		require.ErrorIs(t, err, context.Canceled)
		cancelled++
	}
	t.Logf("%d attempts, %d cancelled, %d events counted as copied", attempts, cancelled, copied)
	require.Positive(t, cancelled)
	// An append cancelled after it committed is not counted, never more.
	require.LessOrEqual(t, copied, events)

	dst := open()
	requireEqualStores(t, src, dst)
	seen := map[uuid.UUID]bool{}
	n := 0
	for ev, err := range dst.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		require.False(t, seen[ev.ID], "event %s twice", ev.ID)
		seen[ev.ID] = true
		n++
	}
	require.Equal(t, events, n)
}

// TestCopyConflict puts a different event in the destination at a version
// the source has: Copy stops naming the stream and version and overwrites
// nothing.
func TestCopyConflict(t *testing.T) {
	base := eventstore.Event{ID: uuid.New(), Type: "Second", Data: []byte(`{"a":1}`), Metadata: []byte(`{"m":1}`)}
	tests := []struct {
		name   string
		change func(*eventstore.Event)
		what   string
	}{
		{"event id", func(e *eventstore.Event) { e.ID = uuid.New() }, "event id"},
		{"type", func(e *eventstore.Event) { e.Type = "Other" }, "type"},
		{"content type", func(e *eventstore.Event) { e.ContentType = eventstore.Binary }, "content type"},
		{"data", func(e *eventstore.Event) { e.Data = []byte(`{"a": 1}`) }, "data"},
		{"metadata", func(e *eventstore.Event) { e.Metadata = nil }, "metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			src, dst := storetest.Memory(t), storetest.Memory(t)
			first := eventstore.NewEvent("First", []byte(`{}`))
			third := eventstore.NewEvent("Third", []byte(`{}`))
			_, err := src.Append(ctx, "Other-1", eventstore.NoStream, eventstore.NewEvent("X", nil))
			require.NoError(t, err)
			_, err = src.Append(ctx, "Order-1", eventstore.NoStream, first, base, third)
			require.NoError(t, err)
			theirs := base
			tc.change(&theirs)
			_, err = dst.Append(ctx, "Order-1", eventstore.NoStream, first, theirs)
			require.NoError(t, err)
			before := readStream(t, dst, "Order-1")

			_, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
			require.ErrorIs(t, err, migrate.ErrConflict)
			var ce *migrate.ConflictError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "Order-1", ce.Stream)
			assert.Equal(t, uint64(2), ce.Version)
			assert.Equal(t, tc.what, ce.What)
			assert.Contains(t, err.Error(), `"Order-1" version 2`)
			assert.Equal(t, before, readStream(t, dst, "Order-1"), "destination stream changed")
		})
	}
}

func readStream(t testing.TB, s *eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	var evs []eventstore.RecordedEvent
	for ev, err := range s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	return evs
}

// TestCopyGap starts after events the destination never got: Copy refuses
// rather than append at the wrong versions.
func TestCopyGap(t *testing.T) {
	ctx := t.Context()
	src, dst := storetest.Memory(t), storetest.Memory(t)
	res, err := src.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("A", nil))
	require.NoError(t, err)
	_, err = src.Append(ctx, "Order-1", eventstore.Exact(1), eventstore.NewEvent("B", nil))
	require.NoError(t, err)

	_, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{After: res.Position})
	var ge *migrate.GapError
	require.ErrorAs(t, err, &ge)
	assert.Equal(t, "Order-1", ge.Stream)
	assert.Equal(t, uint64(2), ge.Version)
	assert.Equal(t, uint64(0), ge.DstVersion)
	v, err := dst.StreamVersion(ctx, "Order-1")
	require.NoError(t, err)
	assert.Zero(t, v)

	// From the start it works, and After then only skips what is there.
	_, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)
	st, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{After: res.Position})
	require.NoError(t, err)
	assert.Equal(t, 1, st.Skipped)
}

// TestCopyMerge copies into a destination that also holds a stream of its
// own, written before the copy began or between two partial copies (so a
// rerun meets it after the events it copied): it is left alone and the
// source's streams arrive whole.
func TestCopyMerge(t *testing.T) {
	for _, before := range []bool{true, false} {
		t.Run(fmt.Sprintf("before=%v", before), func(t *testing.T) {
			ctx := t.Context()
			src, ds := newSource(t, 4, 1_000, 50)
			dst := storetest.Memory(t)
			own := func() {
				_, err := dst.Append(ctx, "Mine-1", eventstore.NoStream, eventstore.NewEvent("Own", nil))
				require.NoError(t, err)
			}
			if before {
				own()
			}
			stop, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := migrate.Copy(stop, migrate.From(src), migrate.To(dst), migrate.Options{Snapshots: true, Progress: func(st migrate.Stats) {
				if st.Copied >= 400 {
					cancel()
				}
			}})
			require.ErrorIs(t, err, context.Canceled)
			if !before {
				own()
			}

			st, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{Snapshots: true})
			require.NoError(t, err)
			assert.Equal(t, ds.events, st.Copied+st.Skipped)
			assert.GreaterOrEqual(t, st.Skipped, 400)
			assert.Equal(t, len(ds.snapshots), st.Snapshots)
			for _, id := range ds.streams {
				require.Equal(t, readStreamContent(t, src, id), readStreamContent(t, dst, id), id)
			}
			evs := readStream(t, dst, "Mine-1")
			require.Len(t, evs, 1)
			assert.Equal(t, "Own", evs[0].Type)
			r, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
			require.NoError(t, err)
			require.NotNil(t, r.Difference)
			assert.Equal(t, migrate.Difference{Stream: "Mine-1", What: "missing in the source"}, *r.Difference)
		})
	}
}

// readStreamContent returns a stream's events without what a store assigns
// (positions, recorded times).
func readStreamContent(t testing.TB, s *eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	evs := readStream(t, s, stream)
	for i := range evs {
		evs[i].Position, evs[i].RecordedAt = eventstore.Position{}, time.Time{}
		if len(evs[i].Metadata) == 0 {
			evs[i].Metadata = nil
		}
		if len(evs[i].Data) == 0 {
			evs[i].Data = nil
		}
	}
	return evs
}

// limited is the memory driver reporting limits on appends.
type limited struct{ *memory.Driver }

func (limited) Limits() driver.Limits {
	return driver.Limits{MaxEventSize: 1000, MaxAppendEvents: 7, MaxAppendSize: 2500}
}

// noImport is the memory driver without its Importer: Copy appends.
type noImport struct{ driver.Driver }

// noImportLimited is limited without its Importer.
type noImportLimited struct{ noImport }

func (noImportLimited) Limits() driver.Limits { return limited{}.Limits() }

// TestCopyBatches checks that Copy writes up to the batch size and the
// destination's limits at once: in one import of any streams when the
// destination can import, else in one append per run of a stream.
func TestCopyBatches(t *testing.T) {
	tests := []struct {
		name    string
		dst     func() driver.Driver
		batch   int
		size    int // bytes of data per event
		appends int
		imports int
	}{
		{"default batch", func() driver.Driver { return memory.New() }, 0, 10, 0, 1},
		{"batch size", func() driver.Driver { return memory.New() }, 10, 10, 0, 11},
		{"max append events", func() driver.Driver { return limited{memory.New()} }, 0, 10, 0, 15},
		{"max append size", func() driver.Driver { return limited{memory.New()} }, 0, 900, 0, 51},
		{"default batch, appends", func() driver.Driver { return noImport{memory.New()} }, 0, 10, 2, 0},
		{"batch size, appends", func() driver.Driver { return noImport{memory.New()} }, 10, 10, 12, 0},
		{"max append events, appends", func() driver.Driver { return noImportLimited{noImport{memory.New()}} }, 0, 10, 16, 0},
		{"max append size, appends", func() driver.Driver { return noImportLimited{noImport{memory.New()}} }, 0, 900, 52, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			src := storetest.Memory(t)
			dst := storetest.Wrap(t, tc.dst())
			// 101 events of one stream, then one of another.
			var evs []eventstore.Event
			for range 101 {
				evs = append(evs, eventstore.Event{ID: uuid.New(), Type: "T", ContentType: eventstore.Binary, Data: make([]byte, tc.size)})
			}
			_, err := src.Append(ctx, "Big-1", eventstore.NoStream, evs...)
			require.NoError(t, err)
			_, err = src.Append(ctx, "Small-1", eventstore.NoStream, evs[0])
			require.NoError(t, err)

			st, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{BatchSize: tc.batch})
			require.NoError(t, err)
			assert.Equal(t, 102, st.Copied)
			assert.Equal(t, tc.appends, st.Appends)
			assert.Equal(t, tc.imports, st.Imports)
			requireEqualStores(t, src, dst)
		})
	}
}

// TestVerifyFindsFirstDifference builds stores that differ in one way each
// and checks Verify names the stream, version and field.
func TestVerifyFindsFirstDifference(t *testing.T) {
	a1 := eventstore.NewEvent("A", []byte(`{"x":1}`))
	a2 := eventstore.NewEvent("B", []byte(`{"x":2}`))
	b1 := eventstore.NewEvent("C", nil)
	changed := a2
	changed.Data = []byte(`{"x":3}`)
	type app struct {
		stream string
		events []eventstore.Event
	}
	tests := []struct {
		name string
		b    []app
		want migrate.Difference
	}{
		{"equal", []app{{"S-a", []eventstore.Event{a1, a2}}, {"S-b", []eventstore.Event{b1}}}, migrate.Difference{}},
		{"missing stream", []app{{"S-a", []eventstore.Event{a1, a2}}}, migrate.Difference{Stream: "S-b", What: "missing in the destination"}},
		{"extra stream", []app{{"S-a", []eventstore.Event{a1, a2}}, {"S-b", []eventstore.Event{b1}}, {"S-c", []eventstore.Event{b1}}}, migrate.Difference{Stream: "S-c", What: "missing in the source"}},
		{"missing event", []app{{"S-a", []eventstore.Event{a1}}, {"S-b", []eventstore.Event{b1}}}, migrate.Difference{Stream: "S-a", Version: 2, What: "missing in the destination"}},
		{"extra event", []app{{"S-a", []eventstore.Event{a1, a2}}, {"S-b", []eventstore.Event{b1, a1}}}, migrate.Difference{Stream: "S-b", Version: 2, What: "missing in the source"}},
		{"data", []app{{"S-a", []eventstore.Event{a1, changed}}, {"S-b", []eventstore.Event{b1}}}, migrate.Difference{Stream: "S-a", Version: 2, What: "data"}},
		{"order", []app{{"S-b", []eventstore.Event{b1}}, {"S-a", []eventstore.Event{a1, a2}}}, migrate.Difference{Stream: "S-a", Version: 1, What: "order", Other: `"S-b"@1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			a, b := storetest.Memory(t), storetest.Memory(t)
			_, err := a.Append(ctx, "S-a", eventstore.NoStream, a1, a2)
			require.NoError(t, err)
			_, err = a.Append(ctx, "S-b", eventstore.NoStream, b1)
			require.NoError(t, err)
			for _, ap := range tc.b {
				_, err := b.Append(ctx, ap.stream, eventstore.NoStream, ap.events...)
				require.NoError(t, err)
			}
			r, err := migrate.Verify(ctx, migrate.From(a), migrate.To(b))
			require.NoError(t, err)
			if tc.want == (migrate.Difference{}) {
				require.True(t, r.Equal, "%s", r)
				assert.Equal(t, r.SourceDigest, r.DestinationDigest)
				assert.Equal(t, 2, r.Streams)
				assert.Equal(t, 3, r.Events)
				return
			}
			require.False(t, r.Equal)
			require.NotNil(t, r.Difference)
			assert.Equal(t, tc.want, *r.Difference, "%s", r)
			if tc.name == "order" { // as docs/migration.md shows it
				assert.Equal(t, `global order differs: the source has "S-a"@1 where the destination has "S-b"@1`, r.Difference.String())
			}
		})
	}
}

// TestCopyWhenDestinationMoves writes to a destination stream after Copy
// learnt its version, as the last write of an earlier, cancelled copy can
// land late on a server. Copy's next write to it is refused (every write
// carries exact versions) or, for an append, taken by the destination for a
// retry of the late write; Copy then counts the late event as skipped, not
// copied. A different late event is a conflict, and nothing is overwritten.
func TestCopyWhenDestinationMoves(t *testing.T) {
	imports := func() driver.Driver { return memory.New() }
	appends := func() driver.Driver { return noImport{memory.New()} }
	tests := []struct {
		name    string
		dst     func() driver.Driver
		foreign bool // the late event differs from the source's
		// after is how many events Copy has written when the late event
		// lands: 1 is before Copy's last write ahead of the late event's
		// stream, 2 just before the write to that stream.
		after int
		want  migrate.Stats // Read, Copied, Skipped, Appends, Imports
	}{
		{"same event, imports, early", imports, false, 1, migrate.Stats{Read: 4, Copied: 3, Skipped: 1, Imports: 3}},
		{"same event, imports, just before", imports, false, 2, migrate.Stats{Read: 4, Copied: 3, Skipped: 1, Imports: 3}},
		{"same event, appends, early", appends, false, 1, migrate.Stats{Read: 4, Copied: 3, Skipped: 1, Appends: 4}},
		// The limit docs/migration.md states: the destination takes the
		// append for a retry and answers as if it had written it, and
		// nothing Copy has seen of the destination's log comes after the
		// late event, so Copy cannot tell it from its own write.
		{"same event, appends, just before", appends, false, 2, migrate.Stats{Read: 4, Copied: 4, Appends: 4}},
		{"different event, imports", imports, true, 1, migrate.Stats{}},
		{"different event, appends", appends, true, 1, migrate.Stats{}},
		{"different event, appends, just before", appends, true, 2, migrate.Stats{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			src := storetest.Memory(t)
			dst := storetest.Wrap(t, tc.dst())
			a1, c1, b1, a2 := eventstore.NewEvent("A", nil), eventstore.NewEvent("C", nil), eventstore.NewEvent("B", nil), eventstore.NewEvent("A2", nil)
			for _, w := range []struct {
				stream string
				exp    eventstore.ExpectedVersion
				ev     eventstore.Event
			}{{"S-1", eventstore.NoStream, a1}, {"S-3", eventstore.NoStream, c1}, {"S-2", eventstore.NoStream, b1}, {"S-1", eventstore.Exact(1), a2}} {
				_, err := src.Append(ctx, w.stream, w.exp, w.ev)
				require.NoError(t, err)
			}
			// S-2's event lands in dst after Copy learnt that S-2 was empty.
			late := b1
			if tc.foreign {
				late = eventstore.NewEvent("Foreign", nil)
			}
			var once bool
			st, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{BatchSize: 1, Progress: func(st migrate.Stats) {
				if st.Copied == tc.after && !once {
					once = true
					_, err := dst.Append(ctx, "S-2", eventstore.NoStream, late)
					require.NoError(t, err)
				}
			}})
			require.True(t, once, "the late event was written")
			if tc.foreign {
				var conflict *migrate.ConflictError
				require.ErrorAs(t, err, &conflict)
				assert.Equal(t, migrate.ConflictError{Stream: "S-2", Version: 1, What: "event id"}, *conflict)
				assert.Equal(t, "Foreign", readStream(t, dst, "S-2")[0].Type)
				assert.Len(t, readStream(t, dst, "S-1"), 1)
				return
			}
			require.NoError(t, err)
			got := migrate.Stats{Read: st.Read, Copied: st.Copied, Skipped: st.Skipped, Appends: st.Appends, Imports: st.Imports}
			assert.Equal(t, tc.want, got)
			// Each stream is whole; an early late event also sits earlier
			// in dst's global log than in the source's, which Verify reports.
			for _, id := range []string{"S-1", "S-2", "S-3"} {
				require.Equal(t, readStreamContent(t, src, id), readStreamContent(t, dst, id), id)
			}
		})
	}
}

// TestCopyDryRun counts what a copy would do, reports a conflict as a copy
// would, and writes nothing.
func TestCopyDryRun(t *testing.T) {
	ctx := t.Context()
	src, ds := newSource(t, 7, 500, 40)
	empty := storetest.Memory(t)
	st, err := migrate.Copy(ctx, migrate.From(src), migrate.To(empty), migrate.Options{DryRun: true, Snapshots: true})
	require.NoError(t, err)
	assert.Equal(t, ds.events, st.Copied)
	assert.Equal(t, len(ds.snapshots), st.Snapshots)
	assert.Positive(t, st.Appends)
	for ev, err := range empty.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		t.Fatalf("dry run wrote %s@%d", ev.StreamID, ev.Version)
	}
	for stream := range ds.snapshots {
		_, ok, err := empty.LoadSnapshot(ctx, stream)
		require.NoError(t, err)
		assert.False(t, ok, "dry run saved a snapshot of %s", stream)
	}

	// Over a finished copy it has nothing to do.
	dst := storetest.Memory(t)
	_, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)
	st, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{DryRun: true})
	require.NoError(t, err)
	assert.Zero(t, st.Copied)
	assert.Equal(t, ds.events, st.Skipped)

	// A conflict is found without writing.
	other := storetest.Memory(t)
	_, err = other.Append(ctx, ds.streams[0], eventstore.NoStream, eventstore.NewEvent("Foreign", []byte(`{}`)))
	require.NoError(t, err)
	_, err = migrate.Copy(ctx, migrate.From(src), migrate.To(other), migrate.Options{DryRun: true})
	require.ErrorIs(t, err, migrate.ErrConflict)
	v, err := other.StreamVersion(ctx, ds.streams[0])
	require.NoError(t, err)
	assert.Equal(t, uint64(1), v)
}

// TestCopyKeepsRecordedTimes: destinations that import keep the source's
// recorded times; the others stamp their own, and Stats says which.
func TestCopyKeepsRecordedTimes(t *testing.T) {
	src, ds := newSource(t, 9, 600, 50)
	hops := []struct {
		name    string
		open    func(testing.TB) *eventstore.Store
		imports bool
	}{
		{"memory-to-sqlite", storetest.SQLite, true},
		{"sqlite-to-postgres", storetest.Postgres, true},
		{"postgres-to-dynamodb", storetest.DynamoDB, true},
		{"dynamodb-to-memory", storetest.Memory, true},
		{"memory-to-kurrentdb", newKurrentDB, false},
		{"memory-to-kurrentdb-without-multi", newKurrentDBWithoutMulti, false},
	}
	prev := src
	for _, hop := range hops {
		dst := hop.open(t)
		t.Run(hop.name, func(t *testing.T) {
			st, err := migrate.Copy(t.Context(), migrate.From(prev), migrate.To(dst), migrate.Options{})
			require.NoError(t, err)
			require.Equal(t, ds.events, st.Copied)
			r, err := migrate.Verify(t.Context(), migrate.From(src), migrate.To(dst))
			require.NoError(t, err)
			require.True(t, r.Equal, "%s", r)
			assert.Equal(t, hop.imports, r.RecordedTimesEqual, "Verify's RecordedTimesEqual")
			if !hop.imports {
				assert.Zero(t, st.Imports)
				assert.Positive(t, st.Appends)
				return
			}
			assert.Zero(t, st.Appends)
			assert.Positive(t, st.Imports)
			want := readAll(t, src)
			got := readAll(t, dst)
			require.Len(t, got, len(want))
			for i := range want {
				require.True(t, want[i].RecordedAt.Equal(got[i].RecordedAt), "%s@%d: recorded at %s, copied as %s",
					want[i].StreamID, want[i].Version, want[i].RecordedAt, got[i].RecordedAt)
			}
			prev = dst
		})
	}
}

func readAll(t testing.TB, s *eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var evs []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	return evs
}

// TestCopyReportsProgressWhileSkipping: a rerun over a finished copy writes
// nothing, yet reports progress as it reads.
func TestCopyReportsProgressWhileSkipping(t *testing.T) {
	src, ds := newSource(t, 3, 2_500, 100)
	dst := storetest.Memory(t)
	_, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)
	var reports []migrate.Stats
	st, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{Progress: func(st migrate.Stats) { reports = append(reports, st) }})
	require.NoError(t, err)
	require.Equal(t, ds.events, st.Skipped)
	require.Len(t, reports, ds.events/migrate.ProgressEvery+1)
	for i, r := range reports[:len(reports)-1] {
		assert.Equal(t, (i+1)*migrate.ProgressEvery, r.Read)
		assert.Equal(t, r.Read, r.Skipped)
	}
	assert.Equal(t, st, reports[len(reports)-1])
}

// picky is the memory driver refusing imports of more than max events, as a
// driver whose per-request overhead depends on the events can, within the
// limits it reports.
type picky struct {
	*memory.Driver
	max int
}

func (p picky) Import(ctx context.Context, req driver.ImportRequest) error {
	if len(req.Events) > p.max {
		return fmt.Errorf("%d events: %w", len(req.Events), eventstore.ErrBatchTooLarge)
	}
	return p.Driver.Import(ctx, req)
}

// TestCopySplitsImportsTooLarge: an import the destination finds too large
// is sent again in halves.
func TestCopySplitsImportsTooLarge(t *testing.T) {
	src, ds := newSource(t, 4, 1_000, 50)
	dst := eventstore.New(picky{memory.New(), 70}, eventstore.Options{})
	t.Cleanup(func() { dst.Close() })
	st, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{BatchSize: 250})
	require.NoError(t, err)
	assert.Equal(t, ds.events, st.Copied)
	assert.Equal(t, 16, st.Imports, "each batch of 250 in quarters of 62 or 63")
	assert.Zero(t, st.Appends)
	requireEqualStores(t, src, dst)
}

// TestStoresMissing: a zero Source or Destination, or the same store on
// both sides of a copy, is an invalid argument, and nothing is read.
func TestStoresMissing(t *testing.T) {
	s := storetest.Memory(t)
	tests := []struct {
		name string
		from migrate.Source
		to   migrate.Destination
		msg  string
	}{
		{"no source", migrate.Source{}, migrate.To(s), "no source store"},
		{"nil source", migrate.From(nil), migrate.To(s), "no source store"},
		{"no destination", migrate.From(s), migrate.Destination{}, "no destination store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := migrate.Copy(t.Context(), tc.from, tc.to, migrate.Options{})
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			assert.ErrorContains(t, err, "migrate: copy: "+tc.msg)
			_, err = migrate.Verify(t.Context(), tc.from, tc.to)
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			assert.ErrorContains(t, err, "migrate: verify: "+tc.msg)
		})
	}
	t.Run("same store", func(t *testing.T) {
		_, err := migrate.Copy(t.Context(), migrate.From(s), migrate.To(s), migrate.Options{})
		require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
		assert.ErrorContains(t, err, "the source and the destination are the same store")
	})
}

// TestErrorsNameTheStore: a read or write error of Copy or Verify says
// which store it came from.
func TestErrorsNameTheStore(t *testing.T) {
	closed := func(t *testing.T) *eventstore.Store {
		s := storetest.Memory(t)
		_, err := s.Append(t.Context(), "S-1", eventstore.NoStream, eventstore.NewEvent("A", nil))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		return s
	}
	t.Run("source", func(t *testing.T) {
		src, dst := closed(t), storetest.Memory(t)
		_, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
		require.ErrorIs(t, err, eventstore.ErrClosed)
		assert.ErrorContains(t, err, "migrate: copy: source: ")
		_, err = migrate.Verify(t.Context(), migrate.From(src), migrate.To(dst))
		require.ErrorIs(t, err, eventstore.ErrClosed)
		assert.ErrorContains(t, err, "migrate: verify: source: ")
	})
	t.Run("destination", func(t *testing.T) {
		src, dst := storetest.Memory(t), closed(t)
		_, err := src.Append(t.Context(), "S-1", eventstore.NoStream, eventstore.NewEvent("A", nil))
		require.NoError(t, err)
		_, err = migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
		require.ErrorIs(t, err, eventstore.ErrClosed)
		assert.ErrorContains(t, err, "migrate: copy: destination: ")
		_, err = migrate.Verify(t.Context(), migrate.From(src), migrate.To(dst))
		require.ErrorIs(t, err, eventstore.ErrClosed)
		assert.ErrorContains(t, err, "migrate: verify: destination: ")
	})
}

// TestVerifyRecordedTimes: stores with the same events but one recorded
// time apart are equal, and the report names that event and both times.
func TestVerifyRecordedTimes(t *testing.T) {
	ctx := t.Context()
	src, dst := storetest.Memory(t), storetest.Memory(t)
	_, err := src.Append(ctx, "S-1", eventstore.NoStream, eventstore.NewEvent("A", nil), eventstore.NewEvent("B", nil))
	require.NoError(t, err)
	evs := readAll(t, src)
	moved := evs[1].RecordedAt.Add(time.Second)
	evs[1].RecordedAt = moved
	require.NoError(t, dst.Import(ctx, evs))

	r, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
	require.NoError(t, err)
	require.True(t, r.Equal, "%s", r)
	assert.False(t, r.RecordedTimesEqual)
	require.NotNil(t, r.TimeDifference)
	d := *r.TimeDifference
	assert.Equal(t, "S-1", d.Stream)
	assert.Equal(t, uint64(2), d.Version)
	assert.Equal(t, "recorded time", d.What)
	assert.True(t, d.DestinationTime.Equal(moved))
	assert.Equal(t, fmt.Sprintf(`stream "S-1" version 2: recorded time (source %s, destination %s)`,
		d.SourceTime.Format("2006-01-02T15:04:05.000000Z"), moved.Format("2006-01-02T15:04:05.000000Z")), d.String())

	// Equal times: no difference.
	other := storetest.Memory(t)
	require.NoError(t, other.Import(ctx, readAll(t, src)))
	r, err = migrate.Verify(ctx, migrate.From(src), migrate.To(other))
	require.NoError(t, err)
	assert.True(t, r.RecordedTimesEqual)
	assert.Nil(t, r.TimeDifference)
}
