package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/errkind"
)

// Removing events: deleted streams, truncation, retention.
//
// DynamoDB writes at most 100 items per transaction, so removing a long
// stream cannot be one transaction. A removal is therefore done in two
// steps, each safe to interrupt:
//
//  1. The commit: one small transaction that decides what is removed. It
//     raises the stream's "first kept version" (tb) in the stream's meta
//     item (pk = stream ID, sk = 0: no event has version 0) and turns the
//     item just below it (version tb-1) into a stub. A delete's stub is
//     marked deleted, which makes the stream read as version 0 and fails
//     Exact expectations, atomically with the check that nothing was
//     appended after the version being deleted.
//  2. The sweep: the items of versions below tb-1 are deleted, in version
//     order, with BatchWriteItem, except version 1, which becomes a stub
//     too. Then the meta item records that the sweep reached tb (rd). A
//     sweep cut short (a crash, an error) is finished by the next
//     ApplyRetention (DeleteStream and TruncateStream list the stream for
//     it before their commit, see retained.go) or the next removal of the
//     stream: DeleteStream, TruncateStream, SetStreamRetention, or an
//     append to a stream with a retention setting.
//
// Stubs are what is left of a removed event whose item must stay: its key,
// its position (p) and rm. Two per stream at most, version 1 and tb-1:
//
//   - Version 1 keeps an ExpectNoStream append, whose put of version 1 is
//     conditional on the version being free, from writing version 1 again.
//   - Version tb-1 keeps the stream's version when every event is removed
//     (StreamVersion reads the last item), keeps an Exact(tb-1) append's
//     check working, and keeps the position an indexed table's orderer and
//     direct placement look for before they place version tb (see
//     previousPlaced and place.go). A deleted stream's stub also carries
//     dl: it is the stream's last item until an append recreates the
//     stream at the next version.
//
// Readers never return an event whose removal has committed, whether or
// not the sweep has reached it: a ReadStream from version 1 reads the meta
// item in the same Query (sk >= 0) and skips what lies below tb; every
// ReadStream skips stubs; a backward read stops at the first stub above
// version 1 (what lies below is removed or being removed), and a forward
// read drops what it read below one; a read that starts above version 1
// and cannot tell from the stub below tb reads the meta item (see
// ReadStream). The global log (ReadAll, ReadAllScan, ReadQuery,
// subscriptions) keeps its log entries: the positions of removed events
// are never reused. Its readers fetch, with each round of events, the meta
// items of their streams (see fetchEvents), and pass over a stub or a
// version below its stream's tb instead of returning or waiting for it.
const (
	// The meta item of a stream (pk = stream ID, sk = 0).
	attrFirstKept  = "tb" // N: versions below it are removed (or being removed by a sweep)
	attrSweptTo    = "rd" // N: the tb the last finished sweep reached; absent: 1
	attrMaxCount   = "rc" // N: the retention's MaxCount; absent: none
	attrMaxAge     = "ra" // N: the retention's MaxAge in nanoseconds; absent: none
	metaVersion    = 0    // the sort key of the meta item
	attrForget     = "fg" // BOOL true: the sweep of a delete, which forgets the event IDs
	attrStub       = "rm" // BOOL true: the item is a stub, not an event
	attrDeleted    = "dl" // BOOL true: a stub at the last version of a deleted stream
	attrLater      = "nf" // BOOL true on an event that is not the first of its append
	sweepProgress  = 40   // BatchWriteItem requests between two records of a sweep's progress
	retentionCheck = 64   // events a MaxAge check reads per Query
)

var (
	_ driver.StreamDeleter   = (*Driver)(nil)
	_ driver.StreamTruncater = (*Driver)(nil)
	_ driver.RetentionKeeper = (*Driver)(nil)
)

func boolAttr(b bool) *types.AttributeValueMemberBOOL {
	return &types.AttributeValueMemberBOOL{Value: b}
}

// isStub reports whether an item of a stream's partition is a stub.
func isStub(item map[string]types.AttributeValue) bool {
	_, ok := item[attrStub]
	return ok
}

// isDeleted reports whether a stub marks a deleted stream.
func isDeleted(item map[string]types.AttributeValue) bool {
	_, ok := item[attrDeleted]
	return ok
}

