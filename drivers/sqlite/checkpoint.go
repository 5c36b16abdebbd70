package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/eventkit/eventstore"
)

// SaveCheckpoint implements [eventstore.Driver]. Both parts of the position
// are stored bit for bit as signed 64-bit integers.
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos eventstore.Position) error {
	err := d.write(ctx, func(w *writer) error {
		_, err := w.saveCheckpoint.ExecContext(ctx, name, int64(pos.Commit), int64(pos.Prepare))
		return err
	})
	return mapError(err, nil)
}

// LoadCheckpoint implements [eventstore.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (eventstore.Position, bool, error) {
	var commit, prepare int64
	err := d.read.loadCheckpoint.QueryRowContext(ctx, name).Scan(&commit, &prepare)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Position{}, false, nil
	}
	if err != nil {
		return eventstore.Position{}, false, mapError(err, nil)
	}
	return eventstore.Position{Commit: uint64(commit), Prepare: uint64(prepare)}, true, nil
}
