package dynamodb

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/driver"
)

// Single-event appends as one PutItem (indexed layout, item layout 2).
//
// DynamoDB Local runs transactions one at a time, and even on DynamoDB a
// transaction costs twice the write units of a plain write: measured from
// separate processes (BenchmarkRawProcesses), one conditional PutItem
// scales with the writers where a TransactWriteItems of two items does not.
// So in a table set up with the global secondary index "unplaced" (see
// CreateTableInput), an append of one event by a driver that does not hold
// the orderer's lease is one conditional PutItem of the event item itself
// (pk = stream, sk = version, attribute_not_exists(pk): optimistic
// concurrency as before), without a position and marked unplaced: "ub", a
// random one of unplacedShards partitions of the index, "ua", its arrival
// key (as an inbox item's), and "b", its estimated bytes. No inbox item.
//
// An Exact(n) append with n > 0 first reads version n (strongly
// consistent GetItem): it must exist and not be a deleted stream's stub.
// A version once seen never goes away, so the put then writes n+1 exactly
// after it, as the transaction's ConditionCheck would have ensured. A
// DeleteStream committed between the read and the put has fenced version
// n+1 (see fence.go): the put fails as a conflict, as the check would.
//
// The orderer reads the index beside the inbox (the index is eventually
// consistent: it confirms each event with the strongly consistent read of
// previous versions it makes anyway, and leaves out those placed already)
// and places these events like single-event appends of the inbox: their
// position set and the marker removed in its transaction (SET p REMOVE
// ub, ua, b, on condition that the event has no position), one item each
// instead of two (no inbox item to delete). Per-stream order holds as for
// inbox entries: an event is placed only after its stream's previous
// version is.
//
// Appends of several events, multi-stream appends, imports and the appends
// of the lease holder (placed directly, see place.go) keep their paths.

// unplacedShards is how many partitions of the index hold the unplaced
// events (each takes about 1,000 index writes per second; an event is
// written to it once and removed once). Part of the layout: never change.
const unplacedShards = 8

// canPutUnplaced reports whether r, an append, is written as one PutItem.
func (d *Driver) canPutUnplaced(r *request) bool {
	if !d.unplaced || !r.plain || len(r.runs) != 1 || r.count != 1 {
		return false
	}
	o := d.orderer
	return o == nil || !o.holding.Load() || d.async
}

// putUnplaced writes the event of r, a single-event append, as one
// conditional PutItem marked unplaced. A taken version (or, for a checked
// append, a missing or deleted previous version) is a conflict.
func (d *Driver) putUnplaced(ctx context.Context, r *request) outcome {
	rn := r.runs[0]
	if r.check {
		var ok bool
		var err error
		if r.prev != nil {
			ok, err = r.prev.result()
		} else {
			ok, err = d.previousExists(ctx, rn.stream, rn.first-1)
		}
		if err != nil {
			return outcome{err: wrapNative(err)}
		}
		if !ok {
			return outcome{conflict: true}
		}
	}
	e := rn.events[0]
	item := eventItem(rn.stream, rn.first, 0, e, rn.at, driver.JSON)
	item[attrUnplacedShard] = num(uint64(rand.IntN(unplacedShards)))
	item[attrUnplacedArrival] = num(newArrival())
	item[attrBytes] = num(uint64(eventItemSize(e)))
	if h := d.beforePut; h != nil {
		h(rn.stream)
	}
	err := d.call(ctx, "PutItem", func(ctx context.Context) error {
		_, err := d.client.PutItem(ctx, &awsdynamodb.PutItemInput{
			TableName: aws.String(d.table), Item: item, ConditionExpression: rn.putCond(0), // a checked put never replaces a fence
		}, noRetry)
		return err
	})
	if err != nil {
		if classify(err) == classConflict {
			return outcome{conflict: true, err: err}
		}
		return outcome{err: wrapNative(err)}
	}
	d.unplacedPuts.Add(1)
	d.offerUnplaced(item)
	return outcome{}
}

// offerUnplaced hands an event just written as one PutItem to the
// driver's orderer, if it runs one and holds the lease (AsyncPositions),
// and wakes it: it places the event without waiting for its next read of
// the index.
func (d *Driver) offerUnplaced(item map[string]types.AttributeValue) {
	o := d.orderer
	if o == nil || !o.holding.Load() {
		return
	}
	c, err := decodeUnplaced(item)
	if err != nil {
		return // the index has it: the next read finds it
	}
	o.offer(c)
}

