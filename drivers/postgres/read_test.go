package postgres_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
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
// formats: both give the same events, byte for byte.
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
	}
	require.Len(t, got[0], 4+3)
	assert.Equal(t, got[1], got[0])
	assert.Equal(t, []byte{}, got[0][2].Data, "empty data is empty, not nil")
	assert.Equal(t, []byte{0, 1, 2, 255}, got[0][1].Data)
}
