package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	neturl "net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURLVar is the variable that names the PostgreSQL server tests use.
const PostgresURLVar = "EVENTSTORE_POSTGRES_URL"

// MustHavePostgres returns the URL of the PostgreSQL server to test against,
// from EVENTSTORE_POSTGRES_URL. When it is unset it skips t, saying how to
// start a server; under CI=true it fails t instead. Tests create their own
// schemas on that server and drop them when they end.
func MustHavePostgres(t testing.TB) string {
	t.Helper()
	u := os.Getenv(PostgresURLVar)
	if u == "" {
		missing(t, PostgresURLVar+" is not set: run `make test` (it starts a throw-away cluster), "+
			"or start one with `scripts/postgres.sh start /tmp/es-pg` (or `docker compose up -d postgres`) "+
			"and export "+PostgresURLVar+" to the URL it prints")
	}
	return u
}

// PostgresSchema picks a fresh random schema name starting with prefix on
// the test server (skipping or failing t as MustHavePostgres does) and drops
// that schema, with everything in it, when t ends. It returns the schema
// name and the server URL with `schema=` set to it, for eventstore.Open.
func PostgresSchema(t testing.TB, prefix string) (schema, url string) {
	t.Helper()
	base := MustHavePostgres(t)
	var b [6]byte
	rand.Read(b[:])
	schema = prefix + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		// t.Context() is done by now: use a bounded context of our own.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := neturl.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresURLVar, err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return schema, u.String()
}