// isMeta reports whether an item of a stream's partition is its meta item.
func isMeta(item map[string]types.AttributeValue) bool {
	sk, ok := item[attrSK].(*types.AttributeValueMemberN)
	return ok && sk.Value == "0"
}

// stubItem returns the stub of version v of stream, keeping the removed
// event's position p (0: none).
func stubItem(stream string, v, p uint64, deleted bool) map[string]types.AttributeValue {
	item := key(stream, v)
	item[attrStub] = boolAttr(true)
	if p > 0 {
		item[attrPos] = num(p)
	}
	if deleted {
		item[attrDeleted] = boolAttr(true)
	}
	return item
}

// idStub returns the stub of an event item (or of a stub), keeping its
// position, and its ID when it is the first event of its append (or not
// known not to be): a retry of that append (found by the by_id index)
// then fails instead of writing the events again. A stub that forgets
// keeps no ID.
func idStub(item map[string]types.AttributeValue, forget bool) (map[string]types.AttributeValue, error) {
	s, err := getStr(item, attrPK)
	if err != nil {
		return nil, err
	}
	v, err := getNum(item, attrSK)
	if err != nil {
		return nil, err
	}
	var p uint64
	if _, ok := item[attrPos]; ok {
		if p, err = getNum(item, attrPos); err != nil {
			return nil, err
		}
	}
	stub := stubItem(s, v, p, false)
	if _, later := item[attrLater]; !later && !forget && item[attrID] != nil {
		stub[attrID] = item[attrID]
	}
	return stub, nil
}

// laterInAppend marks the event item of the i-th event of an append (or
// of an import's run) when it is not the first: only the first event's ID
// needs to outlive a truncation (see idStub).
func laterInAppend(item map[string]types.AttributeValue, i int) map[string]types.AttributeValue {
	if i > 0 {
		item[attrLater] = boolAttr(true)
	}
	return item
}

// streamMeta is what a stream's meta item holds.
type streamMeta struct {
	firstKept uint64 // tb; 1 when nothing is removed
	sweptTo   uint64 // rd; 1 when no sweep has finished
	forget    bool   // fg: the sweep is a delete's
	retention driver.Retention
}

// pending reports whether a sweep has not finished.
func (m streamMeta) pending() bool { return m.sweptTo < m.firstKept }

func decodeMeta(item map[string]types.AttributeValue) (streamMeta, error) {
	m := streamMeta{firstKept: 1, sweptTo: 1}
	if item == nil {
		return m, nil
	}
	opt := func(name string, dst *uint64) error {
		if _, ok := item[name]; !ok {
			return nil
		}
		v, err := getNum(item, name)
		if err == nil {
			*dst = v
		}
		return err
	}
	var age uint64
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{attrFirstKept, &m.firstKept}, {attrSweptTo, &m.sweptTo}, {attrMaxCount, &m.retention.MaxCount}, {attrMaxAge, &age}} {
		if err := opt(f.name, f.dst); err != nil {
			return m, fmt.Errorf("meta item: %w", err)
		}
	}
	m.retention.MaxAge = time.Duration(age)
	_, m.forget = item[attrForget]
	return m, nil
}

// meta reads a stream's meta item, strongly consistent.
func (d *Driver) meta(ctx context.Context, stream string) (streamMeta, error) {
	item, err := d.getKey(ctx, key(stream, metaVersion))
	if err != nil {
		return streamMeta{}, err
	}
	return decodeMeta(item)
}

// streamTop is the last item of a stream's partition.
type streamTop struct {
	version uint64                          // the stream's version: 0 when it has no events or is deleted
	last    uint64                          // the version of the last item (0: none); the next append writes last+1
	pos     uint64                          // its position (0: none yet)
	stub    bool                            // it is a stub
	deleted bool                            // it is a deleted stream's stub
	item    map[string]types.AttributeValue // its keys, position, marks and ID
}

