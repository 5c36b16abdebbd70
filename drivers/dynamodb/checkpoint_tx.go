package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// MaxTxItems is the most items a projection's handler may add to its
// [TxItems]: a DynamoDB transaction holds 100 items, and the checkpoint
// takes one.
const MaxTxItems = maxTxnItems - 1

// TxItems is the transaction of one projection batch: the handler of
// [eventstore.Store.Project] adds its read model's writes, and the driver
// sends them with the checkpoint's compare-and-set in one
// TransactWriteItems request once the handler returns nil, so they commit
// together or not at all. Get it with [eventstore.Tx.As]:
//
//	var items *dynamodb.TxItems
//	if !tx.As(&items) {
//		return errors.New("not a DynamoDB store")
//	}
//	items.Add(types.TransactWriteItem{Update: &types.Update{...}})
//
// The items may write any table of the client's account and region,
// conditions included. Nothing is sent before the handler returns, so the
// handler cannot read its own writes. At most [MaxTxItems] items and 4 MB in
// all; see [Driver.CheckpointTx].
type TxItems struct {
	items []types.TransactWriteItem
}

// Add queues items for the transaction, after those added before.
func (t *TxItems) Add(items ...types.TransactWriteItem) { t.items = append(t.items, items...) }

// Len returns the number of items queued.
func (t *TxItems) Len() int { return len(t.items) }

// TxConditionError reports that the condition of an item a projection's
// handler added to its [TxItems] failed: DynamoDB cancelled the
// transaction, so nothing was written and the checkpoint did not move.
// Store.Project returns it (wrapped), stopping the projection: the batch is
// delivered again when it restarts. It does not match
// [eventstore.ErrCheckpointMoved], which a failed checkpoint condition
// returns instead (and first, when both failed).
type TxConditionError struct {
	// Checkpoint is the projection's checkpoint name.
	Checkpoint string
	// Index is the item's place among the handler's items, from 0, in the
	// order they were added.
	Index int
	// Item is the item as it was, when the handler asked for it with
	// ReturnValuesOnConditionCheckFailure ALL_OLD; nil otherwise.
	Item map[string]types.AttributeValue
	// Err is the native *types.TransactionCanceledException.
	Err error
}

func (e *TxConditionError) Error() string {
	return fmt.Sprintf("dynamodb: checkpoint %q: the condition of the handler's item %d failed: %v", e.Checkpoint, e.Index, e.Err)
}

// Unwrap returns the native error.
func (e *TxConditionError) Unwrap() error { return e.Err }

// projectionTx is the driver.Tx handed to a projection's handler.
type projectionTx struct {
	items  *TxItems
	client *awsdynamodb.Client
}

// As sets a **TxItems target to the batch's transaction and a
// **dynamodb.Client target to the driver's client.
func (t projectionTx) As(target any) bool {
	switch p := target.(type) {
	case **TxItems:
		if p != nil {
			*p = t.items
			return true
		}
	case **awsdynamodb.Client:
		if p != nil {
			*p = t.client
			return true
		}
	}
	return false
}

// CheckpointTx implements [driver.CheckpointTxer]. fn runs first and only
// queues writes in a [TxItems] (its Tx's As also hands out the client, to
// read); then the driver sends them in one TransactWriteItems request with
// a put of the checkpoint conditional on its being prev (hasPrev false: on
// there being none). A failed checkpoint condition returns an error
// matching [eventstore.ErrCheckpointMoved]; a failed condition of the
// handler's own items, a *[TxConditionError]. Either way nothing is
// written. Without items (fn nil or adding none) the checkpoint is one
// conditional PutItem (one write unit); with them, a transaction costs two
// write units per KB of each item, the checkpoint's included.
//
// More than [MaxTxItems] items, or items that add up to more than the
// transaction's 4 MB by the driver's count (of puts' items, keys and
// update values), are rejected with an error matching
// [eventstore.ErrInvalidArgument] before anything is sent; the service
// rejects what the driver cannot count (an update that makes an item too
// large) the same way. A batch is never split.
//
// A checkpoint saved by a driver before checkpoint layout 2 (see
// Checkpoints) is copied to the current layout when prev is found there,
// and the transaction sent again.
func (d *Driver) CheckpointTx(ctx context.Context, name string, prev driver.Position, hasPrev bool, pos driver.Position, fn func(driver.Tx) error) error {
	var items TxItems
	if fn != nil {
		if err := fn(projectionTx{items: &items, client: d.client}); err != nil {
			return err
		}
	}
	if err := checkTxItems(name, items.items); err != nil {
		return err
	}
	for try := 0; ; try++ {
		moved, old, err := d.casCheckpoint(ctx, name, prev, hasPrev, pos, items.items)
		if err != nil || !moved {
			return err
		}
		if n, err := getStr(old, attrName); old != nil && (err != nil || n != name) {
			return fmt.Errorf("dynamodb: checkpoint %q: its key holds the checkpoint of another name (a SHA-256 collision)", name)
		}
		if old == nil && hasPrev && try == 0 {
			// prev was read from the earlier layout (LoadCheckpoint reads
			// it when the name has no item of its own): copy it over.
			copied, err := d.copyEarlierCheckpoint(ctx, name, prev)
			if err != nil {
				return err
			}
			if copied {
				continue
			}
		}
		return fmt.Errorf("dynamodb: checkpoint %q: %w", name, eventstore.ErrCheckpointMoved)
	}
}

