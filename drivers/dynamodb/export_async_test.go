package dynamodb

import "context"

// AwaitPlaced waits, as an append in the default mode does (at most the
// driver's OrderTimeout), until the event at version of stream has a
// position in the log, and returns it (0 when the time passed first).
func AwaitPlaced(ctx context.Context, d *Driver, stream string, version uint64) (uint64, error) {
	return d.awaitPlaced(ctx, stream, version)
}

// HoldsOrdererLease reports whether d's orderer holds the orderer's lease.
func HoldsOrdererLease(d *Driver) bool { return d.orderer != nil && d.orderer.holding.Load() }

// SetBeforePut makes d call f before the PutItem of each single-event
// append, after its read of the previous version.
func SetBeforePut(d *Driver, f func(stream string)) { d.beforePut = f }