// top reads the last item of a stream with a strongly consistent query of
// one key's worth of attributes.
func (d *Driver) top(ctx context.Context, stream string) (streamTop, error) {
	out, err := d.query(ctx, &awsdynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(stream)},
		ProjectionExpression:      aws.String("pk, sk, #p, #rm, #dl, #id, #nf, #fc"),
		ExpressionAttributeNames:  map[string]string{"#p": attrPos, "#rm": attrStub, "#dl": attrDeleted, "#id": attrID, "#nf": attrLater, "#fc": attrFence},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil || len(out.Items) == 0 {
		return streamTop{}, err
	}
	item := out.Items[0]
	t := streamTop{item: item}
	if t.last, err = getNum(item, attrSK); err != nil {
		return t, err
	}
	if isFence(item) {
		t.last-- // the deleted stream's fence stands for its stub (see fence.go)
	}
	if _, ok := item[attrPos]; ok {
		if t.pos, err = getNum(item, attrPos); err != nil {
			return t, err
		}
	}
	t.stub, t.deleted = isStub(item), isDeleted(item)
	if !t.deleted {
		t.version = t.last
	}
	return t, nil
}

// DeleteStream implements [driver.StreamDeleter]. The commit is one
// TransactWriteItems of three items: the meta item's first kept version
// raised past the stream's last version V (and its retention removed), the
// item of version V replaced by a stub marked deleted (on condition that it
// exists and is not one already), and a check that version V+1 does not
// exist. From then on the stream reads as version 0 and the next append
// writes V+1. The snapshot is deleted, then the sweep removes the events
// below V. In an indexed table the delete first waits until the orderer has
// placed the stream's last event.
func (d *Driver) DeleteStream(ctx context.Context, stream string, expected driver.ExpectedVersion) error {
	registered := false
	for attempt := 0; ; attempt++ {
		t, err := d.top(ctx, stream)
		if err != nil {
			return wrapNative(err)
		}
		if !expected.Matches(t.version) {
			return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: eventstore.ExpectedVersion(expected), Actual: t.version}
		}
		if t.version == 0 {
			// Nothing to delete; finish what an interrupted delete left.
			return d.finishSweep(ctx, stream)
		}
		if d.indexed && t.pos == 0 && !t.stub {
			p, err := d.awaitPlaced(ctx, stream, t.last)
			if err != nil {
				return err
			}
			if p == 0 {
				return fmt.Errorf("dynamodb: delete %q: version %d has no position yet (no orderer placed it within the order timeout): %w", stream, t.last, errkind.Transient(errNotPlaced))
			}
			t.pos = p
		}
		if !registered {
			// So that ApplyRetention finishes a sweep cut short.
			if err := d.register(ctx, stream); err != nil {
				return err
			}
			registered = true
		}
		committed, err := d.commitDelete(ctx, stream, t)
		if err != nil {
			return err
		}
		if !committed {
			if attempt >= maxConflicts {
				return fmt.Errorf("dynamodb: delete %q: gave up after %d concurrent appends", stream, attempt+1)
			}
			continue // the stream moved: look again
		}
		if err := d.deleteSnapshot(ctx, stream); err != nil {
			return err
		}
		return d.finishSweep(ctx, stream)
	}
}

// errNotPlaced is the cause of a removal that found an event of an indexed
// table not placed yet.
var errNotPlaced = errors.New("event not placed in the log yet")

// commitDelete sends a delete's commit for a stream whose last item is t;
// committed is false when a condition failed (the stream moved meanwhile).
func (d *Driver) commitDelete(ctx context.Context, stream string, t streamTop) (committed bool, err error) {
	table := aws.String(d.table)
	tb := t.last + 1
	items := []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: table,
			Key:       key(stream, metaVersion),
			// The sweep starts again from version 1 and forgets the IDs
			// that earlier truncations kept (see idStub).
			UpdateExpression:          aws.String("SET #tb = :tb, #rd = :one, #fg = :true REMOVE #rc, #ra"),
			ConditionExpression:       aws.String("attribute_not_exists(#tb) OR #tb <= :tb"),
			ExpressionAttributeNames:  map[string]string{"#tb": attrFirstKept, "#rd": attrSweptTo, "#fg": attrForget, "#rc": attrMaxCount, "#ra": attrMaxAge},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tb": num(tb), ":one": num(1), ":true": boolAttr(true)},
		}},
		{Put: &types.Put{
			TableName:                table,
			Item:                     stubItem(stream, t.last, t.pos, true),
			ConditionExpression:      aws.String("attribute_exists(pk) AND attribute_not_exists(#dl)"),
			ExpressionAttributeNames: map[string]string{"#dl": attrDeleted},
		}},
		{ConditionCheck: &types.ConditionCheck{
			TableName:           table,
			Key:                 key(stream, t.last+1),
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}},
	}
	if d.unplaced {
		// Version V+1 is fenced, not only checked (see fence.go).
		items[2] = types.TransactWriteItem{Put: &types.Put{
			TableName: table, Item: fenceItem(stream, t.last+1, t.pos), ConditionExpression: aws.String(condFree),
		}}
	}
	return d.transact(ctx, "delete", stream, items)
}

