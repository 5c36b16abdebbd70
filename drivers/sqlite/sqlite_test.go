package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/sqlite"
	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, harness{})
}

// harness gives each rule a driver on a file of its own, and reopens a file
// with a new driver as a restarted process would.
type harness struct{ opts sqlite.Options }

func (h harness) NewDriver(t testing.TB) driver.Driver {
	d, _ := openDriver(t, h.opts)
	return d
}

func (harness) Unsupported() map[conformance.Feature]string { return nil }

func (harness) NativeTypes() []any { return []any{new(*sql.DB)} }

// NewStorage implements conformance.Reopener: a new driver (its own
// connections) over one file each time.
func (h harness) NewStorage(t testing.TB) func() driver.Driver {
	path := filepath.Join(t.TempDir(), "events.db")
	return func() driver.Driver {
		d, err := sqlite.Open(t.Context(), path, h.opts)
		require.NoError(t, err)
		return d
	}
}

// openDriver opens a driver on a new file in a temporary directory, closed
// at cleanup.
func openDriver(t testing.TB, opts sqlite.Options) (*sqlite.Driver, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	d, err := sqlite.Open(t.Context(), path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d, path
}

// openStore opens a Store on path, closed at cleanup.
func openStore(t testing.TB, path string, opts sqlite.Options) *eventstore.Store {
	t.Helper()
	d, err := sqlite.Open(t.Context(), path, opts)
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB opens the file with plain go-sqlite3, as another program would.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func events(n int, typ string) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent(typ, fmt.Appendf(nil, `{"n":%d}`, i))
	}
	return evs
}

func readAll(t testing.TB, s *eventstore.Store, opts eventstore.ReadAllOptions) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(t.Context(), opts) {
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

func readStream(t testing.TB, s *eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

func TestReopenKeepsEventsAndContinuesPositions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := t.Context()

	d, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	first, err := s.Append(ctx, "Order-1", eventstore.NoStream, events(3, "Placed")...)
	require.NoError(t, err)
	require.NoError(t, s.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: 2, Data: []byte("state")}))
	require.NoError(t, s.Close())

	s = openStore(t, path, sqlite.Options{})
	got := readStream(t, s, "Order-1")
	require.Len(t, got, 3)
	res, err := s.Append(ctx, "Order-1", eventstore.Exact(3), events(1, "Shipped")...)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), res.Version)
	assert.True(t, first.Position.Less(res.Position), "position after reopening %s is not after %s", res.Position, first.Position)
	snap, ok, err := s.LoadSnapshot(ctx, "Order-1")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, eventstore.Snapshot{Version: 2, Data: []byte("state")}, snap)
}

func TestNewerSchemaVersionRefused(t *testing.T) {
	t.Parallel()
	_, path := openDriver(t, sqlite.Options{})
	db := rawDB(t, path)
	_, err := db.Exec("PRAGMA user_version = 99")
	require.NoError(t, err)

	_, err = sqlite.Open(t.Context(), path, sqlite.Options{})
	require.ErrorIs(t, err, sqlite.ErrSchemaVersion)
	assert.Contains(t, err.Error(), "schema version 99")

	_, err = sqlite.New(t.Context(), db, sqlite.Options{})
	require.ErrorIs(t, err, sqlite.ErrSchemaVersion)
}

// pragma reads a PRAGMA's value on one connection of db.
func pragma(t testing.TB, db *sql.DB, name string) string {
	t.Helper()
	var v string
	require.NoError(t, db.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v))
	return v
}

func TestOpenAppliesPragmas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		query string
		want  string // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"Default", "?busy_timeout=1500ms", "2"},
		{"Full", "?synchronous=full&busy_timeout=1500ms", "2"},
		{"Normal", "?synchronous=NORMAL&busy_timeout=1500ms", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "events.db")
			s, err := eventstore.Open(t.Context(), "sqlite://"+path+tc.query)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			var db *sql.DB
			require.True(t, s.As(&db))
			assert.Equal(t, tc.want, pragma(t, db, "synchronous"))
			assert.Equal(t, "wal", pragma(t, db, "journal_mode"))
			assert.Equal(t, "1500", pragma(t, db, "busy_timeout"))
		})
	}
}

