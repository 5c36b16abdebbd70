package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Every store benchmark has twins on the same server in the same run:
//
//   - …/raw: plain pgx sending the driver's own SQL (the append statement,
//     the keyset-paged reads of 512 rows, the Store's page size) and scanning
//     the rows, without the Store and the driver around it: what the library
//     adds to the SQL.
//   - …/minimal: plain pgx on a minimal table (a bigserial position, the
//     (stream_id, version) constraint, no event-ID index, no visibility
//     fence): what the design costs over the simplest event table, which skips
//     events under concurrent writers.
//
// Each b.Loop iteration is a fixed amount of work, so `-benchtime 1x` (make
// bench) still measures something; throughput is reported in events/s.

var benchData = []byte(`{"orderId":"0f8fad5b-d9cb-469f-a165-70867728950e","total":4200,"currency":"EUR"}`)

// minimalSchema is the minimal table of the raw twins.
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
WHERE $7::bigint < 0 OR v.v = $7
ORDER BY e.ord`

const minimalReadStreamSQL = `SELECT pos, stream_id, version, event_id, event_type, data, metadata, recorded_at
FROM %[1]s.minimal_events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT 512`

const minimalReadAllSQL = `SELECT pos, stream_id, version, event_id, event_type, data, metadata, recorded_at
FROM %[1]s.minimal_events WHERE pos > $1 ORDER BY pos LIMIT 512`

// bench is a store and a minimal table in a fresh schema of the test server.
type bench struct {
	pool   *pgxpool.Pool
	store  *eventstore.Store
	driver *postgres.Driver
	schema string
	sql    func(string) string
}

func newBench(b *testing.B) *bench {
	b.Helper()
	pool := newPool(b)
	d := newDriver(b, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	b.Cleanup(func() { s.Close() })
	q := pgx.Identifier{d.Schema()}.Sanitize()
	bn := &bench{pool: pool, store: s, driver: d, schema: d.Schema(), sql: func(f string) string { return fmt.Sprintf(f, q) }}
	if _, err := pool.Exec(b.Context(), bn.sql(minimalSchema)); err != nil {
		b.Fatal(err)
	}
	return bn
}

func benchEvents(n int) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent("OrderPlaced", benchData)
	}
	return evs
}

// rawAppend runs the driver's append statement for n events through plain
// pgx; expected < 0 means any.
func (bn *bench) rawAppend(ctx context.Context, stream string, n int, expected int64) error {
	ids := make([][16]byte, n)
	types := make([]string, n)
	cts := make([]int16, n)
	data := make([][]byte, n)
	meta := make([][]byte, n)
	for i := range n {
		ids[i], types[i], data[i], meta[i] = uuid.New(), "OrderPlaced", benchData, []byte{}
	}
	kind := 0
	if expected < 0 {
		kind, expected = 1, 0
	}
	var current int64
	var dup, txID, seq, version *int64
	err := bn.pool.QueryRow(ctx, postgres.AppendSQL(bn.driver), stream, kind, expected, ids[0], ids, types, cts, data, meta, time.Now()).
		Scan(&current, &dup, &txID, &seq, &version)
	if err == nil && (version == nil || *version != current+int64(n)) {
		err = fmt.Errorf("raw append did not write")
	}
	return err
}

// minimalAppend appends n events to the minimal table; expected < 0 means any.
func (bn *bench) minimalAppend(ctx context.Context, stream string, n int, expected int64) error {
	ids := make([]uuid.UUID, n)
	types := make([]string, n)
	data := make([][]byte, n)
	meta := make([][]byte, n)
	for i := range n {
		ids[i], types[i], data[i], meta[i] = uuid.New(), "OrderPlaced", benchData, []byte{}
	}
	tag, err := bn.pool.Exec(ctx, bn.sql(minimalAppendSQL), stream, ids, types, data, meta, time.Now(), expected)
	if err == nil && tag.RowsAffected() != int64(n) {
		err = fmt.Errorf("raw append wrote %d of %d", tag.RowsAffected(), n)
	}
	return err
}

func report(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// appender appends n events to stream at version expected (< 0: any).
type appender func(ctx context.Context, stream string, n int, expected int64) error

func (bn *bench) appenders() []struct {
	name string
	fn   appender
} {
	return []struct {
		name string
		fn   appender
	}{
		{"store", func(ctx context.Context, stream string, n int, expected int64) error {
			exp := eventstore.Any
			if expected >= 0 {
				exp = eventstore.Exact(uint64(expected))
			}
			_, err := bn.store.Append(ctx, stream, exp, benchEvents(n)...)
			return err
		}},
		{"raw", bn.rawAppend},
		{"minimal", bn.minimalAppend},
	}
}

// warmUp runs appends of 1 and 100 events on every pooled connection before
// the timed loop: pgx prepares each statement per connection, and PostgreSQL
// plans it afresh for its first five runs before settling on a generic plan.
func warmUp(b *testing.B, fn appender) {
	b.Helper()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			stream := fmt.Sprintf("Warm-%s-%d", uuid.NewString()[:8], c)
			for i := range 8 {
				if err := fn(b.Context(), stream, 1+99*(i%2), -1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkAppend: single events from 1 and 8 clients on distinct streams,
// and 100-event batches.
func BenchmarkAppend(b *testing.B) {
	const perClient = 200
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("single/clients=%d", clients), func(b *testing.B) {
			bn := newBench(b)
			for _, a := range bn.appenders() {
				b.Run(a.name, func(b *testing.B) {
					warmUp(b, a.fn)
					events := 0
					for b.Loop() {
						var wg sync.WaitGroup
						for c := range clients {
							stream := fmt.Sprintf("Order-%s-%d", uuid.NewString()[:8], c)
							wg.Go(func() {
								for i := range perClient {
									if err := a.fn(b.Context(), stream, 1, int64(i)); err != nil {
										b.Error(err)
										return
									}
								}
							})
						}
						wg.Wait()
						events += clients * perClient
					}
					report(b, events)
				})
			}
		})
	}
	b.Run("batch=100", func(b *testing.B) {
		bn := newBench(b)
		const batches = 20
		for _, a := range bn.appenders() {
			b.Run(a.name, func(b *testing.B) {
				warmUp(b, a.fn)
				events := 0
				for b.Loop() {
					stream := "Order-" + uuid.NewString()
					for i := range batches {
						if err := a.fn(b.Context(), stream, 100, int64(i*100)); err != nil {
							b.Fatal(err)
						}
					}
					events += batches * 100
				}
				report(b, events)
			})
		}
	})
}

// row is what the raw twins scan a row of the driver's tables into.
type row struct {
	txID, seq, version int64
	stream, typ        string
	id                 [16]byte
	ct                 int16
	data, meta         []byte
	at                 time.Time
}

// minimalRow is a row of the minimal table.
type minimalRow struct {
	pos, version int64
	stream, typ  string
	id           uuid.UUID
	data, meta   []byte
	at           time.Time
}

// pages runs a keyset-paged read of 512-row pages: next returns the
// arguments of the next page from the last row's scan targets (nil first),
// and the number of rows read.
func (bn *bench) pages(ctx context.Context, query string, scan []any, next func(first bool) []any) (int, error) {
	n := 0
	first := true
	for {
		rows, err := bn.pool.Query(ctx, query, next(first)...)
		if err != nil {
			return n, err
		}
		got, err := pgx.ForEachRow(rows, scan, func() error { return nil })
		if err != nil {
			return n, err
		}
		n += int(got.RowsAffected())
		first = false
		if got.RowsAffected() < 512 {
			return n, nil
		}
	}
}

// readers returns, per twin, a function reading everything a read returns
// and counting the events.
type reader struct {
	name string
	fn   func(ctx context.Context) (int, error)
}

// BenchmarkRead: a 1,000-event stream, and the whole log of 100,000 events.
func BenchmarkRead(b *testing.B) {
	run := func(b *testing.B, readers []reader, want, reads int) {
		for _, r := range readers {
			b.Run(r.name, func(b *testing.B) {
				// Warm up: pgx prepares each statement per connection and
				// PostgreSQL plans it afresh for its first five runs.
				for range 8 {
					if _, err := r.fn(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				events := 0
				for b.Loop() {
					for range reads {
						n, err := r.fn(b.Context())
						if err != nil || n != want {
							b.Fatalf("read %d of %d events: %v", n, want, err)
						}
						events += n
					}
				}
				report(b, events)
			})
		}
	}
	b.Run("stream=1000", func(b *testing.B) {
		bn := newBench(b)
		for i := range 10 {
			if _, err := bn.store.Append(b.Context(), "Order-1", eventstore.Exact(uint64(i*100)), benchEvents(100)...); err != nil {
				b.Fatal(err)
			}
			if err := bn.minimalAppend(b.Context(), "Order-1", 100, int64(i*100)); err != nil {
				b.Fatal(err)
			}
		}
		var r row
		var m minimalRow
		run(b, []reader{
			{"store", func(ctx context.Context) (int, error) {
				n := 0
				for _, err := range bn.store.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
					if err != nil {
						return n, err
					}
					n++
				}
				return n, nil
			}},
			{"raw", func(ctx context.Context) (int, error) {
				return bn.pages(ctx, postgres.ReadStreamSQL(bn.driver),
					[]any{&r.txID, &r.seq, &r.stream, &r.version, &r.id, &r.typ, &r.ct, &r.data, &r.meta, &r.at},
					func(first bool) []any {
						if first {
							return []any{"Order-1", 1, 512}
						}
						return []any{"Order-1", r.version + 1, 512}
					})
			}},
			{"minimal", func(ctx context.Context) (int, error) {
				return bn.pages(ctx, bn.sql(minimalReadStreamSQL),
					[]any{&m.pos, &m.stream, &m.version, &m.id, &m.typ, &m.data, &m.meta, &m.at},
					func(first bool) []any {
						if first {
							return []any{"Order-1", 1}
						}
						return []any{"Order-1", m.version + 1}
					})
			}},
		}, 1000, 20)
	})
	b.Run("all=100k", func(b *testing.B) {
		bn := newBench(b)
		const total = 100_000
		for i := range total / 1000 {
			stream := fmt.Sprintf("Order-%d", i)
			if _, err := bn.store.Append(b.Context(), stream, eventstore.NoStream, benchEvents(1000)...); err != nil {
				b.Fatal(err)
			}
			if err := bn.minimalAppend(b.Context(), stream, 1000, 0); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := bn.pool.Exec(b.Context(), "VACUUM ANALYZE "+bn.sql("%s.events")+", "+bn.sql("%s.minimal_events")); err != nil {
			b.Fatal(err)
		}
		var (
			r                  row
			horizon            int64
			blocked            bool
			txID, seq, version pgtype.Int8
			stream, typ        pgtype.Text
			id                 pgtype.UUID
			ct                 pgtype.Int2
			at                 pgtype.Timestamptz
			m                  minimalRow
		)
		run(b, []reader{
			{"store", func(ctx context.Context) (int, error) {
				n := 0
				for _, err := range bn.store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
					if err != nil {
						return n, err
					}
					n++
				}
				return n, nil
			}},
			{"raw", func(ctx context.Context) (int, error) {
				return bn.pages(ctx, postgres.ReadAllSQL(bn.driver),
					[]any{&horizon, &blocked, &txID, &seq, &stream, &version, &id, &typ, &ct, &r.data, &r.meta, &at},
					func(first bool) []any {
						if first {
							return []any{0, 0, 512}
						}
						return []any{txID.Int64, seq.Int64, 512}
					})
			}},
			{"minimal", func(ctx context.Context) (int, error) {
				return bn.pages(ctx, bn.sql(minimalReadAllSQL),
					[]any{&m.pos, &m.stream, &m.version, &m.id, &m.typ, &m.data, &m.meta, &m.at},
					func(first bool) []any {
						if first {
							return []any{0}
						}
						return []any{m.pos}
					})
			}},
		}, total, 1)
	})
}

// latencies reports the p50 and p99 of ds in milliseconds.
func latencies(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	ms := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkLiveLatency measures the time from the start of an append to its
// delivery to a live subscription, one event at a time. The raw twin runs
// the driver's append statement, NOTIFYs, and a listener reads the new rows
// with the driver's read statement.
// "store/unrelated-tx" keeps an unrelated write transaction open for 100 ms
// at a time, back to back: the visibility fence makes delivery wait for it.
func BenchmarkLiveLatency(b *testing.B) {
	const perLoop = 100
	storeRun := func(b *testing.B, bn *bench, unrelated bool) {
		received := make(chan eventstore.RecordedEvent, 1)
		ctx, cancel := context.WithCancel(b.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		wg.Go(func() {
			bn.store.Subscribe(ctx, eventstore.SubscribeOptions{}, func(_ context.Context, ev eventstore.RecordedEvent) error {
				received <- ev
				return nil
			})
		})
		if unrelated {
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
		}
		var ds []time.Duration
		stream := "Live-" + uuid.NewString()
		v := uint64(0)
		for b.Loop() {
			for range perLoop {
				start := time.Now()
				if _, err := bn.store.Append(b.Context(), stream, eventstore.Exact(v), benchEvents(1)...); err != nil {
					b.Fatal(err)
				}
				v++
				select {
				case <-received:
				case <-time.After(30 * time.Second):
					b.Fatal("no delivery in 30s")
				}
				ds = append(ds, time.Since(start))
			}
		}
		latencies(b, ds)
		report(b, len(ds))
	}
	b.Run("store", func(b *testing.B) { storeRun(b, newBench(b), false) })
	b.Run("raw", func(b *testing.B) {
		bn := newBench(b)
		conn, err := pgx.ConnectConfig(b.Context(), bn.pool.Config().ConnConfig)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(b.Context(), "LISTEN raw_bench"); err != nil {
			b.Fatal(err)
		}
		var ds []time.Duration
		stream := "Live-" + uuid.NewString()
		var (
			horizon            int64
			blocked            bool
			txID, seq, version pgtype.Int8
			sid, typ           pgtype.Text
			id                 pgtype.UUID
			ct                 pgtype.Int2
			data, meta         []byte
			at                 pgtype.Timestamptz
			lastTx, lastSeq    int64
		)
		for b.Loop() {
			for range perLoop {
				start := time.Now()
				if err := bn.rawAppend(b.Context(), stream, 1, int64(len(ds))); err != nil {
					b.Fatal(err)
				}
				if _, err := bn.pool.Exec(b.Context(), "SELECT pg_notify('raw_bench', '')"); err != nil {
					b.Fatal(err)
				}
				if _, err := conn.WaitForNotification(b.Context()); err != nil {
					b.Fatal(err)
				}
				for got := false; !got; {
					rows, _ := conn.Query(b.Context(), postgres.ReadAllSQL(bn.driver), lastTx, lastSeq, 512)
					_, err := pgx.ForEachRow(rows, []any{&horizon, &blocked, &txID, &seq, &sid, &version, &id, &typ, &ct, &data, &meta, &at}, func() error {
						if txID.Valid {
							got, lastTx, lastSeq = true, txID.Int64, seq.Int64
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				ds = append(ds, time.Since(start))
			}
		}
		latencies(b, ds)
		report(b, len(ds))
	})
	b.Run("store/unrelated-tx", func(b *testing.B) { storeRun(b, newBench(b), true) })
}

// BenchmarkNotify settles where appends send their notification: inside the
// append's transaction NOTIFY holds a database-wide lock until the commit is
// flushed, serializing the commits of concurrent appends; after the commit,
// from the driver's notifier, it does not. "never" is the cost of not
// notifying at all. The figures are in docs/postgres.md ("Benchmarks").
func BenchmarkNotify(b *testing.B) {
	for _, mode := range []string{"in-tx", "after-commit", "never"} {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/clients=%d", mode, clients), func(b *testing.B) {
				defer postgres.SetNotifyMode(mode)()
				bn := newBench(b)
				const perClient = 200
				events := 0
				for b.Loop() {
					var wg sync.WaitGroup
					for c := range clients {
						stream := fmt.Sprintf("Order-%s-%d", uuid.NewString()[:8], c)
						wg.Go(func() {
							for i := range perClient {
								if _, err := bn.store.Append(b.Context(), stream, eventstore.Exact(uint64(i)), benchEvents(1)...); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					events += clients * perClient
				}
				report(b, events)
			})
		}
	}
}
