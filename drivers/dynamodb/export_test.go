package dynamodb

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Hooks for the external tests (package dynamodb_test).

// SetLogBucketSize makes a driver that creates a table's layout item use n
// positions per log partition (at least 100), so tests cross partitions.
func SetLogBucketSize(opts *Options, n uint64) { opts.logBucketSize = n }

// LogBucketSize returns the positions per log partition of d's table.
func LogBucketSize(d *Driver) uint64 { return d.bucketSize }

// SetRetryHook makes d call f before each retried request.
func SetRetryHook(d *Driver, f func(op string, err error)) { d.retryHook = f }

// LogItem is the log entry d writes for an append of events to stream,
// starting at version first, at positions start….
func LogItem(d *Driver, start uint64, stream string, first uint64, events []eventstore.Event) map[string]types.AttributeValue {
	return logItem(start/d.bucketSize, start, stream, first, driverEvents(events))
}

// EventItem is the item of an event at a version and position.
func EventItem(stream string, version, pos uint64, e eventstore.Event, at time.Time) map[string]types.AttributeValue {
	return eventItem(stream, version, pos, driverEvents([]eventstore.Event{e})[0], at, driver.JSON)
}

// driverEvents returns the driver's form of events, as the Store passes them.
func driverEvents(events []eventstore.Event) []driver.Event {
	out := make([]driver.Event, len(events))
	for i, e := range events {
		out[i] = driver.Event{ID: e.ID, Type: e.Type, ContentType: driver.ContentType(e.ContentType), Data: e.Data, Metadata: e.Metadata, Tags: e.Tags}
	}
	return out
}

// LogItemAt is the log entry of an append in a table with bucketSize
// positions per log partition.
func LogItemAt(bucketSize, start uint64, stream string, first uint64, events []eventstore.Event) map[string]types.AttributeValue {
	return logItem(start/bucketSize, start, stream, first, driverEvents(events))
}

// DecodeEvent decodes an event item.
var DecodeEvent = decodeEvent

// CopyEarlierCheckpoint copies the checkpoint of the earlier layout under
// name, as a scan that found it at pos would.
func CopyEarlierCheckpoint(ctx context.Context, d *Driver, name string, pos eventstore.Position) (bool, error) {
	return d.copyEarlierCheckpoint(ctx, name, driver.Position(pos))
}

// CheckpointKey is the primary key of the checkpoint saved under a name.
var CheckpointKey = checkpointKey

// LeaseKey is the primary key of lease (group, key).
var LeaseKey = leaseItemKey

// DirectAppends returns how many appends d placed directly in the log, as
// the holder of the orderer's lease, without an inbox entry.
func DirectAppends(d *Driver) uint64 { return d.directAppends.Load() }

// SetNoTagIndex makes a driver that creates a table's layout item set the
// table up without the tag index, as a driver from before it did.
func SetNoTagIndex(opts *Options) { opts.noTagIndex = true }

// UnplacedPuts returns how many appends d wrote as one PutItem of an event
// marked unplaced.
func UnplacedPuts(d *Driver) uint64 { return d.unplacedPuts.Load() }

// StopSweeps makes d's removals of the streams stop reports stop right
// after their commit, with nothing swept, as a crash would; nil ends it.
func StopSweeps(d *Driver, stop func(stream string) bool) {
	if stop == nil {
		d.stopSweep.Store(nil)
		return
	}
	d.stopSweep.Store(&stop)
}

// StreamItem is an item of a stream's partition: its version (0: the meta
// item) and whether it is a stub.
type StreamItem struct {
	Version uint64
	Stub    bool
}

// StreamItems reads every item of a stream's partition.
func StreamItems(t testing.TB, d *Driver, stream string) []StreamItem {
	t.Helper()
	in := &awsdynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(stream)},
	}
	var out []StreamItem
	for {
		page, err := d.query(t.Context(), in)
		if err != nil {
			t.Fatalf("query the items of %q: %v", stream, err)
		}
		for _, item := range page.Items {
			v, err := getNum(item, attrSK)
			if err != nil {
				t.Fatalf("item of %q: %v", stream, err)
			}
			out = append(out, StreamItem{Version: v, Stub: isStub(item)})
		}
		if page.LastEvaluatedKey == nil {
			return out
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// SetSettleHook makes d call f each time a writer finds tag items missing
// below the position it is about to write (see window.go).
func SetSettleHook(d *Driver, f func(next uint64, missing int)) { d.settleHook.Store(&f) }

// PinnedAppends returns how many conditional appends d placed without
// holding the orderer's lease (see pinned.go).
func PinnedAppends(d *Driver) uint64 { return d.pinnedAppends.Load() }

// HoldsLease reports whether d's orderer holds the orderer's lease.
func HoldsLease(d *Driver) bool { return d.holdsLease() }

// SetNoSettle turns off d's settling of the log below a position read
// from the table (see window.go), for a benchmark's baseline.
func SetNoSettle(d *Driver) { d.noSettle.Store(true) }
