package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, harness{pool: newPool(t)})
}

// harness gives each rule a driver on a schema of its own over one shared
// pool, and reopens a schema with a new driver and a new pool of its own, as
// a restarted process would.
type harness struct{ pool *pgxpool.Pool }

func (h harness) NewDriver(t testing.TB) driver.Driver {
	return newDriver(t, h.pool, postgres.Options{})
}

func (harness) Unsupported() map[conformance.Feature]string { return nil }

func (harness) NativeTypes() []any { return []any{new(*pgxpool.Pool)} }

// HoldAppend implements conformance.WriterHolder: positions come from the
// writing transaction's ID, taken before it commits.
func (harness) HoldAppend(t testing.TB, d driver.Driver, req driver.AppendRequest) (commit func() error) {
	t.Helper()
	commit, err := postgres.HoldAppend(t.Context(), d.(*postgres.Driver), req)
	require.NoError(t, err)
	return commit
}

// NewStorage implements conformance.Reopener. Each driver it opens owns its
// pool, which its Close closes.
func (h harness) NewStorage(t testing.TB) func() driver.Driver {
	url := testenv.MustHavePostgres(t)
	schema := randomSchema()
	dropSchemaAtCleanup(t, h.pool, schema)
	return func() driver.Driver {
		d, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
		require.NoError(t, err)
		return d
	}
}

// newPool returns a pool on the test server, closed when t ends.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := testenv.MustHavePostgres(t)
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// randomSchema returns a fresh schema name.
func randomSchema() string {
	var b [6]byte
	rand.Read(b[:])
	return "test_" + hex.EncodeToString(b[:])
}

// newDriver opens a driver on pool in a fresh random schema (unless opts
// names one) and drops the schema when t ends. The driver itself is closed
// by whoever wraps it in a Store, or at cleanup.
func newDriver(t testing.TB, pool *pgxpool.Pool, opts postgres.Options) *postgres.Driver {
	t.Helper()
	if opts.Schema == "" {
		opts.Schema = randomSchema()
	}
	d, err := postgres.New(t.Context(), pool, opts)
	require.NoError(t, err)
	dropSchemaAtCleanup(t, pool, opts.Schema)
	t.Cleanup(func() { d.Close() })
	return d
}

// openDriver opens a driver by URL (its own pool) in a fresh random schema,
// and closes it and drops the schema when t ends: for the tests of what Open
// reads from the URL and the options.
func openDriver(t testing.TB, pool *pgxpool.Pool, url string, opts postgres.Options) *postgres.Driver {
	t.Helper()
	opts.Schema = randomSchema()
	dropSchemaAtCleanup(t, pool, opts.Schema)
	d, err := postgres.Open(t.Context(), url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// dropSchemaAtCleanup drops schema when t ends, under its own deadline:
// t.Context() is already done then.
func dropSchemaAtCleanup(t testing.TB, pool *pgxpool.Pool, schema string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
}

// newStore returns a Store over a fresh driver, closed when t ends.
func newStore(t testing.TB, pool *pgxpool.Pool) (*eventstore.Store, *postgres.Driver) {
	t.Helper()
	d := newDriver(t, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s, d
}
