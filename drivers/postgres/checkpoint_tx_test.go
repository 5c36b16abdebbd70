package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A read model written through the *pgx.Tx that Tx.As hands out commits
// with the checkpoint and is rolled back with it: when the handler fails,
// when one of its statements fails, when the checkpoint moved (the handler
// does not even run), and when the handler tries to end the transaction
// itself.
func TestCheckpointTxReadModel(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	d := newDriver(t, pool, postgres.Options{})
	table := pgx.Identifier{d.Schema(), "read_model"}.Sanitize()
	_, err := pool.Exec(ctx, `CREATE TABLE `+table+` (id text PRIMARY KEY, n bigint NOT NULL CHECK (n >= 0))`)
	require.NoError(t, err)

	p1, p2 := driver.Position{Commit: 10, Prepare: 1}, driver.Position{Commit: 20, Prepare: 2}
	boom := errors.New("read model rejected the batch")
	// insert returns a handler that writes row id (n: its value) through
	// the native transaction, then returns ret.
	insert := func(id string, n int, ret error) func(driver.Tx) error {
		return func(tx driver.Tx) error {
			var ptx pgx.Tx
			if !tx.As(&ptx) {
				return errors.New("Tx.As(*pgx.Tx) = false")
			}
			if _, err := ptx.Exec(ctx, `INSERT INTO `+table+` (id, n) VALUES ($1, $2)`, id, n); err != nil {
				return err
			}
			return ret
		}
	}
	for _, tc := range []struct {
		name    string
		prev    driver.Position
		hasPrev bool
		to      driver.Position
		fn      func(driver.Tx) error
		wantErr func(error) bool
		stored  bool // the row and the checkpoint at to are committed
	}{
		{"first batch", driver.Position{}, false, p1, insert("first", 1, nil), nil, true},
		{"from none again", driver.Position{}, false, p2, insert("again", 1, nil), isMoved, false},
		{"from elsewhere", p2, true, p2, insert("elsewhere", 1, nil), isMoved, false},
		{"handler error", p1, true, p2, insert("failed", 1, boom), func(err error) bool { return errors.Is(err, boom) }, false},
		{"a statement of the handler fails, the handler returns nil", p1, true, p2, func(tx driver.Tx) error {
			_ = insert("negative", -1, nil)(tx) // violates the CHECK: the transaction aborts
			return nil
		}, func(err error) bool { return errors.Is(err, pgx.ErrTxCommitRollback) }, false},
		{"the handler commits", p1, true, p2, func(tx driver.Tx) error {
			if err := insert("committed", 1, nil)(tx); err != nil {
				return err
			}
			var ptx pgx.Tx
			tx.As(&ptx)
			return ptx.Commit(ctx)
		}, func(err error) bool { return err != nil && !errors.Is(err, eventstore.ErrCheckpointMoved) }, false},
		{"a savepoint inside", p1, true, p2, func(tx driver.Tx) error {
			var ptx pgx.Tx
			tx.As(&ptx)
			// A failed statement inside a savepoint rolls back to it
			// only; the batch still commits.
			err := pgx.BeginFunc(ctx, ptx, func(sp pgx.Tx) error {
				_, err := sp.Exec(ctx, `INSERT INTO `+table+` (id, n) VALUES ('sp', -1)`)
				return err
			})
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
				return errors.New("want the savepoint's check violation, got " + errString(err))
			}
			return insert("second", 2, nil)(tx)
		}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, hadBefore, err := d.LoadCheckpoint(ctx, "proj")
			require.NoError(t, err)
			called := false
			fn := func(tx driver.Tx) error { called = true; return tc.fn(tx) }
			err = d.CheckpointTx(ctx, "proj", tc.prev, tc.hasPrev, tc.to, fn)
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.True(t, tc.wantErr(err), "unexpected error: %v", err)
			}
			if isMoved(err) {
				assert.False(t, called, "the handler ran though the checkpoint had moved")
			}
			got, has, err := d.LoadCheckpoint(ctx, "proj")
			require.NoError(t, err)
			if tc.stored {
				assert.Equal(t, tc.to, got, "checkpoint")
			} else {
				assert.Equal(t, before, got, "checkpoint unchanged")
				assert.Equal(t, hadBefore, has)
			}
		})
	}
	rows, err := pool.Query(ctx, `SELECT id FROM `+table+` ORDER BY id`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"first", "second"}, ids, "the read model holds the committed batches only")
	var idle int32
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%read_model%'`).Scan(&idle))
	assert.Zero(t, idle, "no transaction left open")
}

