package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queryCounter is a pgx tracer counting the statements sent, apart from
// the notifier's NOTIFY, which is off the append's path.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(data.SQL, "pg_notify") {
		c.n.Add(1)
	}
	return ctx
}
func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A 100-event append is one statement (unnest-ed arrays): one round trip on
// a connection that has prepared it, never one per event. (The wake-up
// NOTIFY goes later from the driver's notifier, at most one per 5 ms for all
// appends.)
func TestAppendBatchRoundTrips(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s, _ := newStore(t, pool)
	batch := func() []eventstore.Event {
		evs := make([]eventstore.Event, 100)
		for i := range evs {
			evs[i] = eventstore.NewEvent("Happened", []byte(`{"i":1}`))
		}
		return evs
	}
	_, err = s.Append(t.Context(), "Warm-1", eventstore.NoStream, batch()...) // prepares the statements
	require.NoError(t, err)
	before := counter.n.Load()
	res, err := s.Append(t.Context(), "Batch-1", eventstore.NoStream, batch()...)
	require.NoError(t, err)
	require.Equal(t, uint64(100), res.Version)
	assert.Equal(t, int64(1), counter.n.Load()-before, "statements sent for a 100-event append")

	// The batch shares one transaction ID and takes seq in version order.
	var prev eventstore.RecordedEvent
	for ev, err := range s.ReadStream(t.Context(), "Batch-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		if ev.Version > 1 {
			require.Equal(t, prev.Position.Commit, ev.Position.Commit, "one transaction ID per append")
			require.Greater(t, ev.Position.Prepare, prev.Position.Prepare, "seq follows the version")
		}
		prev = ev
	}
	assert.Equal(t, res.Position, prev.Position)
}

// rawEvent inserts an event into the store's table inside tx, the way an
// append does, so the test can hold it uncommitted.
func rawEvent(t testing.TB, tx pgx.Tx, schema, stream string, version int) {
	t.Helper()
	_, err := tx.Exec(t.Context(), `INSERT INTO `+pgx.Identifier{schema}.Sanitize()+`.events
		(tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
		VALUES (pg_current_xact_id()::text::bigint, $1, $2, $3, 'Raw', 0, '', '', now())`, stream, version, uuid.New())
	require.NoError(t, err)
}

