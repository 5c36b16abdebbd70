package postgres_test

import (
	"context"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchmarkScale compares appends and reads against logs of the sizes in
// EVENTSTORE_SCALE (`make bench-scale`: 1M and 10M events), each in a
// schema of its own on the test server, dropped when it ends, all on one
// pool of postgres.DefaultMaxConns connections; see conformance.RunScale.
// Once seeded, each log is vacuumed and analyzed (VACUUM ANALYZE), as
// autovacuum would do soon after a bulk import: otherwise it does so
// during the measurements, at a different moment for each size. It skips
// unless EVENTSTORE_SCALE is set. The figures are in docs/benchmarks.md
// ("At scale").
func BenchmarkScale(b *testing.B) {
	sizes := conformance.ScaleSizes(b)
	testenv.MustHavePostgres(b)
	// JIT off unless the URL sets it, as in the pool Open creates (the
	// stores here are made by New, which keeps its pool's settings): with
	// JIT on, every read-all page of the 10M log was compiled, 0.2 s a page,
	// 9–11 % of the 1M log's rate (session 11).
	pool := benchPoolWith(b, postgres.DefaultMaxConns, func(cfg *pgxpool.Config) {
		if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
			cfg.ConnConfig.RuntimeParams["jit"] = "off"
		}
	})
	conformance.RunScale(b, sizes, func(b *testing.B) conformance.ScaleStore {
		d := newDriver(b, pool, postgres.Options{})
		s := eventstore.New(d, eventstore.Options{})
		b.Cleanup(func() { s.Close() })
		return conformance.ScaleStore{Store: s, Settle: func(ctx context.Context) error {
			_, err := pool.Exec(ctx, "VACUUM ANALYZE "+pgx.Identifier{d.Schema(), "events"}.Sanitize())
			return err
		}}
	})
}
