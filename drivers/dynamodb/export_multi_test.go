package dynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Hooks for the external tests of multi-stream appends and conditions.

// MultiTransactItems are the log entry and event puts a head-layout table's
// committer sends for records at positions from start on, each stream
// starting after its version in actual (the raw twins of the benchmarks).
func MultiTransactItems(table string, start uint64, records []eventstore.Record, actual map[string]uint64, at time.Time) []types.TransactWriteItem {
	req := driver.MultiAppendRequest{RecordedAt: at}
	for _, r := range records {
		ev := driver.Event{ID: r.Event.ID, Type: r.Event.Type, ContentType: driver.ContentType(r.Event.ContentType), Data: r.Event.Data, Metadata: r.Event.Metadata, Tags: r.Event.Tags}
		req.Records = append(req.Records, driver.Record{Stream: r.Stream, Event: ev})
	}
	d := &Driver{table: table, bucketSize: defaultLogBucketSize, tagIndex: true} // the tag items too (see tagindex.go)
	tops := make(map[string]streamTop, len(actual))
	for s, v := range actual {
		tops[s] = streamTop{version: v, last: v}
	}
	r, _ := d.multiRequest(req, tops)
	items := d.entryPuts(start, r.runs)
	notExists := aws.String("attribute_not_exists(pk)")
	pos := start
	for _, rn := range r.runs {
		for j, e := range rn.events {
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(table), ConditionExpression: notExists,
				Item: laterInAppend(eventItem(rn.stream, rn.first+uint64(j), pos, e, at, driver.JSON), j),
			}})
			pos++
		}
	}
	return items
}

// DecodeLogTags returns the types and tags of the events of a log entry.
func DecodeLogTags(item map[string]types.AttributeValue) (types []string, tags [][]string, err error) {
	e, err := decodeLogEntry(item)
	if err != nil {
		return nil, nil, err
	}
	tags = make([][]string, e.count)
	for i := range tags {
		tags[i] = e.tagsAt(uint64(i))
	}
	return e.types, tags, nil
}

// HoldAppend writes the log entry of an append of req's events to a new
// stream (req.Expected is Exact(0)) at the next positions of the log, and
// returns a func that writes its event items: in between, the log holds
// the positions and the events are not visible, as while DynamoDB applies
// a transaction's items one by one. In an indexed table, the entry is
// placed as the orderer's lease holder places an append (this driver's
// orderer must hold the lease).
func HoldAppend(ctx context.Context, d *Driver, req driver.AppendRequest) (commit func() error, err error) {
	if req.Expected.Kind() != driver.ExpectExact || req.Expected.Version() != 0 {
		return nil, fmt.Errorf("HoldAppend: want Exact(0), got %v", req.Expected)
	}
	start, err := d.holdPositions(ctx, req)
	if err != nil {
		return nil, err
	}
	return func() error {
		var items []types.TransactWriteItem
		for i, e := range req.Events {
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(d.table), ConditionExpression: aws.String("attribute_not_exists(pk)"),
				Item: laterInAppend(eventItem(req.Stream, uint64(i)+1, start+uint64(i), e, req.RecordedAt, driver.JSON), i),
			}})
		}
		_, err := d.client.TransactWriteItems(context.Background(), &awsdynamodb.TransactWriteItemsInput{TransactItems: items})
		d.notify()
		return err
	}, nil
}

// holdPositions writes the log entry of req at the next free positions and
// returns the first.
func (d *Driver) holdPositions(ctx context.Context, req driver.AppendRequest) (uint64, error) {
	for range maxHeadRaces {
		if !d.indexed {
			start, err := d.nextPosition(ctx)
			if err != nil {
				return 0, err
			}
			// The entry and its tag items (see tagindex.go): the tag
			// items of an entry below the last one are visible with it.
			items := []types.TransactWriteItem{{Put: &types.Put{
				TableName: aws.String(d.table), ConditionExpression: aws.String("attribute_not_exists(pk)"),
				Item: logItem(start/d.bucketSize, start, req.Stream, 1, req.Events),
			}}}
			items = append(items, d.tagItems(start, []run{{stream: req.Stream, first: 1, events: req.Events}})...)
			_, err = d.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{TransactItems: items})
			if _, cancelled := cancellationReasons(err, len(items)); cancelled {
				continue
			}
			return start, err
		}
		o := d.orderer
		for o == nil || !o.holding.Load() {
			if o == nil || sleep(ctx, 10*time.Millisecond) != nil {
				return 0, fmt.Errorf("HoldAppend: the driver's orderer does not hold the lease")
			}
		}
		start, done, err := func() (uint64, bool, error) {
			o.hmu.Lock()
			defer o.hmu.Unlock()
			if o.next == 0 {
				next, err := o.readHead()
				if err != nil {
					return 0, false, err
				}
				o.next = next
			}
			items := o.fence(uint64(len(req.Events)))
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(d.table), ConditionExpression: aws.String("attribute_not_exists(pk)"),
				Item: logItem(o.next/d.bucketSize, o.next, req.Stream, 1, req.Events),
			}})
			items = append(items, d.tagItems(o.next, []run{{stream: req.Stream, first: 1, events: req.Events}})...)
			_, err := d.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{TransactItems: items})
			if err != nil {
				o.next = 0
				if _, cancelled := cancellationReasons(err, len(items)); cancelled {
					return 0, false, nil
				}
				return 0, false, err
			}
			start := o.next
			o.next += uint64(len(req.Events))
			return start, true, nil
		}()
		if err != nil || done {
			return start, err
		}
	}
	return 0, fmt.Errorf("HoldAppend: lost the race for the head of the log %d times", maxHeadRaces)
}
