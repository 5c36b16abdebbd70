package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readModel is a table of a projection's read model: items keyed by a
// string "id", deleted when the test ends.
type readModel struct {
	t      *testing.T
	client *awsdynamodb.Client
	table  string
}

func newReadModel(t *testing.T, client *awsdynamodb.Client) readModel {
	t.Helper()
	table := randomTable()
	_, err := client.CreateTable(t.Context(), &awsdynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	require.NoError(t, err)
	deleteTableAtCleanup(t, client, table)
	return readModel{t, client, table}
}

// put is a transaction item putting item id with a value of size bytes,
// on condition that it does not exist when mustBeNew.
func (m readModel) put(id string, size int, mustBeNew bool) types.TransactWriteItem {
	p := &types.Put{TableName: aws.String(m.table), Item: map[string]types.AttributeValue{
		"id": &types.AttributeValueMemberS{Value: id},
		"v":  &types.AttributeValueMemberS{Value: strings.Repeat("x", max(size, 1))},
	}}
	if mustBeNew {
		p.ConditionExpression = aws.String("attribute_not_exists(id)")
		p.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	return types.TransactWriteItem{Put: p}
}

// ids returns the IDs of the items stored, in no order.
func (m readModel) ids() []string {
	m.t.Helper()
	out, err := m.client.Scan(m.t.Context(), &awsdynamodb.ScanInput{TableName: aws.String(m.table), ConsistentRead: aws.Bool(true)})
	require.NoError(m.t, err)
	var ids []string
	for _, item := range out.Items {
		ids = append(ids, item["id"].(*types.AttributeValueMemberS).Value)
	}
	return ids
}

// adding returns a CheckpointTx fn that adds items and returns err.
func adding(err error, items ...types.TransactWriteItem) func(driver.Tx) error {
	return func(tx driver.Tx) error {
		var txi *dynamodb.TxItems
		if !tx.As(&txi) {
			return errors.New("Tx.As(**dynamodb.TxItems) is false")
		}
		txi.Add(items...)
		return err
	}
}

// TestCheckpointTxReadModel writes read-model items through the projection
// transaction: they commit with the checkpoint, and nothing is written when
// the checkpoint moved, the handler failed, or an item's own condition
// failed (a *TxConditionError, which is not ErrCheckpointMoved).
func TestCheckpointTxReadModel(t *testing.T) {
	client := newClient(t, nil)
	d := newDriver(t, client, dynamodb.Options{})
	m := newReadModel(t, client)
	ctx := t.Context()
	p1, p2 := driver.Position{Commit: 5, Prepare: 1}, driver.Position{Commit: 9}
	boom := errors.New("handler failed")
	require.NoError(t, d.CheckpointTx(ctx, "existing", driver.Position{}, false, driver.Position{}, adding(nil, m.put("old", 1, false))))

	for _, c := range []struct {
		name    string
		saved   *driver.Position // checkpoint stored before, nil for none
		prev    *driver.Position // prev passed, nil for none
		fn      func(driver.Tx) error
		check   func(t *testing.T, err error)
		written []string // read-model items the call leaves
	}{
		{
			name: "committed from none", fn: adding(nil, m.put("a1", 10, true), m.put("a2", 10, true)),
			check: func(t *testing.T, err error) { require.NoError(t, err) }, written: []string{"a1", "a2"},
		},
		{
			name: "committed from prev", saved: &p1, prev: &p1, fn: adding(nil, m.put("b1", 10, true)),
			check: func(t *testing.T, err error) { require.NoError(t, err) }, written: []string{"b1"},
		},
		{
			name: "moved: expected none", saved: &p1, fn: adding(nil, m.put("c1", 10, true)),
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, eventstore.ErrCheckpointMoved) },
		},
		{
			name: "moved: expected another", saved: &p1, prev: &p2, fn: adding(nil, m.put("d1", 10, true)),
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, eventstore.ErrCheckpointMoved) },
		},
		{
			name: "handler error", fn: adding(boom, m.put("e1", 10, true)),
			check: func(t *testing.T, err error) { require.Same(t, boom, err) },
		},
		{
			name: "read-model condition", saved: &p1, prev: &p1, fn: adding(nil, m.put("f1", 10, true), m.put("old", 10, true)),
			check: func(t *testing.T, err error) {
				var ce *dynamodb.TxConditionError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, 1, ce.Index)
				assert.Contains(t, ce.Item, "id", "the item as it was (ALL_OLD)")
				assert.NotErrorIs(t, err, eventstore.ErrCheckpointMoved)
				var tce *types.TransactionCanceledException
				assert.ErrorAs(t, err, &tce, "the native error stays reachable")
			},
		},
		{
			name: "moved and read-model condition", saved: &p1, prev: &p2, fn: adding(nil, m.put("old", 10, true)),
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, eventstore.ErrCheckpointMoved) },
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "proj-" + strings.ReplaceAll(c.name, " ", "-")
			if c.saved != nil {
				require.NoError(t, d.SaveCheckpoint(ctx, name, *c.saved))
			}
			var prev driver.Position
			if c.prev != nil {
				prev = *c.prev
			}
			before := m.ids()
			err := d.CheckpointTx(ctx, name, prev, c.prev != nil, p2, c.fn)
			c.check(t, err)
			assert.ElementsMatch(t, append(before, c.written...), m.ids(), "read-model items")
			pos, ok, lerr := d.LoadCheckpoint(ctx, name)
			require.NoError(t, lerr)
			switch {
			case err == nil:
				assert.Equal(t, p2, pos, "checkpoint")
			case c.saved != nil:
				assert.Equal(t, *c.saved, pos, "checkpoint")
			default:
				assert.False(t, ok, "checkpoint")
			}
		})
	}
}

