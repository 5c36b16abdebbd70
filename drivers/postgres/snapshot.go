package postgres

import (
	"context"

	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

// SaveSnapshot implements [driver.Driver].
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap driver.Snapshot) error {
	if _, err := d.pool.Exec(ctx, d.sql.saveSnapshot, stream, clamp(snap.Version), nonNil(snap.Data)); err != nil {
		return wrapNative(err)
	}
	return nil
}

// LoadSnapshot implements [driver.Driver].
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
	var snap driver.Snapshot
	var v int64
	err := d.pool.QueryRow(ctx, d.sql.loadSnapshot, stream).Scan(&v, &snap.Data)
	if err == pgx.ErrNoRows {
		return driver.Snapshot{}, false, nil
	}
	if err != nil {
		return driver.Snapshot{}, false, wrapNative(err)
	}
	snap.Version = uint64(v)
	return snap, true, nil
}
