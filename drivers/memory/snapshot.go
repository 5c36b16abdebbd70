package memory

import (
	"context"
	"slices"

	"github.com/eventkit/eventstore/driver"
)

// SaveSnapshot implements [driver.Driver].
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap driver.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.snapshots[stream]; ok && old.Version > snap.Version {
		return nil
	}
	snap.Data = slices.Clone(snap.Data)
	d.snapshots[stream] = snap
	return nil
}

// LoadSnapshot implements [driver.Driver].
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return driver.Snapshot{}, false, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	snap, ok := d.snapshots[stream]
	snap.Data = slices.Clone(snap.Data)
	return snap, ok, nil
}
