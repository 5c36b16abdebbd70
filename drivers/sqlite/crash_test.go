package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/crashtest"
)

// crashStore returns the URL of a fresh database file that several
// processes open at once.
func crashStore(t testing.TB) string {
	return (&url.URL{Scheme: "sqlite", Path: filepath.Join(t.TempDir(), "events.db")}).String()
}

// TestCrashProjection kills a projector process keeping per-stream counts
// and sums in a table (written through the projection's *sql.Tx) at random
// moments while eight writers append; at the end the table equals the fold
// of the log exactly. `make crash` kills more (EVENTSTORE_CRASH_KILLS).
func TestCrashProjection(t *testing.T) {
	crashtest.Run(t, crashtest.Config{NewStore: crashStore, ReadModel: sqliteReadModel})
}

// TestCrashGroup kills members of a consumer group mid-batch and starts
// others while writers append (see crashtest.RunGroup).
func TestCrashGroup(t *testing.T) {
	crashtest.RunGroup(t, crashtest.GroupConfig{NewStore: crashStore})
}

// sqliteReadModel keeps the crash test's read model in a table of the
// store's database.
func sqliteReadModel(string) crashtest.ReadModel {
	create, add, load := crashtest.Statements("crash_folds")
	db := func(s *eventstore.Store) *sql.DB {
		var db *sql.DB
		s.As(&db)
		return db
	}
	return crashtest.ReadModel{
		Create: func(ctx context.Context, s *eventstore.Store) error {
			_, err := db(s).ExecContext(ctx, create)
			return err
		},
		Add: func(ctx context.Context, tx *eventstore.Tx, stream string, count, sum int64) error {
			var stx *sql.Tx
			if !tx.As(&stx) {
				return errors.New("Tx.As(**sql.Tx) = false")
			}
			_, err := stx.ExecContext(ctx, add, stream, count, sum)
			return err
		},
		Load: func(ctx context.Context, s *eventstore.Store) (map[string]crashtest.Fold, error) {
			rows, err := db(s).QueryContext(ctx, load)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			out := map[string]crashtest.Fold{}
			for rows.Next() {
				var stream string
				var f crashtest.Fold
				if err := rows.Scan(&stream, &f.Count, &f.Sum); err != nil {
					return nil, err
				}
				out[stream] = f
			}
			return out, rows.Err()
		},
	}
}
