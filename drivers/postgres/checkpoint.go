package postgres

import (
	"context"

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
