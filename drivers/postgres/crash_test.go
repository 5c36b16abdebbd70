package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/crashtest"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestCrashProjection kills a projector process keeping per-stream counts
// and sums in a table (written through the projection's pgx.Tx) at random
// moments while eight writers append; at the end the table equals the fold
// of the log exactly. `go test` kills it a few times; `make crash` 25 times
// (EVENTSTORE_CRASH_KILLS).
func TestCrashProjection(t *testing.T) {
	crashtest.Run(t, crashtest.Config{
		NewStore: func(t testing.TB) string {
			_, u := testenv.PostgresSchema(t, "crash")
			return u
		},
		ReadModel: pgReadModel,
	})
}

// pgReadModel keeps the crash test's read model in a table of the store's
// schema (the URL's schema parameter).
func pgReadModel(storeURL string) crashtest.ReadModel {
	u, _ := url.Parse(storeURL)
	create, add, load := crashtest.Statements(pgx.Identifier{u.Query().Get("schema"), "crash_folds"}.Sanitize())
	pool := func(s *eventstore.Store) *pgxpool.Pool {
		var p *pgxpool.Pool
		s.As(&p)
		return p
	}
	return crashtest.ReadModel{
		Create: func(ctx context.Context, s *eventstore.Store) error {
			_, err := pool(s).Exec(ctx, create)
			return err
		},
		Add: func(ctx context.Context, tx *eventstore.Tx, stream string, count, sum int64) error {
			var ptx pgx.Tx
			if !tx.As(&ptx) {
				return errors.New("Tx.As(*pgx.Tx) = false")
			}
			_, err := ptx.Exec(ctx, add, stream, count, sum)
			return err
		},
		Load: func(ctx context.Context, s *eventstore.Store) (map[string]crashtest.Fold, error) {
			rows, err := pool(s).Query(ctx, load)
			if err != nil {
				return nil, err
			}
			out := map[string]crashtest.Fold{}
			var stream string
			var f crashtest.Fold
			_, err = pgx.ForEachRow(rows, []any{&stream, &f.Count, &f.Sum}, func() error { out[stream] = f; return nil })
			return out, err
		},
	}
}

// TestCrashGroup kills members of a consumer group mid-batch and starts
// others while writers append: every event handled, each stream in order by
// each member, never by two members at once. `make crash` kills more
// (EVENTSTORE_CRASH_KILLS).
func TestCrashGroup(t *testing.T) {
	crashtest.RunGroup(t, crashtest.GroupConfig{NewStore: func(t testing.TB) string {
		_, u := testenv.PostgresSchema(t, "crashgroup")
		return u
	}})
}