// TestCheckpointTxLimits: a handler may add MaxTxItems items; more, or more
// than the transaction's 4 MB, is rejected with ErrInvalidArgument before
// anything is sent, never split.
func TestCheckpointTxLimits(t *testing.T) {
	tr := newFaulty() // counts requests
	client := newClient(t, tr)
	d := newDriver(t, client, dynamodb.Options{})
	m := newReadModel(t, client)
	many := func(prefix string, n, size int) []types.TransactWriteItem {
		items := make([]types.TransactWriteItem, n)
		for i := range items {
			items[i] = m.put(prefix+strconv.Itoa(i), size, false)
		}
		return items
	}
	for _, c := range []struct {
		name  string
		items []types.TransactWriteItem
		ok    bool
	}{
		{"MaxTxItems items", many("a", dynamodb.MaxTxItems, 10), true},
		{"one item too many", many("b", dynamodb.MaxTxItems+1, 10), false},
		{"11 items of 390 KB", many("c", 11, 390<<10), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(m.ids())
			tr.arm("", throttle, 0)
			err := d.CheckpointTx(t.Context(), "proj-"+c.name, driver.Position{}, false, driver.Position{Commit: 1}, adding(nil, c.items...))
			_, saved, lerr := d.LoadCheckpoint(t.Context(), "proj-"+c.name)
			require.NoError(t, lerr)
			if c.ok {
				require.NoError(t, err)
				assert.Len(t, m.ids(), before+len(c.items))
				assert.True(t, saved)
				return
			}
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			assert.Zero(t, tr.count("TransactWriteItems"), "sent a transaction over the limits")
			assert.Len(t, m.ids(), before, "read-model items written")
			assert.False(t, saved, "checkpoint saved")
		})
	}
}

// TestCheckpointTxAs: the handler's Tx hands out the batch's *TxItems and
// the driver's client, and nothing else.
func TestCheckpointTxAs(t *testing.T) {
	client := newClient(t, nil)
	d := newDriver(t, client, dynamodb.Options{})
	err := d.CheckpointTx(t.Context(), "proj", driver.Position{}, false, driver.Position{Commit: 1}, func(tx driver.Tx) error {
		var items *dynamodb.TxItems
		var c *awsdynamodb.Client
		var s *string
		for _, c := range []struct {
			target any
			want   bool
		}{{&items, true}, {&c, true}, {nil, false}, {items, false}, {(**dynamodb.TxItems)(nil), false}, {&s, false}} {
			assert.Equal(t, c.want, tx.As(c.target), "As(%T)", c.target)
		}
		assert.NotNil(t, items)
		assert.Same(t, client, c)
		return nil
	})
	require.NoError(t, err)
}

// TestCheckpointTxEarlierLayout: a projection whose checkpoint a driver of
// the earlier checkpoint layout saved moves it on: the driver copies it to
// the current layout and commits.
func TestCheckpointTxEarlierLayout(t *testing.T) {
	client := newClient(t, nil)
	table := earlierTable(t, client)
	m := newReadModel(t, client)
	prev := eventstore.Position{Commit: 5, Prepare: 7}
	putRaw(t, client, table, earlierCheckpoint("proj", prev))
	d, err := dynamodb.New(t.Context(), client, table, dynamodb.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })

	loaded, ok, err := d.LoadCheckpoint(t.Context(), "proj")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, driver.Position(prev), loaded)
	require.NoError(t, d.CheckpointTx(t.Context(), "proj", loaded, true, driver.Position{Commit: 8}, adding(nil, m.put("a", 1, true))))
	pos, _, err := d.LoadCheckpoint(t.Context(), "proj")
	require.NoError(t, err)
	assert.Equal(t, driver.Position{Commit: 8}, pos)
	assert.Equal(t, []string{"a"}, m.ids())
	err = d.CheckpointTx(t.Context(), "proj", loaded, true, driver.Position{Commit: 9}, nil)
	assert.ErrorIs(t, err, eventstore.ErrCheckpointMoved, "the earlier position once moved on")
}

