package postgres_test

import (
	"context"
	"errors"
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Checkpoints lists names in byte order (strings.Compare) even in a
// database whose collation orders them otherwise (ICU "en": "a" before "B",
// "é" before "f"), and each position exactly as LoadCheckpoint returns it,
// also one saved beyond what a bigint holds (clamped on both paths).
func TestCheckpointsInByteOrder(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	d, err := postgres.Open(ctx, icuDatabase(t, pool), postgres.Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })

	saved := []struct {
		name string
		pos  driver.Position
		want eventstore.Position // as LoadCheckpoint returns it
	}{
		{"é", driver.Position{Commit: 5, Prepare: 6}, eventstore.Position{Commit: 5, Prepare: 6}},
		{"a", driver.Position{Commit: 1, Prepare: 2}, eventstore.Position{Commit: 1, Prepare: 2}},
		{"z", driver.Position{}, eventstore.Position{}},
		{"Z-1", driver.Position{Commit: math.MaxInt64, Prepare: 1}, eventstore.Position{Commit: math.MaxInt64, Prepare: 1}},
		{"f", driver.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}, eventstore.Position{Commit: math.MaxInt64, Prepare: math.MaxInt64}},
		{"B", driver.Position{Commit: 3, Prepare: 4}, eventstore.Position{Commit: 3, Prepare: 4}},
		{"$orders[1/2]", driver.Position{Commit: 7, Prepare: 8}, eventstore.Position{Commit: 7, Prepare: 8}},
	}
	want := map[string]eventstore.Position{}
	for _, c := range saved {
		require.NoError(t, d.SaveCheckpoint(ctx, c.name, c.pos), c.name)
		want[c.name] = c.want
	}
	wantOrder := []string{"$orders[1/2]", "B", "Z-1", "a", "f", "z", "é"}
	var p *pgxpool.Pool
	require.True(t, s.As(&p))
	rows, err := p.Query(ctx, `SELECT name FROM eventstore.checkpoints ORDER BY name`)
	require.NoError(t, err)
	collated, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEqual(t, wantOrder, collated, "precondition: the database's collation orders the names otherwise")

	cps, err := s.Checkpoints(ctx)
	require.NoError(t, err)
	var names []string
	for _, c := range cps {
		names = append(names, c.Name)
		assert.Equal(t, want[c.Name], c.Position, "%s: the position listed", c.Name)
		pos, ok, err := s.Checkpoint(ctx, c.Name)
		require.NoError(t, err)
		assert.True(t, ok, c.Name)
		assert.Equal(t, pos, c.Position, "%s: Checkpoints and Checkpoint agree", c.Name)
	}
	require.Equal(t, wantOrder, names, "Checkpoints in byte order")
}

// icuDatabase creates a database whose collation does not sort in byte
// order (ICU "en": "a" before "B", "é" before "f"), dropped when t ends, and
// returns its URL. It skips t when the server has no ICU support.
func icuDatabase(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	name := randomSchema() + "_icu"
	_, err := pool.Exec(t.Context(), "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "0A000" { // feature_not_supported
		t.Skipf("the test server has no ICU support, needed for a collation other than byte order: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}
