package driver

import (
	"context"
	"time"
)

// Lease is one lease of a consumer group, as stored: a member's claim on a
// part of the group's work (a partition of its streams) or on its own
// membership, with the checkpoint of that part.
type Lease struct {
	// Group is the consumer group's name; Key names the lease within it
	// (the engine uses "member/ID" and "partition/COUNT/INDEX").
	Group, Key string
	// Owner is the member holding the lease, "" once released.
	Owner string
	// Generation counts the grants of the lease to a member that did not
	// hold it: 1 for the first grant. It is the fencing token a holder
	// presents to save a position, so a holder that lost the lease cannot.
	Generation uint64
	// Expires is when the lease lapses, by the backend's clock.
	Expires time.Time
	// Position is the checkpoint saved with SaveLeasePosition; HasPosition
	// is false while none was saved.
	Position    Position
	HasPosition bool
}

// Leaser is an optional Driver capability: leases kept in the store, on
// which eventstore.Store.SubscribeGroup builds consumer groups whose members
// join and leave at run time. Without it SubscribeGroup returns
// eventstore.ErrNotSupported.
//
// Every method is atomic on the backend. Expiry is judged by one clock, the
// backend's where it has one (a SQL server's now()) and the driver's process
// clock otherwise; the driver's documentation says which.
type Leaser interface {
	// AcquireLease grants lease (group, key) to owner until ttl from now if
	// it is free (never granted, released, or expired) or already held by
	// owner, and reports whether it did. A grant to a member that did not
	// hold it increments Generation; a renewal by the holder keeps it. The
	// saved position is kept either way. It returns the lease as stored
	// afterwards, granted or not.
	AcquireLease(ctx context.Context, group, key, owner string, ttl time.Duration) (lease Lease, granted bool, err error)
	// ReleaseLease frees the lease if owner holds it at generation, so
	// another member may take it at once; otherwise it does nothing and
	// returns nil.
	ReleaseLease(ctx context.Context, group, key, owner string, generation uint64) error
	// SaveLeasePosition stores pos as the lease's checkpoint if owner still
	// holds it at generation (expired or not, as long as no one else was
	// granted it since). Otherwise it stores nothing and returns an error
	// matching eventstore.ErrLeaseLost.
	SaveLeasePosition(ctx context.Context, group, key, owner string, generation uint64, pos Position) error
	// Leases returns the leases of group sorted by key, and the backend's
	// clock at the time of reading, against which their Expires compare.
	Leases(ctx context.Context, group string) (leases []Lease, now time.Time, err error)
	// DeleteLeases removes every lease of group, positions included.
	DeleteLeases(ctx context.Context, group string) error
}

// CheckpointTxer is an optional Driver capability: a backend transaction in
// which a projection's handler writes its read model and its checkpoint is
// saved, so both commit or neither does. Without it
// eventstore.Store.Project returns eventstore.ErrNotSupported.
type CheckpointTxer interface {
	// CheckpointTx begins a transaction, calls fn with it, and when fn
	// returns nil saves pos as checkpoint name in the same transaction and
	// commits. The save is a compare-and-set: if the stored checkpoint is
	// not prev (hasPrev false: no checkpoint stored) it rolls back and
	// returns an error matching eventstore.ErrCheckpointMoved. When fn
	// returns an error it rolls back and returns that error. fn may be nil:
	// only the checkpoint is saved. The checkpoint is the one LoadCheckpoint
	// reads.
	CheckpointTx(ctx context.Context, name string, prev Position, hasPrev bool, pos Position, fn func(tx Tx) error) error
}

// Tx is a backend transaction handed to a projection's handler. As sets
// target, a pointer to one of the native transaction types the driver's
// documentation lists (*sql.Tx, pgx.Tx, ...), and reports whether it could.
// The transaction is valid only while the handler runs; the handler must
// not commit or roll it back.
type Tx interface {
	As(target any) bool
}