// TestProjectCountsOnce runs Store.Project with a handler that counts
// events in a read-model item through the transaction, stopping and
// restarting it: the count is the number of events, each counted once.
func TestProjectCountsOnce(t *testing.T) {
	client := newClient(t, nil)
	store, _ := newStore(t, client, dynamodb.Options{})
	m := newReadModel(t, client)
	ctx := t.Context()
	count := func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
		var items *dynamodb.TxItems
		if !tx.As(&items) {
			return errors.New("not a DynamoDB transaction")
		}
		items.Add(types.TransactWriteItem{Update: &types.Update{
			TableName:                 aws.String(m.table),
			Key:                       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "count"}},
			UpdateExpression:          aws.String("ADD n :n"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: strconv.Itoa(len(events))}},
		}})
		return nil
	}
	run := func() {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		err := store.Project(ctx, eventstore.SubscribeOptions{Name: "counter", BatchSize: 7,
			OnCaughtUp: func(eventstore.SubscriptionState) { cancel() }}, count)
		require.ErrorIs(t, err, context.Canceled)
	}
	stored := func() string {
		out, err := client.GetItem(ctx, &awsdynamodb.GetItemInput{TableName: aws.String(m.table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "count"}}})
		require.NoError(t, err)
		n, _ := out.Item["n"].(*types.AttributeValueMemberN)
		if n == nil {
			return ""
		}
		return n.Value
	}
	total := 0
	for _, n := range []int{30, 0, 5} {
		for i := range n {
			_, err := store.Append(ctx, fmt.Sprintf("Counter-%d", i%3), eventstore.Any, eventstore.NewEvent("Counted", nil))
			require.NoError(t, err)
		}
		total += n
		run()
		assert.Equal(t, strconv.Itoa(total), stored(), "count after %d events", total)
	}
}

// TestCheckpointTxRetried injects transient failures into the projection
// transaction: it is retried and commits once (a response lost after the
// commit is answered by DynamoDB from the ClientRequestToken); once
// MaxAttempts tries are spent the error matches ErrTransient and nothing
// is written.
func TestCheckpointTxRetried(t *testing.T) {
	for _, c := range []struct {
		fault fault
		n     int
		ok    bool
	}{
		{conflict, 3, true},
		{throttle, 2, true},
		{serverError, 2, true},
		{lost, 1, true},
		{conflict, 1000, false},
	} {
		t.Run(fmt.Sprintf("%s×%d", c.fault, c.n), func(t *testing.T) {
			t.Parallel()
			tr := newFaulty()
			client := newClient(t, tr)
			d := newDriver(t, client, dynamodb.Options{MaxAttempts: 4})
			m := newReadModel(t, client)
			add := types.TransactWriteItem{Update: &types.Update{
				TableName:                 aws.String(m.table),
				Key:                       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "count"}},
				UpdateExpression:          aws.String("ADD n :one"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
			}}
			tr.arm("TransactWriteItems", c.fault, c.n)
			err := d.CheckpointTx(t.Context(), "proj", driver.Position{}, false, driver.Position{Commit: 3}, adding(nil, add))
			tr.arm("", throttle, 0)
			out, gerr := client.GetItem(t.Context(), &awsdynamodb.GetItemInput{TableName: aws.String(m.table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "count"}}})
			require.NoError(t, gerr)
			_, saved, lerr := d.LoadCheckpoint(t.Context(), "proj")
			require.NoError(t, lerr)
			if c.ok {
				require.NoError(t, err)
				assert.Equal(t, &types.AttributeValueMemberN{Value: "1"}, out.Item["n"], "written once")
				assert.True(t, saved)
				return
			}
			require.ErrorIs(t, err, eventstore.ErrTransient)
			assert.NotErrorIs(t, err, eventstore.ErrCheckpointMoved)
			assert.Nil(t, out.Item, "read model written")
			assert.False(t, saved, "checkpoint saved")
		})
	}
}

// TestProjectStopsOnReadModelCondition: a failed condition of the
// handler's own item stops Store.Project with a *TxConditionError, and the
// checkpoint stays where it was.
func TestProjectStopsOnReadModelCondition(t *testing.T) {
	client := newClient(t, nil)
	store, _ := newStore(t, client, dynamodb.Options{})
	m := newReadModel(t, client)
	ctx := t.Context()
	putRaw(t, client, m.table, map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "taken"}})
	_, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	err = store.Project(ctx, eventstore.SubscribeOptions{Name: "proj"},
		func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
			var items *dynamodb.TxItems
			if !tx.As(&items) {
				return errors.New("not a DynamoDB transaction")
			}
			items.Add(m.put("taken", 1, true))
			return nil
		})
	var ce *dynamodb.TxConditionError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "proj", ce.Checkpoint)
	assert.NotErrorIs(t, err, eventstore.ErrTransient)
	_, ok, err := store.Checkpoint(ctx, "proj")
	require.NoError(t, err)
	assert.False(t, ok, "checkpoint saved")
}
