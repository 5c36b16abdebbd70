package migrate_test

import (
	"slices"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/eventkit/eventstore/migrate"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// BenchmarkCopy copies 10k events from memory into a fresh SQLite file or
// PostgreSQL schema per iteration (only Copy is timed), then copies again
// over the finished copy ("resume": everything compared and skipped). Two
// source shapes: "interleaved" is the test data set, where streams alternate
// every 1 to 5 events, so appends are small; "runs" is 100 streams of 100
// events appended one stream after the other, so appends are full batches.
//
// Finding (one run, -benchtime 2x, 2-core box shared with other work, fsync
// on): with imports, interleaved copies at 79k events/s into SQLite and 49k
// into PostgreSQL, runs at 182k and 59k (against 7-8k and 4-5k interleaved
// when every run of a stream was an append). The resume pass reads the
// destination's log alongside the source's: 320k-570k events/s.
func BenchmarkCopy(b *testing.B) {
	shapes := []struct {
		name string
		src  func(testing.TB) *eventstore.Store
	}{
		{"interleaved", func(tb testing.TB) *eventstore.Store { s, _ := newSource(tb, 3, 10_000, 500); return s }},
		{"runs", runsSource},
	}
	dsts := []struct {
		name string
		open func(testing.TB) *eventstore.Store
	}{
		{"sqlite", storetest.SQLite},
		{"postgres", storetest.Postgres},
	}
	for _, shape := range shapes {
		src := shape.src(b)
		for _, d := range dsts {
			b.Run(shape.name+"/"+d.name, func(b *testing.B) {
				var copyTime, resumeTime time.Duration
				var events int
				for b.Loop() {
					dst := d.open(b)
					start := time.Now()
					st, err := migrate.Copy(b.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
					copyTime += time.Since(start)
					require.NoError(b, err)
					start = time.Now()
					_, err = migrate.Copy(b.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
					resumeTime += time.Since(start)
					require.NoError(b, err)
					events += st.Copied
					require.NoError(b, dst.Close())
				}
				b.ReportMetric(float64(events)/copyTime.Seconds(), "events/s")
				b.ReportMetric(float64(events)/resumeTime.Seconds(), "resume-events/s")
			})
		}
	}
}

// runsSource returns a memory store with 100 streams of 100 events, each
// stream appended whole before the next.
func runsSource(tb testing.TB) *eventstore.Store {
	s := storetest.Memory(tb)
	for i := range 100 {
		evs := make([]eventstore.Event, 100)
		for j := range evs {
			evs[j] = eventstore.Event{ID: uuid.New(), Type: "Created", Data: []byte(`{"amount":100,"note":"a typical small event"}`)}
		}
		_, err := s.Append(tb.Context(), "Order-"+uuid.NewString()[:8]+"-"+string(rune('a'+i%26)), eventstore.NoStream, evs...)
		require.NoError(tb, err)
	}
	return s
}

// BenchmarkSQLiteToPostgres is issue 6's figure: 100k events over 5,000
// interleaved streams (the test data set's shapes and payloads) copied from a
// SQLite file into a fresh PostgreSQL schema, beside the raw twin: plain pgx
// inserting the same 100k events in 500-row INSERT … SELECT FROM unnest
// statements into a minimal table (bigserial position, unique stream and
// version), the destination's raw batch-insert throughput. Each iteration
// runs both, raw first, so they see the same server state; only the writes
// (and, for the copy, its reads of the SQLite file) are timed. The ratio
// copy/raw is reported as "copy/raw".
func BenchmarkSQLiteToPostgres(b *testing.B) {
	const events, streams = 100_000, 5_000
	mem, _ := newSource(b, 13, events, streams)
	src := storetest.SQLite(b)
	_, err := migrate.Copy(b.Context(), migrate.From(mem), migrate.To(src), migrate.Options{})
	require.NoError(b, err)
	log := readAll(b, src)
	pool, err := pgxpool.New(b.Context(), testenv.MustHavePostgres(b))
	require.NoError(b, err)
	b.Cleanup(pool.Close)

	var copyTime, rawTime time.Duration
	var n int
	for b.Loop() {
		schema, _ := testenv.PostgresSchema(b, "bench_raw")
		rawTime += rawInsert(b, pool, schema, log)
		dst := storetest.Postgres(b)
		start := time.Now()
		st, err := migrate.Copy(b.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
		copyTime += time.Since(start)
		require.NoError(b, err)
		require.Equal(b, events, st.Copied)
		n += events
		require.NoError(b, dst.Close())
	}
	copyRate := float64(n) / copyTime.Seconds()
	rawRate := float64(n) / rawTime.Seconds()
	b.ReportMetric(copyRate, "copy-events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(copyRate/rawRate, "copy/raw")
}

// rawInsert creates the minimal table in schema and inserts log into it in
// 500-row statements, returning the time the inserts took.
func rawInsert(b *testing.B, pool *pgxpool.Pool, schema string, log []eventstore.RecordedEvent) time.Duration {
	b.Helper()
	ctx := b.Context()
	q := pgx.Identifier{schema}.Sanitize()
	_, err := pool.Exec(ctx, `CREATE SCHEMA `+q+`;
CREATE TABLE `+q+`.events (
	pos         bigserial   PRIMARY KEY,
	stream_id   text        NOT NULL,
	version     bigint      NOT NULL,
	event_id    uuid        NOT NULL,
	event_type  text        NOT NULL,
	data        bytea       NOT NULL,
	metadata    bytea       NOT NULL,
	recorded_at timestamptz NOT NULL,
	UNIQUE (stream_id, version))`)
	require.NoError(b, err)
	insert := `INSERT INTO ` + q + `.events (stream_id, version, event_id, event_type, data, metadata, recorded_at)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::bytea[], $6::bytea[], $7::timestamptz[])`
	start := time.Now()
	for batch := range slices.Chunk(log, 500) {
		cols := make([][]any, 7)
		for _, ev := range batch {
			cols[0] = append(cols[0], ev.StreamID)
			cols[1] = append(cols[1], int64(ev.Version))
			cols[2] = append(cols[2], ev.ID)
			cols[3] = append(cols[3], ev.Type)
			cols[4] = append(cols[4], nonNil(ev.Data))
			cols[5] = append(cols[5], nonNil(ev.Metadata))
			cols[6] = append(cols[6], ev.RecordedAt)
		}
		_, err := pool.Exec(ctx, insert, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6])
		require.NoError(b, err)
	}
	return time.Since(start)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
