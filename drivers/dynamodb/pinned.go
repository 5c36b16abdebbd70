package dynamodb

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Conditional appends from any process (indexed layout). A conditional
// append must take the position right after the last one its condition
// scan examined (its pin; see AppendMulti). In an indexed table that
// position is the head item's: the orderer's lease holder places the
// append with its passes' fence (see appendPlaced). A driver that does not
// hold the lease writes the same transaction without the lease check:
//
//  1. the head item moved from the next free position it read (a strongly
//     consistent GetItem, at or below the pin: an After past the head
//     pins above it) past the append's events, on condition that it is
//     still there;
//  2. the log entry, its tag items, the checks of streams only checked, a
//     check per written stream that its previous version is placed, and
//     the events with their positions, as the lease holder writes them.
//
// The lease fences orderers from each other, so that one placing the inbox
// never acts on a head it no longer owns; every writer of the head, the
// lease holder included, moves it on condition that it is where the writer
// read it, so no two transactions take the same positions and the log stays
// dense. Such an append only delays the lease holder: the holder's next
// transaction finds the head moved and reads it again (its direct
// placements then take the inbox path once). The next position is read
// from the table, so the log below it is settled first (see window.go).

// headMove returns the update of the head item that moves the next free
// position from next past count events, on condition that it is still at
// next; gen, when not 0, is recorded as the lease generation that moved it.
func (d *Driver) headMove(next, count, gen uint64) types.TransactWriteItem {
	cond := "#n = :old"
	if next == 1 {
		cond = "attribute_not_exists(pk) OR #n = :old"
	}
	u := &types.Update{
		TableName: aws.String(d.table), Key: key(logHeadPK, 0),
		UpdateExpression:          aws.String("SET #n = :new"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#n": attrNext},
		ExpressionAttributeValues: map[string]types.AttributeValue{":old": num(next), ":new": num(next + count)},
	}
	if gen != 0 {
		u.UpdateExpression = aws.String("SET #n = :new, #g = :g")
		u.ExpressionAttributeNames["#g"] = attrGeneration
		u.ExpressionAttributeValues[":g"] = num(gen)
	}
	return types.TransactWriteItem{Update: u}
}

// appendPinned places a conditional append directly, without the
// orderer's lease (see above). A head past r.pin, a previous version not
// placed yet or a lost race give outcome.moved: the caller evaluates the
// append again.
func (d *Driver) appendPinned(ctx context.Context, r *request) outcome {
	next, err := d.readHead(ctx)
	if err != nil {
		return outcome{err: wrapNative(err)}
	}
	if next > r.pin {
		return outcome{moved: true}
	}
	if err := d.settleBelow(ctx, next); err != nil {
		return outcome{err: err}
	}
	items, roles, last := d.placedItems([]types.TransactWriteItem{d.headMove(next, uint64(r.count), 0)}, next, r)
	_, err = d.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{
		TransactItems: items, ClientRequestToken: aws.String(newToken()),
	}, noRetry)
	if err != nil {
		return d.placedFailed(ctx, err, items, roles)
	}
	d.pinnedAppends.Add(1)
	d.bucketHint.Store(max(d.bucketHint.Load(), next/d.bucketSize))
	d.notify()
	return outcome{last: last}
}

// readHead returns the next free position of an indexed table's log from
// its head item (1 when there is none yet), strongly consistent.
func (d *Driver) readHead(ctx context.Context) (uint64, error) {
	var out *awsdynamodb.GetItemOutput
	err := d.call(ctx, "GetItem", func(ctx context.Context) error {
		var err error
		out, err = d.client.GetItem(ctx, &awsdynamodb.GetItemInput{
			TableName: aws.String(d.table), Key: key(logHeadPK, 0), ConsistentRead: aws.Bool(true),
		}, noRetry)
		return err
	})
	if err != nil {
		return 0, err
	}
	if out.Item == nil {
		return 1, nil
	}
	return getNum(out.Item, attrNext)
}
