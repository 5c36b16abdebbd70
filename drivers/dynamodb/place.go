package dynamodb

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Appends placed directly (indexed layout). While this driver's orderer
// holds the lease, the committer writes a group of appends straight into
// the log, in ONE TransactWriteItems, instead of an inbox entry per append
// followed by a pass of the orderer (two transactions in a row, and
// DynamoDB Local runs transactions one at a time):
//
//  1. the orderer's fence: its lease check and the head of the log moved
//     from the next free position, as in a pass (o.hmu is held, so no pass
//     runs meanwhile);
//  2. one log entry at that position covering the group, as a pass writes;
//  3. per append whose first version is above 1, a check that the previous
//     version of its stream already has a position. It is placed, so every
//     earlier version is (the orderer places a stream in version order) and
//     none of them waits in the inbox: the append cannot overtake one. It
//     also checks the version an Exact expectation names;
//  4. the event items, put with their positions, each on condition that
//     the version is free.
//
// A cancelled transaction writes nothing. An event item taken is a version
// conflict, as in commit; any other reason (the previous version not
// placed yet or missing, the lease lost, the head moved, a throttled or
// conflicting transaction) and any other failure send the appends down the
// inbox path, which decides for them as before. A failure whose outcome is
// unknown is safe there too: if the transaction was applied, the inbox
// path's puts conflict and the append's retry lookup finds its events,
// placed. Imports of several runs always take the inbox path.

// placedItem says what an item of a direct transaction does.
type placedItem struct {
	owner int // request index; -1 for the fence and the log entry
	event bool
}

// placeDirect writes group straight into the log when this driver's
// orderer holds the lease. It delivers the outcome of each request it
// settles and returns the others, for the inbox path.
func (c *committer) placeDirect(group []*request) []*request {
	d := c.d
	o := d.orderer
	if o == nil || !o.holding.Load() {
		return group
	}
	for _, r := range group {
		if len(r.runs) != 1 || len(r.checks) > 0 {
			return group
		}
	}
	o.hmu.Lock()
	defer o.hmu.Unlock()
	// Renewed when two thirds are left: less than a third means the
	// renewal is late; let the orderer sort its lease out.
	if o.gen == 0 || time.Until(o.expires) < o.lease/3 || o.ctx.Err() != nil || c.ctx.Err() != nil {
		return group
	}
	if o.next == 0 {
		next, err := o.readHead()
		if err != nil {
			return group
		}
		o.next = next
	}
	items, roles, last, count, ok := o.buildDirect(group)
	if !ok {
		return group
	}
	_, err := d.client.TransactWriteItems(c.ctx, &awsdynamodb.TransactWriteItemsInput{
		TransactItems: items, ClientRequestToken: aws.String(newToken()),
	}, noRetry)
	if err == nil {
		start := o.next
		o.next += count
		d.bucketHint.Store(max(d.bucketHint.Load(), start/d.bucketSize))
		d.directAppends.Add(uint64(len(group)))
		for i, r := range group {
			rn := r.runs[0]
			o.remember(streamVersion{rn.stream, rn.first + uint64(len(rn.events)) - 1})
			r.done <- outcome{last: last[i]}
		}
		d.notify()
		return nil
	}
	reasons, cancelled := cancellationReasons(err, len(items))
	if !cancelled {
		o.next = 0 // the transaction may have been applied
		return group
	}
	taken := make([]bool, len(group))
	for i, cls := range reasons {
		switch {
		case cls == classConflict && roles[i].event:
			taken[roles[i].owner] = true
		case cls == classConflict && i < 3:
			o.next = 0 // the head moved (or the lease went): read it again
		}
	}
	rest := group[:0]
	for i, r := range group {
		if taken[i] {
			r.done <- outcome{conflict: true, err: err}
			continue
		}
		rest = append(rest, r)
	}
	clear(group[len(rest):])
	return rest
}

// buildDirect lays out the direct transaction of group at positions from
// o.next on: the items, what each does, the position of each request's
// last event and the events in all. ok is false when it does not fit one
// transaction. The caller holds o.hmu.
func (o *orderer) buildDirect(group []*request) (items []types.TransactWriteItem, roles []placedItem, last []uint64, count uint64, ok bool) {
	d := o.d
	table := aws.String(d.table)
	runs := make([]run, 0, len(group))
	size := 0
	for _, r := range group {
		runs = append(runs, r.runs[0])
		count += uint64(r.count)
		size += r.size
	}
	entrySize := runsLogItemSize(runs)
	cost := txnCost{placeItems + int(count), size + entrySize}
	for _, rn := range runs {
		if o.checksPrevious(rn) {
			cost.items++
		}
	}
	if entrySize > maxLogItemSize || !cost.plus(d.tagCost(runs)).fits() { // see tagindex.go
		return nil, nil, nil, 0, false
	}
	add := func(item types.TransactWriteItem, role placedItem) {
		items = append(items, item)
		roles = append(roles, role)
	}
	for _, item := range append(o.fence(count), d.entryPuts(o.next, runs)...) {
		add(item, placedItem{owner: -1})
	}
	pos := o.next
	for i, rn := range runs {
		if o.checksPrevious(rn) {
			add(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
				TableName: table, Key: key(rn.stream, rn.first-1),
				// Not the stub of a deleted stream (see retention.go):
				// recreating one takes the inbox path.
				ConditionExpression: aws.String("attribute_exists(pk) AND attribute_exists(p) AND attribute_not_exists(dl)"),
			}}, placedItem{owner: i})
		}
		for j, e := range rn.events {
			add(types.TransactWriteItem{Put: &types.Put{
				TableName: table, ConditionExpression: rn.putCond(j), // a recreation: in place of the fence (see fence.go)
				Item: laterInAppend(eventItem(rn.stream, rn.first+uint64(j), pos, e, rn.recordedAt(j), rn.metadataType(j)), j),
			}}, placedItem{owner: i, event: true})
			pos++
		}
		last = append(last, pos-1)
	}
	return items, roles, last, count, true
}

// checksPrevious reports whether the direct transaction checks that the
// version before rn's first is placed: not for a stream's first version,
// nor in item layout 2 for a version this driver placed (placedTo; the
// check also refuses a deleted stream's stub, and there a put after a
// deleted stream meets its fence instead, see fence.go). The caller holds
// o.hmu.
func (o *orderer) checksPrevious(rn run) bool {
	return rn.first > 1 && !(o.d.unplaced && o.placedTo[rn.stream] >= rn.first-1)
}