// readUnplaced reads one page (up to 1 MB) of the index of unplaced
// events and inbox items with one Scan (eventually consistent, as every
// global index; one request however many partitions it has), going on
// where the previous page ended and starting over after the last, so that
// a backlog larger than a page is read in turn. It returns the candidates
// in arrival order; inbox items keep their shard, events are keyed apart
// (shard inboxShards + their partition).
func (o *orderer) readUnplaced() ([]candidate, error) {
	d := o.d
	var out *awsdynamodb.ScanOutput
	err := d.call(o.ctx, "Scan", func(ctx context.Context) error {
		var err error
		out, err = d.client.Scan(ctx, &awsdynamodb.ScanInput{
			TableName: aws.String(d.table), IndexName: aws.String(indexUnplaced), ExclusiveStartKey: o.scanFrom,
		}, noRetry)
		return err
	})
	if err != nil {
		o.scanFrom = nil
		return nil, wrapNative(err)
	}
	o.scanFrom = out.LastEvaluatedKey
	cands := make([]candidate, 0, len(out.Items))
	for _, item := range out.Items {
		c, err := decodeUnplaced(item)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", indexUnplaced, err)
		}
		cands = append(cands, c)
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.arrival, b.arrival), cmp.Compare(a.shard, b.shard))
	})
	return cands, nil
}

// decodeUnplaced decodes an entry of the index of unplaced events: an
// inbox item, or the event of a single-event append.
func decodeUnplaced(item map[string]types.AttributeValue) (candidate, error) {
	c := candidate{unplaced: true}
	stream, err := getStr(item, attrPK)
	if err != nil {
		return c, err
	}
	if shard, ok := strings.CutPrefix(stream, inboxPrefix); ok {
		c = candidate{}
		if c.shard, err = strconv.Atoi(shard); err != nil || c.shard < 0 || c.shard >= inboxShards {
			return c, fmt.Errorf("inbox item of partition %q", stream)
		}
		if c.entry, err = decodeLogEntry(item); err != nil {
			return c, err
		}
		c.arrival = c.entry.start
		c.bytes, err = getNum(item, attrBytes)
		return c, err
	}
	shard, err := getNum(item, attrUnplacedShard)
	if err != nil {
		return c, err
	}
	c.shard = inboxShards + int(shard)
	version, err := getNum(item, attrSK)
	if err != nil {
		return c, err
	}
	typ, err := getStr(item, attrType)
	if err != nil {
		return c, err
	}
	if c.arrival, err = getNum(item, attrUnplacedArrival); err != nil {
		return c, err
	}
	if c.bytes, err = getNum(item, attrBytes); err != nil {
		return c, err
	}
	c.entry = logEntry{start: c.arrival, count: 1, types: []string{typ}, runs: []logRun{{stream: stream, first: version, count: 1}}}
	if _, ok := item[attrTags]; ok {
		tags, err := getStrs(item, attrTags)
		if err != nil {
			return c, err
		}
		c.entry.tags = [][]string{tags}
	}
	return c, nil
}

// previousExists reads whether version exists in stream and is not a
// deleted stream's stub (a strongly consistent GetItem).
func (d *Driver) previousExists(ctx context.Context, stream string, version uint64) (bool, error) {
	var out *awsdynamodb.GetItemOutput
	err := d.call(ctx, "GetItem", func(ctx context.Context) error {
		var err error
		out, err = d.client.GetItem(ctx, &awsdynamodb.GetItemInput{
			TableName: aws.String(d.table), Key: key(stream, version), ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String("pk, " + attrDeleted),
		}, noRetry)
		return err
	})
	if err != nil {
		return false, err
	}
	_, deleted := out.Item[attrDeleted]
	return out.Item != nil && !deleted, nil
}

// previousRead is a read of previousExists running in its own goroutine.
type previousRead struct {
	done chan struct{} // closed when ok and err are set
	ok   bool
	err  error
}

// prefetchPrevious starts reading version n of the stream of an append at
// Exact(n), n > 0, that will be written as one PutItem, so that the read
// runs alongside the append's ID lookup; nil for any other append. A
// version once seen never goes away, so an early read is as good as one
// just before the put.
func (d *Driver) prefetchPrevious(ctx context.Context, req driver.AppendRequest) *previousRead {
	if !d.unplaced || len(req.Events) != 1 || req.Expected.Kind() != driver.ExpectExact || req.Expected.Version() == 0 {
		return nil
	}
	if o := d.orderer; o != nil && o.holding.Load() && !d.async {
		return nil // placed directly (see place.go)
	}
	p := &previousRead{done: make(chan struct{})}
	if d.known.exists(req.Stream, req.Expected.Version()) {
		p.ok = true // see known.go
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		p.ok, p.err = d.previousExists(ctx, req.Stream, req.Expected.Version())
	}()
	return p
}

// result waits for the read and returns it.
func (p *previousRead) result() (bool, error) {
	<-p.done
	return p.ok, p.err
}

// wait waits for the read, if any, to end (the append returns only then,
// so that no request outlives it).
func (p *previousRead) wait() {
	if p != nil {
		<-p.done
	}
}
