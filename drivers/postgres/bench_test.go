package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The workloads are conformance.Run*, shared with the other drivers. Every
// store benchmark (…/store) has twins on the same server in the same run,
// each in a fresh schema of its own:
//
//   - …/raw: plain pgx sending the driver's own SQL (the append statement,
//     the keyset-paged reads of the driver's PageSize rows and 16 MiB, the
//     Store's page bounds) and scanning
//     every column, without the Store and the driver around it: what the
//     library adds to the SQL. The ≥ 80% targets are against this twin.
//   - …/minimal: plain pgx on the simplest event table (a bigserial
//     position, the (stream_id, version) constraint, no event ID index, no
//     visibility fence), read in pages of 512 rows, the Store's pages
//     until 2026-12-03: what the design costs. That table skips events
//     under concurrent writers. BenchmarkPageSize also compares the store
//     with it at the store's page size.
//
// Every side has a pool of postgres.DefaultMaxConns connections, the size
// of the pool Open creates (before 2026-12-03: pgxpool's default, 4 on 2
// cores). Each twin is warmed up before the timed loop: pgx prepares a statement per
// connection, and PostgreSQL plans it afresh for its first five runs before
// settling on a generic plan.

// bench is a store in a fresh schema of the test server, with the raw and
// minimal twins' statements for that schema.
type bench struct {
	pool   *pgxpool.Pool
	store  *eventstore.Store
	driver *postgres.Driver
	sql    func(string) string // the SQL of a twin for the schema, with pages of 512
	seeded string              // a stream BenchmarkInterleaved seeded
}

func newBench(b *testing.B) *bench {
	b.Helper()
	return newBenchOn(b, benchPool(b, postgres.DefaultMaxConns))
}

// benchPool returns a pool of the test server with at most n connections.
// The store and its twins get the driver's default (Open's pool), not
// pgxpool's.
func benchPool(b *testing.B, n int32) *pgxpool.Pool {
	b.Helper()
	return benchPoolWith(b, n, nil)
}

// benchPoolWith is benchPool with the connections' settings changed by
// set (when not nil) before the pool opens.
func benchPoolWith(b *testing.B, n int32, set func(*pgxpool.Config)) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = n
	if set != nil {
		set(cfg)
	}
	pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// newBenchOn is newBench on pool.
