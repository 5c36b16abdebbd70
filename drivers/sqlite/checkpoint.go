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

// Checkpoints implements [driver.CheckpointManager]: the checkpoints
// table in name order (SQLite compares TEXT bytewise, as strings.Compare).
func (d *Driver) Checkpoints(ctx context.Context) ([]driver.Checkpoint, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT name, position_commit, position_prepare FROM checkpoints ORDER BY name")
	if err != nil {
		return nil, mapError(err, nil)
	}
	defer rows.Close()
	var out []driver.Checkpoint
	for rows.Next() {
		var c driver.Checkpoint
		var commit, prepare int64
		if err := rows.Scan(&c.Name, &commit, &prepare); err != nil {
			return nil, mapError(err, nil)
		}
		c.Position = driver.Position{Commit: uint64(commit), Prepare: uint64(prepare)}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err, nil)
	}
	return out, nil
}

// DeleteCheckpoint implements [driver.CheckpointManager]: one DELETE on the
// write connection.
func (d *Driver) DeleteCheckpoint(ctx context.Context, name string) error {
	err := d.write(ctx, func(w *writer) error {
		_, err := w.conn.ExecContext(ctx, "DELETE FROM checkpoints WHERE name = ?", name)
		return err
	})
	return mapError(err, nil)
}
