package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readModel creates the table a projection writes through its *sql.Tx.
func readModel(t testing.TB, db *sql.DB) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), "CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT")
	require.NoError(t, err)
}

// total reads a row of the read model; ok is false when there is none.
func total(t testing.TB, db *sql.DB, name string) (n int, ok bool) {
	t.Helper()
	err := db.QueryRowContext(t.Context(), "SELECT n FROM totals WHERE name = ?", name).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false
	}
	require.NoError(t, err)
	return n, true
}

// addTotal is a handler: it adds to a row of the read model through the
// transaction it is given.
func addTotal(ctx context.Context, name string, n int) func(driver.Tx) error {
	return func(tx driver.Tx) error {
		var sqlTx *sql.Tx
		if !tx.As(&sqlTx) {
			return errors.New("Tx.As(**sql.Tx) returned false")
		}
		_, err := sqlTx.ExecContext(ctx, `INSERT INTO totals (name, n) VALUES (?1, ?2)
			ON CONFLICT (name) DO UPDATE SET n = n + ?2`, name, n)
		return err
	}
}

// TestCheckpointTxReadModel writes a read-model table through the *sql.Tx
// of CheckpointTx: the row commits with the checkpoint, and rolls back with
// it when the handler fails or the checkpoint moved (then the handler does
// not run).
func TestCheckpointTxReadModel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p1, p2 := driver.Position{Commit: 4}, driver.Position{Commit: 8}
	boom := errors.New("read model rejected the batch")
	for _, tc := range []struct {
		name string
		// setup runs before the transaction, on the Store.
		setup   func(t *testing.T, s *eventstore.Store)
		prev    driver.Position
		hasPrev bool
		fail    error // returned by the handler after its write
		wantErr error
		// wantRan is whether the handler runs; wantTotal the row after.
		wantRan   bool
		wantTotal int
		wantPos   driver.Position
	}{
		{name: "commits from none", wantRan: true, wantTotal: 5, wantPos: p2},
		{name: "commits from a checkpoint", setup: saveCheckpoint(p1), prev: p1, hasPrev: true, wantRan: true, wantTotal: 5, wantPos: p2},
		{name: "handler error", fail: boom, wantErr: boom, wantRan: true},
		{name: "handler error from a checkpoint", setup: saveCheckpoint(p1), prev: p1, hasPrev: true, fail: boom, wantErr: boom, wantRan: true, wantPos: p1},
		{name: "moved from none", setup: saveCheckpoint(p1), wantErr: eventstore.ErrCheckpointMoved, wantPos: p1},
		{name: "moved from a checkpoint", setup: saveCheckpoint(p2), prev: p1, hasPrev: true, wantErr: eventstore.ErrCheckpointMoved, wantPos: p2},
		{name: "none stored", prev: p1, hasPrev: true, wantErr: eventstore.ErrCheckpointMoved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, _ := openDriver(t, sqlite.Options{})
			s := eventstore.New(d, eventstore.Options{})
			var db *sql.DB
			require.True(t, d.As(&db))
			readModel(t, db)
			if tc.setup != nil {
				tc.setup(t, s)
			}
			ran := false
			err := d.CheckpointTx(ctx, "proj", tc.prev, tc.hasPrev, p2, func(tx driver.Tx) error {
				ran = true
				if err := addTotal(ctx, "orders", 5)(tx); err != nil {
					return err
				}
				return tc.fail
			})
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
			assert.Equal(t, tc.wantRan, ran, "handler ran")
			n, ok := total(t, db, "orders")
			assert.Equal(t, tc.wantTotal, n, "read model")
			assert.Equal(t, tc.wantTotal != 0, ok, "read-model row exists")
			pos, ok, err := s.Checkpoint(ctx, "proj")
			require.NoError(t, err)
			assert.Equal(t, tc.wantPos != driver.Position{}, ok, "checkpoint exists")
			assert.Equal(t, eventstore.Position(tc.wantPos), pos, "checkpoint")
		})
	}
}

func saveCheckpoint(pos driver.Position) func(t *testing.T, s *eventstore.Store) {
	return func(t *testing.T, s *eventstore.Store) {
		require.NoError(t, s.SetCheckpoint(t.Context(), "proj", eventstore.Position(pos)))
	}
}

// TestCheckpointTxAs: the handler's Tx sets a **sql.Tx, and nothing else.
func TestCheckpointTxAs(t *testing.T) {
	t.Parallel()
	d, _ := openDriver(t, sqlite.Options{})
	err := d.CheckpointTx(t.Context(), "proj", driver.Position{}, false, driver.Position{Commit: 1}, func(tx driver.Tx) error {
		var sqlTx *sql.Tx
		assert.True(t, tx.As(&sqlTx))
		assert.NotNil(t, sqlTx)
		var db *sql.DB
		assert.False(t, tx.As(&db), "**sql.DB")
		assert.False(t, tx.As(sqlTx), "*sql.Tx")
		assert.False(t, tx.As(nil), "nil")
		assert.False(t, tx.As((**sql.Tx)(nil)), "a nil **sql.Tx")
		return nil
	})
	require.NoError(t, err)
}