// transact sends a removal's commit with the driver's retries and a
// ClientRequestToken (a transaction whose outcome is unknown is sent again
// with it). It returns false when a condition failed.
func (d *Driver) transact(ctx context.Context, op, stream string, items []types.TransactWriteItem) (bool, error) {
	token := newToken()
	err := d.call(ctx, "TransactWriteItems", func(ctx context.Context) error {
		_, err := d.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{
			TransactItems: items, ClientRequestToken: aws.String(token),
		}, noRetry)
		if errors.As(err, new(*types.TransactionCanceledException)) {
			token = newToken() // nothing was written: a retry is a new transaction
		}
		return err
	})
	if err == nil {
		return true, nil
	}
	if reasons, ok := cancellationReasons(err, len(items)); ok && slices.Contains(reasons, classConflict) {
		return false, nil
	}
	return false, fmt.Errorf("dynamodb: %s %q: %w", op, stream, wrapNative(err))
}

// deleteSnapshot deletes a stream's snapshot, if it has one.
func (d *Driver) deleteSnapshot(ctx context.Context, stream string) error {
	err := d.call(ctx, "DeleteItem", func(ctx context.Context) error {
		_, err := d.client.DeleteItem(ctx, &awsdynamodb.DeleteItemInput{
			TableName: aws.String(d.table), Key: key(snapshotPrefix+stream, 0),
		}, noRetry)
		return err
	})
	if err != nil {
		return fmt.Errorf("dynamodb: delete the snapshot of %q: %w", stream, wrapNative(err))
	}
	return nil
}

// TruncateStream implements [driver.StreamTruncater]: a commit of two items
// (the meta item's first kept version raised to before, or to the stream's
// version plus one if that is lower, and the item below it turned into a
// stub), then the sweep. A deleted stream, or one with no events, is left
// as it is (an unfinished sweep is finished).
func (d *Driver) TruncateStream(ctx context.Context, stream string, before uint64) error {
	_, err := d.truncate(ctx, stream, before, true)
	return err
}

// truncate removes the events of stream below before, registering the
// stream (see register) before its commit when register is set; removed
// is how many versions its commit removed.
func (d *Driver) truncate(ctx context.Context, stream string, before uint64, register bool) (removed uint64, err error) {
	for attempt := 0; ; attempt++ {
		t, err := d.top(ctx, stream)
		if err != nil {
			return 0, wrapNative(err)
		}
		m, err := d.meta(ctx, stream)
		if err != nil {
			return 0, wrapNative(err)
		}
		tb := min(before, t.last+1)
		if t.version == 0 || tb <= m.firstKept {
			return 0, d.sweep(ctx, stream, m)
		}
		// The item that becomes the stub below the first kept version.
		below := tb - 1
		item := t.item
		if below != t.last {
			if item, err = d.getKey(ctx, key(stream, below)); err != nil {
				return 0, wrapNative(err)
			}
			if item == nil {
				continue // removed meanwhile by a concurrent truncation: look again
			}
		}
		var p uint64
		if _, ok := item[attrPos]; ok {
			if p, err = getNum(item, attrPos); err != nil {
				return 0, fmt.Errorf("dynamodb: truncate %q: %w", stream, err)
			}
		}
		isStubAlready := isStub(item)
		if d.indexed && p == 0 && !isStubAlready {
			if p, err = d.awaitPlaced(ctx, stream, below); err != nil {
				return 0, err
			}
			if p == 0 {
				return 0, fmt.Errorf("dynamodb: truncate %q: version %d has no position yet (no orderer placed it within the order timeout): %w", stream, below, errkind.Transient(errNotPlaced))
			}
			item[attrPos] = num(p)
		}
		stub, err := idStub(item, m.forget)
		if err != nil {
			return 0, fmt.Errorf("dynamodb: truncate %q: %w", stream, err)
		}
		table := aws.String(d.table)
		items := []types.TransactWriteItem{{Update: &types.Update{
			TableName:                 table,
			Key:                       key(stream, metaVersion),
			UpdateExpression:          aws.String("SET #tb = :tb"),
			ConditionExpression:       aws.String("attribute_not_exists(#tb) OR #tb < :tb"),
			ExpressionAttributeNames:  map[string]string{"#tb": attrFirstKept},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tb": num(tb)},
		}}}
		if !isStubAlready {
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName:                table,
				Item:                     stub,
				ConditionExpression:      aws.String("attribute_exists(pk) AND attribute_not_exists(#dl)"),
				ExpressionAttributeNames: map[string]string{"#dl": attrDeleted},
			}})
		}
		if register {
			// So that ApplyRetention finishes a sweep cut short.
			if err := d.register(ctx, stream); err != nil {
				return 0, err
			}
			register = false
		}
		committed, err := d.transact(ctx, "truncate", stream, items)
		if err != nil {
			return 0, err
		}
		if !committed {
			if attempt >= maxConflicts {
				return 0, fmt.Errorf("dynamodb: truncate %q: gave up after %d concurrent changes", stream, attempt+1)
			}
			continue // deleted or truncated further meanwhile: look again
		}
		removed, m.firstKept = tb-m.firstKept, tb
		return removed, d.sweep(ctx, stream, m)
	}
}

