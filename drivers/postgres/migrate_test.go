package postgres_test

import (
	"os"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Upgrading a version 1 schema that holds events: every event written
// before the upgrade counts as a possible first event of an append, so a
// retry of an old append (of one or several events) is still recognised,
// and appends after the upgrade are recognised by their first event only.
func TestUpgradeFromSchema1(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	schema := randomSchema()
	q := pgx.Identifier{schema}.Sanitize()
	dropSchemaAtCleanup(t, pool, schema)

	// A version 1 schema, as driver version 1 left it, with two appends:
	// Order-1 versions 1–3 in one append, then version 4.
	v1, err := os.ReadFile("schema/0001_init.sql")
	require.NoError(t, err)
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, stmt := range []string{
			`CREATE SCHEMA ` + q,
			`CREATE TABLE ` + q + `.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
			strings.ReplaceAll(string(v1), "{{schema}}", q),
			`INSERT INTO ` + q + `.schema_migrations (version, name) VALUES (1, '0001_init.sql')`,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		for i, id := range ids {
			if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
				VALUES ($1, 'Order-1', $2, $3, 'Placed', 0, '', '', now())`, 100+i/3, i+1, id); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)

	d, err := postgres.New(ctx, pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	var version int
	require.NoError(t, pool.QueryRow(ctx, `SELECT max(version) FROM `+q+`.schema_migrations`).Scan(&version))
	require.Equal(t, postgres.SchemaVersion(), version)
	var oldIndex bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, schema+".events_event_id_idx").Scan(&oldIndex))
	assert.False(t, oldIndex, "the index on every event ID is gone")

	ev := func(id uuid.UUID) eventstore.Event { return eventstore.Event{ID: id, Type: "Placed"} }
	// Retries of the two old appends return their original results.
	res, err := s.Append(ctx, "Order-1", eventstore.NoStream, ev(ids[0]), ev(ids[1]), ev(ids[2]))
	require.NoError(t, err)
	assert.Equal(t, uint64(3), res.Version)
	res, err = s.Append(ctx, "Order-1", eventstore.Exact(3), ev(ids[3]))
	require.NoError(t, err)
	assert.Equal(t, uint64(4), res.Version)
	// An old event inside a batch counted as a first event too.
	res, err = s.Append(ctx, "Order-1", eventstore.Exact(1), ev(ids[1]), ev(ids[2]))
	require.NoError(t, err)
	assert.Equal(t, uint64(3), res.Version)

	// New appends: a retry by the first event ID is recognised.
	batch := []eventstore.Event{ev(uuid.New()), ev(uuid.New())}
	first, err := s.Append(ctx, "Order-1", eventstore.Exact(4), batch...)
	require.NoError(t, err)
	again, err := s.Append(ctx, "Order-1", eventstore.Any, batch...)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	v, err := s.StreamVersion(ctx, "Order-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(6), v, "nothing written twice")
	var entries int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+q+`.events WHERE starts_append`).Scan(&entries))
	assert.Equal(t, 4+1, entries, "old events, and one entry for the new append")
}
