package memory

import (
	"context"
	"slices"
	"strings"

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

// Checkpoints implements [driver.CheckpointManager].
func (d *Driver) Checkpoints(ctx context.Context) ([]driver.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]driver.Checkpoint, 0, len(d.checkpoints))
	for name, pos := range d.checkpoints {
		out = append(out, driver.Checkpoint{Name: name, Position: pos})
	}
	slices.SortFunc(out, func(a, b driver.Checkpoint) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteCheckpoint implements [driver.CheckpointManager].
func (d *Driver) DeleteCheckpoint(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.checkpoints, name)
	return nil
}
