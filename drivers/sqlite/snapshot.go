package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/eventkit/eventstore/driver"
)

// SaveSnapshot implements [driver.Driver]: one upsert in the snapshots
// table that keeps the stored snapshot when its version is higher.
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap driver.Snapshot) error {
	err := d.write(ctx, func(w *writer) error {
		_, err := w.saveSnapshot.ExecContext(ctx, stream, int64(snap.Version), nonNil(snap.Data))
		return err
	})
	return mapError(err, nil)
}

// LoadSnapshot implements [driver.Driver].
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
	var (
		snap    driver.Snapshot
		version int64
	)
	err := d.read.loadSnapshot.QueryRowContext(ctx, stream).Scan(&version, &snap.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return driver.Snapshot{}, false, nil
	}
	if err != nil {
		return driver.Snapshot{}, false, mapError(err, nil)
	}
	snap.Version = uint64(version)
	return snap, true, nil
}