// waitBlockedBy returns the PID of a backend waiting for a lock held by pid.
func waitBlockedBy(t testing.TB, pool *pgxpool.Pool, pid uint32) uint32 {
	t.Helper()
	var blocked uint32
	require.Eventually(t, func() bool {
		err := pool.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) LIMIT 1`, pid).Scan(&blocked)
		return err == nil
	}, 30*time.Second, 5*time.Millisecond, "no backend blocked by %d", pid)
	return blocked
}

// beginHolder opens a transaction on its own connection, to hold rows and
// locks while the store works; it is rolled back at cleanup.
func beginHolder(t testing.TB, pool *pgxpool.Pool) (pgx.Tx, uint32) {
	t.Helper()
	conn, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tx.Rollback(ctx)
		conn.Release()
	})
	return tx, conn.Conn().PgConn().PID()
}

type appendOutcome struct {
	res eventstore.AppendResult
	err error
}

func appendAsync(s *eventstore.Store, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.Event) <-chan appendOutcome {
	ch := make(chan appendOutcome, 1)
	go func() {
		res, err := s.Append(context.Background(), stream, exp, evs...)
		ch <- appendOutcome{res, err}
	}()
	return ch
}

// 23505 on events_stream_version_key: a concurrent append took the version
// after this append read the stream. The append reports
// ErrWrongExpectedVersion with the actual version and the native error.
func TestAppendVersionTakenConcurrently(t *testing.T) {
	pool := newPool(t)
	s, d := newStore(t, pool)
	var retried []string
	var mu sync.Mutex
	postgres.SetRetryHook(d, func(err error) {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			mu.Lock()
			retried = append(retried, pgErr.Code)
			mu.Unlock()
		}
	})
	holder, pid := beginHolder(t, pool)
	rawEvent(t, holder, d.Schema(), "Order-1", 1)
	done := appendAsync(s, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	waitBlockedBy(t, pool, pid)
	require.NoError(t, holder.Commit(t.Context()))

	out := waitFor(t, done, 30*time.Second, "the append")
	require.ErrorIs(t, out.err, eventstore.ErrWrongExpectedVersion)
	var wev *eventstore.WrongExpectedVersionError
	require.ErrorAs(t, out.err, &wev)
	assert.Equal(t, uint64(1), wev.Actual)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, out.err, &pgErr, "the native cause is reachable")
	assert.Equal(t, "23505", pgErr.Code)
	assert.Equal(t, "events_stream_version_key", pgErr.ConstraintName)
	mu.Lock()
	assert.Equal(t, []string{"23505"}, retried)
	mu.Unlock()

	// An Any append in the same race simply lands after the winner.
	holder2, pid2 := beginHolder(t, pool)
	rawEvent(t, holder2, d.Schema(), "Order-1", 2)
	done = appendAsync(s, "Order-1", eventstore.Any, eventstore.NewEvent("Paid", nil))
	waitBlockedBy(t, pool, pid2)
	require.NoError(t, holder2.Commit(t.Context()))
	out = waitFor(t, done, 30*time.Second, "the Any append")
	require.NoError(t, out.err)
	assert.Equal(t, uint64(3), out.res.Version)
}

// 40001: under default_transaction_isolation=serializable (a pgx run-time
// parameter passed through), two transactions that read the stream and then
// write the same version conflict; the loser fails with a serialization
// failure, the driver runs it again, and it lands after the winner.
func TestAppendRetriesSerializationFailure(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "serializable"
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s, d := newStore(t, pool)
	codes := make(chan string, maxAttemptsForTest)
	postgres.SetRetryHook(d, func(err error) {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			codes <- pgErr.Code
		}
	})
	holder, pid := beginHolder(t, pool)
	var level string
	require.NoError(t, holder.QueryRow(t.Context(), "SHOW transaction_isolation").Scan(&level))
	require.Equal(t, "serializable", level)
	var v int
	require.NoError(t, holder.QueryRow(t.Context(), `SELECT coalesce(max(version), 0) FROM `+
		pgx.Identifier{d.Schema()}.Sanitize()+`.events WHERE stream_id = 'Order-1'`).Scan(&v))
	rawEvent(t, holder, d.Schema(), "Order-1", v+1)
	done := appendAsync(s, "Order-1", eventstore.Any, eventstore.NewEvent("Placed", nil))
	waitBlockedBy(t, pool, pid)
	require.NoError(t, holder.Commit(t.Context()))
	out := waitFor(t, done, 30*time.Second, "the append")
	require.NoError(t, out.err)
	assert.Equal(t, uint64(2), out.res.Version)
	assert.Equal(t, "40001", waitFor(t, codes, time.Second, "a retried serialization failure"))
}

const maxAttemptsForTest = 16

// 40P01: the append and another transaction wait for each other's rows;
// PostgreSQL aborts the append, and the driver runs it again.
func TestAppendRetriesDeadlock(t *testing.T) {
	pool := newPool(t)
	s, d := newStore(t, pool)
	codes := make(chan string, maxAttemptsForTest)
	postgres.SetRetryHook(d, func(err error) {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			codes <- pgErr.Code
		}
	})
	holder, pid := beginHolder(t, pool)
	// The holder must not be the one the deadlock detector picks.
	if _, err := holder.Exec(t.Context(), "SET LOCAL deadlock_timeout = '60s'"); err != nil {
		t.Skipf("cannot raise deadlock_timeout for the holder (needs a superuser): %v", err)
	}
	rawEvent(t, holder, d.Schema(), "Order-1", 2)
	done := appendAsync(s, "Order-1", eventstore.Any, eventstore.NewEvent("A", nil), eventstore.NewEvent("B", nil))
	waitBlockedBy(t, pool, pid) // the append wrote version 1 and waits for version 2
	// Now the holder wants version 1, which the append holds: a deadlock.
	holderDone := make(chan error, 1)
	go func() {
		_, err := holder.Exec(context.Background(), `INSERT INTO `+pgx.Identifier{d.Schema()}.Sanitize()+`.events
			(tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
			VALUES (pg_current_xact_id()::text::bigint, 'Order-1', 1, gen_random_uuid(), 'Raw', 0, '', '', now())`)
		holderDone <- err
	}()
	assert.Equal(t, "40P01", waitFor(t, codes, 30*time.Second, "a retried deadlock"))
	require.NoError(t, waitFor(t, holderDone, 30*time.Second, "the holder's insert"))
	// The retry waits for the holder's rows; once they are gone it lands.
	require.NoError(t, holder.Rollback(t.Context()))
	out := waitFor(t, done, 30*time.Second, "the append")
	require.NoError(t, out.err)
	assert.Equal(t, uint64(2), out.res.Version)
}

// A connection cut while an append runs: the append reports a lost
// connection, and the stream holds none of the batch (the implicit
// transaction rolled back). Retrying with the same event IDs then writes it.
func TestAppendConnectionCut(t *testing.T) {
	pool := newPool(t)
	s, d := newStore(t, pool)
	const n = 5000
	holder, pid := beginHolder(t, pool)
	rawEvent(t, holder, d.Schema(), "Big-1", n) // the append blocks on its last event
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent("Chunk", []byte(`{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`))
	}
	done := appendAsync(s, "Big-1", eventstore.Any, evs...)
	victim := waitBlockedBy(t, pool, pid) // the append has written n-1 rows
	_, err := pool.Exec(t.Context(), "SELECT pg_terminate_backend($1)", victim)
	require.NoError(t, err)
	out := waitFor(t, done, 30*time.Second, "the cut append")
	require.Error(t, out.err)
	assert.Contains(t, out.err.Error(), "connection lost")
	assert.Contains(t, out.err.Error(), "all of its events or none")
	require.NoError(t, holder.Rollback(t.Context()))

	v, err := s.StreamVersion(t.Context(), "Big-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(0), v, "none of the batch is in the stream")
	res, err := s.Append(t.Context(), "Big-1", eventstore.Any, evs...)
	require.NoError(t, err, "the retry")
	assert.Equal(t, uint64(n), res.Version)
	res2, err := s.Append(t.Context(), "Big-1", eventstore.Any, evs...)
	require.NoError(t, err, "a second retry is recognised")
	assert.Equal(t, res, res2)
}

// Open against a port where nothing listens fails with a clear error.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := eventstore.Open(ctx, "postgres://app:pw@127.0.0.1:"+closedPort(t)+"/db?sslmode=disable&connect_timeout=5")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect")
	var connectErr *pgconn.ConnectError
	assert.ErrorAs(t, err, &connectErr, "the native error is reachable")
}

// waitFor waits on ch for up to d.
func waitFor[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
		var zero T
		return zero
	}
}

// Appends at Any (and StreamExists on a stream that has events) never fail
// with ErrWrongExpectedVersion, however many appenders race for the end of
// one stream: losing the version to another append only means trying again.
// Many appenders on one stream make some lose more often in a row than a
// fixed number of attempts allows.
func TestAnyAppendsNeverLoseUnderContention(t *testing.T) {
	pool := newPool(t)
	s, _ := newStore(t, pool)
	ctx := t.Context()
	const appenders, perAppender = 24, 15
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.StreamExists} {
		stream := "Contended-" + exp.String()
		_, err := s.Append(ctx, stream, eventstore.NoStream, eventstore.NewEvent("First", nil))
		require.NoError(t, err)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, appenders)
		for range appenders {
			wg.Go(func() {
				<-gate
				for range perAppender {
					if _, err := s.Append(ctx, stream, exp, eventstore.NewEvent("Raced", nil)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: an append at %s failed: %v", stream, exp, err)
		}
		v, err := s.StreamVersion(ctx, stream)
		require.NoError(t, err)
		assert.Equal(t, uint64(1+appenders*perAppender-len(errs)), v, "%s: every successful append is in the stream once", stream)
	}
}

// Appends that arrive while an append statement runs wait for it and go
// together in one statement (one transaction: one Commit part in their
// positions), each with its own outcome: written, wrong expected version,
// a recognised retry. An append blocked behind another process's
// transaction holds them back for a bounded time only: then they go in a
// group of their own. (The wait is fixed at a second here, so that the
// queue forms before it runs out; in service it adapts to how fast
// statements run.)
func TestGroupCommit(t *testing.T) {
	defer postgres.SetGroupLaunch(time.Second)()
	pool := newPool(t)
	s, d := newStore(t, pool)
	ctx := t.Context()
	retryEvents := []eventstore.Event{eventstore.NewEvent("Placed", []byte(`"r1"`)), eventstore.NewEvent("Paid", []byte(`"r2"`))}
	first, err := s.Append(ctx, "Retry-1", eventstore.NoStream, retryEvents...)
	require.NoError(t, err)
	_, err = s.Append(ctx, "Wrong-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)

	// The running statement: an append blocked by an uncommitted event.
	holder, pid := beginHolder(t, pool)
	rawEvent(t, holder, d.Schema(), "Held-1", 1)
	held := appendAsync(s, "Held-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	waitBlockedBy(t, pool, pid)

	cases := []struct {
		stream  string
		exp     eventstore.ExpectedVersion
		events  []eventstore.Event
		version uint64 // 0: fails with ErrWrongExpectedVersion
	}{
		{"A-1", eventstore.NoStream, []eventstore.Event{eventstore.NewEvent("Placed", []byte(`"a"`))}, 1},
		{"B-1", eventstore.NoStream, []eventstore.Event{eventstore.NewEvent("Placed", []byte(`"b1"`)), eventstore.NewEvent("Paid", []byte(`"b2"`))}, 2},
		{"C-1", eventstore.Any, []eventstore.Event{eventstore.NewEvent("Placed", []byte(`"c"`))}, 1},
		{"Wrong-1", eventstore.NoStream, []eventstore.Event{eventstore.NewEvent("Placed", nil)}, 0},
		{"Retry-1", eventstore.NoStream, retryEvents, 2},
	}
	outs := make([]<-chan appendOutcome, len(cases))
	for i, c := range cases {
		outs[i] = appendAsync(s, c.stream, c.exp, c.events...)
	}
	require.Eventually(t, func() bool { return postgres.QueuedAppends(d) == len(cases) }, 10*time.Second, time.Millisecond,
		"the appends queue behind the running one")
	require.NoError(t, holder.Rollback(ctx))
	out := waitFor(t, held, 30*time.Second, "the held append")
	require.NoError(t, out.err)

	commits := map[uint64]bool{}
	for i, c := range cases {
		out := waitFor(t, outs[i], 30*time.Second, c.stream)
		if c.version == 0 {
			var wev *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, out.err, &wev, c.stream)
			assert.Equal(t, uint64(1), wev.Actual, c.stream)
			continue
		}
		require.NoError(t, out.err, c.stream)
		assert.Equal(t, c.version, out.res.Version, c.stream)
		if c.stream == "Retry-1" {
			assert.Equal(t, first, out.res, "the retry returns the original result")
			continue
		}
		commits[out.res.Position.Commit] = true
		var got []string
		for ev, err := range s.ReadStream(ctx, c.stream, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			got = append(got, string(ev.Data))
		}
		var want []string
		for _, e := range c.events {
			want = append(want, string(e.Data))
		}
		assert.Equal(t, want, got, c.stream)
	}
	assert.Len(t, commits, 1, "the written appends shared one transaction")

	// Blocked for longer than the group's wait, appends to other streams
	// go on without it.
	holder2, pid2 := beginHolder(t, pool)
	rawEvent(t, holder2, d.Schema(), "Held-2", 1)
	held = appendAsync(s, "Held-2", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	waitBlockedBy(t, pool, pid2)
	out = waitFor(t, appendAsync(s, "D-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil)), 10*time.Second,
		"an append behind a blocked one")
	require.NoError(t, out.err)
	require.NoError(t, holder2.Rollback(ctx))
	require.NoError(t, waitFor(t, held, 30*time.Second, "the second held append").err)
}

// The append statements find the stream's version and a retried append
// through their indexes in the generic plans prepared statements settle on
// (pgx prepares each statement per connection; PostgreSQL plans it for its
// parameters five times, then keeps a generic plan until the table's
// statistics change): the version from the end of the stream's entries in
// events_stream_version_key, the retry through the partial index of first
// event IDs. Never a walk of the table or of a stream's entries, which
// costs more with every event appended. Before, a new store's events table
// was analyzed empty, so a plan made while it held a few events
// sequentially scanned it for both lookups until autovacuum analyzed it
// again; and the retry lookup (ORDER BY version DESC LIMIT 1) was planned
// in some connections as a backward walk of the stream's entries looking
// for the event ID.
func TestAppendPlans(t *testing.T) {
	args := map[string]string{
		"append": `('Order-1', 0, 5, '00000000-0000-0000-0000-000000000001', '{00000000-0000-0000-0000-000000000001}', '{Placed}', '{0}', '{"\\x"}', '{"\\x"}', now())`,
		"group": `('{Order-1,Order-2}', '{0,0}', '{5,5}', '{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}',
			'{1,2}', '{1,1}', '{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}', '{Placed,Placed}', '{0,0}',
			'{"\\x","\\x"}', '{"\\x","\\x"}', ARRAY[now(), now()])`,
	}
	for _, tc := range []struct {
		name string
		// fill writes events before planning, and analyzes them.
		fill string
	}{
		{name: "new store"},
		{name: "long streams", fill: `SELECT 100 + i / 100, 'Order-' || i % 2, i / 2 + 1, gen_random_uuid(), 'Placed', 0, '', '', now() FROM generate_series(0, 19999) i`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t)
			d := newDriver(t, pool, postgres.Options{})
			ctx := t.Context()
			q := pgx.Identifier{d.Schema()}.Sanitize()
			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			if tc.fill != "" {
				_, err := conn.Exec(ctx, `INSERT INTO `+q+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at) `+tc.fill)
				require.NoError(t, err)
				_, err = conn.Exec(ctx, `ANALYZE `+q+`.events`)
				require.NoError(t, err)
			}
			_, err = conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
			require.NoError(t, err)
			for _, st := range []struct{ name, sql string }{
				{"append", postgres.AppendSQL(d)},
				{"group", postgres.GroupAppendSQL(d)},
			} {
				_, err := conn.Exec(ctx, `PREPARE plan_`+st.name+` AS `+st.sql, pgx.QueryExecModeExec)
				require.NoError(t, err, st.name)
				var plan strings.Builder
				rows, err := conn.Query(ctx, `EXPLAIN (COSTS OFF) EXECUTE plan_`+st.name+args[st.name], pgx.QueryExecModeExec)
				require.NoError(t, err, st.name)
				for rows.Next() {
					var line string
					require.NoError(t, rows.Scan(&line))
					plan.WriteString(line + "\n")
				}
				require.NoError(t, rows.Err(), st.name)
				assert.Contains(t, plan.String(), "Index Only Scan Backward using events_stream_version_key", "%s: the stream's version", st.name)
				assert.Contains(t, plan.String(), "events_append_event_id_idx", "%s: the retry lookup", st.name)
				assert.NotContains(t, plan.String(), "Seq Scan on events", st.name)
				assert.Equal(t, 1, strings.Count(plan.String(), "using events_stream_version_key"), "%s: the stream's entries are read once, for its version", st.name)
				t.Logf("%s plan:\n%s", st.name, plan.String())
			}
		})
	}
}
