package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

// moveCheckpointSQL is the compare-and-set of a projection's checkpoint
// from ($2, $3) to ($4, $5). It runs first in the transaction: the UPDATE
// takes the row's lock, so a racer moving the checkpoint from the same
// place waits for this transaction to end and then, at READ COMMITTED,
// re-checks its WHERE clause against the row this one left, updates no row
// and returns ErrCheckpointMoved without running its handler.
const moveCheckpointSQL = `UPDATE {{schema}}.checkpoints SET tx_id = $4, seq = $5 WHERE name = $1 AND tx_id = $2 AND seq = $3`

// createCheckpointSQL is the compare-and-set from no checkpoint: a racer's
// INSERT waits on the unique index for this transaction to end, then
// inserts nothing if it committed.
const createCheckpointSQL = `INSERT INTO {{schema}}.checkpoints (name, tx_id, seq) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`

// commitGrace is how long CheckpointTx's COMMIT may go on once its ctx is
// done.
const commitGrace = 5 * time.Second

// CheckpointTx implements [driver.CheckpointTxer]. The transaction (at the
// server's default isolation level) first moves the checkpoint from prev to
// pos with one conditional UPDATE (from no checkpoint: an INSERT ... ON
// CONFLICT DO NOTHING), which takes the checkpoint row's lock until the
// transaction ends; when it changes no row the checkpoint moved, and the
// transaction rolls back before fn runs. Then fn runs, and the transaction
// commits: three round trips (BEGIN, the compare-and-set, COMMIT) besides
// fn's statements. The new checkpoint is visible to fn's statements, and to
// no one else before the commit. fn's Tx sets a *pgx.Tx. Once fn has
// returned nil the COMMIT is sent and awaited even if ctx is done by then,
// for up to commitGrace more, so a projection stopped during a batch keeps
// the batch whose handler finished.
func (d *Driver) CheckpointTx(ctx context.Context, name string, prev driver.Position, hasPrev bool, pos driver.Position, fn func(driver.Tx) error) (err error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: checkpoint %q: begin: %w", name, native(err))
	}
	defer func() {
		if err != nil {
			// Fails only with the connection, which pgx then closes: the
			// server rolls back what it had.
			_ = tx.Rollback(ctx)
		}
	}()
	var moved int64
	if hasPrev {
		tag, err := tx.Exec(ctx, d.sql.moveCheckpoint, name, clamp(prev.Commit), clamp(prev.Prepare), clamp(pos.Commit), clamp(pos.Prepare))
		if err != nil {
			return fmt.Errorf("postgres: checkpoint %q: %w", name, native(err))
		}
		moved = tag.RowsAffected()
	} else {
		tag, err := tx.Exec(ctx, d.sql.createCheckpoint, name, clamp(pos.Commit), clamp(pos.Prepare))
		if err != nil {
			return fmt.Errorf("postgres: checkpoint %q: %w", name, native(err))
		}
		moved = tag.RowsAffected()
	}
	if moved == 0 {
		return fmt.Errorf("postgres: checkpoint %q: %w", name, eventstore.ErrCheckpointMoved)
	}
	if fn != nil {
		if err := fn(checkpointTx{handlerTx{tx}}); err != nil {
			return err // as is: the engine and the caller look for it
		}
	}
	// The batch is done: commit it even if ctx ended meanwhile (the
	// projection is stopping), within commitGrace, so its work is kept.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-time.After(commitGrace):
			cancel()
		case <-cctx.Done(): // committed
		}
	})
	defer stop()
	if err := tx.Commit(cctx); err != nil {
		if errors.Is(err, pgx.ErrTxCommitRollback) {
			return fmt.Errorf("postgres: checkpoint %q: commit: a statement of the handler failed, so the server rolled the transaction back: %w", name, err)
		}
		return fmt.Errorf("postgres: checkpoint %q: commit: %w", name, native(err))
	}
	return nil
}

// checkpointTx is the driver.Tx of CheckpointTx.
type checkpointTx struct{ tx pgx.Tx }

// As sets a *pgx.Tx to the transaction.
func (t checkpointTx) As(target any) bool {
	if p, ok := target.(*pgx.Tx); ok && p != nil {
		*p = t.tx
		return true
	}
	return false
}

// errHandlerEndsTx is what Commit and Rollback return to a handler: the
// driver ends the transaction.
var errHandlerEndsTx = errors.New("postgres: a projection handler must not commit or roll back its transaction: return nil to commit it with the checkpoint, an error to roll it back")

// handlerTx is the pgx.Tx a handler gets: the transaction, whose Commit and
// Rollback fail with errHandlerEndsTx. Begin (a savepoint) works as usual.
type handlerTx struct{ pgx.Tx }

// Commit refuses to commit the transaction: the driver does.
func (handlerTx) Commit(context.Context) error { return errHandlerEndsTx }

// Rollback refuses to roll the transaction back: the driver does.
func (handlerTx) Rollback(context.Context) error { return errHandlerEndsTx }