func TestNewOverExistingDB(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	db := rawDB(t, path) // journal mode DELETE until the driver sets WAL
	d, err := sqlite.New(ctx, db, sqlite.Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, events(2, "Placed")...)
	require.NoError(t, err)
	assert.Len(t, readStream(t, s, "Order-1"), 2)
	var got *sql.DB
	require.True(t, s.As(&got))
	assert.Same(t, db, got)
	assert.Equal(t, "wal", pragma(t, db, "journal_mode"))

	require.NoError(t, s.Close())
	require.NoError(t, db.PingContext(ctx), "New must not close the *sql.DB it was given")
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events").Scan(&n))
	assert.Equal(t, 2, n)
}

func TestNewRejectsUnusablePools(t *testing.T) {
	t.Parallel()
	_, err := sqlite.New(t.Context(), nil, sqlite.Options{})
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument)

	one := rawDB(t, filepath.Join(t.TempDir(), "events.db"))
	one.SetMaxOpenConns(1)
	_, err = sqlite.New(t.Context(), one, sqlite.Options{})
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument)

	mem, err := sql.Open("sqlite3", ":memory:")
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	_, err = sqlite.New(t.Context(), mem, sqlite.Options{})
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument, "an in-memory database cannot use WAL")
}

func TestOpenRejectsBadArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		path string
		opts sqlite.Options
	}{
		{"EmptyPath", "", sqlite.Options{}},
		{"Memory", ":memory:", sqlite.Options{}},
		{"URIPath", "file:x.db", sqlite.Options{}},
		{"NegativeBusyTimeout", "x.db", sqlite.Options{BusyTimeout: -1}},
		{"UnknownSynchronous", "x.db", sqlite.Options{Synchronous: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := sqlite.Open(t.Context(), tc.path, tc.opts)
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
		})
	}
}

func TestPathsWithURISyntax(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars")
	require.NoError(t, os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "events 1.db")
	s := openStore(t, path, sqlite.Options{})
	_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream, events(1, "Placed")...)
	require.NoError(t, err)
	_, err = os.Stat(path)
	require.NoError(t, err, "the database must be the file at the path given, not a name cut at '?' or '#'")
}

func TestStorageColumns(t *testing.T) {
	t.Parallel()
	d, _ := openDriver(t, sqlite.Options{})
	s := eventstore.New(d, eventstore.Options{})
	at := time.Now()
	_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream,
		eventstore.Event{Type: "Placed", Data: []byte(`{ "b":1,  "a":2 }`), Metadata: []byte(`{"$correlationId":"x"}`)},
		eventstore.Event{Type: "Blob", ContentType: eventstore.Binary, Data: []byte{0, 1, 2, 0xff}})
	require.NoError(t, err)
	var db *sql.DB
	require.True(t, s.As(&db))
	rows, err := db.QueryContext(t.Context(), `SELECT typeof(data), typeof(metadata), typeof(recorded_at), typeof(event_id), length(event_id),
		category, content_type, data, recorded_at FROM events ORDER BY position`)
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var tData, tMeta, tRec, tID, category string
		var idLen, contentType, recordedAt int64
		var data []byte
		require.NoError(t, rows.Scan(&tData, &tMeta, &tRec, &tID, &idLen, &category, &contentType, &data, &recordedAt))
		got = append(got, fmt.Sprintf("%s %s %s %s/%d %s %d %q", tData, tMeta, tRec, tID, idLen, category, contentType, data))
		assert.WithinDuration(t, at, time.UnixMicro(recordedAt), time.Minute, "recorded_at holds microseconds since the epoch")
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{
		`blob blob integer blob/16 Order 0 "{ \"b\":1,  \"a\":2 }"`,
		`blob blob integer blob/16 Order 1 "\x00\x01\x02\xff"`,
	}, got)
}

// TestConcurrentOpensOfANewFile has several drivers (each with its own
// connections, as separate processes have; half of them through New over a
// plain pool) open one new file at once, from behind a gate, many times: each open must succeed (the first connection
// switches the file to WAL mode, which SQLite refuses at once with
// SQLITE_BUSY rather than wait when another connection is reading it), and
// every driver can append.
func TestConcurrentOpensOfANewFile(t *testing.T) {
	t.Parallel()
	const rounds, openers = 40, 6
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "new.db")
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() {
				<-gate
				var d *sqlite.Driver
				var err error
				if i%2 == 0 {
					d, err = sqlite.Open(t.Context(), path, sqlite.Options{})
				} else { // over a pool that does not ask for WAL mode itself
					d, err = sqlite.New(t.Context(), rawDB(t, path), sqlite.Options{})
				}
				if err != nil {
					t.Errorf("round %d: open %d: %v", round, i, err)
					return
				}
				s := eventstore.New(d, eventstore.Options{})
				defer s.Close()
				if _, err := s.Append(t.Context(), fmt.Sprintf("Opener-%d", i), eventstore.NoStream, events(1, "Opened")...); err != nil {
					t.Errorf("round %d: append %d: %v", round, i, err)
				}
			})
		}
		close(gate)
		wg.Wait()
		if t.Failed() {
			return
		}
		s := openStore(t, path, sqlite.Options{})
		require.Len(t, readAll(t, s, eventstore.ReadAllOptions{}), openers, "round %d", round)
	}
}

