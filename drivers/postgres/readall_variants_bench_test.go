package postgres_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchmarkReadAllVariants takes the log read apart (issue 16): variants
// of the read-all statement on one store's events table of 100,000 events
// (and the minimal table beside it, with the same events), each read
// through plain pgx on a connection of its own with the rows' values left
// raw (RawValues: the same client work per byte for all), taking turns in
// rounds with the Store's ReadAll. Each reports events/s, the server's and
// the client's CPU per event, and its rate ÷ the minimal table's at pages
// of 512 (as BenchmarkInterleaved's minimal twin reads).
func BenchmarkReadAllVariants(b *testing.B) {
	const events = 100_000
	bn := newBench(b)
	for done := 0; done < events; done += 1000 {
		bn.seedBoth(b, conformance.BenchStream("Bench"))
	}
	q := bn.analyzeBoth(b)
	driverSQL := postgres.ReadAllSQL(bn.driver)
	// prefix is the driver's statement up to its CTE s (the snapshot, the
	// fence, the parameters p1–p4).
	prefix := driverSQL[:strings.Index(driverSQL, ", g AS MATERIALIZED")]
	cols := `tx_id, seq, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, tags, metadata_content_type`
	narrow := `tx_id, seq, stream_id, version, event_id, event_type, data, metadata, recorded_at`
	evNulls := `NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::uuid, NULL::text, NULL::smallint, NULL::bytea, NULL::bytea, NULL::timestamptz, NULL::text[], NULL::smallint`
	fenced := `FROM ` + q + `.events WHERE tx_id < s.fence AND (tx_id, seq) > (s.p1, s.p2) ORDER BY tx_id, seq LIMIT s.p3`
	type variant struct {
		name  string
		sql   string
		key   int  // the column of the first key (tx_id or pos)
		two   bool // the key is (tx_id, seq)
		size  int64
		extra bool // the statement takes $3 limit and $4 bytes
	}
	vs := []variant{
		{"minimal-512", bn.minimalSQL(minimalReadAllSQL, 512), 0, false, 512, false},
		{"minimal-4096", bn.minimalSQL(minimalReadAllSQL, 4096), 0, false, 4096, false},
		{"driver", driverSQL, 4, true, 4096, true},
		{"fence-head-noprobe", prefix + `
SELECT horizon, coalesce(top >= fence, false), fence, NULL::bigint, ` + evNulls + ` FROM s
UNION ALL
SELECT NULL, NULL, NULL, NULL, e.* FROM s, LATERAL (SELECT ` + cols + ` ` + fenced + `) e`, 4, true, 4096, true},
		{"fence-nohead", prefix + `
SELECT e.* FROM s, LATERAL (SELECT ` + cols + ` ` + fenced + `) e`, 0, true, 4096, true},
		{"fence-cols-inline", prefix + `
SELECT s.horizon, s.fence, e.* FROM s, LATERAL (SELECT ` + cols + ` ` + fenced + `) e`, 2, true, 4096, true},
		{"bare", `SELECT ` + cols + ` FROM ` + q + `.events WHERE (tx_id, seq) > ($1, $2) ORDER BY tx_id, seq LIMIT $3::integer + 0*$4::bigint`, 0, true, 4096, true},
		{"bare-narrow", `SELECT ` + narrow + ` FROM ` + q + `.events WHERE (tx_id, seq) > ($1, $2) ORDER BY tx_id, seq LIMIT $3::integer + 0*$4::bigint`, 0, true, 4096, true},
		{"below-xmin", postgres.ReadBelowXminSQL(bn.driver), 1, true, 4096, true},
		{"fence-narrow", prefix + `
SELECT e.* FROM s, LATERAL (SELECT ` + narrow + ` ` + fenced + `) e`, 0, true, 4096, true},
	}
	sides := make([]*cpuSide, 0, len(vs)+1)
	cs := make([]conformance.Contender, 0, len(vs)+1)
	for _, v := range vs {
		sd := newCPUSide()
		pool := sd.pool(b, 1)
		round := func(ctx context.Context) (int, error) {
			n := 0
			var k1, k2 int64
			for {
				args := []any{k1}
				if v.two {
					args = append(args, k2)
				}
				if v.extra {
					args = append(args, int32(v.size), eventstore.DefaultMaxPageBytes)
				}
				rows, err := pool.Query(ctx, v.sql, args...)
				if err != nil {
					return n, err
				}
				page := int64(0)
				for rows.Next() {
					r := rows.RawValues()
					if r[v.key] == nil {
						continue // a head row
					}
					page++
					k1 = int64(binary.BigEndian.Uint64(r[v.key]))
					if v.two {
						k2 = int64(binary.BigEndian.Uint64(r[v.key+1]))
					}
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return n, err
				}
				n += int(page)
				if page < v.size {
					if n != events {
						return n, fmt.Errorf("%s read %d events", v.name, n)
					}
					return n, nil
				}
			}
		}
		sides = append(sides, sd)
		cs = append(cs, conformance.Contender{Name: v.name, Round: sd.measure(round)})
	}
	sd := newCPUSide()
	s := sd.store(b, bn, 2)
	sides = append(sides, sd)
	cs = append(cs, conformance.Contender{Name: "store", Round: sd.measure(conformance.StoreReadAll(s))})
	reportCPUSides(b, cs, sides, conformance.RunInterleaved(b, 3, cs), "/minimal-512-%")
}

