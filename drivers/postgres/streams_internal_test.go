package postgres

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListStreamsPlan pins that a listing hops over the (stream_id,
// version) index, on a table of 20,000 events in 2,000 streams: every step
// is an index-only scan of events_stream_version_key, and nothing scans the
// table or sorts, in either form of the query, with a custom or a generic
// plan.
func TestListStreamsPlan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, pool, schema := newTestDriver(t)
	q := quoteIdent(schema)
	_, err := pool.Exec(ctx, `INSERT INTO `+q+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
		SELECT 1, format('Plan-%s', lpad((i % 2000)::text, 4, '0')), i / 2000 + 1, gen_random_uuid(), 'T', 0, '', '', now()
		FROM generate_series(0, 19999) i`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ANALYZE `+q+`.events`)
	require.NoError(t, err)

	var collation string
	require.NoError(t, pool.QueryRow(ctx, collationSQL, q+".events").Scan(&collation))
	t.Logf("collation of stream_id: %s (byte order: %v)", collation, byteOrder(collation))

	r := strings.NewReplacer("{{schema}}", q)
	for _, c := range []struct {
		name, query string
		args        []any
	}{
		{"range, first page", r.Replace(listStreamsRangeSQL), []any{"", "Plan-", "Plan.", 101}},
		{"range, next page", r.Replace(listStreamsRangeSQL), []any{"Plan-0100", "Plan-", "Plan.", 101}},
		{"all", r.Replace(listStreamsAllSQL), []any{"", "", 101}},
	} {
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				conn, err := pool.Acquire(ctx)
				require.NoError(t, err)
				defer conn.Release()
				_, err = conn.Exec(ctx, "SET plan_cache_mode = "+mode)
				require.NoError(t, err)
				defer conn.Exec(context.Background(), "RESET plan_cache_mode")
				// EXPLAIN EXECUTE of a prepared statement shows the plan
				// that mode chooses.
				_, err = conn.Conn().Prepare(ctx, "list_plan", c.query)
				require.NoError(t, err)
				defer conn.Conn().Deallocate(context.Background(), "list_plan")
				rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) EXECUTE list_plan("+literals(c.args)+")")
				require.NoError(t, err)
				lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
				require.NoError(t, err)
				p := strings.Join(lines, "\n")
				t.Logf("%s", p)
				assert.Contains(t, p, "Index Only Scan using events_stream_version_key")
				assert.Contains(t, p, "Index Only Scan Backward using events_stream_version_key") // max(version)
				assert.NotContains(t, p, "Seq Scan")
				assert.NotContains(t, p, "Sort")
			})
		}
	}

	page, err := d.ListStreams(ctx, driver.ListStreamsRequest{Prefix: "Plan-", Limit: 100})
	require.NoError(t, err)
	require.Len(t, page.Streams, 100)
	assert.Equal(t, driver.StreamInfo{ID: "Plan-0000", Version: 10}, page.Streams[0])
	assert.Equal(t, "Plan-0099", page.Next)
	page, err = d.ListStreams(ctx, driver.ListStreamsRequest{Prefix: "Plan-19", Cursor: "Plan-1990", Limit: 100})
	require.NoError(t, err)
	require.Len(t, page.Streams, 9)
	assert.Equal(t, "Plan-1991", page.Streams[0].ID)
	assert.Empty(t, page.Next)

	// All 2,000 streams in pages of 100 (the time is logged for
	// docs/postgres.md, not asserted).
	start, n, pages := time.Now(), 0, 0
	for req := (driver.ListStreamsRequest{Prefix: "Plan-", Limit: 100}); ; pages++ {
		page, err := d.ListStreams(ctx, req)
		require.NoError(t, err)
		n += len(page.Streams)
		if page.Next == "" {
			break
		}
		req.Cursor = page.Next
	}
	assert.Equal(t, 2000, n)
	t.Logf("listed %d streams in %d pages of 100 in %v", n, pages+1, time.Since(start))
}

// literals returns args as SQL literals, separated by commas.
func literals(args []any) string {
	ls := make([]string, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case string:
			ls[i] = "'" + strings.ReplaceAll(a, "'", "''") + "'"
		case int:
			ls[i] = strconv.Itoa(a)
		}
	}
	return strings.Join(ls, ", ")
}

func TestByteOrder(t *testing.T) {
	for _, tc := range []struct {
		collation string
		want      bool
	}{
		{"c:C", true},
		{"c:POSIX", true},
		{"c:C.UTF-8", true},
		{"c:C.utf8", true},
		{"b:C.UTF-8", true},
		{"b:C", true},
		{"c:en_US.UTF-8", false},
		{"i:en-US", false},
		{"i:und", false},
		{"c:", false},
	} {
		assert.Equal(t, tc.want, byteOrder(tc.collation), tc.collation)
	}
}
