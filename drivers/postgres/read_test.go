package postgres_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The statements that run once per page settle on a generic plan, as pgx
// prepares them: a statement planned afresh for every page spends as long in
// the planner as in the executor (BenchmarkInterleaved/readall).
func TestPagedReadsUseGenericPlans(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	cfg.MaxConns = 1 // every statement runs on the connection inspected below
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	d := newDriver(t, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()

	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, conformance.BenchEvents(30)...)
	require.NoError(t, err)
	for range 8 {
		n := 0
		for _, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{After: eventstore.Position{Commit: 1, Prepare: 1}}) {
			require.NoError(t, err)
			n++
		}
		require.Equal(t, 30, n)
		for _, err := range s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
		}
	}
	// The read-all page statement (the one with the horizon) and the
	// read-stream one; a read that waits for the fence prepares another
	// statement, which runs too rarely to get a generic plan.
	rows, err := pool.Query(ctx, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
		WHERE (statement LIKE '%AS horizon%' OR statement LIKE '%ORDER BY version LIMIT%')
			AND statement NOT LIKE '%pg_prepared_statements%'`)
	require.NoError(t, err)
	found := 0
	for rows.Next() {
		var stmt string
		var generic, custom int64
		require.NoError(t, rows.Scan(&stmt, &generic, &custom))
		found++
		assert.Positive(t, generic, "custom plans only (%d) for %s", custom, stmt)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 2, found, "the read-all and read-stream statements")
}

// Reads decode binary rows themselves and fall back to pgx's Scan for other
// formats: both give the same events, byte for byte, read by stream, from
// the log, and from the log with a filter.
func TestReadsDecodeLikeScan(t *testing.T) {
	url := testenv.MustHavePostgres(t)
	ctx := t.Context()
	schema := randomSchema()
	var got [2][]eventstore.RecordedEvent
	for i, mode := range []string{"cache_statement", "simple_protocol"} {
		cfg, err := pgxpool.ParseConfig(url + "&default_query_exec_mode=" + mode)
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		d := newDriver(t, pool, postgres.Options{Schema: schema})
		s := eventstore.New(d, eventstore.Options{})
		t.Cleanup(func() { s.Close() })
		if i == 0 {
			meta := []byte(`{"b": 1,  "a":"ü"}`)
			_, err = s.Append(ctx, "Order-ü'\"; --", eventstore.NoStream,
				eventstore.Event{Type: "Placed", Data: []byte(`{"z":1, "a" :2}`), Metadata: meta},
				eventstore.Event{Type: "Binary", Data: []byte{0, 1, 2, 255}, ContentType: eventstore.Binary},
				eventstore.Event{Type: "Empty"})
			require.NoError(t, err)
			_, err = s.Append(ctx, "Other-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
			require.NoError(t, err)
		}
		for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
			require.NoError(t, err)
			got[i] = append(got[i], ev)
		}
		for ev, err := range s.ReadStream(ctx, "Order-ü'\"; --", eventstore.ReadStreamOptions{Backwards: true}) {
			require.NoError(t, err)
			got[i] = append(got[i], ev)
		}
		// Filtered: through ReadAllScan, whose rows carry more columns.
		for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Order"}}}) {
			require.NoError(t, err)
			got[i] = append(got[i], ev)
		}
	}
	require.Len(t, got[0], 4+3+3)
	assert.Equal(t, got[1], got[0])
	assert.Equal(t, []byte{}, got[0][2].Data, "empty data is empty, not nil")
	assert.Equal(t, []byte{0, 1, 2, 255}, got[0][1].Data)
}

// The events of a page share chunks for their data and metadata
// (eventDecoder.payload): appending to one event's Data or Metadata, as a
// caller may, changes no other event, whichever way it was read.
func TestPayloadsDoNotOverlap(t *testing.T) {
	d := newDriver(t, newPool(t), postgres.Options{})
	ctx := t.Context()
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	evs := make([]eventstore.Event, 20)
	for i := range evs {
		evs[i] = eventstore.Event{Type: "T", ContentType: eventstore.Binary, Data: []byte{byte(i), byte(i)},
			Metadata: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	_, err := s.Append(ctx, "Chunk-1", eventstore.NoStream, evs...)
	require.NoError(t, err)
	stream, err := d.ReadStream(ctx, driver.StreamQuery{Stream: "Chunk-1", From: 1, Limit: 100})
	require.NoError(t, err)
	log, err := d.ReadAll(ctx, driver.AllQuery{Limit: 100})
	require.NoError(t, err)
	for name, page := range map[string][]driver.RecordedEvent{"stream": stream, "log": log} {
		require.Len(t, page, len(evs), name)
		for i := range page {
			page[i].Data = append(page[i].Data, 0xff, 0xff, 0xff)
			page[i].Metadata = append(page[i].Metadata, '!')
		}
		for i, ev := range page {
			assert.Equal(t, []byte{byte(i), byte(i), 0xff, 0xff, 0xff}, ev.Data, "%s: event %d", name, i)
			assert.Equal(t, fmt.Sprintf(`{"i":%d}!`, i), string(ev.Metadata), "%s: event %d", name, i)
		}
	}
}

// Filtered reads of the global log use the indexes of schema version 3 for
// short lists and a hash lookup per event for long ones, never a linear
// `= ANY` per event (scan.go), in the generic plans prepared statements
// settle on. The log has 200,000 events of three categories and three event
// types, as in a store where the planner is most tempted to walk the log
// instead of an index: categories A and B and their types take half of the
// log each, but for one event in 1,000 of category Rare and type RareType.
// Before, one page filtered by 2,000 categories walked the whole log
// comparing each event with each category: 3.7 s.
//
// Unfiltered reads and stream reads of small events are not counted
// (pageRows): the probe for a large event walks the empty partial index of
// schema version 9, not the log or the stream, and the page is read once.
func TestFilteredReadPlans(t *testing.T) {
	pool := newPool(t)
	d := newDriver(t, pool, postgres.Options{})
	ctx := t.Context()
	q := pgx.Identifier{d.Schema()}.Sanitize()
	// Below every transaction ID of the server, so below the fence: a fresh
	// cluster starts near 700 (1 + i / 10 went past the fence of one).
	_, err := pool.Exec(ctx, `INSERT INTO `+q+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
		SELECT 1 + i / 1000, c || '-' || i / 1000, i % 1000 + 1, gen_random_uuid(), c || 'Type', 0, '\x7b7d', '', now()
		FROM generate_series(0, 199999) i,
			LATERAL (SELECT CASE WHEN i % 1000 = 999 THEN 'Rare' WHEN i % 2 = 0 THEN 'A' ELSE 'B' END AS c) c`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `VACUUM ANALYZE `+q+`.events`)
	require.NoError(t, err)
	many := []string{"Rare"}
	for i := range 1999 {
		many = append(many, fmt.Sprintf("Absent%d", i))
	}
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		q      driver.AllQuery
		scan   bool
		stream string   // a stream read of this stream instead of q
		want   []string // in the plan: ") IS TRUE" is a hash lookup
		avoid  []string
		// most is the most events the page examines (Rows Removed by
		// Filter, plus the rows it returns), 0 for no bound.
		most int
	}{
		{name: "scan 2,000 categories", q: driver.AllQuery{Filter: driver.Filter{Categories: many}}, scan: true,
			want:  []string{"Index Only Scan using events_pkey", ") IS TRUE"},
			avoid: []string{"= ANY (b.", "Seq Scan on events"}, most: postgres.ScanWindow},
		{name: "read 2,000 categories", q: driver.AllQuery{Filter: driver.Filter{Categories: many}},
			want:  []string{"Index Scan using events_pkey", ") IS TRUE"},
			avoid: []string{"= ANY (s.", "Seq Scan on events"}},
		{name: "scan 1 category", q: driver.AllQuery{Filter: driver.Filter{Categories: []string{"Rare"}}}, scan: true,
			want:  []string{"Index Scan using events_category_idx", "rows=200 loops=1"},
			avoid: []string{"Seq Scan on events", ") IS TRUE", "Rows Removed by Filter"}},
		{name: "scan 3 categories", q: driver.AllQuery{Filter: driver.Filter{Categories: []string{"Rare", "A", "B"}}}, scan: true,
			want:  []string{"Merge Append", "Index Scan using events_category_idx"},
			avoid: []string{"Seq Scan on events", ") IS TRUE", "Rows Removed by Filter"}},
		{name: "scan 1 event type", q: driver.AllQuery{Filter: driver.Filter{EventTypes: []string{"RareType"}}}, scan: true,
			want:  []string{"Index Scan using events_type_idx", "rows=200 loops=1"},
			avoid: []string{"Seq Scan on events", ") IS TRUE", "Rows Removed by Filter"}},
		{name: "scan 2 event types", q: driver.AllQuery{Filter: driver.Filter{EventTypes: []string{"RareType", "BType"}}}, scan: true,
			want:  []string{"Merge Append", "Index Scan using events_type_idx"},
			avoid: []string{"Seq Scan on events", ") IS TRUE", "Rows Removed by Filter"}},
		{name: "scan a category and 2,000 event types", q: driver.AllQuery{Filter: driver.Filter{Categories: []string{"Rare"}, EventTypes: many}}, scan: true,
			want:  []string{"Index Scan using events_category_idx", ") IS TRUE"},
			avoid: []string{"Seq Scan on events", "= ANY (b."}, most: postgres.ScanWindow},
		{name: "read 1 category", q: driver.AllQuery{Filter: driver.Filter{Categories: []string{"Rare"}}},
			want:  []string{"Index Scan using events_category_idx", "rows=200 loops=1"},
			avoid: []string{"Seq Scan on events", ") IS TRUE", "Rows Removed by Filter"}},
		{name: "read 2 categories backwards", q: driver.AllQuery{Backwards: true, Filter: driver.Filter{Categories: []string{"Rare", "A"}}},
			want:  []string{"Index Scan Backward using events_category_idx"},
			avoid: []string{"Seq Scan on events", ") IS TRUE", "Rows Removed by Filter"}},
		{name: "read the log", q: driver.AllQuery{After: driver.Position{Commit: 1, Prepare: 1}},
			want:  []string{"Index Only Scan using events_large_pos_idx", "rows=512 loops=1"},
			avoid: []string{"Seq Scan on events", "Rows Removed by Filter", "Aggregate (actual"}},
		{name: "read the log backwards", q: driver.AllQuery{Backwards: true},
			want:  []string{"Index Only Scan Backward using events_large_pos_idx", "rows=512 loops=1"},
			avoid: []string{"Seq Scan on events", "Rows Removed by Filter", "Aggregate (actual"}},
		{name: "scan the log", q: driver.AllQuery{}, scan: true,
			want:  []string{"Index Only Scan using events_large_pos_idx"},
			avoid: []string{"Seq Scan on events", "Rows Removed by Filter", "Aggregate (actual"}},
		{name: "read a stream", stream: "A-0",
			want:  []string{"Index Only Scan using events_large_stream_idx", "rows=500 loops=1"},
			avoid: []string{"Seq Scan on events", "Rows Removed by Filter", "Aggregate (actual"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Limit, tc.q.MaxBytes = 512, eventstore.DefaultMaxPageBytes
			query, args := postgres.ReadAllQuery(d, tc.q, tc.scan)
			if tc.stream != "" {
				query, args = postgres.ReadStreamSQL(d), []any{tc.stream, 1, tc.q.Limit, tc.q.MaxBytes}
			}
			var plan strings.Builder
			rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF) `+query, append([]any{pgx.QueryExecModeExec}, args...)...)
			require.NoError(t, err)
			for rows.Next() {
				var line string
				require.NoError(t, rows.Scan(&line))
				plan.WriteString(line + "\n")
			}
			require.NoError(t, rows.Err())
			for _, w := range tc.want {
				assert.Contains(t, plan.String(), w)
			}
			for _, a := range tc.avoid {
				assert.NotContains(t, plan.String(), a)
			}
			if tc.most > 0 {
				for _, m := range regexp.MustCompile(`Rows Removed by Filter: (\d+)`).FindAllStringSubmatch(plan.String(), -1) {
					removed, _ := strconv.Atoi(m[1])
					assert.LessOrEqual(t, removed, tc.most, "rows examined")
				}
			}
			t.Logf("plan:\n%s", plan.String())
		})
	}
}