// TestRacingAppendersOnTwoDrivers races appenders through two drivers on one
// file, so they meet on SQLite's write lock and not only on the in-process
// writer: exactly one append at each expected version wins, the others get
// *WrongExpectedVersionError with the version they lost to, and versions and
// positions never repeat or skip.
func TestRacingAppendersOnTwoDrivers(t *testing.T) {
	t.Parallel()
	_, path := openDriver(t, sqlite.Options{})
	stores := []*eventstore.Store{openStore(t, path, sqlite.Options{}), openStore(t, path, sqlite.Options{})}
	ctx := t.Context()
	const rounds, racers = 5, 8
	for round := range rounds {
		gate := make(chan struct{})
		var wins atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, racers)
		for i := range racers {
			wg.Go(func() {
				<-gate
				_, err := stores[i%2].Append(ctx, "Race-1", eventstore.Exact(uint64(round)), events(1, "Raced")...)
				if err == nil {
					wins.Add(1)
					return
				}
				errs <- err
			})
		}
		close(gate)
		wg.Wait()
		close(errs)
		require.Equal(t, int32(1), wins.Load(), "round %d: want one winner", round)
		for err := range errs {
			var wev *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, err, &wev)
			assert.Equal(t, uint64(round+1), wev.Actual)
		}
	}
	got := readStream(t, stores[0], "Race-1")
	require.Len(t, got, rounds)
	for i, ev := range got {
		assert.Equal(t, uint64(i+1), ev.Version)
		if i > 0 {
			assert.True(t, got[i-1].Position.Less(ev.Position))
		}
	}
}

// TestBusyTimeoutMapsSQLiteBusy holds the write lock from another
// connection, as another process would, beyond the busy timeout.
func TestBusyTimeoutMapsSQLiteBusy(t *testing.T) {
	t.Parallel()
	_, path := openDriver(t, sqlite.Options{})
	s := openStore(t, path, sqlite.Options{BusyTimeout: 20 * time.Millisecond})
	ctx := t.Context()
	conn, err := rawDB(t, path).Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)

	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, events(1, "Placed")...)
	require.Error(t, err)
	var se sqlite3.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, sqlite3.ErrBusy, se.Code)
	assert.NotErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	assert.Contains(t, err.Error(), "busy timeout")

	// Opening an up-to-date file does not wait for the write lock, and a
	// done context ends an append's wait with the context's error.
	slow := openStore(t, path, sqlite.Options{BusyTimeout: time.Hour})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := slow.Append(cctx, "Order-1", eventstore.NoStream, events(1, "Placed")...)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("append waiting for the write lock did not return after its context was cancelled")
	}

	_, err = conn.ExecContext(ctx, "ROLLBACK")
	require.NoError(t, err)
	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, events(1, "Placed")...)
	require.NoError(t, err, "the stream must not be wedged after a busy failure")
}

