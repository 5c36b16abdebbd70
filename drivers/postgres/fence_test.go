package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// beginOn opens a transaction on a connection of its own to database (the
// pool's own when empty), rolled back at cleanup.
func beginOn(t testing.TB, pool *pgxpool.Pool, database string) (pgx.Tx, uint32) {
	t.Helper()
	if database == "" {
		return beginHolder(t, pool)
	}
	cfg := pool.Config().ConnConfig.Copy()
	cfg.Database = database
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	require.NoError(t, err)
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tx.Rollback(ctx)
		conn.Close(ctx)
	})
	return tx, conn.PgConn().PID()
}

// newDatabase creates a database on the test server, dropped when t ends.
func newDatabase(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	name := randomSchema() + "_db"
	_, err := pool.Exec(t.Context(), "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}

// lastPosition returns the position of the last event of the log, zero when
// it is empty.
func lastPosition(t testing.TB, d *postgres.Driver) eventstore.Position {
	t.Helper()
	evs, err := d.ReadAll(t.Context(), driver.AllQuery{Backwards: true, Limit: 1})
	require.NoError(t, err)
	if len(evs) == 0 {
		return eventstore.Position{}
	}
	return eventstore.Position(evs[0].Position)
}

// The fence counts only transactions that can still write this store's
// events. Before, any role that could connect to any database of the
// cluster could stop every reader of the global log, subscription and
// `evs tail` with BEGIN; SELECT pg_current_xact_id(); and waiting. Each case
// holds a transaction open that has taken a transaction ID, then appends:
// with ReadWait negative a read never waits, so it returns the event only
// if the open transaction does not hold the fence back.
func TestFenceIgnoresTransactionsThatCannotWriteTheStore(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	d := newDriver(t, pool, postgres.Options{Schema: schema, ReadWait: -1})
	waiting := newDriver(t, pool, postgres.Options{Schema: schema}) // complete reads (see TestFenceHoldsBackWritersOfTheStore)
	other := newDriver(t, pool, postgres.Options{})                 // another store, another schema
	otherDB := newDatabase(t, pool)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	q := pgx.Identifier{schema}.Sanitize()

	for _, tc := range []struct {
		name     string
		database string   // "" for the store's
		stmts    []string // run in the open transaction
		raw      string   // a raw event in this schema's events table, if set
	}{
		{name: "transaction ID taken", stmts: []string{"SELECT pg_current_xact_id()"}},
		{name: "write to another table", stmts: []string{"CREATE TEMPORARY TABLE scratch (n int)", "INSERT INTO scratch VALUES (1)"}},
		{name: "append to another store", raw: other.Schema()},
		{name: "reader of the store's events with a transaction ID",
			stmts: []string{"SELECT pg_current_xact_id()", "SELECT count(*) FROM " + q + ".events"}},
		{name: "row share lock on the store's checkpoints",
			stmts: []string{"SELECT pg_current_xact_id()", "SELECT * FROM " + q + ".checkpoints FOR UPDATE"}},
		{name: "transaction ID taken in another database", database: otherDB, stmts: []string{"SELECT pg_current_xact_id()"}},
		{name: "write in another database", database: otherDB,
			stmts: []string{"CREATE TABLE scratch (n int)", "INSERT INTO scratch VALUES (1)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			last := lastPosition(t, waiting)
			tx, _ := beginOn(t, pool, tc.database)
			for _, stmt := range tc.stmts {
				_, err := tx.Exec(ctx, stmt)
				require.NoError(t, err, stmt)
			}
			if tc.raw != "" {
				rawEvent(t, tx, tc.raw, "Other-1", 1)
			}
			var xid *string
			require.NoError(t, tx.QueryRow(ctx, "SELECT pg_current_xact_id_if_assigned()::text").Scan(&xid))
			require.NotNil(t, xid, "precondition: the open transaction has a transaction ID")

			res, err := s.Append(ctx, "Order-1", eventstore.Any, eventstore.NewEvent("Placed", nil))
			require.NoError(t, err)
			// A read may still stop short when some other transaction on
			// the shared server ended between its snapshot and its lock
			// scan (the fence then counts it, to be safe); that passes at
			// the next read. The open transaction here stays open
			// throughout, so if it held the log back no read would
			// return the event.
			var got []eventstore.RecordedEvent
			for range 100 {
				if got = readAllAfter(t, d, last); len(got) > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			require.Len(t, got, 1, "an open transaction that cannot write the store holds the global log back")
			assert.Equal(t, res.Position, got[0].Position)
		})
	}
}

// Unrelated transactions left open (a batch job writing another database,
// one writing another table of the store's database, one that only took
// a transaction ID) delay neither ReadAll nor live delivery, with the
// default ReadWait: each read right after an append returns it (were the
// fence held, the read would return nothing after waiting ReadWait), and
// a live subscription, which never polls here, receives it (it would see
// nothing while the transactions stay open, the whole test).
//
// It logs how many times the reads polled the fence (a read polls only when
// its page seemed held back): a few at most, from transactions of other
// tests on the shared server ending between a read's snapshot and its
// scan of pg_locks, each a millisecond or so.
func TestUnrelatedTransactionsDelayNeitherReadsNorLiveDelivery(t *testing.T) {
	pool := newPool(t)
	traced, polls := countingPool(t, "+ t.off END FROM t") // fenceSQL, which waitFence polls
	d := newDriver(t, traced, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	otherDB := newDatabase(t, pool)
	for _, open := range []struct {
		database string
		stmts    []string
	}{
		{otherDB, []string{"CREATE TABLE batch (n int)", "INSERT INTO batch SELECT generate_series(1, 1000)"}},
		{"", []string{"CREATE TEMPORARY TABLE batch (n int)", "INSERT INTO batch VALUES (1)"}},
		{"", []string{"SELECT pg_current_xact_id()"}},
	} {
		tx, _ := beginOn(t, pool, open.database)
		for _, stmt := range open.stmts {
			_, err := tx.Exec(ctx, stmt)
			require.NoError(t, err, stmt)
		}
	}
	last := lastPosition(t, d)
	sub := subscribe(t, s, eventstore.SubscribeOptions{After: last, PollInterval: noPoll})
	for i := range 20 {
		res, err := s.Append(ctx, fmt.Sprintf("Order-%d", i), eventstore.NoStream, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
		got := readAllAfter(t, d, last)
		require.Len(t, got, 1, "append %d: read right after it", i)
		assert.Equal(t, res.Position, got[0].Position)
		live := receive(t, sub, 1, fmt.Sprintf("append %d, live", i))
		assert.Equal(t, res.Position, live[0].Position)
		last = res.Position
	}
	t.Logf("20 appends, each read at once and live: the reads polled the fence %d times", polls.counts[0].Load())
}

// A backwards read of the log waits for a writer of the store held open
// even when its page is full: the events held back are the newest, the
// first it should return. Before, a full page came back at once, so Head
// (one event backwards) could name an older event than the last append
// (conformance rule HeadIsTheLastEvent failed that way under load, when an
// unrelated transaction ending at the wrong moment held a read's fence).
func TestBackwardsReadWaitsForAHeldWriter(t *testing.T) {
	pool := newPool(t)
	traced, polls := countingPool(t, "+ t.off END FROM t") // fenceSQL, which waitFence polls
	schema := randomSchema()
	d := newDriver(t, traced, postgres.Options{Schema: schema, ReadWait: time.Minute})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()

	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	held, _ := beginOn(t, pool, "")
	rawEvent(t, held, schema, "Held-1", 1) // a writer of the store, open
	last, err := s.Append(ctx, "Order-2", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)

	type result struct {
		evs []driver.RecordedEvent
		err error
	}
	done := make(chan result, 1)
	go func() {
		evs, err := d.ReadAll(ctx, driver.AllQuery{Backwards: true, Limit: 1})
		done <- result{evs, err}
	}()
	require.Eventually(t, func() bool { return polls.counts[0].Load() > 0 }, 30*time.Second, time.Millisecond,
		"the backwards read of a full page waits for the open writer")
	select {
	case r := <-done:
		t.Fatalf("the backwards read returned while the writer was open: %v, %v", r.evs, r.err)
	default:
	}
	require.NoError(t, held.Rollback(ctx))
	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.Len(t, r.evs, 1)
		assert.Equal(t, last.Position, eventstore.Position(r.evs[0].Position), "the newest event")
	case <-time.After(30 * time.Second):
		t.Fatal("the backwards read did not return after the writer ended")
	}
}

// A transaction that can write the store's events holds the fence back
// while it is open, whatever its transaction ID: readers must not pass it
// (the no-skip guarantee). With ReadWait negative a read returns nothing
// after the open transaction's ID; once it ends, the events appended
// meanwhile are read, after it and in order.
func TestFenceHoldsBackWritersOfTheStore(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	d := newDriver(t, pool, postgres.Options{Schema: schema, ReadWait: -1})
	// waiting reads the same store with the default ReadWait, where a read
	// must be complete: a read that never waits may stop short of events
	// already committed, when a transaction of another test on the shared
	// server ends between its snapshot and its scan of pg_locks.
	waiting := newDriver(t, pool, postgres.Options{Schema: schema})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	q := pgx.Identifier{schema}.Sanitize()

	for _, tc := range []struct {
		name   string
		stmts  []string
		raw    bool // insert an event, as an append does
		commit bool
	}{
		{name: "uncommitted insert, rolled back", raw: true},
		{name: "uncommitted insert, committed", raw: true, commit: true},
		{name: "row exclusive lock, then a transaction ID",
			stmts: []string{"LOCK TABLE " + q + ".events IN ROW EXCLUSIVE MODE", "SELECT pg_current_xact_id()"}},
		{name: "share update exclusive lock, then a transaction ID",
			stmts: []string{"LOCK TABLE " + q + ".events IN SHARE UPDATE EXCLUSIVE MODE", "SELECT pg_current_xact_id()"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			last := lastPosition(t, waiting)
			tx, _ := beginHolder(t, pool)
			for _, stmt := range tc.stmts {
				_, err := tx.Exec(ctx, stmt)
				require.NoError(t, err, stmt)
			}
			if tc.raw {
				rawEvent(t, tx, schema, "Raw-"+randomSchema(), 1)
			}
			var open int64
			require.NoError(t, tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&open))

			var later []eventstore.AppendResult
			for i := range 3 {
				res, err := s.Append(ctx, fmt.Sprintf("Later-%d", i), eventstore.Any, eventstore.NewEvent("Later", nil))
				require.NoError(t, err)
				require.Greater(t, res.Position.Commit, uint64(open), "precondition: the append comes after the open transaction")
				later = append(later, res)
			}
			assert.Empty(t, readAllAfter(t, d, last), "events after an open writer's transaction ID are held back")

			if tc.commit {
				require.NoError(t, tx.Commit(ctx))
			} else {
				require.NoError(t, tx.Rollback(ctx))
			}
			got := readAllAfter(t, waiting, last)
			want := len(later)
			if tc.commit && tc.raw {
				want++
				require.NotEmpty(t, got)
				assert.Equal(t, uint64(open), got[0].Position.Commit, "the writer's event comes first")
			}
			require.Len(t, got, want)
			assert.Equal(t, later[len(later)-1].Position, got[len(got)-1].Position)
			for i := 1; i < len(got); i++ {
				assert.True(t, got[i-1].Position.Less(got[i].Position), "positions increase")
			}
		})
	}
}

// recorder is a slog.Handler keeping the records it handles.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// warnings returns the attributes of each warning recorded so far.
func (r *recorder) warnings() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, rec := range r.records {
		if rec.Level != slog.LevelWarn {
			continue
		}
		attrs := map[string]any{"msg": rec.Message}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.Any()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// When ReadWait runs out behind a writer of the store, the read returns
// what is safe and the driver logs the writer's backend PID, once for that
// transaction however many reads wait for it, so an operator can find it.
func TestReadWaitExpiryLogsTheBlockingBackend(t *testing.T) {
	pool := newPool(t)
	rec := &recorder{}
	d := newDriver(t, pool, postgres.Options{ReadWait: 20 * time.Millisecond, Logger: slog.New(rec)})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()

	last := lastPosition(t, d)
	tx, pid := beginHolder(t, pool)
	rawEvent(t, tx, d.Schema(), "Stalled-1", 1)
	var xid string
	require.NoError(t, tx.QueryRow(ctx, "SELECT xid(pg_current_xact_id())::text").Scan(&xid))
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	for range 3 {
		assert.Empty(t, readAllAfter(t, d, last), "held back by the stalled writer")
	}
	warnings := rec.warnings()
	require.Len(t, warnings, 1, "one warning for one blocking transaction: %v", warnings)
	assert.EqualValues(t, pid, warnings[0]["pid"])
	assert.Equal(t, xid, warnings[0]["xid"])

	require.NoError(t, tx.Rollback(ctx))
	assert.Len(t, readAllAfter(t, d, last), 1)
	assert.Len(t, rec.warnings(), 1, "nothing logged once the writer ended")
}

// Provoked races: appenders, writers of another store and short unrelated
// transactions start and end all the time, so that transactions end between
// a reader's snapshot and its look at pg_locks, and appends take their locks
// and IDs while readers look. Readers that never wait (ReadWait negative)
// tail the log from where they are: each must read every event exactly
// once, in the log's order.
func TestFenceNoSkipUnderChurn(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	d := newDriver(t, pool, postgres.Options{Schema: schema, ReadWait: -1})
	other := newDriver(t, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	so := eventstore.New(other, eventstore.Options{})
	t.Cleanup(func() { so.Close() })
	ctx := t.Context()

	const appenders, perAppender, readers = 4, 40, 2
	gate := make(chan struct{})
	stop := make(chan struct{})
	var writers, churn sync.WaitGroup
	errs := make(chan error, 64)
	for i := range appenders {
		writers.Go(func() {
			<-gate
			for j := range perAppender {
				// Batches of 1–3 events, so pages end inside an append.
				evs := make([]eventstore.Event, 1+j%3)
				for k := range evs {
					evs[k] = eventstore.NewEvent("Churned", nil)
				}
				if _, err := s.Append(ctx, fmt.Sprintf("Churn-%d", i), eventstore.Any, evs...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 2 {
		churn.Go(func() {
			<-gate
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i == 0 {
					_, err = so.Append(ctx, "Elsewhere-1", eventstore.Any, eventstore.NewEvent("Other", nil))
				} else {
					err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						_, err := tx.Exec(ctx, "SELECT pg_current_xact_id()")
						return err
					})
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		})
	}
	type tail struct {
		got []driver.RecordedEvent
		err error
	}
	var final driver.Position // the log's last position, set before stop closes
	tails := make([]chan tail, readers)
	for r := range readers {
		tails[r] = make(chan tail, 1)
		go func() {
			var out tail
			var after driver.Position
			<-gate
			for {
				page, err := d.ReadAll(ctx, driver.AllQuery{After: after, Limit: 7})
				if err != nil {
					out.err = err
					break
				}
				out.got = append(out.got, page...)
				if len(page) > 0 {
					after = page[len(page)-1].Position
				}
				select {
				case <-stop:
					if after == final {
						tails[r] <- out
						return
					}
				default:
				}
			}
			tails[r] <- out
		}()
	}
	close(gate)
	writers.Wait()
	final = driver.Position(lastPosition(t, d))
	close(stop)
	churn.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	var all []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		all = append(all, ev)
	}
	want := 0
	for j := range perAppender {
		want += appenders * (1 + j%3)
	}
	require.Len(t, all, want)
	require.Equal(t, final, driver.Position(all[len(all)-1].Position))
	for r, ch := range tails {
		out := waitFor(t, ch, 60*time.Second, "a reader")
		require.NoError(t, out.err)
		if !assert.Equal(t, len(all), len(out.got), "reader %d read every event once, in order", r) {
			seen := map[driver.Position]bool{}
			for _, ev := range out.got {
				seen[ev.Position] = true
			}
			for i, ev := range all {
				if !seen[driver.Position(ev.Position)] {
					t.Logf("missing %d: %s %s v%d", i, ev.Position, ev.StreamID, ev.Version)
				}
			}
			for i := 1; i < len(out.got); i++ {
				t.Logf("got %s %s v%d", out.got[i].Position, out.got[i].StreamID, out.got[i].Version)
			}
		}
	}
}
