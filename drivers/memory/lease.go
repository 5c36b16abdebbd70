package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// leaseKey identifies a lease in Driver.leases.
type leaseKey struct{ group, key string }

// AcquireLease implements [driver.Leaser]. Expiry is judged by the process
// clock.
func (d *Driver) AcquireLease(ctx context.Context, group, key, owner string, ttl time.Duration) (driver.Lease, bool, error) {
	if err := ctx.Err(); err != nil {
		return driver.Lease{}, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	l, ok := d.leases[leaseKey{group, key}]
	if !ok {
		l = driver.Lease{Group: group, Key: key}
	}
	if l.Owner != owner && l.Owner != "" && now.Before(l.Expires) {
		return l, false, nil
	}
	if l.Owner != owner {
		l.Owner = owner
		l.Generation++
	}
	l.Expires = now.Add(ttl)
	d.leases[leaseKey{group, key}] = l
	return l, true, nil
}

// ReleaseLease implements [driver.Leaser].
func (d *Driver) ReleaseLease(ctx context.Context, group, key, owner string, generation uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.leases[leaseKey{group, key}]
	if ok && l.Owner == owner && l.Generation == generation {
		l.Owner, l.Expires = "", time.Time{}
		d.leases[leaseKey{group, key}] = l
	}
	return nil
}

// SaveLeasePosition implements [driver.Leaser].
func (d *Driver) SaveLeasePosition(ctx context.Context, group, key, owner string, generation uint64, pos driver.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.leases[leaseKey{group, key}]
	if !ok || l.Owner != owner || l.Generation != generation {
		return fmt.Errorf("memory: lease %s %s of %q at generation %d: %w", group, key, owner, generation, eventstore.ErrLeaseLost)
	}
	l.Position, l.HasPosition = pos, true
	d.leases[leaseKey{group, key}] = l
	return nil
}

// Leases implements [driver.Leaser].
func (d *Driver) Leases(ctx context.Context, group string) ([]driver.Lease, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []driver.Lease
	for k, l := range d.leases {
		if k.group == group {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b driver.Lease) int { return strings.Compare(a.Key, b.Key) })
	return out, time.Now(), nil
}

// DeleteLeases implements [driver.Leaser].
func (d *Driver) DeleteLeases(ctx context.Context, group string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	maps.DeleteFunc(d.leases, func(k leaseKey, _ driver.Lease) bool { return k.group == group })
	return nil
}

// CheckpointTx implements [driver.CheckpointTxer]. Calls run one at a time
// (the driver's projection lock) and the checkpoint is checked before fn runs
// and set after; fn may call the Store. The memory driver has no native
// transaction, so the handler's Tx.As sets nothing and nothing fn did is
// undone when it fails: a read model kept in the same process lives and
// dies with the driver.
func (d *Driver) CheckpointTx(ctx context.Context, name string, prev driver.Position, hasPrev bool, pos driver.Position, fn func(driver.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.txMu.Lock()
	defer d.txMu.Unlock()
	moved := func() error {
		cur, ok := d.checkpoints[name]
		if ok != hasPrev || ok && cur != prev {
			return fmt.Errorf("memory: checkpoint %q: %w", name, eventstore.ErrCheckpointMoved)
		}
		return nil
	}
	d.mu.RLock()
	err := moved()
	d.mu.RUnlock()
	if err != nil {
		return err
	}
	if fn != nil {
		if err := fn(noTx{}); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := moved(); err != nil { // SetCheckpoint while fn ran
		return err
	}
	d.checkpoints[name] = pos
	return nil
}

// noTx is the memory driver's driver.Tx: there is no native transaction.
type noTx struct{}

func (noTx) As(any) bool { return false }
