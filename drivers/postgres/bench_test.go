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
	"github.com/jackc/pgx/v5/pgxpool"
)

// Every store benchmark has a raw twin (…/raw): plain pgx doing the same
// work on a minimal table in the same database and run — one INSERT … SELECT
// FROM unnest with the version check, keyset-paged SELECTs of 512 rows (the
// Store's page size), NOTIFY in the appending connection. Each b.Loop
// iteration is a fixed amount of work, so `-benchtime 1x` (make bench) still
// measures something; throughput is reported in events/s.

var benchData = []byte(`{"orderId":"0f8fad5b-d9cb-469f-a165-70867728950e","total":4200,"currency":"EUR"}`)

// rawSchema is the minimal table of the raw twins.
const rawSchema = `CREATE TABLE %[1]s.raw_events (
	pos         bigserial   PRIMARY KEY,
	stream_id   text        NOT NULL,
	version     bigint      NOT NULL,
	event_id    uuid        NOT NULL,
	event_type  text        NOT NULL,
	data        bytea       NOT NULL,
	metadata    bytea       NOT NULL,
	recorded_at timestamptz NOT NULL,
	UNIQUE (stream_id, version))`

const rawAppend = `INSERT INTO %[1]s.raw_events (stream_id, version, event_id, event_type, data, metadata, recorded_at)
SELECT $1, v.v + e.ord, e.id, e.typ, e.data, e.meta, $6
FROM (SELECT coalesce(max(version), 0) AS v FROM %[1]s.raw_events WHERE stream_id = $1) v,
	unnest($2::uuid[], $3::text[], $4::bytea[], $5::bytea[]) WITH ORDINALITY AS e(id, typ, data, meta, ord)
WHERE $7::bigint < 0 OR v.v = $7
ORDER BY e.ord`

const rawReadStream = `SELECT pos, stream_id, version, event_id, event_type, data, metadata, recorded_at
FROM %[1]s.raw_events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT 512`

const rawReadAll = `SELECT pos, stream_id, version, event_id, event_type, data, metadata, recorded_at
FROM %[1]s.raw_events WHERE pos > $1 ORDER BY pos LIMIT 512`

