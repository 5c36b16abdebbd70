package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// queryLockCheckpoint reads a checkpoint with a statement that writes
// (setting a column to itself), so that it takes the file's write lock even
// in a transaction that began DEFERRED (a pool given to [New] may begin
// them so): the check and the save then happen under one lock, with no
// read lock to upgrade later. It returns no row when none is stored.
const queryLockCheckpoint = `UPDATE checkpoints SET position_commit = position_commit WHERE name = ?
	RETURNING position_commit, position_prepare`

// CheckpointTx implements [driver.CheckpointTxer] with a *sql.Tx on the
// write connection, the one appends use: it waits for that connection
// (one write transaction at a time in this process), begins the
// transaction and takes the file's write lock (waiting for other processes
// as appends do, up to Options.BusyTimeout), reads the checkpoint and
// compares it with prev before fn runs, calls fn, saves pos with the
// statement of SaveCheckpoint and commits. Racers therefore serialise, and
// only the first of those starting from one prev commits; the others find
// the checkpoint moved and return an error matching
// [eventstore.ErrCheckpointMoved] without calling fn.
//
// fn receives a [driver.Tx] whose As sets a **sql.Tx. fn must write only
// through that *sql.Tx: the transaction holds the write lock, so a write
// through another connection (the *sql.DB of [Driver.As], or an append on
// the same Store) waits for it until it gives up.
func (d *Driver) CheckpointTx(ctx context.Context, name string, prev driver.Position, hasPrev bool, pos driver.Position, fn func(driver.Tx) error) error {
	w, err := d.takeWriter(ctx)
	if err != nil {
		return mapError(err, nil)
	}
	defer d.giveWriter()
	var (
		tx    *sql.Tx
		cur   driver.Position
		found bool
	)
	err = d.whileBusy(ctx, func() error {
		// The transaction ends only when this function ends it: with ctx,
		// database/sql would roll it back from another goroutine when ctx
		// is done and drop the connection. Statements still take ctx.
		var err error
		if tx, err = w.conn.BeginTx(context.WithoutCancel(ctx), nil); err != nil {
			return err
		}
		var commit, prepare int64
		err = tx.QueryRowContext(ctx, queryLockCheckpoint, name).Scan(&commit, &prepare)
		found = err == nil
		cur = driver.Position{Commit: uint64(commit), Prepare: uint64(prepare)}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			tx.Rollback()
			return err
		}
		return nil
	})
	if err != nil {
		d.abort(ctx, w)
		return mapError(err, nil)
	}
	committed := false
	defer func() {
		if !committed { // an error, or a panic in fn
			tx.Rollback()
			d.abort(ctx, w)
		}
	}()
	err = func() error {
		if found != hasPrev || found && cur != prev {
			return fmt.Errorf("sqlite: checkpoint %q: %w", name, eventstore.ErrCheckpointMoved)
		}
		if fn != nil {
			if err := fn(sqlTx{tx}); err != nil {
				return err // as it is: the caller looks for the handler's error
			}
		}
		if _, err := tx.ExecContext(ctx, querySaveCheckpoint, name, int64(pos.Commit), int64(pos.Prepare)); err != nil {
			return mapError(err, nil)
		}
		// A done ctx rolls back, as in write.
		if err := ctx.Err(); err != nil {
			return err
		}
		return mapError(tx.Commit(), nil)
	}()
	committed = err == nil
	return err
}

// sqlTx is the [driver.Tx] of CheckpointTx.
type sqlTx struct{ tx *sql.Tx }

// As sets a **sql.Tx target to the transaction.
func (t sqlTx) As(target any) bool {
	if p, ok := target.(**sql.Tx); ok && p != nil {
		*p = t.tx
		return true
	}
	return false
}
