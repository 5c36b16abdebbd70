package postgres_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// sqlRecorder is a pgx query tracer that keeps the text of every statement
// sent.
type sqlRecorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *sqlRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	r.sent = append(r.sent, data.SQL)
	r.mu.Unlock()
	return ctx
}

func (r *sqlRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// reads returns, since the last call, "xmin" for each page read below
// xmin and "fenced" for each fenced log read, in order.
func (r *sqlRecorder) reads(d *postgres.Driver) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.sent {
		switch {
		case s == postgres.ReadBelowXminSQL(d):
			out = append(out, "xmin")
		case strings.HasPrefix(s, "WITH t AS MATERIALIZED") && strings.Contains(s, "UNION ALL"):
			out = append(out, "fenced")
		}
	}
	r.sent = nil
	return out
}

// ReadAll reads a forward, unfiltered page below pg_snapshot_xmin first
// (no snapshot CTE, no pg_locks), and the rest of a page that does not fill
// there with the fenced statement: the page is the one the fenced statement
// alone returns, in events and in bytes, whatever holds xmin back.
func TestReadAllBelowXmin(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	rec := &sqlRecorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	d := newDriver(t, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	defer s.Close()
	ctx := t.Context()
	data := []byte(`{"n":"` + strings.Repeat("x", 92) + `"}`) // 100 bytes
	appendN := func(n int) {
		for range n {
			_, err := s.Append(ctx, "Order-1", eventstore.Any, eventstore.NewEvent("Placed", data))
			require.NoError(t, err)
		}
	}
	appendN(3)
	// An unrelated transaction with an ID holds pg_snapshot_xmin back (not
	// the fence): the events appended after it are above xmin.
	holder, _ := beginOn(t, newPool(t), "")
	_, err = holder.Exec(ctx, "SELECT pg_current_xact_id()")
	require.NoError(t, err)
	appendN(3)
	rec.reads(d)

	versions := func(t *testing.T, evs []driver.RecordedEvent, backwards bool) []uint64 {
		var vs []uint64
		for i, ev := range evs {
			if i > 0 {
				require.Equal(t, backwards, ev.Position.Less(evs[i-1].Position), "positions out of order")
			}
			vs = append(vs, ev.Version)
		}
		return vs
	}
	cases := []struct {
		name     string
		q        driver.AllQuery
		versions []uint64
		reads    []string
	}{
		{"full below xmin", driver.AllQuery{Limit: 2}, []uint64{1, 2}, []string{"xmin"}},
		{"rest of the page fenced", driver.AllQuery{Limit: 10}, []uint64{1, 2, 3, 4, 5, 6}, []string{"xmin", "fenced"}},
		// 100-byte events: the page keeps events while those before hold
		// fewer than 450 bytes, 5 of them, across the two statements.
		{"byte bound across both", driver.AllQuery{Limit: 10, MaxBytes: 450}, []uint64{1, 2, 3, 4, 5}, []string{"xmin", "fenced"}},
		{"byte bound below xmin", driver.AllQuery{Limit: 10, MaxBytes: 150}, []uint64{1, 2}, []string{"xmin"}},
		{"backwards", driver.AllQuery{Limit: 2, Backwards: true}, []uint64{6, 5}, []string{"fenced"}},
		{"filtered", driver.AllQuery{Limit: 2, Filter: driver.Filter{EventTypes: []string{"Placed"}}}, []uint64{1, 2}, []string{"fenced"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			untilXminFree(t, c.reads, func() []string {
				evs, err := d.ReadAll(ctx, c.q)
				require.NoError(t, err)
				require.Equal(t, c.versions, versions(t, evs, c.q.Backwards))
				return rec.reads(d)
			})
		})
	}

	// A read from the end of the log the last fenced page found (a
	// subscription waiting for events) sends the fenced statement alone.
	all, err := d.ReadAll(ctx, driver.AllQuery{Limit: 10})
	require.NoError(t, err)
	rec.reads(d)
	evs, err := d.ReadAll(ctx, driver.AllQuery{After: all[len(all)-1].Position, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, evs)
	require.Equal(t, []string{"fenced"}, rec.reads(d))

	// With xmin free again the pages before the end the last fenced page
	// found are read below it, and the page from there fenced.
	require.NoError(t, holder.Rollback(ctx))
	appendN(1)
	untilXminFree(t, []string{"xmin", "xmin", "fenced"}, func() []string {
		var got []uint64
		after := driver.Position{}
		for {
			evs, err := d.ReadAll(ctx, driver.AllQuery{After: after, Limit: 3})
			require.NoError(t, err)
			got = append(got, versions(t, evs, false)...)
			if len(evs) < 3 {
				break
			}
			after = evs[len(evs)-1].Position
		}
		require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7}, got)
		return rec.reads(d)
	})
}

// untilXminFree runs read, which checks its events itself and returns the
// statements it sent, until they are want, for at most 10 s. xmin is the
// whole cluster's: a transaction of another test (another package's, on
// the same server) may hold it back for a moment, and then a page that
// would fill below it is finished by the fenced statement, with the same
// events. Only the statements are retried; every read's events are checked.
func untilXminFree(t *testing.T, want []string, read func() []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := read()
		if slices.Equal(got, want) || time.Now().After(deadline) {
			require.Equal(t, want, got, "statements sent")
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