func newBenchOn(b *testing.B, pool *pgxpool.Pool) *bench {
	b.Helper()
	d := newDriver(b, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	b.Cleanup(func() { s.Close() })
	q := pgx.Identifier{d.Schema()}.Sanitize()
	bn := &bench{pool: pool, store: s, driver: d, sql: func(f string) string { return fmt.Sprintf(f, q, 512) }}
	if _, err := pool.Exec(b.Context(), bn.sql(minimalSchema)); err != nil {
		b.Fatal(err)
	}
	return bn
}

// minimalSchema is the table of the …/minimal twins.
const minimalSchema = `CREATE TABLE %[1]s.minimal_events (
	pos         bigserial   PRIMARY KEY,
	stream_id   text        NOT NULL,
	version     bigint      NOT NULL,
	event_id    uuid        NOT NULL,
	event_type  text        NOT NULL,
	data        bytea       NOT NULL,
	metadata    bytea       NOT NULL,
	recorded_at timestamptz NOT NULL,
	UNIQUE (stream_id, version))`

const minimalAppendSQL = `INSERT INTO %[1]s.minimal_events (stream_id, version, event_id, event_type, data, metadata, recorded_at)
SELECT $1, v.v + e.ord, e.id, e.typ, e.data, e.meta, $6
FROM (SELECT coalesce(max(version), 0) AS v FROM %[1]s.minimal_events WHERE stream_id = $1) v,
	unnest($2::uuid[], $3::text[], $4::bytea[], $5::bytea[]) WITH ORDINALITY AS e(id, typ, data, meta, ord)
WHERE v.v = $7
ORDER BY e.ord`

const minimalReadStreamSQL = `SELECT pos, stream_id, version, event_id, event_type, data, metadata, recorded_at
FROM %[1]s.minimal_events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT %[2]d`

const minimalReadAllSQL = `SELECT pos, stream_id, version, event_id, event_type, data, metadata, recorded_at
FROM %[1]s.minimal_events WHERE pos > $1 ORDER BY pos LIMIT %[2]d`

// columns of one event, as the minimal twin scans them (seq holds its
// position).
type columns struct {
	seq, version int64
	stream, typ  string
	id           [16]byte
	data, meta   []byte
	at           time.Time
}

func eventArrays(events []eventstore.Event) (ids [][16]byte, types []string, cts []int16, data, meta [][]byte) {
	for _, e := range events {
		ids = append(ids, e.ID)
		types = append(types, e.Type)
		cts = append(cts, int16(e.ContentType))
		data = append(data, e.Data)
		meta = append(meta, []byte{})
	}
	return
}

// rawAppend runs the driver's append statement through plain pgx.
func (bn *bench) rawAppend(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	ids, types, cts, data, meta := eventArrays(events)
	var current int64
	var dup, txID, seq, version *int64
	err := bn.pool.QueryRow(ctx, postgres.AppendSQL(bn.driver), stream, 0, int64(expected), ids[0], ids, types, cts, data, meta, time.Now()).
		Scan(&current, &dup, &txID, &seq, &version)
	if err == nil && (version == nil || *version != current+int64(len(events))) {
		err = fmt.Errorf("raw append to %s at %d did not write", stream, expected)
	}
	return err
}

// minimalAppend appends to the minimal table.
func (bn *bench) minimalAppend(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	ids, types, _, data, meta := eventArrays(events)
	tag, err := bn.pool.Exec(ctx, bn.sql(minimalAppendSQL), stream, ids, types, data, meta, time.Now(), int64(expected))
	if err == nil && tag.RowsAffected() != int64(len(events)) {
		err = fmt.Errorf("minimal append to %s at %d wrote %d of %d", stream, expected, tag.RowsAffected(), len(events))
	}
	return err
}

// pages runs a keyset-paged read of 512-row pages: args returns the
// arguments of the next page (first: the first page), scanning into scan.
func (bn *bench) pages(ctx context.Context, query string, scan []any, args func(first bool) []any) (int, error) {
	return bn.pagesOf(ctx, 512, query, scan, args)
}

// pagesOf is pages with pages of size rows.
func (bn *bench) pagesOf(ctx context.Context, size int64, query string, scan []any, args func(first bool) []any) (int, error) {
	n := 0
	for first := true; ; first = false {
		rows, err := bn.pool.Query(ctx, query, args(first)...)
		if err != nil {
			return n, err
		}
		tag, err := pgx.ForEachRow(rows, scan, func() error { return nil })
		if err != nil {
			return n, err
		}
		n += int(tag.RowsAffected())
		if tag.RowsAffected() < size {
			return n, nil
		}
	}
}

// rawReadStream reads a stream with the driver's statement: a head row
// (the page's row count), then the events, each with a NULL count.
func (bn *bench) rawReadStream(ctx context.Context, stream string) (int, error) {
	var (
		r    readAllRow
		head pgtype.Int8
	)
	targets := append([]any{&head}, r.targets()[4:]...)
	size := bn.driver.PageSize()
	n := 0
	from := int64(1)
	for {
		rows, _ := bn.pool.Query(ctx, postgres.ReadStreamSQL(bn.driver), stream, from, size, eventstore.DefaultMaxPageBytes)
		page := 0
		_, err := pgx.ForEachRow(rows, targets, func() error {
			if r.version.Valid && !head.Valid {
				page++
				from = r.version.Int64 + 1
			}
			return nil
		})
		n += page
		if err != nil || page < size {
			return n, err
		}
	}
}

func (bn *bench) minimalReadStream(ctx context.Context, stream string) (int, error) {
	return bn.minimalReadStreamOf(512)(ctx, stream)
}

// minimalReadStreamOf reads a stream of the minimal table in pages of size.
func (bn *bench) minimalReadStreamOf(size int64) conformance.ReadStreamFunc {
	query := bn.minimalSQL(minimalReadStreamSQL, size)
	return func(ctx context.Context, stream string) (int, error) {
		var c columns
		return bn.pagesOf(ctx, size, query,
			[]any{&c.seq, &c.stream, &c.version, &c.id, &c.typ, &c.data, &c.meta, &c.at},
			func(first bool) []any {
				if first {
					return []any{stream, 1}
				}
				return []any{stream, c.version + 1}
			})
	}
}

// minimalSQL is a twin's SQL f for the schema with pages of size.
func (bn *bench) minimalSQL(f string, size int64) string {
	return fmt.Sprintf(f, pgx.Identifier{bn.driver.Schema()}.Sanitize(), size)
}

// readAllRow holds the columns of the driver's read-all statement: a head
// row (the snapshot's horizon, a flag, the fence and the page's row
// count), then the events, each with NULL head columns.
type readAllRow struct {
	horizon, fence, rows pgtype.Int8
	blocked              pgtype.Bool
	txID, seq, version   pgtype.Int8
	stream, typ          pgtype.Text
	id                   pgtype.UUID
	ct                   pgtype.Int2
	data, meta           []byte
	at                   pgtype.Timestamptz
	tags                 []string
	mct                  pgtype.Int2
}

func (r *readAllRow) targets() []any {
	return []any{&r.horizon, &r.blocked, &r.fence, &r.rows, &r.txID, &r.seq, &r.stream, &r.version, &r.id, &r.typ, &r.ct, &r.data, &r.meta, &r.at, &r.tags, &r.mct}
}

func (bn *bench) rawReadAll(ctx context.Context) (int, error) {
	var r readAllRow
	size := bn.driver.PageSize()
	n := 0
	var lastTx, lastSeq int64
	for {
		rows, _ := bn.pool.Query(ctx, postgres.ReadAllSQL(bn.driver), lastTx, lastSeq, size, eventstore.DefaultMaxPageBytes)
		page := 0
		_, err := pgx.ForEachRow(rows, r.targets(), func() error {
			if r.txID.Valid {
				page++
				lastTx, lastSeq = r.txID.Int64, r.seq.Int64
			}
			return nil
		})
		n += page
		if err != nil || page < size {
			return n, err
		}
	}
}

func (bn *bench) minimalReadAll(ctx context.Context) (int, error) {
	return bn.minimalReadAllOf(512)(ctx)
}

// minimalReadAllOf reads the minimal table's log in pages of size.
func (bn *bench) minimalReadAllOf(size int64) conformance.ReadAllFunc {
	query := bn.minimalSQL(minimalReadAllSQL, size)
	return func(ctx context.Context) (int, error) {
		var c columns
		return bn.pagesOf(ctx, size, query,
			[]any{&c.seq, &c.stream, &c.version, &c.id, &c.typ, &c.data, &c.meta, &c.at},
			func(first bool) []any {
				if first {
					return []any{0}
				}
				return []any{c.seq}
			})
	}
}

// twin is one side of a benchmark.
type twin struct {
	name       string
	append     func(bn *bench) conformance.AppendFunc
	readStream func(bn *bench) conformance.ReadStreamFunc
	readAll    func(bn *bench) conformance.ReadAllFunc
}

var twins = []twin{
	{"store",
		func(bn *bench) conformance.AppendFunc { return conformance.StoreAppend(bn.store) },
		func(bn *bench) conformance.ReadStreamFunc { return conformance.StoreReadStream(bn.store) },
		func(bn *bench) conformance.ReadAllFunc { return conformance.StoreReadAll(bn.store) }},
	{"raw",
		func(bn *bench) conformance.AppendFunc { return bn.rawAppend },
		func(bn *bench) conformance.ReadStreamFunc { return bn.rawReadStream },
		func(bn *bench) conformance.ReadAllFunc { return bn.rawReadAll }},
	{"minimal",
		func(bn *bench) conformance.AppendFunc { return bn.minimalAppend },
		func(bn *bench) conformance.ReadStreamFunc { return bn.minimalReadStream },
		func(bn *bench) conformance.ReadAllFunc { return bn.minimalReadAll }},
}

// warmUp appends batches of 1 and 100 events from 8 clients (every pooled
// connection) and reads them back, outside the timed loop.
func warmUp(b *testing.B, bn *bench, tw twin) {
	b.Helper()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			stream := conformance.BenchStream(fmt.Sprintf("Warm%d", c))
			v := uint64(0)
			for i := range 8 {
				n := 1 + 99*(i%2)
				if err := tw.append(bn)(b.Context(), stream, v, conformance.BenchEvents(n)); err != nil {
					b.Error(err)
					return
				}
				v += uint64(n)
				if _, err := tw.readStream(bn)(b.Context(), stream); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for range 6 {
		if _, err := tw.readAll(bn)(b.Context()); err != nil {
			b.Error(err)
		}
	}
	if b.Failed() {
		b.FailNow()
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct{ batch, clients int }{{1, 1}, {100, 1}, {1, 8}} {
		name := fmt.Sprintf("batch=%d", c.batch)
		if c.clients > 1 {
			name += fmt.Sprintf("/clients=%d", c.clients)
		}
		for _, tw := range twins {
			b.Run(name+"/"+tw.name, func(b *testing.B) {
				bn := newBench(b)
				warmUp(b, bn, tw)
				conformance.RunAppend(b, c.batch, c.clients, tw.append(bn))
			})
		}
	}
}

func BenchmarkReadStream(b *testing.B) {
	for _, tw := range twins {
		b.Run("events=1000/"+tw.name, func(b *testing.B) {
			bn := newBench(b)
			warmUp(b, bn, tw)
			conformance.RunReadStream(b, 1000, 1000, tw.append(bn), tw.readStream(bn))
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	for _, tw := range twins {
		b.Run("events=100000/"+tw.name, func(b *testing.B) {
			bn := newBench(b)
			// No warm-up events here: the log must hold exactly the seed.
			conformance.RunReadAll(b, 100_000, 1000, tw.append(bn), func(ctx context.Context) (int, error) {
				return tw.readAll(bn)(ctx)
			})
		})
	}
}

// BenchmarkCatchUp: a subscription's catch-up from the start of a
// 100,000-event log against ReadAll of the same log, in the same run
// (conformance.BenchmarkCatchUp reports both and their ratio).
func BenchmarkCatchUp(b *testing.B) {
	b.Run("events=100000", func(b *testing.B) {
		bn := newBench(b)
		conformance.BenchmarkCatchUp(b, bn.store, 100_000)
	})
}

// BenchmarkFilteredCatchUp: a subscription to a category that is 0.1 % of a
// 200,000-event log catches up from the start (…/store). Its twin
// (…/minimal) reads the same category of the minimal table, seeded alike,
// in keyset pages of 512 through an index on the category and the position:
// the cost of reading the matches alone. Both report the matches delivered
// per second and the log events passed over per second. Before schema 3
// (no index on the category, and filtered reads paged through the log with
// ReadAll) each page of the store walked the log from its position; the
// figures are in docs/postgres.md ("Filtered reads").
func BenchmarkFilteredCatchUp(b *testing.B) {
	const n, share = 200_000, 1000
	b.Run("events=200000/store", func(b *testing.B) {
		bn := newBench(b)
		conformance.BenchmarkFilteredCatchUp(b, bn.store, n, share)
	})
	b.Run("events=200000/minimal", func(b *testing.B) {
		bn := newBench(b)
		ctx := b.Context()
		// The shape of conformance.BenchmarkFilteredCatchUp's log: runs of
		// share-1 events of a Common stream, then one event of Rare-1.
		if _, err := bn.pool.Exec(ctx, bn.sql(`INSERT INTO %[1]s.minimal_events (stream_id, version, event_id, event_type, data, metadata, recorded_at)
			SELECT CASE WHEN i %% $2 = $2 - 1 THEN 'Rare-1' ELSE 'Common-' || i / $2 END,
				CASE WHEN i %% $2 = $2 - 1 THEN i / $2 + 1 ELSE i %% $2 + 1 END,
				gen_random_uuid(), $3, $4, '', now()
			FROM generate_series(0, $1 - 1) i ORDER BY i`), n, share, conformance.BenchEventType, conformance.BenchData); err != nil {
			b.Fatal(err)
		}
		for _, stmt := range []string{
			`CREATE INDEX ON %[1]s.minimal_events (split_part(stream_id, '-', 1), pos)`,
			`VACUUM ANALYZE %[1]s.minimal_events`,
		} {
			if _, err := bn.pool.Exec(ctx, bn.sql(stmt)); err != nil {
				b.Fatal(err)
			}
		}
		// Unprepared (QueryExecModeExec), so each page gets a plan for its
		// values: prepared, the statement settled on a generic plan after
		// five runs that walks the log by position and checks each event
		// (20 ms instead of 1.2 ms), the plan the driver's own statements
		// are kept from (filterPlan.keyIs).
		var c columns
		read := func() (int, error) {
			return bn.pages(ctx, bn.sql(minimalReadCategorySQL),
				[]any{&c.seq, &c.stream, &c.version, &c.id, &c.typ, &c.data, &c.meta, &c.at},
				func(first bool) []any {
					if first {
						return []any{pgx.QueryExecModeExec, "Rare", 0}
					}
					return []any{pgx.QueryExecModeExec, "Rare", c.seq}
				})
		}
		matches := n / share
		var elapsed time.Duration
		for b.Loop() {
			start := time.Now()
			got, err := read()
			elapsed += time.Since(start)
			if err != nil || got != matches {
				b.Fatalf("read %d of %d matches: %v", got, matches, err)
			}
		}
		b.ReportMetric(float64(matches*b.N)/elapsed.Seconds(), "matches/s")
		b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "log-events/s")
	})
}

// minimalReadCategorySQL is a page of one category of the minimal table.
const minimalReadCategorySQL = `SELECT pos, stream_id, version, event_id, event_type, data, metadata, recorded_at
FROM %[1]s.minimal_events WHERE split_part(stream_id, '-', 1) = $1 AND pos > $2 ORDER BY pos LIMIT 512`

// BenchmarkLive: append one event, wait until a live subscriber has handled
// it; the time includes the append's commit (a WAL flush). The store's
// subscriber is filtered on the stream's category and woken in-process. The
// twins notify after each append, as the driver's notifier does (NOTIFY in
// a transaction of its own with synchronous_commit off), and their
// subscriber LISTENs on a connection of its own and reads from the pool:
// raw with the driver's read-all statement, minimal the live stream of the
// minimal table by its (stream_id, version) index.
// "unrelated-tx/store" keeps an unrelated transaction with an ID open 100 ms
// at a time, back to back: the visibility fence used to make delivery wait
// for it; it counts only writers of the store now (docs/postgres.md).
func BenchmarkLive(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		bn := newBench(b)
		warmUp(b, bn, twins[0])
		conformance.BenchmarkLive(b, bn.store)
	})
	b.Run("raw", func(b *testing.B) {
		bn := newBench(b)
		warmUp(b, bn, twins[1])
		conformance.RunLive(b, conformance.BenchStream("Live"), bn.notifying(bn.rawAppend), bn.rawSubscribe(b))
	})
	b.Run("minimal", func(b *testing.B) {
		bn := newBench(b)
		warmUp(b, bn, twins[2])
		stream := conformance.BenchStream("Live")
		conformance.RunLive(b, stream, bn.notifying(bn.minimalAppend), bn.minimalSubscribe(b, stream))
	})
	b.Run("unrelated-tx/store", func(b *testing.B) {
		bn := newBench(b)
		warmUp(b, bn, twins[0])
		ctx, cancel := context.WithCancel(b.Context())
		var wg sync.WaitGroup
		b.Cleanup(func() { cancel(); wg.Wait() })
		wg.Go(func() {
			for ctx.Err() == nil {
				tx, err := bn.pool.Begin(ctx)
				if err != nil {
					return
				}
				tx.Exec(ctx, "SELECT pg_current_xact_id()")
				t := time.NewTimer(100 * time.Millisecond)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				tx.Commit(context.Background())
			}
		})
		conformance.BenchmarkLive(b, bn.store)
	})
}

// BenchmarkLiveWithWriters: live delivery while 7 other writers append as
// fast as they can, all on the same pool (postgres.DefaultMaxConns
// connections; pgxpool's default of 4 before 2026-12-03). The minimal twin is BenchmarkLive's: all 8 of its
// writers append to the minimal table and notify; its subscriber reads only
// the live stream.
func BenchmarkLiveWithWriters(b *testing.B) {
	b.Run("writers=8/store", func(b *testing.B) {
		bn := newBench(b)
		warmUp(b, bn, twins[0])
		conformance.BenchmarkLiveWithWriters(b, bn.store, 8)
	})
	b.Run("writers=8/minimal", func(b *testing.B) {
		bn := newBench(b)
		warmUp(b, bn, twins[2])
		stream := conformance.BenchStream("Live")
		appendFn := bn.notifying(bn.minimalAppend)
		conformance.RunLiveWithWriters(b, 8, stream, appendFn, appendFn, bn.minimalSubscribe(b, stream))
	})
}

// channel is the twins' notification channel, one per schema.
func (bn *bench) channel() string { return bn.driver.Schema() + "_raw" }

// notifying returns appendFn followed by a notification on the twins'
// channel, sent in a transaction of its own with synchronous_commit off (so
// it does not wait for a second WAL flush), as the driver's notifier sends
// its own.
func (bn *bench) notifying(appendFn conformance.AppendFunc) conformance.AppendFunc {
	return func(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
		if err := appendFn(ctx, stream, expected, events); err != nil {
			return err
		}
		_, err := bn.pool.Exec(ctx, "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')", bn.channel())
		return err
	}
}

// listen starts a twin's subscriber: it LISTENs on the twins' channel on a
// connection of its own and after each notification (those arriving while
// it reads are folded into one) calls read, which reads the new events and
// returns how many; it sends one value per event on the returned channel,
// which it closes when it stops.
func (bn *bench) listen(b *testing.B, read func(ctx context.Context) (int, error)) <-chan struct{} {
	conn, err := pgx.ConnectConfig(b.Context(), bn.pool.Config().ConnConfig)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(b.Context(), "LISTEN "+pgx.Identifier{bn.channel()}.Sanitize()); err != nil {
		conn.Close(context.Background())
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wake := make(chan struct{}, 1)
	delivered := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel() // the reader stops too
		defer conn.Close(context.Background())
		for {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	wg.Go(func() {
		defer close(delivered)
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			n, err := read(ctx)
			if err != nil {
				return
			}
			for range n {
				select {
				case delivered <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	b.Cleanup(func() { cancel(); wg.Wait() })
	return delivered
}

// rawSubscribe starts the raw twin's subscriber, which reads the events
// after the last one it saw with the driver's read-all statement (again at
// once while the visibility fence holds them back).
func (bn *bench) rawSubscribe(b *testing.B) <-chan struct{} {
	// Start after the warm-up's events.
	var lastTx, lastSeq int64
	if err := bn.pool.QueryRow(b.Context(), bn.sql(`SELECT tx_id, seq FROM %s.events ORDER BY tx_id DESC, seq DESC LIMIT 1`)).Scan(&lastTx, &lastSeq); err != nil {
		b.Fatal(err)
	}
	var r readAllRow
	return bn.listen(b, func(ctx context.Context) (int, error) {
		total := 0
		for {
			rows, _ := bn.pool.Query(ctx, postgres.ReadAllSQL(bn.driver), lastTx, lastSeq, 512, eventstore.DefaultMaxPageBytes)
			n, blocked := 0, false
			_, err := pgx.ForEachRow(rows, r.targets(), func() error {
				if r.horizon.Valid {
					blocked = r.blocked.Bool
				}
				if r.txID.Valid {
					n++
					lastTx, lastSeq = r.txID.Int64, r.seq.Int64
				}
				return nil
			})
			total += n
			if err != nil {
				return total, err
			}
			if n < 512 && (n > 0 || !blocked) {
				return total, nil
			}
		}
	})
}

// minimalSubscribe starts the minimal twin's subscriber, which reads
// stream's events of the minimal table after the last version it saw: the
// twin of a subscription filtered on the stream's category, which reads
// neither the other writers' events nor, as a read of the table by position
// would, skips one that commits after a later position.
func (bn *bench) minimalSubscribe(b *testing.B, stream string) <-chan struct{} {
	next := int64(1)
	var c columns
	return bn.listen(b, func(ctx context.Context) (int, error) {
		n, err := bn.pages(ctx, bn.sql(minimalReadStreamSQL),
			[]any{&c.seq, &c.stream, &c.version, &c.id, &c.typ, &c.data, &c.meta, &c.at},
			func(first bool) []any {
				if first {
					return []any{stream, next}
				}
				return []any{stream, c.version + 1}
			})
		if n > 0 {
			next = c.version + 1
		}
		return n, err
	})
}

// BenchmarkNotify settles where and when appends send their notification:
// inside the append's transaction NOTIFY holds a database-wide lock until
// the commit is flushed, serializing the commits of concurrent appends;
// after the commit, from the driver's notifier, it does not, and it is
// sent only while some driver listens on the store's channel
// (after-commit: nobody listens, so the notifier only looks, at most every
// 50 ms; after-commit-listened: another driver of the schema watches, so
// it sends a NOTIFY at most every 5 ms). "never" is the cost of not
// notifying at all. The sides take turns in rounds of 100 appends per
// client (conformance.RunInterleaved) and report their rate against
// never's. The figures are in docs/postgres.md ("Benchmarks").
func BenchmarkNotify(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var cs []conformance.Contender
			for _, side := range []struct{ name, mode string }{
				{"never", "never"}, {"in-tx", "in-tx"}, {"after-commit", "after-commit"}, {"after-commit-listened", "after-commit"},
			} {
				bn := newBench(b)
				if side.name == "after-commit-listened" {
					other := newDriver(b, bn.pool, postgres.Options{Schema: bn.driver.Schema()})
					if _, err := other.Watch(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				warmUp(b, bn, twins[0])
				appends := conformance.ConcurrentAppends(conformance.StoreAppend(bn.store), 1, clients, 100/clients)
				cs = append(cs, conformance.Contender{Name: side.name, Round: func(ctx context.Context) (int, error) {
					defer postgres.SetNotifyMode(side.mode)()
					return appends(ctx)
				}})
			}
			rates := conformance.RunInterleaved(b, 3, cs)
			for i := 1; i < len(cs); i++ {
				b.ReportMetric(conformance.MedianPercent(rates, i, 0), cs[i].Name+"/never-%")
			}
		})
	}
}

// BenchmarkInterleaved measures the three twins in one benchmark, taking
// turns: each iteration runs one round of the workload on every twin,
// starting with a different twin each time, and times each twin's round on
// its own. On a shared machine whose fsync rate drifts by 2–3× from one
// minute to the next, sibling sub-benchmarks run a minute apart compare the
// weather as much as the code; rounds of ~0.1 s taken in turn see the same
// weather. It reports each twin's events/s over all its rounds, and the
// median over rounds of the store's throughput as a percentage of the raw
// and the minimal twin's (store/raw-%, store/minimal-%): those are the
// figures to quote.
func BenchmarkInterleaved(b *testing.B) {
	type round func(ctx context.Context, bn *bench, tw twin) (int, error)
	appendRound := func(batch, clients int) round {
		appends := min(100, max(1, 1000/batch)) / clients
		return func(ctx context.Context, bn *bench, tw twin) (int, error) {
			return conformance.ConcurrentAppends(tw.append(bn), batch, clients, appends)(ctx)
		}
	}
	cases := []struct {
		name  string
		seed  int // events to seed, in streams of 1,000
		round round
	}{
		{"append/batch=1", 0, appendRound(1, 1)},
		{"append/batch=100", 0, appendRound(100, 1)},
		{"append/batch=1/clients=8", 0, appendRound(1, 8)},
		{"readstream/events=1000", 1000, func(ctx context.Context, bn *bench, tw twin) (int, error) {
			total := 0
			for range 20 { // a round of one read would be too short to time
				n, err := tw.readStream(bn)(ctx, bn.seeded)
				if err != nil {
					return total, err
				}
				total += n
			}
			return total, nil
		}},
		{"readall/events=100000", 100_000, func(ctx context.Context, bn *bench, tw twin) (int, error) {
			return tw.readAll(bn)(ctx)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			benches := make([]*bench, len(twins))
			for i, tw := range twins {
				benches[i] = newBench(b)
				if c.seed == 0 {
					warmUp(b, benches[i], tw)
				}
				for done := 0; done < c.seed; done += 1000 {
					stream := conformance.BenchStream("Bench")
					for v := 0; v < 1000; v += 500 {
						if err := tw.append(benches[i])(b.Context(), stream, uint64(v), conformance.BenchEvents(500)); err != nil {
							b.Fatal(err)
						}
					}
					benches[i].seeded = stream
				}
			}
			cs := make([]conformance.Contender, len(twins))
			for i, tw := range twins {
				cs[i] = conformance.Contender{Name: tw.name, Round: func(ctx context.Context) (int, error) { return c.round(ctx, benches[i], tw) }}
			}
			rates := conformance.RunInterleaved(b, 6, cs) // plans settle and caches fill
			b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "store/raw-%")
			b.ReportMetric(conformance.MedianPercent(rates, 0, 2), "store/minimal-%")
		})
	}
}

// BenchmarkPageSize settles the default page size (postgres.DefaultPageSize,
// the Limit the Store asks for per statement): stores reading with pages of
// 512 (the Store's default), 1,024, 2,048, 4,096 and 8,192 events, and the
// minimal twin with pages of 512 and 4,096, take turns in rounds (as in
// BenchmarkInterleaved) reading one 1,000-event stream 20 times, and a log
// of 100,000 events. The stores share one schema and its events. It reports
// store-N/minimal-M-%: the median over rounds of the store's rate with
// pages of N against the minimal twin's with pages of M. Findings
// (docs/postgres.md, "Page size"): while a page's slice grew row by row, no
// page size made a difference beyond the noise; since log pages are
// allocated at their size, 4,096 read the log faster than 1,024 in five
// runs of five (2–11 points against the minimal twin) and 8,192 faster
// still in four, so the default is 4,096, kept below 8,192 for the memory
// a reader holds.
func BenchmarkPageSize(b *testing.B) {
	sizes := []int{512, 1024, 2048, 4096, 8192}
	minimalSizes := []int64{512, 4096}
	for _, c := range []struct {
		name   string
		events int
	}{{"readstream/events=1000", 1000}, {"readall/events=100000", 100_000}} {
		b.Run(c.name, func(b *testing.B) {
			bn := newBench(b)
			var stream, minimalStream string
			for done := 0; done < c.events; done += 1000 {
				stream, minimalStream = conformance.BenchStream("Bench"), conformance.BenchStream("Bench")
				for v := 0; v < 1000; v += 500 {
					if _, err := bn.store.Append(b.Context(), stream, eventstore.Exact(uint64(v)), conformance.BenchEvents(500)...); err != nil {
						b.Fatal(err)
					}
					if err := bn.minimalAppend(b.Context(), minimalStream, uint64(v), conformance.BenchEvents(500)); err != nil {
						b.Fatal(err)
					}
				}
			}
			round := func(readStream conformance.ReadStreamFunc, readAll conformance.ReadAllFunc, stream string) func(ctx context.Context) (int, error) {
				if c.events > 1000 {
					return readAll
				}
				return func(ctx context.Context) (int, error) {
					total := 0
					for range 20 { // a round of one read would be too short to time
						n, err := readStream(ctx, stream)
						if err != nil {
							return total, err
						}
						total += n
					}
					return total, nil
				}
			}
			var cs []conformance.Contender
			for _, n := range sizes {
				d := newDriver(b, bn.pool, postgres.Options{Schema: bn.driver.Schema(), PageSize: n})
				s := eventstore.New(d, eventstore.Options{})
				b.Cleanup(func() { s.Close() })
				cs = append(cs, conformance.Contender{Name: fmt.Sprintf("store-%d", n),
					Round: round(conformance.StoreReadStream(s), conformance.StoreReadAll(s), stream)})
			}
			for _, n := range minimalSizes {
				cs = append(cs, conformance.Contender{Name: fmt.Sprintf("minimal-%d", n),
					Round: round(bn.minimalReadStreamOf(n), bn.minimalReadAllOf(n), minimalStream)})
			}
			rates := conformance.RunInterleaved(b, 3, cs) // plans settle and caches fill
			for i, n := range sizes {
				for j, m := range minimalSizes {
					b.ReportMetric(conformance.MedianPercent(rates, i, len(sizes)+j), fmt.Sprintf("store-%d/minimal-%d-%%", n, m))
				}
			}
		})
	}
}

// BenchmarkPoolSize settles the default pool size (postgres.DefaultMaxConns):
// 8 clients append single events to streams of their own, through the store
// and through the minimal twin, each on a pool of 4 (pgxpool's default on
// 2 cores), 8 and 16 connections. The six sides take turns in rounds of
// 100 appends per client, as in BenchmarkInterleaved, and each reports its
// events/s; store-N/minimal-% is the median over rounds of the store's rate
// on a pool of N against the minimal twin's on the same pool size, and
// store-N/minimal-8-% against the minimal twin with a connection per
// client. The figures are in docs/postgres.md ("Pool size").
func BenchmarkPoolSize(b *testing.B) {
	const clients = 8
	sizes := []int32{4, 8, 16}
	var cs []conformance.Contender
	for _, n := range sizes {
		for _, tw := range []twin{twins[0], twins[2]} {
			bn := newBenchOn(b, benchPool(b, n))
			warmUp(b, bn, tw)
			cs = append(cs, conformance.Contender{Name: fmt.Sprintf("%s-%d", tw.name, n),
				Round: conformance.ConcurrentAppends(tw.append(bn), 1, clients, 100)})
		}
	}
	rates := conformance.RunInterleaved(b, 3, cs) // plans settle, every connection opens
	for i, n := range sizes {
		b.ReportMetric(conformance.MedianPercent(rates, 2*i, 2*i+1), fmt.Sprintf("store-%d/minimal-%%", n))
		b.ReportMetric(conformance.MedianPercent(rates, 2*i, 3), fmt.Sprintf("store-%d/minimal-8-%%", n)) // cs[3] is minimal-8
	}
}

// BenchmarkGroupCommit settles the grouping of concurrent appends
// (postgres.SetGroupInflight: how many append statements run before further
// appends wait and go together in one): group-0 never groups, group-1 lets
// one run and queued appends launch one more group when they waited twice as
// long as the fastest recent statement took (the default), group-1-fixed
// launches only after 50 ms (one statement in flight, as before
// 2026-12-03), group-2 and group-4 let 2 and 4 statements run before
// appends wait (with the same adaptive launch); the minimal twin for scale. 1 and 8 clients, all on pools of
// postgres.DefaultMaxConns, taking turns in rounds as BenchmarkPoolSize
// does. Findings (docs/postgres.md, "Group commit"): on a quiet machine
// one statement in flight lifts 8 clients from 73–84% to 91–104% of the
// minimal twin and leaves 1 client as it was; with the CPUs busy it lost to
// no grouping, which launching more groups corrects.
func BenchmarkGroupCommit(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var cs []conformance.Contender
			for _, side := range []struct {
				name   string
				group  int
				launch time.Duration
			}{{"minimal", 0, 0}, {"group-0", 0, 0}, {"group-1", 1, 0}, {"group-1-fixed", 1, 50 * time.Millisecond},
				{"group-2", 2, 0}, {"group-4", 4, 0}} {
				bn := newBench(b)
				tw := twins[0]
				if side.name == "minimal" {
					tw = twins[2]
				}
				warmUp(b, bn, tw)
				appends := conformance.ConcurrentAppends(tw.append(bn), 1, clients, 100)
				cs = append(cs, conformance.Contender{Name: side.name, Round: func(ctx context.Context) (int, error) {
					defer postgres.SetGroupInflight(side.group)()
					defer postgres.SetGroupLaunch(side.launch)()
					return appends(ctx)
				}})
			}
			rates := conformance.RunInterleaved(b, 3, cs)
			for i := 1; i < len(cs); i++ {
				b.ReportMetric(conformance.MedianPercent(rates, i, 0), cs[i].Name+"/minimal-%")
			}
		})
	}
}

// BenchmarkIdleSubscriptions: 100 idle durable filtered subscriptions while
// another category is appended, against none in the same run. Besides the
// test process's CPU it reports the queries the pool and the listener sent
// (queries/append) and the CPU time of the server backends that ran them
// (server-cpu-us/append, read from /proc: reported only when the server
// runs on this machine).
func BenchmarkIdleSubscriptions(b *testing.B) {
	for _, subs := range []int{0, 100} {
		b.Run(fmt.Sprintf("subs=%d/store", subs), func(b *testing.B) {
			cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(b))
			if err != nil {
				b.Fatal(err)
			}
			tr := &serverTracer{started: map[uint32]float64{}}
			cfg.ConnConfig.Tracer = tr // the listener's connection copies it
			pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			s := eventstore.New(newDriver(b, pool, postgres.Options{}), eventstore.Options{})
			b.Cleanup(func() { s.Close() })
			counters := []conformance.Counter{{Unit: "queries/append", Read: tr.queries}}
			if tr.local(b, pool) {
				counters = append(counters, conformance.Counter{Unit: "server-cpu-us/append", Read: tr.cpu})
			}
			conformance.RunIdleSubscriptions(b, s, subs, counters...)
		})
	}
}

// serverTracer is a pgx query tracer that counts the queries sent and
// notes the server backend of each connection that sent one, with its CPU
// time when first seen.
type serverTracer struct {
	n atomic.Int64

	mu      sync.Mutex         // protects started
	started map[uint32]float64 // backend PID: CPU µs when first seen
}

func (t *serverTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	t.n.Add(1)
	pid := conn.PgConn().PID()
	t.mu.Lock()
	if _, ok := t.started[pid]; !ok {
		t.started[pid] = backendCPU(pid)
	}
	t.mu.Unlock()
	return ctx
}

func (t *serverTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t *serverTracer) queries() float64 { return float64(t.n.Load()) }

// cpu is the CPU time in µs the backends seen have used since first seen.
func (t *serverTracer) cpu() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	total := 0.0
	for pid, start := range t.started {
		if now := backendCPU(pid); now >= 0 && start >= 0 {
			total += now - start
		}
	}
	return total
}

// local reports whether the server's backends are processes of this
// machine: the backend PID of a pool connection is a process named
// postgres here.
func (t *serverTracer) local(b *testing.B, pool *pgxpool.Pool) bool {
	var pid uint32
	if err := pool.QueryRow(b.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(comm)) == "postgres"
}

// backendCPU returns the CPU time in µs process pid has used, from
// /proc/PID/schedstat (in ns), or -1 when it cannot be read.
func backendCPU(pid uint32) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	ns, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return ns / 1e3
}

// BenchmarkCheckpoint compares a plain SaveCheckpoint (one statement) with
// a projection's checkpoint transaction (BEGIN, the compare-and-set,
// COMMIT): with no handler, and with a handler that upserts one row of a
// read model through the pgx.Tx, as a projection does per stream of a
// batch. …/raw-upsert is that upsert alone, in its own implicit
// transaction, for scale.
func BenchmarkCheckpoint(b *testing.B) {
	bn := newBench(b)
	ctx := b.Context()
	table := pgx.Identifier{bn.driver.Schema(), "bench_folds"}.Sanitize()
	if _, err := bn.pool.Exec(ctx, `CREATE TABLE `+table+` (stream text PRIMARY KEY, n bigint NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	upsertSQL := `INSERT INTO ` + table + ` AS f (stream, n) VALUES ($1, 1) ON CONFLICT (stream) DO UPDATE SET n = f.n + 1`
	upsert := func(tx driver.Tx) error {
		var ptx pgx.Tx
		tx.As(&ptx)
		_, err := ptx.Exec(ctx, upsertSQL, "Order-1")
		return err
	}
	b.Run("save", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := bn.driver.SaveCheckpoint(ctx, "save", driver.Position{Commit: uint64(i + 1)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name string
		fn   func(driver.Tx) error
	}{{"tx", nil}, {"tx-upsert", upsert}} {
		b.Run(c.name, func(b *testing.B) {
			name := randomSchema() // a new checkpoint for each run
			prev, has := driver.Position{}, false
			for i := 0; b.Loop(); i++ {
				next := driver.Position{Commit: uint64(i + 1)}
				if err := bn.driver.CheckpointTx(ctx, name, prev, has, next, c.fn); err != nil {
					b.Fatal(err)
				}
				prev, has = next, true
			}
		})
	}
	b.Run("raw-upsert", func(b *testing.B) {
		for b.Loop() {
			if _, err := bn.pool.Exec(ctx, upsertSQL, "Order-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendServerCost is the server side of an append, the store's
// statement against the minimal twin's, on a log of 200,000 events (2,000
// streams of 100, an append of 10 events each): what each statement reads
// and writes, from EXPLAIN (ANALYZE, BUFFERS, WAL), which counts blocks
// and WAL records, not time, so it does not depend on the machine's load.
// A CHECKPOINT comes first when the role may run it, so full-page images
// (fpi) are counted as after any checkpoint. Each iteration appends, on
// each side, one event to a stream no append touched yet (distinct), one
// event to a stream appended to just before (same), and 100 events to a
// stream of its own (batch=100). It reports per append and side: buffers
// (shared blocks hit or read), WAL records, WAL full-page images, WAL
// bytes, and the statement's execution time in µs (without the commit).
// The figures are in docs/benchmarks.md ("PostgreSQL append cost").
func BenchmarkAppendServerCost(b *testing.B) {
	bn := newBench(b)
	ctx := b.Context()
	for _, stmt := range []string{
		`INSERT INTO %[1]s.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, starts_append)
			SELECT 1 + i / 10, 'Bench-' || (i / 10) %% 2000, (i / 20000) * 10 + i %% 10 + 1, gen_random_uuid(), 'OrderPlaced', 1, '\x7b7d', '', now(), i %% 10 = 0
			FROM generate_series(0, 199999) i`,
		`INSERT INTO %[1]s.minimal_events (stream_id, version, event_id, event_type, data, metadata, recorded_at)
			SELECT 'Bench-' || (i / 10) %% 2000, (i / 20000) * 10 + i %% 10 + 1, gen_random_uuid(), 'OrderPlaced', '\x7b7d', '', now()
			FROM generate_series(0, 199999) i`,
		`VACUUM ANALYZE %[1]s.events`,
		`VACUUM ANALYZE %[1]s.minimal_events`,
	} {
		if _, err := bn.pool.Exec(ctx, bn.sql(stmt)); err != nil {
			b.Fatal(err)
		}
	}
	bn.pool.Exec(ctx, `CHECKPOINT`) // needs pg_checkpoint or superuser; without it fpi counts less
	type cost struct{ buffers, records, fpi, bytes, us float64 }
	explain := func(query string, args ...any) cost {
		var out []struct {
			Plan struct {
				Hit     float64 `json:"Shared Hit Blocks"`
				Read    float64 `json:"Shared Read Blocks"`
				Records float64 `json:"WAL Records"`
				FPI     float64 `json:"WAL FPI"`
				Bytes   float64 `json:"WAL Bytes"`
			}
			Execution float64 `json:"Execution Time"`
		}
		if err := bn.pool.QueryRow(ctx, `EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) `+query, args...).Scan(&out); err != nil {
			b.Fatal(err)
		}
		p := out[0].Plan
		return cost{p.Hit + p.Read, p.Records, p.FPI, p.Bytes, out[0].Execution * 1000}
	}
	sides := []struct {
		name   string
		append func(stream string, expected int64, events []eventstore.Event) cost
	}{
		{"store", func(stream string, expected int64, events []eventstore.Event) cost {
			ids, types, cts, data, meta := eventArrays(events)
			return explain(postgres.AppendSQL(bn.driver), stream, 0, expected, ids[0], ids, types, cts, data, meta, time.Now())
		}},
		{"minimal", func(stream string, expected int64, events []eventstore.Event) cost {
			ids, types, _, data, meta := eventArrays(events)
			return explain(bn.sql(minimalAppendSQL), stream, ids, types, data, meta, time.Now(), expected)
		}},
	}
	total := map[string]*cost{}
	add := func(key string, c cost) {
		t := total[key]
		if t == nil {
			t = &cost{}
			total[key] = t
		}
		t.buffers, t.records, t.fpi, t.bytes, t.us = t.buffers+c.buffers, t.records+c.records, t.fpi+c.fpi, t.bytes+c.bytes, t.us+c.us
	}
	i := 0
	for b.Loop() {
		if i == 1000 {
			b.Fatal("at most 1000 iterations: each appends to streams of its own")
		}
		for _, s := range sides {
			// Streams 0–999 for distinct appends, 1000–1999 for batches; each
			// side appends to the same streams of its own table.
			distinct := fmt.Sprintf("Bench-%d", (i*7)%1000)
			add("distinct/"+s.name, s.append(distinct, 100, conformance.BenchEvents(1)))
			add("same/"+s.name, s.append(distinct, 101, conformance.BenchEvents(1)))
			add("batch=100/"+s.name, s.append(fmt.Sprintf("Bench-%d", 1000+(i*7)%1000), 100, conformance.BenchEvents(100)))
		}
		i++
	}
	for _, c := range []struct {
		table, stream string
		want          int64
	}{
		{"events", "Bench-0", 102}, {"minimal_events", "Bench-0", 102},
		{"events", "Bench-1000", 200}, {"minimal_events", "Bench-1000", 200},
	} {
		var v int64
		if err := bn.pool.QueryRow(ctx, bn.sql(`SELECT max(version) FROM %[1]s.`+c.table+` WHERE stream_id = $1`), c.stream).Scan(&v); err != nil || v != c.want {
			b.Fatalf("%s: %s at version %d, want %d (%v): an append wrote nothing", c.table, c.stream, v, c.want, err)
		}
	}
	for key, t := range total {
		n := float64(i)
		b.ReportMetric(t.buffers/n, key+"-buffers")
		b.ReportMetric(t.records/n, key+"-wal-records")
		b.ReportMetric(t.fpi/n, key+"-wal-fpi")
		b.ReportMetric(t.bytes/n, key+"-wal-bytes")
		b.ReportMetric(t.us/n, key+"-exec-us")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAppendCPU: where an append's time goes besides the WAL flush.
// The store and its raw and minimal twins, each on a pool of its own with a
// serverTracer, take turns in rounds as in BenchmarkInterleaved (1 event, 1
// client; 100 events, 1 client; 1 event, 8 clients). Per append and side it
// reports the statements sent (queries/append: the store's include its
// notifier's), the CPU time of the server backends that ran them
// (server-cpu-us/append, read from /proc: only when the server runs on this
// machine) and of this process (client-cpu-us/append, getrusage: every
// goroutine, so the store's notifier too, give or take its last statement
// of a round), and the median per-round rate
// against the minimal twin's. CPU time does not depend on the machine's
// load the way rates do; on a machine whose CPUs are all busy it is what
// decides the rates. The figures are in docs/benchmarks.md ("PostgreSQL
// appends: round trips, CPU and the notifier").
func BenchmarkAppendCPU(b *testing.B) {
	for _, c := range []struct{ batch, clients int }{{1, 1}, {100, 1}, {1, 8}} {
		b.Run(fmt.Sprintf("batch=%d/clients=%d", c.batch, c.clients), func(b *testing.B) {
			type side struct {
				tr                *serverTracer
				client, srv, n, q float64
			}
			sides := make([]*side, len(twins))
			cs := make([]conformance.Contender, len(twins))
			local := true
			for i, tw := range twins {
				cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(b))
				if err != nil {
					b.Fatal(err)
				}
				cfg.MaxConns = postgres.DefaultMaxConns
				sd := &side{tr: &serverTracer{started: map[uint32]float64{}}}
				cfg.ConnConfig.Tracer = sd.tr
				pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(pool.Close)
				local = local && sd.tr.local(b, pool)
				bn := newBenchOn(b, pool)
				warmUp(b, bn, tw)
				sides[i] = sd
				round := conformance.ConcurrentAppends(tw.append(bn), c.batch, c.clients, min(100, max(1, 1000/c.batch))/c.clients)
				cs[i] = conformance.Contender{Name: tw.name, Round: func(ctx context.Context) (int, error) {
					c0, s0, q0 := processCPU(), sd.tr.cpu(), sd.tr.queries()
					n, err := round(ctx)
					sd.client += processCPU() - c0
					sd.srv += sd.tr.cpu() - s0
					sd.q += sd.tr.queries() - q0
					sd.n += float64(n / c.batch)
					return n, err
				}}
			}
			rates := conformance.RunInterleaved(b, 0, cs)
			for i, tw := range twins {
				sd := sides[i]
				b.ReportMetric(sd.q/sd.n, tw.name+"-queries/append")
				b.ReportMetric(sd.client/sd.n, tw.name+"-client-cpu-us/append")
				if local {
					b.ReportMetric(sd.srv/sd.n, tw.name+"-server-cpu-us/append")
				}
				b.ReportMetric(conformance.MedianPercent(rates, i, 2), tw.name+"/minimal-%")
			}
		})
	}
}

// processCPU returns the CPU time in µs this process has used.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}
