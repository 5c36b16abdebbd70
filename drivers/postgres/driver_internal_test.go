package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// newTestDriver returns a driver on a schema of its own, its pool and the
// schema's name, for the package's internal tests; the schema is dropped
// when the test ends.
func newTestDriver(t *testing.T) (*Driver, *pgxpool.Pool, string) {
	t.Helper()
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, testenv.MustHavePostgres(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var b [6]byte
	rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	d, err := New(ctx, pool, Options{Schema: schema})
	require.NoError(t, err)
	t.Cleanup(func() {
		d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+quoteIdent(schema)+" CASCADE")
	})
	return d, pool, schema
}
