package dynamodb

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The tag index's window (see tagindex.go). A reader of the tag index
// reads the last log entry directly and trusts the tag items of every
// entry below it: that holds while each log entry is written only once the
// transactions of the entries below it are applied whole. DynamoDB applies
// a transaction's items one by one, and it serialises transactions per
// item only (a transaction conflicts with another in progress on the same
// item, not on its other items), and reads other than TransactGetItems are
// read-committed per item: a transaction whose log entry is visible may
// still be applying its tag items. A writer that follows its own last
// transaction (which returned, so every item of it is applied) is safe. A
// writer that read the next position from the table (another process's
// entry in a head table, the head item at an orderer's lease handover, the
// pin of a conditional append placed by a process that does not hold the
// lease) may be about to write above a transaction still being applied.
//
// Such a writer first settles the log below its position: it reads the
// log entries of the positions a transaction ending there may cover (an
// entry holds at most maxTxnItems-1 events, so those starting at
// next-99 … next-1: a head table's transaction may hold several entries;
// an indexed table's holds one, the entry ending at next-1, waited for
// since the head item may be applied before it) and confirms with strongly consistent reads that the tag items those
// entries list exist, waiting for the missing ones. A checked tag item
// is applied, so an entry written after the check is visible only with
// every tag item below it. Checking the entry itself in the transaction
// (a ConditionCheck) would not do: it conflicts only while that one item
// is being applied.

// settleWait bounds how long a writer waits for the tag items of the
// entries below it. A transaction's items are applied within milliseconds
// of each other; a tag item missing for longer is not one being applied
// (an entry written by a driver from before the index), and waiting would
// only stop the log.
const settleWait = 5 * time.Second

// settledNext returns the next free position of a head table's log, read
// from the table, once the log below it is settled.
func (d *Driver) settledNext(ctx context.Context) (uint64, error) {
	next, err := d.nextPosition(ctx)
	if err != nil {
		return 0, err
	}
	return next, d.settleBelow(ctx, next)
}

// settleBelow returns once the tag items of the log entries that may share
// a transaction with the entry ending at next-1 are visible, at most
// settleWait; at once for a table without the tag index.
func (d *Driver) settleBelow(ctx context.Context, next uint64) error {
	if !d.tagIndex || next <= 1 || d.noSettle.Load() {
		return nil
	}
	deadline := time.Now().Add(settleWait)
	var keys []eventKey
	var err error
	if d.indexed {
		keys, err = d.lastEntryTagKeys(ctx, next, deadline)
	} else {
		keys, err = d.tagKeysBelow(ctx, next, deadline)
	}
	if err != nil || len(keys) == 0 {
		return err
	}
	for attempt := 1; ; attempt++ {
		found := make(map[eventKey]bool, len(keys))
		for chunk := range slices.Chunk(keys, maxBatchGet) {
			items, err := d.batchGet(ctx, chunk, "pk, sk")
			if err != nil {
				return wrapNative(err)
			}
			for _, item := range items {
				pk, _ := getStr(item, attrPK)
				sk, _ := getNum(item, attrSK)
				found[eventKey{stream: pk, version: sk}] = true
			}
		}
		if len(found) == len(keys) {
			return nil
		}
		missing := keys[:0]
		for _, k := range keys {
			if !found[k] {
				missing = append(missing, k)
			}
		}
		keys = missing
		if giveUp, err := d.settleRetry(ctx, next, len(keys), attempt, deadline,
			"dynamodb: tag items of the log below the next position are still missing; writing on",
			"missing", len(keys), "first", keys[0].stream); giveUp || err != nil {
			return err
		}
	}
}

// settleRetry follows a settling look that found n items missing: it tells
// the test hook, and sleeps before the next look (5 ms more each attempt,
// at most 100 ms). Past deadline it logs msg with attrs instead and reports
// giveUp: the writer then writes on.
func (d *Driver) settleRetry(ctx context.Context, next uint64, n, attempt int, deadline time.Time, msg string, attrs ...any) (giveUp bool, err error) {
	if h := d.settleHook.Load(); h != nil {
		(*h)(next, n)
	}
	if time.Now().After(deadline) {
		d.logger.Warn(msg, append([]any{"driver", "dynamodb", "table", d.table, "next", next}, attrs...)...)
		return true, nil
	}
	return false, sleep(ctx, min(time.Duration(attempt)*5*time.Millisecond, 100*time.Millisecond))
}