// finishSweep finishes the sweep of an interrupted removal, if any.
func (d *Driver) finishSweep(ctx context.Context, stream string) error {
	m, err := d.meta(ctx, stream)
	if err != nil {
		return wrapNative(err)
	}
	return d.sweep(ctx, stream, m)
}

// sweep removes the items of stream below m.firstKept-1 that the last
// finished sweep (m.sweptTo) left, in version order: it reads them (a
// strongly consistent Query of the range, which holds only events being
// removed and the previous sweep's stubs) and sends BatchWriteItem
// requests of 25 that delete each one, except that version 1 and the first
// event of each append become stubs keeping their IDs (see idStub; a
// delete's sweep keeps no ID). It records its progress in the meta item
// every sweepProgress requests and when done, so an interrupted sweep is
// taken up where it stood.
func (d *Driver) sweep(ctx context.Context, stream string, m streamMeta) error {
	if !m.pending() {
		return nil
	}
	if stop := d.stopSweep.Load(); stop != nil && (*stop)(stream) {
		return nil // a test's crash after the commit
	}
	lo := max(m.sweptTo-1, 1) // the stub the last sweep left, and up
	hi := m.firstKept - 2     // the highest version to remove (tb-1 is the new stub)
	if hi < lo {
		return d.recordSweep(ctx, stream, m.firstKept, true)
	}
	in := &awsdynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :s AND sk BETWEEN :a AND :b"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(stream), ":a": num(lo), ":b": num(hi)},
		ProjectionExpression:      aws.String("pk, sk, #p, #rm, #id, #nf"),
		ExpressionAttributeNames:  map[string]string{"#p": attrPos, "#rm": attrStub, "#id": attrID, "#nf": attrLater},
		Limit:                     aws.Int32(sweepPage),
	}
	var reqs []types.WriteRequest
	requests := 0
	flush := func(reached uint64) error {
		if len(reqs) == 0 {
			return nil
		}
		if err := d.writeItems(ctx, reqs); err != nil {
			return fmt.Errorf("dynamodb: remove events of %q: %w", stream, err)
		}
		reqs = reqs[:0]
		if requests++; requests%sweepProgress == 0 {
			return d.recordSweep(ctx, stream, reached, false)
		}
		return nil
	}
	for {
		out, err := d.query(ctx, in)
		if err != nil {
			return fmt.Errorf("dynamodb: remove events of %q: %w", stream, wrapNative(err))
		}
		for _, item := range out.Items {
			v, err := getNum(item, attrSK)
			if err != nil {
				return fmt.Errorf("dynamodb: remove events of %q: %w", stream, err)
			}
			_, hasID := item[attrID]
			switch {
			case v == 1 || (!m.forget && !isStub(item)):
				stub, err := idStub(item, m.forget)
				if err != nil {
					return fmt.Errorf("dynamodb: remove events of %q: %w", stream, err)
				}
				if _, keep := stub[attrID]; keep || v == 1 {
					reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: stub}})
				} else {
					reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(stream, v)}})
				}
			case isStub(item) && hasID && !m.forget:
				// The ID of an append removed before: kept.
			default:
				reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(stream, v)}})
			}
			if len(reqs) == maxBatchWrite {
				// Taken up from v+1 at worst: what lies below is done.
				if err := flush(v + 1); err != nil {
					return err
				}
			}
		}
		if out.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if err := flush(m.firstKept); err != nil {
		return err
	}
	return d.recordSweep(ctx, stream, m.firstKept, true)
}

