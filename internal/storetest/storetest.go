// Package storetest opens an empty [eventstore.Store] on each backend that
// runs here, for the tests of the packages built on top of the Store
// (codec, decider, shred, migrate). Memory, SQLite (in t.TempDir()) and
// KurrentDB (the in-process double, internal/kurrentdbtest) always run;
// PostgreSQL and DynamoDB run on the servers internal/testenv names: without
// one the test is skipped, naming the variable to set, and under CI=true it
// fails instead, so a CI run never passes by skipping a backend.
//
// Every Store it returns is closed when the test ends (a second Close is a
// no-op, so a test may close it sooner), and what it made on a server (a
// PostgreSQL schema, a DynamoDB table) is dropped then.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Backend is one driver tests run on.
type Backend struct {
	// Name is the driver's name: "memory", "sqlite", "postgres",
	// "dynamodb" or "kurrentdb".
	Name string
	// Open returns an empty Store of the driver, closed when t ends; it
	// skips or fails t as the package doc says when the server is missing.
	Open func(t testing.TB) *eventstore.Store
	// Keys reports that the driver keeps subject keys (driver.KeyStore), as
	// crypto-shredding needs; KurrentDB does not.
	Keys bool
}

// All returns every backend, in a fixed order: memory, sqlite, postgres,
// dynamodb, kurrentdb. Every driver keeps snapshots.
func All() []Backend {
	return []Backend{
		{Name: "memory", Open: Memory, Keys: true},
		{Name: "sqlite", Open: SQLite, Keys: true},
		{Name: "postgres", Open: Postgres, Keys: true},
		{Name: "dynamodb", Open: DynamoDB, Keys: true},
		{Name: "kurrentdb", Open: KurrentDB, Keys: false},
	}
}

// KeyStores returns the backends of [All] that keep subject keys.
func KeyStores() []Backend {
	var bs []Backend
	for _, b := range All() {
		if b.Keys {
			bs = append(bs, b)
		}
	}
	return bs
}

// Wrap returns a Store over d with default options, closed when t ends.
func Wrap(t testing.TB, d driver.Driver) *eventstore.Store {
	t.Helper()
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// Memory returns an empty memory store.
func Memory(t testing.TB) *eventstore.Store {
	t.Helper()
	return Wrap(t, memory.New())
}

// SQLite returns an empty SQLite store in t's temporary directory.
func SQLite(t testing.TB) *eventstore.Store {
	t.Helper()
	return SQLiteAt(t, filepath.Join(t.TempDir(), "events.db"))
}

// SQLiteAt opens (or reopens, as a restarted process would) the SQLite
// store in the file at path.
func SQLiteAt(t testing.TB, path string) *eventstore.Store {
	t.Helper()
	d, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("storetest: open sqlite %s: %v", path, err)
	}
	return Wrap(t, d)
}

// Postgres returns an empty PostgreSQL store in a fresh schema of the test
// server.
func Postgres(t testing.TB) *eventstore.Store {
	t.Helper()
	return PostgresOpener(t)()
}

// PostgresOpener makes a fresh schema on the test server, dropped when t
// ends, and returns a func that opens a new Store on that schema each time
// it is called, as a restarted process would. The Stores share one pool;
// they and the pool are closed when t ends.
func PostgresOpener(t testing.TB) func() *eventstore.Store {
	t.Helper()
	schema, _ := testenv.PostgresSchema(t, "test_store")
	pool, err := pgxpool.New(t.Context(), testenv.MustHavePostgres(t))
	if err != nil {
		t.Fatalf("storetest: postgres pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return func() *eventstore.Store {
		t.Helper()
		d, err := postgres.New(t.Context(), pool, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatalf("storetest: open postgres schema %s: %v", schema, err)
		}
		return Wrap(t, d)
	}
}

// DynamoDB returns an empty DynamoDB store on a fresh table of the test
// server (DynamoDB Local), deleted when t ends.
func DynamoDB(t testing.TB) *eventstore.Store {
	t.Helper()
	client := DynamoDBClient(t)
	table := DynamoDBTable(t, client, "test-store-")
	d, err := dynamodb.New(t.Context(), client, table, dynamodb.Options{CreateTable: true})
	if err != nil {
		t.Fatalf("storetest: open dynamodb table %s: %v", table, err)
	}
	return Wrap(t, d)
}

// KurrentDB returns an empty KurrentDB store on an in-process double of the
// server with default options (no ServerVersion: no multi-stream appends).
func KurrentDB(t testing.TB) *eventstore.Store {
	t.Helper()
	return KurrentDBWith(t, kurrentdbtest.Options{})
}

// KurrentDBWith is [KurrentDB] on a double started with opts (a
// ServerVersion of "26.1.0" serves multi-stream appends).
func KurrentDBWith(t testing.TB, opts kurrentdbtest.Options) *eventstore.Store {
	t.Helper()
	srv := kurrentdbtest.Start(t, opts)
	d, err := kurrentdb.Open(t.Context(), srv.URL(), kurrentdb.Options{})
	if err != nil {
		t.Fatalf("storetest: open kurrentdb double: %v", err)
	}
	return Wrap(t, d)
}