// entryTagKeys returns the keys of log entry e's tag items: one per
// distinct tag of its events, none for an entry without tags.
func entryTagKeys(e logEntry) []eventKey {
	if e.tags == nil {
		return nil
	}
	tags, _ := tagGroups(entryRuns(e))
	keys := make([]eventKey, 0, len(tags))
	for _, t := range tags {
		keys = append(keys, eventKey{stream: tagPK(t), version: e.start})
	}
	return keys
}

// lastEntryTagKeys returns the keys of the tag items of the log entry
// ending at next-1 of an indexed table. There, every transaction writes one
// log entry (a pass, a direct placement, a placed conditional append), so
// only that one can be in flight; but next was read from the head item,
// which its transaction may have applied before the entry: it waits for
// the entry too (until deadline).
func (d *Driver) lastEntryTagKeys(ctx context.Context, next uint64, deadline time.Time) ([]eventKey, error) {
	for attempt := 1; ; attempt++ {
		e, ok, err := d.entryCovering(ctx, next-1)
		if err != nil {
			return nil, wrapNative(err)
		}
		if ok && e.last() == next-1 {
			return entryTagKeys(e), nil
		}
		if giveUp, err := d.settleRetry(ctx, next, 1, attempt, deadline,
			"dynamodb: the log entry below the head is still missing; writing on"); giveUp || err != nil {
			return nil, err
		}
	}
}

// tagKeysBelow returns the keys of the tag items of the log entries of a
// head table that start at positions next-99 … next-1: those a transaction
// ending at next-1 may hold. Entries of one transaction become visible one
// by one too, so it reads the entries from next-198 on (strongly consistent
// queries of their log partitions) and waits (until deadline) while they
// leave a gap: every 99 positions hold the start of an entry, so an entry
// starting at next-99 or later that is not visible yet shows as one.
func (d *Driver) tagKeysBelow(ctx context.Context, next uint64, deadline time.Time) ([]eventKey, error) {
	lo := next - min(next-1, maxTxnItems-1)
	from := lo - min(lo-1, maxTxnItems-1)
	for attempt := 1; ; attempt++ {
		entries, err := d.entriesBetween(ctx, from, next-1)
		if err != nil {
			return nil, err
		}
		dense := len(entries) > 0 && entries[len(entries)-1].last() == next-1 && (from > 1 || entries[0].start == 1)
		for i := 1; dense && i < len(entries); i++ {
			dense = entries[i-1].last()+1 == entries[i].start
		}
		if dense {
			var keys []eventKey
			for _, e := range entries {
				if e.start >= lo {
					keys = append(keys, entryTagKeys(e)...)
				}
			}
			return keys, nil
		}
		if giveUp, err := d.settleRetry(ctx, next, 1, attempt, deadline,
			"dynamodb: the log entries below the next position leave a gap; writing on"); giveUp || err != nil {
			return nil, err
		}
	}
}

// entriesBetween returns the visible log entries that start at positions
// lo … hi, in position order.
func (d *Driver) entriesBetween(ctx context.Context, lo, hi uint64) ([]logEntry, error) {
	var entries []logEntry
	for b := lo / d.bucketSize; b <= hi/d.bucketSize; b++ {
		in := &awsdynamodb.QueryInput{
			KeyConditionExpression: aws.String("pk = :l AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":l": str(logPK(b)), ":lo": num(lo), ":hi": num(hi),
			},
		}
		for {
			out, err := d.query(ctx, in)
			if err != nil {
				return nil, wrapNative(err)
			}
			for _, item := range out.Items {
				e, err := decodeLogEntry(item)
				if err != nil {
					return nil, err
				}
				entries = append(entries, e)
			}
			if out.LastEvaluatedKey == nil {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return entries, nil
}