// BenchmarkReadStreamVariants is BenchmarkReadAllVariants for a read of one
// 1,000-event stream (20 reads a round), on analyzed tables as bench/compare
// reads them: the driver's stream statement, plain SELECTs of the events
// table and of the minimal table (one page of 1,000 and an empty one, as
// the plpgsql-fn contender of bench/compare reads), and the Store.
func BenchmarkReadStreamVariants(b *testing.B) {
	bn := newBench(b)
	stream := conformance.BenchStream("Bench")
	bn.seedBoth(b, stream)
	q := bn.analyzeBoth(b)
	cols := `tx_id, seq, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, tags, metadata_content_type`
	type variant struct {
		name string
		sql  string
		ver  int // the column of the version
		size int64
		four bool // the statement takes $3 limit and $4 bytes
	}
	vs := []variant{
		{"minimal-1000", `SELECT pos, stream_id, version, event_id, event_type, data, metadata, recorded_at FROM ` + q + `.minimal_events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT 1000`, 2, 1000, false},
		{"driver", postgres.ReadStreamSQL(bn.driver), 4, 4096, true},
		{"plain-1000", `SELECT ` + cols + ` FROM ` + q + `.events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT 1000`, 3, 1000, false},
	}
	var sides []*cpuSide
	var cs []conformance.Contender
	add := func(name string, sd *cpuSide, read func(ctx context.Context) (int, error)) {
		sides = append(sides, sd)
		cs = append(cs, conformance.Contender{Name: name, Round: sd.measure(func(ctx context.Context) (int, error) {
			total := 0
			for range 20 {
				n, err := read(ctx)
				if err == nil && n != 1000 {
					err = fmt.Errorf("%s read %d events", name, n)
				}
				if err != nil {
					return total, err
				}
				total += n
			}
			return total, nil
		})})
	}
	for _, v := range vs {
		sd := newCPUSide()
		pool := sd.pool(b, 2)
		add(v.name, sd, func(ctx context.Context) (int, error) {
			n := 0
			from := int64(1)
			for {
				args := []any{stream, from}
				if v.four {
					args = append(args, int32(v.size), eventstore.DefaultMaxPageBytes)
				}
				rows, err := pool.Query(ctx, v.sql, args...)
				if err != nil {
					return n, err
				}
				page := int64(0)
				for rows.Next() {
					r := rows.RawValues()
					if r[v.ver] == nil {
						continue // a head row
					}
					page++
					from = int64(binary.BigEndian.Uint64(r[v.ver])) + 1
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return n, err
				}
				n += int(page)
				if page < v.size {
					return n, nil
				}
			}
		})
	}
	sd := newCPUSide()
	read := conformance.StoreReadStream(sd.store(b, bn, 2))
	add("store", sd, func(ctx context.Context) (int, error) { return read(ctx, stream) })
	reportCPUSides(b, cs, sides, conformance.RunInterleaved(b, 3, cs), "/minimal-1000-%")
}

// seedBoth appends one 1,000-event stream to the store and the same events
// to the minimal table, in appends of 500.
func (bn *bench) seedBoth(b *testing.B, stream string) {
	for v := 0; v < 1000; v += 500 {
		evs := conformance.BenchEvents(500)
		if _, err := bn.store.Append(b.Context(), stream, eventstore.Exact(uint64(v)), evs...); err != nil {
			b.Fatal(err)
		}
		if err := bn.minimalAppend(b.Context(), stream, uint64(v), evs); err != nil {
			b.Fatal(err)
		}
	}
}

// analyzeBoth analyzes the events table and the minimal table, as
// bench/compare does after seeding, and returns the schema, quoted.
func (bn *bench) analyzeBoth(b *testing.B) string {
	q := pgx.Identifier{bn.driver.Schema()}.Sanitize()
	if _, err := bn.pool.Exec(b.Context(), "ANALYZE "+q+".events; ANALYZE "+q+".minimal_events"); err != nil {
		b.Fatal(err)
	}
	return q
}

// cpuSide is one contender of a variants benchmark with the CPU its reads
// took: the client's (this process) and the server's (its backends).
type cpuSide struct {
	tr             *serverTracer
	client, srv, n float64
}

func newCPUSide() *cpuSide { return &cpuSide{tr: &serverTracer{started: map[uint32]float64{}}} }

// pool returns a pool of conns connections whose backends' CPU the side
// counts, closed when b ends.
func (sd *cpuSide) pool(b *testing.B, conns int32) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = conns
	cfg.ConnConfig.Tracer = sd.tr
	pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// store returns a Store on bn's schema over a pool of the side's.
func (sd *cpuSide) store(b *testing.B, bn *bench, conns int32) *eventstore.Store {
	d, err := postgres.New(b.Context(), sd.pool(b, conns), postgres.Options{Schema: bn.driver.Schema()})
	if err != nil {
		b.Fatal(err)
	}
	s := eventstore.New(d, eventstore.Options{})
	b.Cleanup(func() { s.Close() })
	return s
}

// measure wraps a round so that the side adds up its events and CPU.
func (sd *cpuSide) measure(round func(ctx context.Context) (int, error)) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		c0, s0 := processCPU(), sd.tr.cpu()
		n, err := round(ctx)
		sd.client += processCPU() - c0
		sd.srv += sd.tr.cpu() - s0
		sd.n += float64(n)
		return n, err
	}
}

// reportCPUSides reports each contender's server and client ns per event
// and its rate ÷ the first contender's, with the unit suffix.
func reportCPUSides(b *testing.B, cs []conformance.Contender, sides []*cpuSide, rates [][]float64, suffix string) {
	for i, c := range cs {
		sd := sides[i]
		b.ReportMetric(sd.srv/sd.n*1000, c.Name+"-server-ns/ev")
		b.ReportMetric(sd.client/sd.n*1000, c.Name+"-client-ns/ev")
		b.ReportMetric(conformance.MedianPercent(rates, i, 0), c.Name+suffix)
	}
}
