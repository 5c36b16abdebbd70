package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/eventkit/eventstore/driver"
)

// GroupLease is one lease of a consumer group as stored: a member's
// membership ("member/NAME") or a partition ("partition/COUNT/INDEX") with
// the partition's checkpoint. See [Store.SubscribeGroup].
type GroupLease struct {
	Key   string
	Owner string // the member holding it; "" when free
	// Generation counts the grants of the lease to a new holder.
	Generation uint64
	// Expires is when the lease lapses unless renewed; Held is true while
	// it has an owner and has not lapsed, by the store's clock.
	Expires time.Time
	Held    bool
	// Checkpoint is a partition's checkpoint; HasCheckpoint is false while
	// none was saved.
	Checkpoint    Position
	HasCheckpoint bool
}

// GroupLeases returns the leases of consumer group name, sorted by key:
// which members are alive, who holds each partition, and each partition's
// checkpoint. Drivers without [driver.Leaser] return [ErrNotSupported].
func (s *Store) GroupLeases(ctx context.Context, name string) ([]GroupLease, error) {
	var out []GroupLease
	err := s.groupCall(ctx, "group leases", name, func(l driver.Leaser) error {
		leases, now, err := l.Leases(ctx, name)
		if err != nil {
			return err
		}
		out = make([]GroupLease, len(leases))
		for i, ls := range leases {
			out[i] = GroupLease{Key: ls.Key, Owner: ls.Owner, Generation: ls.Generation, Expires: ls.Expires,
				Held:       ls.Owner != "" && now.Before(ls.Expires),
				Checkpoint: Position(ls.Position), HasCheckpoint: ls.HasPosition}
		}
		return nil
	})
	return out, err
}

// DeleteGroup removes every lease of consumer group name, the partitions'
// checkpoints with them: started again, the group begins as new (at After,
// or the end of the log with FromEnd). Stop its members first: a running
// member would go on with what it holds. Deleting a group that has no
// leases is not an error. Drivers without [driver.Leaser] return
// [ErrNotSupported].
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	return s.groupCall(ctx, "delete group", name, func(l driver.Leaser) error { return l.DeleteLeases(ctx, name) })
}

// groupCall validates a group name and calls the driver's Leaser.
func (s *Store) groupCall(ctx context.Context, op, name string, call func(driver.Leaser) error) error {
	if err := validateName(ErrInvalidArgument, "group name", name); err != nil {
		return fmt.Errorf("eventstore: %s %q: %w", op, name, err)
	}
	err := s.do(ctx, func() error {
		if s.leaser == nil {
			return ErrNotSupported
		}
		return call(s.leaser)
	})
	if err != nil {
		return fmt.Errorf("eventstore: %s %q: %w", op, name, err)
	}
	return nil
}