// TestCheckpointTxAcrossDrivers runs projections over one file from two
// drivers, one opened by Open and one by New over a pool whose
// transactions begin DEFERRED, as separate processes would: each moves the
// checkpoint one step at a time from where it read it and adds one to a
// read model in the same transaction. With no lost or doubled update the
// read model equals the checkpoint and the number of commits, and every
// failure is ErrCheckpointMoved.
func TestCheckpointTxAcrossDrivers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const (
		workers = 3 // per driver
		commits = 25
	)
	path := filepath.Join(t.TempDir(), "events.db")
	opened, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { opened.Close() })
	deferred, err := sqlite.New(ctx, rawDB(t, path), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { deferred.Close() })
	var db *sql.DB
	require.True(t, opened.As(&db))
	readModel(t, db)

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		moved int
	)
	gate := make(chan struct{})
	for _, d := range []*sqlite.Driver{opened, deferred} {
		for range workers {
			wg.Go(func() {
				<-gate
				for done := 0; done < commits; {
					prev, has, err := d.LoadCheckpoint(ctx, "proj")
					if !assert.NoError(t, err) {
						return
					}
					err = d.CheckpointTx(ctx, "proj", prev, has, driver.Position{Commit: prev.Commit + 1}, addTotal(ctx, "proj", 1))
					switch {
					case err == nil:
						done++
					case errors.Is(err, eventstore.ErrCheckpointMoved):
						mu.Lock()
						moved++
						mu.Unlock()
					default:
						assert.NoError(t, err)
						return
					}
				}
			})
		}
	}
	close(gate)
	wg.Wait()
	const want = 2 * workers * commits
	pos, _, err := opened.LoadCheckpoint(ctx, "proj")
	require.NoError(t, err)
	n, _ := total(t, db, "proj")
	assert.Equal(t, uint64(want), pos.Commit, "checkpoint")
	assert.Equal(t, want, n, "read model")
	t.Logf("%d commits, %d found the checkpoint moved", want, moved)
}

// TestProjectReadModel runs Store.Project over the log with a handler that
// counts events in a read-model table through its *sql.Tx: after a failed
// batch and a restart, each event is counted once.
func TestProjectReadModel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, _ := openDriver(t, sqlite.Options{})
	s := eventstore.New(d, eventstore.Options{})
	var db *sql.DB
	require.True(t, s.As(&db))
	readModel(t, db)
	for i := range 10 {
		_, err := s.Append(ctx, fmt.Sprintf("Order-%d", i), eventstore.NoStream, events(3, "Placed")...)
		require.NoError(t, err)
	}
	boom := errors.New("boom")
	run := func(failAt int) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		batches := 0
		err := s.Project(ctx, eventstore.SubscribeOptions{Name: "counter", BatchSize: 7,
			OnCaughtUp: func(eventstore.SubscriptionState) { cancel() }},
			func(ctx context.Context, tx *eventstore.Tx, evs []eventstore.RecordedEvent) error {
				var sqlTx *sql.Tx
				if !tx.As(&sqlTx) {
					return errors.New("no *sql.Tx")
				}
				if _, err := sqlTx.ExecContext(ctx, `INSERT INTO totals (name, n) VALUES ('events', ?1)
					ON CONFLICT (name) DO UPDATE SET n = n + ?1`, len(evs)); err != nil {
					return err
				}
				if batches++; batches == failAt {
					return boom
				}
				return nil
			})
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	require.ErrorIs(t, run(3), boom)
	n, _ := total(t, db, "events")
	assert.Equal(t, 14, n, "two batches of 7 committed before the failing one")
	require.NoError(t, run(0))
	n, _ = total(t, db, "events")
	assert.Equal(t, 30, n)
}

// TestCheckpointTxHandlerPanics: a handler that panics leaves nothing
// behind: its write is rolled back and the next transaction (and append)
// goes through.
func TestCheckpointTxHandlerPanics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, _ := openDriver(t, sqlite.Options{})
	var db *sql.DB
	require.True(t, d.As(&db))
	readModel(t, db)
	require.Panics(t, func() {
		d.CheckpointTx(ctx, "proj", driver.Position{}, false, driver.Position{Commit: 1}, func(tx driver.Tx) error {
			if err := addTotal(ctx, "orders", 1)(tx); err != nil {
				return err
			}
			panic("handler bug")
		})
	})
	_, ok := total(t, db, "orders")
	assert.False(t, ok, "the panicking handler's write was rolled back")
	// Had the panic kept the write connection, the next call would wait
	// for it until its context is done.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, d.CheckpointTx(ctx, "proj", driver.Position{}, false, driver.Position{Commit: 1}, addTotal(ctx, "orders", 2)))
	n, _ := total(t, db, "orders")
	assert.Equal(t, 2, n)
	_, err := eventstore.New(d, eventstore.Options{}).Append(ctx, "Order-1", eventstore.NoStream, events(1, "Placed")...)
	require.NoError(t, err)
}
