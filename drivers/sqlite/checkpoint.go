package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/eventkit/eventstore/driver"
)

// SaveCheckpoint implements [driver.Driver]. Both parts of the position
// are stored bit for bit as signed 64-bit integers.
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	err := d.write(ctx, func(w *writer) error {
		_, err := w.saveCheckpoint.ExecContext(ctx, name, int64(pos.Commit), int64(pos.Prepare))
		return err
	})
	return mapError(err, nil)
}

// LoadCheckpoint implements [driver.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	var commit, prepare int64
	err := d.read.loadCheckpoint.QueryRowContext(ctx, name).Scan(&commit, &prepare)
	if errors.Is(err, sql.ErrNoRows) {
		return driver.Position{}, false, nil
	}
	if err != nil {
		return driver.Position{}, false, mapError(err, nil)
	}
	return driver.Position{Commit: uint64(commit), Prepare: uint64(prepare)}, true, nil
}
