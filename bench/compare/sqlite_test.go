package compare_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/sqlite"
	hsql "github.com/hallgren/eventsourcing/eventstore/sql"
)

// BenchmarkSQLite compares, each in a file of its own in a temporary
// directory, with the pragmas of the library's defaults (WAL,
// synchronous=FULL, a 5 s busy timeout) and 1 + sqlite.DefaultMaxReadConns
// connections:
//
//   - eventkit: this library, a Store over drivers/sqlite (sqlite.Open with
//     the zero Options).
//   - hallgren-sql: github.com/hallgren/eventsourcing/eventstore/sql v0.7.0
//     (NewSQLiteSingelWriter: its appends take a mutex, as concurrent
//     writers to one SQLite file must queue anyway), over go-sqlite3
//     opened with _txlock=immediate, so a write transaction takes the
//     write lock when it begins instead of failing to upgrade later.
func BenchmarkSQLite(b *testing.B) { runCompare(b, sqliteContenders) }

var sqliteContenders = []maker{
	{ours, ourSQLite},
	{"hallgren-sql", hallgrenSQLite},
}

func ourSQLite(b testing.TB) contender {
	d, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s := eventstore.New(d, eventstore.Options{})
	b.Cleanup(func() { s.Close() })
	return contender{
		append:     conformance.StoreAppend(s),
		readStream: conformance.StoreReadStream(s),
		readAll:    conformance.StoreReadAll(s),
	}
}

func hallgrenSQLite(b testing.TB) contender {
	path := filepath.Join(b.TempDir(), "hallgren.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1 + sqlite.DefaultMaxReadConns)
	db.SetMaxIdleConns(1 + sqlite.DefaultMaxReadConns)
	s, err := hsql.NewSQLiteSingelWriter(db)
	if err != nil {
		db.Close()
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return hallgren(s)
}