// TestNoSkipWhileWriterHoldsTransaction provokes the interleaving that breaks
// naive sequence ordering: a writer takes a position and holds its
// transaction open while another appends. In SQLite the second writer cannot
// take a position at all until the first commits, so a reader that checkpoints
// what it saw meanwhile misses nothing.
func TestNoSkipWhileWriterHoldsTransaction(t *testing.T) {
	t.Parallel()
	_, path := openDriver(t, sqlite.Options{})
	s := openStore(t, path, sqlite.Options{})
	ctx := t.Context()
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, events(1, "Placed")...)
	require.NoError(t, err)

	// Another program's writer inserts position 2 and does not commit yet.
	conn, err := rawDB(t, path).Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)
	res, err := conn.ExecContext(ctx, `INSERT INTO events (stream, version, category, event_id, type, content_type, data, metadata, recorded_at)
		VALUES ('Other-1', 1, 'Other', randomblob(16), 'Held', 0, x'', x'', 0)`)
	require.NoError(t, err)
	held, err := res.LastInsertId()
	require.NoError(t, err)
	require.Equal(t, int64(2), held)

	// Our append waits for the write lock; the reader sees only position 1.
	appended := make(chan eventstore.AppendResult, 1)
	go func() {
		res, err := s.Append(ctx, "Order-2", eventstore.NoStream, events(1, "Placed")...)
		assert.NoError(t, err)
		appended <- res
	}()
	seen := readAll(t, s, eventstore.ReadAllOptions{})
	require.Len(t, seen, 1)
	checkpoint := seen[0].Position
	select {
	case <-appended:
		t.Fatal("an append committed while another writer held the write lock")
	default:
	}

	_, err = conn.ExecContext(ctx, "COMMIT")
	require.NoError(t, err)
	var second eventstore.AppendResult
	select {
	case second = <-appended:
	case <-time.After(10 * time.Second):
		t.Fatal("append did not complete after the other writer committed")
	}
	after := readAll(t, s, eventstore.ReadAllOptions{After: checkpoint})
	require.Len(t, after, 2, "reading after the checkpoint must return the held event and ours")
	assert.Equal(t, "Other-1", after[0].StreamID)
	assert.Equal(t, uint64(held), after[0].Position.Commit)
	assert.Equal(t, second.Position, after[1].Position)
}

// TestCancelledAppendIsAllOrNothing cancels a 50-event append at every step
// from before it starts to after it commits.
func TestCancelledAppendIsAllOrNothing(t *testing.T) {
	t.Parallel()
	d, _ := openDriver(t, sqlite.Options{})
	s := eventstore.New(d, eventstore.Options{})
	var committed, cancelled int
	for n := int64(0); ; n++ {
		stream := fmt.Sprintf("Cancel-%d", n)
		_, err := s.Append(sqlite.NewCancelAfter(n), stream, eventstore.NoStream, events(50, "Placed")...)
		got := len(readStream(t, s, stream))
		if err == nil {
			require.Equal(t, 50, got, "step %d: append succeeded", n)
			committed++
			if committed == 3 {
				break // the context outlived the whole append
			}
			continue
		}
		require.ErrorIs(t, err, context.Canceled, "step %d", n)
		require.Zero(t, got, "step %d: cancelled append wrote %d of 50 events", n, got)
		cancelled++
		require.Less(t, n, int64(100000), "the append never completed")
	}
	t.Logf("cancelled at %d steps, then committed", cancelled)
	assert.Greater(t, cancelled, 10, "cancellation should have hit the append inside its transaction")
}