// sweepPage is how many items one Query of a sweep reads.
const sweepPage = 500

// writeItems sends write requests (at most maxBatchWrite) with
// BatchWriteItem, sending those DynamoDB left unprocessed again after a
// back-off, up to d.maxAttempts times.
func (d *Driver) writeItems(ctx context.Context, reqs []types.WriteRequest) error {
	for attempt := 1; ; attempt++ {
		var out *awsdynamodb.BatchWriteItemOutput
		err := d.call(ctx, "BatchWriteItem", func(ctx context.Context) error {
			var err error
			out, err = d.client.BatchWriteItem(ctx, &awsdynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{d.table: reqs},
			}, noRetry)
			return err
		})
		if err != nil {
			return wrapNative(err)
		}
		if reqs = out.UnprocessedItems[d.table]; len(reqs) == 0 {
			return nil
		}
		if attempt >= d.maxAttempts {
			return errkind.Transient(fmt.Errorf("%d writes still unprocessed (throttled) after %d tries", len(reqs), attempt))
		}
		d.retrying("BatchWriteItem", attempt, fmt.Errorf("%d unprocessed items", len(reqs)))
		if err := backoff.Wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// recordSweep records that the sweep of stream reached to: versions below
// to-1 are removed, apart from the stubs it keeps. done ends a delete's
// forgetting of IDs.
func (d *Driver) recordSweep(ctx context.Context, stream string, to uint64, done bool) error {
	expr := "SET #rd = :to"
	names := map[string]string{"#rd": attrSweptTo}
	if done {
		expr += " REMOVE #fg"
		names["#fg"] = attrForget
	}
	err := d.call(ctx, "UpdateItem", func(ctx context.Context) error {
		_, err := d.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
			TableName:                 aws.String(d.table),
			Key:                       key(stream, metaVersion),
			UpdateExpression:          aws.String(expr),
			ConditionExpression:       aws.String("attribute_exists(pk) AND (attribute_not_exists(#rd) OR #rd < :to)"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: map[string]types.AttributeValue{":to": num(to)},
		}, noRetry)
		return err
	})
	if err != nil && classify(err) != classConflict { // a concurrent sweep got further
		return fmt.Errorf("dynamodb: remove events of %q: %w", stream, wrapNative(err))
	}
	return nil
}

// SetStreamRetention implements [driver.RetentionKeeper]: the setting is
// kept in the stream's meta item (one UpdateItem), then applied at once as
// by an append.
func (d *Driver) SetStreamRetention(ctx context.Context, stream string, r driver.Retention) error {
	if !r.IsZero() {
		// First, so that no stream with a retention goes unlisted (an
		// item listing a stream without one is removed by ApplyRetention).
		if err := d.register(ctx, stream); err != nil {
			return err
		}
	}
	in := &awsdynamodb.UpdateItemInput{
		TableName:                aws.String(d.table),
		Key:                      key(stream, metaVersion),
		ExpressionAttributeNames: map[string]string{"#rc": attrMaxCount, "#ra": attrMaxAge},
	}
	var set, remove []string
	vals := map[string]types.AttributeValue{}
	if r.MaxCount > 0 {
		set, vals[":rc"] = append(set, "#rc = :rc"), num(r.MaxCount)
	} else {
		remove = append(remove, "#rc")
	}
	if r.MaxAge > 0 {
		set, vals[":ra"] = append(set, "#ra = :ra"), num(uint64(r.MaxAge))
	} else {
		remove = append(remove, "#ra")
	}
	expr := ""
	if len(set) > 0 {
		expr = "SET " + join(set)
		in.ExpressionAttributeValues = vals
	}
	if len(remove) > 0 {
		expr += " REMOVE " + join(remove)
	}
	in.UpdateExpression = aws.String(expr)
	err := d.call(ctx, "UpdateItem", func(ctx context.Context) error {
		_, err := d.client.UpdateItem(ctx, in, noRetry)
		return err
	})
	if err != nil {
		return fmt.Errorf("dynamodb: set retention of %q: %w", stream, wrapNative(err))
	}
	_, err = d.applyRetention(ctx, stream, r, time.Now())
	return err
}