// casCheckpoint saves pos as checkpoint name if it is prev (none when
// hasPrev is false), with items in the same transaction. When the
// checkpoint's condition fails it returns moved true and the checkpoint's
// item as it was (nil if there was none).
func (d *Driver) casCheckpoint(ctx context.Context, name string, prev driver.Position, hasPrev bool, pos driver.Position,
	items []types.TransactWriteItem) (moved bool, old map[string]types.AttributeValue, err error) {
	put := &types.Put{
		TableName:                           aws.String(d.table),
		Item:                                checkpointItem(name, pos),
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if hasPrev {
		put.ConditionExpression = aws.String("#cn = :n AND #p = :p AND #pp = :pp")
		put.ExpressionAttributeNames = map[string]string{"#cn": attrName, "#p": attrPos, "#pp": attrPrepare}
		put.ExpressionAttributeValues = map[string]types.AttributeValue{
			":n": str(name), ":p": num(prev.Commit), ":pp": num(prev.Prepare),
		}
	}
	if len(items) == 0 {
		err := d.call(ctx, "PutItem", func(ctx context.Context) error {
			_, err := d.client.PutItem(ctx, &awsdynamodb.PutItemInput{
				TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
				ExpressionAttributeNames: put.ExpressionAttributeNames, ExpressionAttributeValues: put.ExpressionAttributeValues,
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}, noRetry)
			return err
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return true, ccf.Item, nil
		}
		if err != nil {
			return false, nil, fmt.Errorf("dynamodb: checkpoint %q: %w", name, wrapNative(err))
		}
		return false, nil, nil
	}
	tx := append(slices.Clip(items), types.TransactWriteItem{Put: put})
	token := newToken()
	err = d.call(ctx, "TransactWriteItems", func(ctx context.Context) error {
		_, err := d.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{
			TransactItems: tx, ClientRequestToken: aws.String(token),
		}, noRetry)
		if errors.As(err, new(*types.TransactionCanceledException)) {
			token = newToken() // nothing was written: a retry is a new transaction
		}
		return err
	})
	if err == nil {
		return false, nil, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != len(tx) {
		return false, nil, fmt.Errorf("dynamodb: checkpoint %q: projection transaction: %w", name, wrapNative(err))
	}
	reasons := tce.CancellationReasons
	last := len(tx) - 1
	if reasonClass(aws.ToString(reasons[last].Code)) == classConflict {
		return true, reasons[last].Item, nil
	}
	for i, r := range reasons[:last] {
		if reasonClass(aws.ToString(r.Code)) == classConflict {
			return false, nil, &TxConditionError{Checkpoint: name, Index: i, Item: r.Item, Err: err}
		}
	}
	for _, r := range reasons {
		if reasonClass(aws.ToString(r.Code)) == classInvalid {
			return false, nil, fmt.Errorf("dynamodb: checkpoint %q: projection transaction: %w: %w", name, eventstore.ErrInvalidArgument, err)
		}
	}
	return false, nil, fmt.Errorf("dynamodb: checkpoint %q: projection transaction: %w", name, wrapNative(err))
}

// checkTxItems rejects a handler's items that cannot fit one transaction
// with the checkpoint's item.
func checkTxItems(name string, items []types.TransactWriteItem) error {
	if len(items) > MaxTxItems {
		return fmt.Errorf("dynamodb: checkpoint %q: %w: the projection's handler added %d items to the transaction, "+
			"over the %d a DynamoDB transaction holds besides the checkpoint (lower the projection's BatchSize)",
			name, eventstore.ErrInvalidArgument, len(items), MaxTxItems)
	}
	size := 0
	for _, it := range items {
		size += writeItemSize(it)
	}
	if limit := maxTxnSize - maxCheckpointItemSize; size > limit {
		return fmt.Errorf("dynamodb: checkpoint %q: %w: the projection's handler added %d bytes of items to the transaction, "+
			"over the %d a DynamoDB transaction holds besides the checkpoint (lower the projection's BatchSize)",
			name, eventstore.ErrInvalidArgument, size, limit)
	}
	return nil
}

// maxCheckpointItemSize bounds the size of a checkpoint item: keys, a
// 255-byte name, two numbers and the attribute names.
const maxCheckpointItemSize = 512

// writeItemSize counts the bytes of a transaction item as DynamoDB does,
// or fewer: a put's item, or the key and, for an update, the values of its
// expressions (DynamoDB counts the item as updated, which only it knows).
func writeItemSize(it types.TransactWriteItem) int {
	switch {
	case it.Put != nil:
		return itemSize(it.Put.Item)
	case it.Update != nil:
		n := itemSize(it.Update.Key)
		for _, v := range it.Update.ExpressionAttributeValues {
			n += attributeSize(v)
		}
		return n
	case it.Delete != nil:
		return itemSize(it.Delete.Key)
	case it.ConditionCheck != nil:
		return itemSize(it.ConditionCheck.Key)
	}
	return 0
}

// itemSize is the size of an item by DynamoDB's rules: the lengths of its
// attribute names and values.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + attributeSize(v)
	}
	return n
}

// attributeSize is the size of an attribute value by DynamoDB's rules, or
// less (a number counts one byte per two digits and one more).
func attributeSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += len(s)/2 + 1
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberM:
		return 3 + itemSize(v.Value)
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += attributeSize(e)
		}
		return n
	}
	return 1 // BOOL, NULL
}
