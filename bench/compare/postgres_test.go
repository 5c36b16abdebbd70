package compare_test

import (
	"context"
	"os"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	hsql "github.com/hallgren/eventsourcing/eventstore/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// BenchmarkPostgres compares, on the server of EVENTSTORE_POSTGRES_URL, each
// contender in a fresh schema of its own, with a pool of
// postgres.DefaultMaxConns connections (the pool postgres.Open creates):
//
//   - eventkit: this library, a Store over drivers/postgres opened by URL
//     with the defaults.
//   - plpgsql-fn: an event store in the design of message-db, written here
//     (funcstore_test.go): appends are one call of a PL/pgSQL function that
//     takes the stream's advisory lock, checks the expected version and
//     inserts; reads select by position or version in pages of 1,000.
//   - hallgren-sql: github.com/hallgren/eventsourcing/eventstore/sql v0.7.0
//     (NewPostgres) over database/sql with pgx's stdlib driver.
func BenchmarkPostgres(b *testing.B) { runCompare(b, postgresContenders) }

var postgresContenders = []maker{
	{ours, ourPostgres},
	{"plpgsql-fn", newFuncStore},
	{"hallgren-sql", hallgrenPostgres},
}

// ourPostgres opens the library on a fresh schema.
func ourPostgres(b testing.TB) contender {
	schema, url := testenv.PostgresSchema(b, "cmp_ours")
	s, err := eventstore.Open(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return contender{
		append:     conformance.StoreAppend(s),
		readStream: conformance.StoreReadStream(s),
		readAll:    conformance.StoreReadAll(s),
		analyze:    analyze(pgx.Identifier{schema, "events"}),
	}
}

// analyze returns a contender's analyze func for table.
func analyze(table pgx.Identifier) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, os.Getenv(testenv.PostgresURLVar))
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "ANALYZE "+table.Sanitize())
		return err
	}
}

// hallgrenPostgres opens hallgren's Postgres store on a fresh schema (its
// table is "events" on the search path).
func hallgrenPostgres(b testing.TB) contender {
	schema := newSchema(b, "cmp_hallgren")
	cfg, err := pgx.ParseConfig(testenv.MustHavePostgres(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgres.DefaultMaxConns)
	db.SetMaxIdleConns(postgres.DefaultMaxConns) // database/sql keeps 2 by default
	s, err := hsql.NewPostgres(db)
	if err != nil {
		db.Close()
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	c := hallgren(s)
	c.analyze = analyze(pgx.Identifier{schema, "events"})
	return c
}

// newSchema creates a fresh schema, dropped when b ends, and returns its
// name.
func newSchema(b testing.TB, prefix string) string {
	schema, _ := testenv.PostgresSchema(b, prefix)
	conn, err := pgx.Connect(b.Context(), testenv.MustHavePostgres(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(b.Context(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	return schema
}

// newPool returns a pool of postgres.DefaultMaxConns connections to the
// test server, closed when b ends.
func newPool(b testing.TB) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = postgres.DefaultMaxConns
	pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}