func join(parts []string) string {
	s := parts[0]
	for _, p := range parts[1:] {
		s += ", " + p
	}
	return s
}

// StreamRetention implements [driver.RetentionKeeper] with a strongly
// consistent GetItem of the meta item.
func (d *Driver) StreamRetention(ctx context.Context, stream string) (driver.Retention, error) {
	m, err := d.meta(ctx, stream)
	if err != nil {
		return driver.Retention{}, fmt.Errorf("dynamodb: retention of %q: %w", stream, wrapNative(err))
	}
	return m.retention, nil
}

// applyRetention removes the events of stream that r no longer keeps at
// time now: beyond the MaxCount latest, and those recorded before now -
// MaxAge, oldest first, up to the first one young enough (read in Query
// pages of retentionCheck events, their times only). It also finishes an
// interrupted sweep. removed is how many versions it removed.
func (d *Driver) applyRetention(ctx context.Context, stream string, r driver.Retention, now time.Time) (removed uint64, err error) {
	if r.IsZero() {
		return 0, d.finishSweep(ctx, stream)
	}
	t, err := d.top(ctx, stream)
	if err != nil {
		return 0, wrapNative(err)
	}
	if t.version == 0 {
		return 0, d.finishSweep(ctx, stream)
	}
	cut := r.Cutoff(t.last)
	if r.MaxAge > 0 {
		m, err := d.meta(ctx, stream)
		if err != nil {
			return 0, wrapNative(err)
		}
		from := max(cut, m.firstKept)
		if from > t.last {
			// Every event is removed already (a Query of from…last
			// would be invalid): only a sweep may be left to finish.
			return 0, d.sweep(ctx, stream, m)
		}
		if cut, err = d.ageCutoff(ctx, stream, from, t.last, now.Add(-r.MaxAge)); err != nil {
			return 0, err
		}
	}
	return d.truncate(ctx, stream, cut, false)
}

