package postgres

import (
	"context"
	"slices"
	"strings"

	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

// SaveCheckpoint implements [driver.Driver]. Both parts of the position
// are stored: the transaction ID alone would lose events (DESIGN.md).
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	if _, err := d.pool.Exec(ctx, d.sql.saveCheckpoint, name, clamp(pos.Commit), clamp(pos.Prepare)); err != nil {
		return wrapNative(err)
	}
	return nil
}

// LoadCheckpoint implements [driver.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	var txID, seq int64
	err := d.pool.QueryRow(ctx, d.sql.loadCheckpt, name).Scan(&txID, &seq)
	if err == pgx.ErrNoRows {
		return driver.Position{}, false, nil
	}
	if err != nil {
		return driver.Position{}, false, wrapNative(err)
	}
	return driver.Position{Commit: uint64(txID), Prepare: uint64(seq)}, true, nil
}

// Checkpoints implements [driver.CheckpointManager]: every row of the
// checkpoints table, with positions as LoadCheckpoint returns them. The names
// are sorted here, in byte order as strings.Compare has it, rather than by
// the server, whose order follows the database's collation (an ICU or libc
// locale other than C sorts "a" before "B"). It needs SELECT on the table.
func (d *Driver) Checkpoints(ctx context.Context) ([]driver.Checkpoint, error) {
	rows, err := d.pool.Query(ctx, d.sql.checkpoints)
	if err != nil {
		return nil, wrapNative(err)
	}
	var (
		out       []driver.Checkpoint
		name      string
		txID, seq int64
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &txID, &seq}, func() error {
		out = append(out, driver.Checkpoint{Name: name, Position: driver.Position{Commit: uint64(txID), Prepare: uint64(seq)}})
		return nil
	})
	if err != nil {
		return nil, wrapNative(err)
	}
	slices.SortFunc(out, func(a, b driver.Checkpoint) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteCheckpoint implements [driver.CheckpointManager]. Deleting a name
// that has no checkpoint deletes no row and is not an error. It needs
// DELETE on the checkpoints table.
func (d *Driver) DeleteCheckpoint(ctx context.Context, name string) error {
	if _, err := d.pool.Exec(ctx, d.sql.deleteCheckpoint, name); err != nil {
		return wrapNative(err)
	}
	return nil
}