// bench is a store and a raw table in a fresh schema of the test server.
type bench struct {
	pool   *pgxpool.Pool
	store  *eventstore.Store
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
	bn := &bench{pool: pool, store: s, schema: d.Schema(), sql: func(f string) string { return fmt.Sprintf(f, q) }}
	if _, err := pool.Exec(b.Context(), bn.sql(rawSchema)); err != nil {
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

// rawAppendBatch appends n events with plain pgx; expected < 0 means any.
func (bn *bench) rawAppendBatch(ctx context.Context, stream string, n int, expected int64) error {
	ids := make([]uuid.UUID, n)
	types := make([]string, n)
	data := make([][]byte, n)
	meta := make([][]byte, n)
	for i := range n {
		ids[i], types[i], data[i], meta[i] = uuid.New(), "OrderPlaced", benchData, []byte{}
	}
	tag, err := bn.pool.Exec(ctx, bn.sql(rawAppend), stream, ids, types, data, meta, time.Now(), expected)
	if err == nil && tag.RowsAffected() != int64(n) {
		err = fmt.Errorf("raw append wrote %d of %d", tag.RowsAffected(), n)
	}
	return err
}

func report(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend: single events from 1 and 8 clients on distinct streams,
// and 100-event batches.
func BenchmarkAppend(b *testing.B) {
	const perClient = 200
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("single/clients=%d", clients), func(b *testing.B) {
			bn := newBench(b)
			run := func(b *testing.B, appendOne func(ctx context.Context, stream string, version int) error) {
				events := 0
				for b.Loop() {
					var wg sync.WaitGroup
					for c := range clients {
						stream := fmt.Sprintf("Order-%s-%d", uuid.NewString()[:8], c)
						wg.Go(func() {
							for i := range perClient {
								if err := appendOne(b.Context(), stream, i); err != nil {
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
			}
			b.Run("store", func(b *testing.B) {
				run(b, func(ctx context.Context, stream string, v int) error {
					_, err := bn.store.Append(ctx, stream, eventstore.Exact(uint64(v)), benchEvents(1)...)
					return err
				})
			})
			b.Run("raw", func(b *testing.B) {
				run(b, func(ctx context.Context, stream string, v int) error {
					return bn.rawAppendBatch(ctx, stream, 1, int64(v))
				})
			})
		})
	}
	b.Run("batch=100", func(b *testing.B) {
		bn := newBench(b)
		const batches = 20
		b.Run("store", func(b *testing.B) {
			events := 0
			for b.Loop() {
				stream := "Order-" + uuid.NewString()
				for i := range batches {
					if _, err := bn.store.Append(b.Context(), stream, eventstore.Exact(uint64(i*100)), benchEvents(100)...); err != nil {
						b.Fatal(err)
					}
				}
				events += batches * 100
			}
			report(b, events)
		})
		b.Run("raw", func(b *testing.B) {
			events := 0
			for b.Loop() {
				stream := "Order-" + uuid.NewString()
				for i := range batches {
					if err := bn.rawAppendBatch(b.Context(), stream, 100, int64(i*100)); err != nil {
						b.Fatal(err)
					}
				}
				events += batches * 100
			}
			report(b, events)
		})
	})
}

// rawEvent is what the raw twins scan a row into.
type rawRow struct {
	pos, version int64
	stream, typ  string
	id           uuid.UUID
	data, meta   []byte
	at           time.Time
}

func (bn *bench) rawRead(ctx context.Context, query string, args func(last *rawRow) []any) (int, error) {
	n := 0
	var last *rawRow
	for {
		rows, err := bn.pool.Query(ctx, query, args(last)...)
		if err != nil {
			return n, err
		}
		page := make([]rawRow, 0, 512)
		var r rawRow
		_, err = pgx.ForEachRow(rows, []any{&r.pos, &r.stream, &r.version, &r.id, &r.typ, &r.data, &r.meta, &r.at}, func() error {
			page = append(page, r)
			r.data, r.meta = nil, nil
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(page)
		if len(page) < 512 {
			return n, nil
		}
		last = &page[len(page)-1]
	}
}

// BenchmarkRead: a 1,000-event stream, and the whole log of 100,000 events.
func BenchmarkRead(b *testing.B) {
	b.Run("stream=1000", func(b *testing.B) {
		bn := newBench(b)
		const reads = 20
		for i := range 10 {
			if _, err := bn.store.Append(b.Context(), "Order-1", eventstore.Exact(uint64(i*100)), benchEvents(100)...); err != nil {
				b.Fatal(err)
			}
			if err := bn.rawAppendBatch(b.Context(), "Order-1", 100, int64(i*100)); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("store", func(b *testing.B) {
			events := 0
			for b.Loop() {
				for range reads {
					n := 0
					for _, err := range bn.store.ReadStream(b.Context(), "Order-1", eventstore.ReadStreamOptions{}) {
						if err != nil {
							b.Fatal(err)
						}
						n++
					}
					if n != 1000 {
						b.Fatalf("read %d events", n)
					}
					events += n
				}
			}
			report(b, events)
		})
		b.Run("raw", func(b *testing.B) {
			events := 0
			for b.Loop() {
				for range reads {
					n, err := bn.rawRead(b.Context(), bn.sql(rawReadStream), func(last *rawRow) []any {
						if last == nil {
							return []any{"Order-1", 1}
						}
						return []any{"Order-1", last.version + 1}
					})
					if err != nil || n != 1000 {
						b.Fatalf("read %d events: %v", n, err)
					}
					events += n
				}
			}
			report(b, events)
		})
	})
	b.Run("all=100k", func(b *testing.B) {
		bn := newBench(b)
		const total = 100_000
		for i := range total / 1000 {
			stream := fmt.Sprintf("Order-%d", i)
			if _, err := bn.store.Append(b.Context(), stream, eventstore.NoStream, benchEvents(1000)...); err != nil {
				b.Fatal(err)
			}
			if err := bn.rawAppendBatch(b.Context(), stream, 1000, 0); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := bn.pool.Exec(b.Context(), "VACUUM ANALYZE "+bn.sql("%s.events")+", "+bn.sql("%s.raw_events")); err != nil {
			b.Fatal(err)
		}
		b.Run("store", func(b *testing.B) {
			events := 0
			for b.Loop() {
				n := 0
				for _, err := range bn.store.ReadAll(b.Context(), eventstore.ReadAllOptions{}) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != total {
					b.Fatalf("read %d events", n)
				}
				events += n
			}
			report(b, events)
		})
		b.Run("raw", func(b *testing.B) {
			events := 0
			for b.Loop() {
				n, err := bn.rawRead(b.Context(), bn.sql(rawReadAll), func(last *rawRow) []any {
					if last == nil {
						return []any{0}
					}
					return []any{last.pos}
				})
				if err != nil || n != total {
					b.Fatalf("read %d events: %v", n, err)
				}
				events += n
			}
			report(b, events)
		})
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
// delivery to a live subscription, one event at a time. The raw twin
// INSERTs, NOTIFYs after the commit, and a listener reads the new row.
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
		last := int64(0)
		for b.Loop() {
			for i := range perLoop {
				start := time.Now()
				if err := bn.rawAppendBatch(b.Context(), stream, 1, int64(len(ds)+i-i)); err != nil {
					b.Fatal(err)
				}
				if _, err := bn.pool.Exec(b.Context(), "SELECT pg_notify('raw_bench', '')"); err != nil {
					b.Fatal(err)
				}
				if _, err := conn.WaitForNotification(b.Context()); err != nil {
					b.Fatal(err)
				}
				var pos int64
				if err := conn.QueryRow(b.Context(), bn.sql(`SELECT pos FROM %s.raw_events WHERE pos > $1 ORDER BY pos LIMIT 1`), last).Scan(&pos); err != nil {
					b.Fatal(err)
				}
				last = pos
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
