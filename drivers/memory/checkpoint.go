package memory

import (
	"context"

	"github.com/eventkit/eventstore/driver"
)

// SaveCheckpoint implements [driver.Driver].
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkpoints[name] = pos
	return nil
}

// LoadCheckpoint implements [driver.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	if err := ctx.Err(); err != nil {
		return driver.Position{}, false, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	pos, ok := d.checkpoints[name]
	return pos, ok, nil
}