// ageCutoff returns the first version from `from` on (at most last+1)
// whose event was recorded at or after oldest.
func (d *Driver) ageCutoff(ctx context.Context, stream string, from, last uint64, oldest time.Time) (uint64, error) {
	in := &awsdynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :s AND sk BETWEEN :a AND :b"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(stream), ":a": num(from), ":b": num(last)},
		ProjectionExpression:      aws.String("sk, #at, #rm"),
		ExpressionAttributeNames:  map[string]string{"#at": attrAt, "#rm": attrStub},
		Limit:                     aws.Int32(retentionCheck),
	}
	limit := uint64(max(oldest.UnixMicro(), 0))
	cut := from
	for {
		out, err := d.query(ctx, in)
		if err != nil {
			return 0, wrapNative(err)
		}
		for _, item := range out.Items {
			v, err := getNum(item, attrSK)
			if err != nil {
				return 0, err
			}
			if !isStub(item) {
				at, err := getNum(item, attrAt)
				if err != nil {
					return 0, err
				}
				if at >= limit {
					return v, nil
				}
			}
			cut = v + 1
		}
		if out.LastEvaluatedKey == nil {
			return cut, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// retentionAfterAppend is the retention setting of a stream read while an
// append is in flight: an append to a stream with one applies it once it
// has committed.
type retentionAfterAppend struct {
	ch   chan streamMeta // buffered: the read never blocks
	m    streamMeta
	done bool
}

// readRetention starts reading the retention of stream, concurrently
// with the rest of an append. The append waits for the read before it
// returns (get or wait), so the goroutine never outlives it.
func (d *Driver) readRetention(ctx context.Context, stream string) *retentionAfterAppend {
	r := &retentionAfterAppend{ch: make(chan streamMeta, 1)}
	go func() {
		m, err := d.meta(ctx, stream)
		if err != nil {
			m = streamMeta{firstKept: 1, sweptTo: 1, retention: driver.Retention{MaxCount: unknownRetention}}
		}
		r.ch <- m
	}()
	return r
}

// get returns what the read found.
func (r *retentionAfterAppend) get() streamMeta {
	if !r.done {
		r.m, r.done = <-r.ch, true
	}
	return r.m
}

// wait waits for the read to end.
func (r *retentionAfterAppend) wait() { r.get() }

// unknownRetention marks a retention read that failed: the append then
// reads it again after it has committed.
const unknownRetention = ^uint64(0)

// afterAppend applies the retention of stream after an append recorded at
// at committed, and finishes an interrupted sweep. The append has
// succeeded whatever happens here: a failure is logged, and the next
// append or SetStreamRetention does the work.
func (d *Driver) afterAppend(ctx context.Context, stream string, ret *retentionAfterAppend, at time.Time) {
	m := ret.get()
	if ctx.Err() != nil {
		return
	}
	var err error
	if m.retention.MaxCount == unknownRetention {
		if m, err = d.meta(ctx, stream); err != nil {
			d.logger.Warn("dynamodb: retention not applied after an append", "driver", "dynamodb", "table", d.table, "stream", stream, "error", err)
			return
		}
	}
	if m.retention.IsZero() && !m.pending() {
		return
	}
	if _, err := d.applyRetention(ctx, stream, m.retention, at); err != nil {
		d.logger.Warn("dynamodb: retention not applied after an append", "driver", "dynamodb", "table", d.table, "stream", stream, "error", err)
	}
}

// removedCache remembers the first kept version of streams whose removed
// events the global log's readers met, so that later reads pass over them
// without asking for their items. A stream's first kept version only grows,
// so a remembered one is never too high.
type removedCache struct {
	mu    sync.Mutex // protects m and order
	m     map[string]uint64
	order []string // keys, oldest first
}

const removedCacheSize = 1024

// firstKept returns the first kept version of stream as last seen; 0 when
// unknown.
func (c *removedCache) firstKept(stream string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[stream]
}

func (c *removedCache) put(stream string, tb uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	if old, ok := c.m[stream]; ok {
		c.m[stream] = max(old, tb)
		return
	}
	if len(c.order) == removedCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[stream] = tb
	c.order = append(c.order, stream)
}

// importGap prepares a stream at version 0 for an import whose first
// version first lies past every version the stream had, as a truncated
// stream's copy does (see driver.Importer): the versions before first
// count as removed. One transaction puts a stub of version 1 (unless the
// stream has one: a deleted stream) and the stub of version first-1
// marked deleted, on condition that neither exists. The stream then reads
// as a stream deleted at first-1, still at version 0: the import's check
// of version first-1 passes, and should the import not be written the
// stream stays at version 0 (its next append takes version first). ok is
// false when the stream is not at version 0, or had version first-1 or
// later; actual is then its version.
func (d *Driver) importGap(ctx context.Context, stream string, first uint64) (ok bool, actual uint64, err error) {
	t, err := d.top(ctx, stream)
	if err != nil {
		return false, 0, wrapNative(err)
	}
	if t.version != 0 || t.last >= first-1 {
		return false, t.version, nil
	}
	table := aws.String(d.table)
	notExists := aws.String("attribute_not_exists(pk)")
	// Position 0: no event had it, but the orderer of an indexed table and
	// its direct placement look for one before they place version first.
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: table, Item: stubItem(stream, first-1, 0, true), ConditionExpression: aws.String(condFreeOrFence),
	}}}
	items[0].Put.Item[attrPos] = num(0)
	if t.last == 0 && first-1 > 1 {
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: table, Item: stubItem(stream, 1, 0, false), ConditionExpression: notExists,
		}})
	}
	if t.last > 0 && t.last+1 < first-1 { // a deleted stream: still at its last version
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: table, Key: key(stream, t.last+1), ConditionExpression: aws.String(condFreeOrFence),
		}})
	}
	committed, err := d.transact(ctx, "import", stream, items)
	if err != nil || committed {
		return committed, 0, err
	}
	t, err = d.top(ctx, stream) // appended to meanwhile
	return false, t.version, wrapNative(err)
}