// TestWatchSeesOtherWriters checks live wake-up from another driver on the
// same file, which is how another process's appends are seen.
func TestWatchSeesOtherWriters(t *testing.T) {
	t.Parallel()
	_, path := openDriver(t, sqlite.Options{})
	watcher := openStore(t, path, sqlite.Options{})
	writer := openStore(t, path, sqlite.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	got := make(chan eventstore.RecordedEvent, 10)
	subDone := make(chan error, 1)
	go func() {
		subDone <- watcher.Subscribe(ctx, eventstore.SubscribeOptions{PollInterval: time.Hour}, func(_ context.Context, ev eventstore.RecordedEvent) error {
			got <- ev
			return nil
		})
	}()
	for i := range 3 {
		_, err := writer.Append(ctx, "Order-1", eventstore.Exact(uint64(i)), events(1, "Placed")...)
		require.NoError(t, err)
		select {
		case ev := <-got:
			assert.Equal(t, uint64(i+1), ev.Version)
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d appended by another driver was not delivered (the poll interval is an hour, so only the watch can wake it)", i+1)
		}
	}
	cancel()
	require.ErrorIs(t, <-subDone, context.Canceled)
}

func TestFilteredReadAllPagesThroughIndexes(t *testing.T) {
	t.Parallel()
	d, _ := openDriver(t, sqlite.Options{})
	s := eventstore.New(d, eventstore.Options{})
	ctx := t.Context()
	for i := range 30 {
		for _, cat := range []string{"A", "B", "C"} {
			typ := "Even"
			if i%2 == 1 {
				typ = "Odd"
			}
			_, err := s.Append(ctx, fmt.Sprintf("%s-%d", cat, i%4), eventstore.Any, events(1, typ)...)
			require.NoError(t, err)
		}
	}
	all := readAll(t, s, eventstore.ReadAllOptions{})
	for _, tc := range []struct {
		name string
		f    eventstore.Filter
	}{
		{"OneCategory", eventstore.Filter{Categories: []string{"B"}}},
		{"TwoCategories", eventstore.Filter{Categories: []string{"C", "A"}}},
		{"OneType", eventstore.Filter{EventTypes: []string{"Odd"}}},
		{"TwoTypes", eventstore.Filter{EventTypes: []string{"Odd", "Even"}}},
		{"CategoryAndType", eventstore.Filter{Categories: []string{"A", "B"}, EventTypes: []string{"Even"}}},
		{"Nothing", eventstore.Filter{Categories: []string{"Z"}}},
		// Long lists must not run into SQLite's limits on host parameters
		// (32,766) or on the terms of a compound SELECT (500).
		{"ManyCategories", eventstore.Filter{Categories: manyNames("Cat", 600, "C", "A")}},
		{"ManyTypes", eventstore.Filter{EventTypes: manyNames("Type", 33000, "Odd")}},
		{"ManyCategoriesAndTypes", eventstore.Filter{Categories: manyNames("Cat", 600, "B"), EventTypes: manyNames("Type", 100, "Even")}},
	} {
		for _, backwards := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/backwards=%t", tc.name, backwards), func(t *testing.T) {
				var want []eventstore.Position
				for _, ev := range all {
					if tc.f.Matches(ev) {
						want = append(want, ev.Position)
					}
				}
				if backwards {
					for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
						want[i], want[j] = want[j], want[i]
					}
				}
				// Small pages through the driver, as the Store pages.
				var got []eventstore.Position
				q := driver.AllQuery{Backwards: backwards, Limit: 7, Filter: driver.Filter(tc.f)}
				for {
					page, err := d.ReadAll(ctx, q)
					require.NoError(t, err)
					for _, ev := range page {
						got = append(got, eventstore.Position(ev.Position))
					}
					if len(page) < q.Limit {
						break
					}
					if backwards {
						q.Before = page[len(page)-1].Position
					} else {
						q.After = page[len(page)-1].Position
					}
				}
				assert.Equal(t, want, got)
			})
		}
	}
}

// manyNames returns n names made from prefix, with the names in also
// spread among them.
func manyNames(prefix string, n int, also ...string) []string {
	names := make([]string, 0, n+len(also))
	for i := range n {
		names = append(names, fmt.Sprintf("%s%d", prefix, i))
	}
	for k, name := range also {
		names = slices.Insert(names, (k+1)*len(names)/(len(also)+1), name)
	}
	return names
}

func TestCheckpointsKeepBothParts(t *testing.T) {
	t.Parallel()
	d, _ := openDriver(t, sqlite.Options{})
	ctx := t.Context()
	for _, pos := range []driver.Position{{Commit: 1}, {Commit: 1<<64 - 1, Prepare: 1<<63 + 5}, {}} {
		require.NoError(t, d.SaveCheckpoint(ctx, "sub", pos))
		got, ok, err := d.LoadCheckpoint(ctx, "sub")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, pos, got)
	}
	_, ok, err := d.LoadCheckpoint(ctx, "other")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestAsReturnsThePool(t *testing.T) {
	t.Parallel()
	d, _ := openDriver(t, sqlite.Options{})
	var db *sql.DB
	require.True(t, d.As(&db))
	require.NotNil(t, db)
	assert.False(t, d.As(nil))
	assert.False(t, d.As(new(*sql.Conn)))
	assert.False(t, d.As((**sql.DB)(nil)))
}

func TestMapsWrongExpectedVersionWithActual(t *testing.T) {
	t.Parallel()
	d, _ := openDriver(t, sqlite.Options{})
	s := eventstore.New(d, eventstore.Options{})
	ctx := t.Context()
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, events(2, "Placed")...)
	require.NoError(t, err)
	_, err = s.Append(ctx, "Order-1", eventstore.Exact(1), events(1, "Placed")...)
	var wev *eventstore.WrongExpectedVersionError
	require.ErrorAs(t, err, &wev)
	assert.Equal(t, eventstore.WrongExpectedVersionError{Stream: "Order-1", Expected: eventstore.Exact(1), Actual: 2}, *wev)
	assert.True(t, errors.Is(err, eventstore.ErrWrongExpectedVersion))
}