func isMoved(err error) bool { return errors.Is(err, eventstore.ErrCheckpointMoved) }

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// Tx.As hands out a *pgx.Tx and nothing else.
func TestCheckpointTxAs(t *testing.T) {
	d := newDriver(t, newPool(t), postgres.Options{})
	require.NoError(t, d.CheckpointTx(t.Context(), "proj", driver.Position{}, false, driver.Position{Commit: 1}, func(tx driver.Tx) error {
		var ptx pgx.Tx
		assert.True(t, tx.As(&ptx), "*pgx.Tx")
		assert.NotNil(t, ptx)
		for _, target := range []any{nil, (*pgx.Tx)(nil), new(*pgxpool.Pool), new(*pgx.Conn), new(*pgx.Tx)} {
			assert.False(t, tx.As(target), "%T", target)
		}
		return nil
	}))
}

// Racers from no checkpoint wait for each other on the checkpoints table's
// unique index: exactly one commits, and the others' handlers never run;
// a racer from the same checkpoint waits on the row lock while the holder's
// handler runs and then finds the checkpoint moved.
func TestCheckpointTxRacersWait(t *testing.T) {
	d := newDriver(t, newPool(t), postgres.Options{})
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		prev    driver.Position
		hasPrev bool
	}{
		{"from none", driver.Position{}, false},
		{"from a checkpoint", driver.Position{Commit: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "proj-" + tc.name
			if tc.hasPrev {
				require.NoError(t, d.SaveCheckpoint(ctx, name, tc.prev))
			}
			inside := make(chan struct{})
			release := make(chan struct{})
			var wg sync.WaitGroup
			var firstErr error
			wg.Go(func() {
				firstErr = d.CheckpointTx(ctx, name, tc.prev, tc.hasPrev, driver.Position{Commit: 2}, func(driver.Tx) error {
					close(inside)
					<-release
					return nil
				})
			})
			<-inside
			secondDone := make(chan error, 1)
			secondRan := false
			go func() {
				secondDone <- d.CheckpointTx(ctx, name, tc.prev, tc.hasPrev, driver.Position{Commit: 3}, func(driver.Tx) error {
					secondRan = true
					return nil
				})
			}()
			select {
			case err := <-secondDone:
				t.Fatalf("the second racer returned %v while the first held the checkpoint", err)
			case <-time.After(200 * time.Millisecond): // it waits on the lock
			}
			close(release)
			wg.Wait()
			require.NoError(t, firstErr)
			err := <-secondDone
			require.True(t, isMoved(err), "the second racer: want ErrCheckpointMoved, got %v", err)
			assert.False(t, secondRan, "the second racer's handler ran")
			pos, _, err := d.LoadCheckpoint(ctx, name)
			require.NoError(t, err)
			assert.Equal(t, driver.Position{Commit: 2}, pos)
		})
	}
}

// A projection stopped while a batch runs: a handler that returns the
// context's error has its error returned as is and nothing committed; one
// that finished the batch (returns nil) has it committed, though the
// context is done by the time the driver commits.
func TestCheckpointTxCanceled(t *testing.T) {
	pool := newPool(t)
	d := newDriver(t, pool, postgres.Options{})
	table := pgx.Identifier{d.Schema(), "read_model"}.Sanitize()
	_, err := pool.Exec(t.Context(), `CREATE TABLE `+table+` (id text PRIMARY KEY)`)
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		handler   func(ctx context.Context) error
		committed bool
	}{
		{"the handler returns the context's error", func(ctx context.Context) error { return ctx.Err() }, false},
		{"the handler finished its batch", func(context.Context) error { return nil }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			err := d.CheckpointTx(ctx, tc.name, driver.Position{}, false, driver.Position{Commit: 1}, func(tx driver.Tx) error {
				var ptx pgx.Tx
				tx.As(&ptx)
				if _, err := ptx.Exec(ctx, `INSERT INTO `+table+` VALUES ($1)`, tc.name); err != nil {
					return err
				}
				cancel()
				return tc.handler(ctx)
			})
			_, has, lerr := d.LoadCheckpoint(t.Context(), tc.name)
			require.NoError(t, lerr)
			var rows int
			require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM `+table+` WHERE id = $1`, tc.name).Scan(&rows))
			if tc.committed {
				require.NoError(t, err)
				assert.True(t, has, "checkpoint saved")
				assert.Equal(t, 1, rows, "read model written")
			} else {
				require.ErrorIs(t, err, context.Canceled)
				assert.False(t, has, "a canceled transaction saved a checkpoint")
				assert.Zero(t, rows, "a canceled transaction wrote the read model")
			}
		})
	}
}
