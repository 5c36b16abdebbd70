package postgres_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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

	// A version 1 schema, as driver version 1 left it, with two appends:
	// Order-1 versions 1–3 in one append, then version 4.
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	oldSchema(t, pool, schema, 1, func(tx pgx.Tx) error {
		for i, id := range ids {
			if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
				VALUES ($1, 'Order-1', $2, $3, 'Placed', 0, '', '', now())`, 100+i/3, i+1, id); err != nil {
				return err
			}
		}
		return nil
	})

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

// oldSchema creates schema at an earlier version, as the driver of that
// version left it (its files applied, recorded in schema_migrations), then
// runs fill in the same transaction.
func oldSchema(t *testing.T, pool *pgxpool.Pool, schema string, version int, fill func(pgx.Tx) error) {
	t.Helper()
	ctx := t.Context()
	q := pgx.Identifier{schema}.Sanitize()
	dropSchemaAtCleanup(t, pool, schema)
	files, err := filepath.Glob("schema/*.sql")
	require.NoError(t, err)
	require.Greater(t, len(files), version, "precondition: version %d is older than the driver's", version)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, stmt := range []string{
			`CREATE SCHEMA ` + q,
			`CREATE TABLE ` + q + `.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		for i, f := range files[:version] {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, strings.ReplaceAll(string(b), "{{schema}}", q)); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version, name) VALUES ($1, $2)`, i+1, filepath.Base(f)); err != nil {
				return err
			}
		}
		return fill(tx)
	})
	require.NoError(t, err)
}

// Upgrading a version 2 schema that holds events builds the indexes of
// filtered reads over them: reads filtered by category or event type
// find the old events through the indexes, and new ones after them.
func TestUpgradeFromSchema2(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	schema := randomSchema()
	q := pgx.Identifier{schema}.Sanitize()
	// 1,000 events of three categories and two types, one append each.
	oldSchema(t, pool, schema, 2, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO `+q+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
			SELECT 100 + i, 'Cat' || i % 3 || '-' || i % 7, i / 21 + 1, gen_random_uuid(), 'Type' || i % 2, 0, '', '', now()
			FROM generate_series(0, 999) i`)
		return err
	})

	d, err := postgres.New(ctx, pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	var version int
	require.NoError(t, pool.QueryRow(ctx, `SELECT max(version) FROM `+q+`.schema_migrations`).Scan(&version))
	require.Equal(t, postgres.SchemaVersion(), version)
	for _, index := range []string{"events_category_idx", "events_type_idx"} {
		var valid bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, schema+"."+index).Scan(&valid), index)
		assert.True(t, valid, index)
	}

	res, err := s.Append(ctx, "Cat1-new", eventstore.NoStream, eventstore.NewEvent("Type0", nil))
	require.NoError(t, err)
	for _, tc := range []struct {
		filter eventstore.Filter
		want   int // old events, and the new one
	}{
		{eventstore.Filter{Categories: []string{"Cat1"}}, 333 + 1},
		{eventstore.Filter{EventTypes: []string{"Type1"}}, 500},
		{eventstore.Filter{Categories: []string{"Cat0", "Cat1"}, EventTypes: []string{"Type0"}}, 333 + 1},
	} {
		var got []eventstore.RecordedEvent
		for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{Filter: tc.filter}) {
			require.NoError(t, err)
			got = append(got, ev)
		}
		require.Len(t, got, tc.want, "%+v", tc.filter)
		for i := 1; i < len(got); i++ {
			require.True(t, got[i-1].Position.Less(got[i].Position), "%+v: in position order", tc.filter)
		}
		if slices.Contains(tc.filter.EventTypes, "Type0") || slices.Contains(tc.filter.Categories, "Cat1") {
			assert.Equal(t, res.Position, got[len(got)-1].Position, "%+v: the new event comes last", tc.filter)
		}
	}
}

// Upgrading a version 3 schema creates the leases table and keeps the
// checkpoints: leases are granted at once, and a projection's checkpoint
// transaction moves a checkpoint saved before the upgrade.
func TestUpgradeFromSchema3(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	schema := randomSchema()
	q := pgx.Identifier{schema}.Sanitize()
	oldSchema(t, pool, schema, 3, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO `+q+`.checkpoints (name, tx_id, seq) VALUES ('proj', 100, 7)`)
		return err
	})
	var leases bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, schema+".leases").Scan(&leases))
	require.False(t, leases, "precondition: version 3 has no leases table")

	d, err := postgres.New(ctx, pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	var version int
	require.NoError(t, pool.QueryRow(ctx, `SELECT max(version) FROM `+q+`.schema_migrations`).Scan(&version))
	require.GreaterOrEqual(t, version, 4)
	require.Equal(t, postgres.SchemaVersion(), version)

	l, granted, err := d.AcquireLease(ctx, "g", "partition/1/0", "a", time.Minute)
	require.NoError(t, err)
	assert.True(t, granted)
	assert.Equal(t, uint64(1), l.Generation)
	require.NoError(t, d.SaveLeasePosition(ctx, "g", "partition/1/0", "a", 1, driver.Position{Commit: 100, Prepare: 7}))
	require.NoError(t, d.CheckpointTx(ctx, "proj", driver.Position{Commit: 100, Prepare: 7}, true, driver.Position{Commit: 101, Prepare: 1}, nil))
	pos, ok, err := d.LoadCheckpoint(ctx, "proj")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, driver.Position{Commit: 101, Prepare: 1}, pos)
}
