package testenv

import (
	"os"
	"testing"
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
