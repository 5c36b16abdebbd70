package dynamodb

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/driver"
)

// Checkpoints are items of their own, one per name, spread over
// checkpointShards partitions ("$checkpoints#0" … "$checkpoints#15") by the
// SHA-256 of the name, with the name in attribute "cn". The table's sort key
// is a number, so it cannot hold the name: it holds more bits of the hash,
// and Checkpoints sorts by name itself. Listing is one Query per partition,
// never a scan of the events.
//
// Drivers before checkpoint layout 2 kept each checkpoint in a partition of
// its own ("$checkpoint#" + name, sort key 0), which only a scan of the whole
// table finds. This driver still reads such an item when a name has none of
// its own, and deletes it with the name's; the first listing in a table from
// before copies them, once (copyEarlierCheckpoints). docs/dynamodb.md has
// the costs.

// maxCopyTries bounds the tries to copy one checkpoint of the earlier
// layout that an older driver keeps saving while it is copied.
const maxCopyTries = 10

// checkpointKey returns the primary key of the checkpoint saved under name:
// partition "$checkpoints#" + the first byte of the name's SHA-256 modulo
// checkpointShards, and as sort key the next 120 bits of the hash, a number
// of at most 37 digits (DynamoDB keeps 38 exactly). With n names two share a
// key with a probability of about n²/2^125; SaveCheckpoint never overwrites
// another name's item, so a collision would be an error, not a lost
// checkpoint.
func checkpointKey(name string) map[string]types.AttributeValue {
	h := sha256.Sum256([]byte(name))
	return map[string]types.AttributeValue{
		attrPK: str(checkpointShardPK(int(h[0]) % checkpointShards)),
		attrSK: &types.AttributeValueMemberN{Value: new(big.Int).SetBytes(h[1:16]).String()},
	}
}

// checkpointShardPK returns the partition key of a checkpoint partition.
func checkpointShardPK(shard int) string { return checkpointPrefix + strconv.Itoa(shard) }

// checkpointItem encodes the checkpoint saved under name.
func checkpointItem(name string, pos driver.Position) map[string]types.AttributeValue {
	item := checkpointKey(name)
	item[attrName] = str(name)
	item[attrPos] = num(pos.Commit)
	item[attrPrepare] = num(pos.Prepare)
	return item
}

// decodePosition decodes the position of a checkpoint item, of either layout.
func decodePosition(item map[string]types.AttributeValue) (driver.Position, error) {
	var pos driver.Position
	var err error
	if pos.Commit, err = getNum(item, attrPos); err != nil {
		return driver.Position{}, err
	}
	if pos.Prepare, err = getNum(item, attrPrepare); err != nil {
		return driver.Position{}, err
	}
	return pos, nil
}

// nameCondition names the attribute "#cn" of a condition on a checkpoint's
// name (":n").
var nameCondition = map[string]string{"#cn": attrName}

// SaveCheckpoint implements [driver.Driver]: one PutItem of the name's item
// (one write unit), on condition that the key is free or already the
// name's. An item of the earlier layout under the name is left as it is:
// LoadCheckpoint reads it only when the name has no item of its own.
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	item := checkpointItem(name, pos)
	err := d.call(ctx, "PutItem", func(ctx context.Context) error {
		_, err := d.client.PutItem(ctx, &awsdynamodb.PutItemInput{
			TableName:                 aws.String(d.table),
			Item:                      item,
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR #cn = :n"),
			ExpressionAttributeNames:  nameCondition,
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": str(name)},
		}, noRetry)
		return err
	})
	if classify(err) == classConflict {
		return fmt.Errorf("dynamodb: checkpoint %q: its key holds the checkpoint of another name (a SHA-256 collision): %w", name, err)
	}
	return wrapNative(err)
}

// LoadCheckpoint implements [driver.Driver] with a strongly consistent
// GetItem of the name's item and, when there is none, a second one of the
// name's item of the earlier layout, which older drivers wrote.
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	item, err := d.getKey(ctx, checkpointKey(name))
	if err != nil {
		return driver.Position{}, false, wrapNative(err)
	}
	if n, _ := getStr(item, attrName); item == nil || n != name {
		// None of its own (or, should the hash collide, another name's).
		if item, err = d.getItem(ctx, earlierCheckpointPrefix+name); err != nil || item == nil {
			return driver.Position{}, false, wrapNative(err)
		}
	}
	pos, err := decodePosition(item)
	if err != nil {
		return driver.Position{}, false, fmt.Errorf("dynamodb: checkpoint %q: %w", name, err)
	}
	return pos, true, nil
}

// DeleteCheckpoint implements [driver.CheckpointManager] with two
// DeleteItem requests (two write units): of the name's item of the earlier
// layout first, then of its own item, so that a LoadCheckpoint in between
// never finds the earlier one in place of the one being deleted. Deleting a
// missing checkpoint is not an error.
func (d *Driver) DeleteCheckpoint(ctx context.Context, name string) error {
	err := d.call(ctx, "DeleteItem", func(ctx context.Context) error {
		_, err := d.client.DeleteItem(ctx, &awsdynamodb.DeleteItemInput{
			TableName: aws.String(d.table), Key: key(earlierCheckpointPrefix+name, 0),
		}, noRetry)
		return err
	})
	if err != nil {
		return wrapNative(err)
	}
	err = d.call(ctx, "DeleteItem", func(ctx context.Context) error {
		_, err := d.client.DeleteItem(ctx, &awsdynamodb.DeleteItemInput{
			TableName:                 aws.String(d.table),
			Key:                       checkpointKey(name),
			ConditionExpression:       aws.String("#cn = :n"),
			ExpressionAttributeNames:  nameCondition,
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": str(name)},
		}, noRetry)
		return err
	})
	if classify(err) == classConflict {
		return nil // no item, or another name's
	}
	return wrapNative(err)
}

// Checkpoints implements [driver.CheckpointManager] with one strongly
// consistent Query per checkpoint partition (16, and one more per MB
// beyond the first in a partition), sorted by name here. In a table from
// before checkpoint layout 2, the first listing copies the checkpoints of
// the earlier layout first, once (see copyEarlierCheckpoints).
func (d *Driver) Checkpoints(ctx context.Context) ([]driver.Checkpoint, error) {
	if err := d.copyEarlierCheckpoints(ctx); err != nil {
		return nil, err
	}
	var out []driver.Checkpoint
	for shard := range checkpointShards {
		in := &awsdynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(checkpointShardPK(shard))},
		}
		for {
			page, err := d.query(ctx, in)
			if err != nil {
				return nil, wrapNative(err)
			}
			for _, item := range page.Items {
				var c driver.Checkpoint
				if c.Name, err = getStr(item, attrName); err == nil {
					c.Position, err = decodePosition(item)
				}
				if err != nil {
					return nil, fmt.Errorf("dynamodb: checkpoints: partition %s: %w", checkpointShardPK(shard), err)
				}
				out = append(out, c)
			}
			if len(page.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = page.LastEvaluatedKey
		}
	}
	slices.SortFunc(out, func(a, b driver.Checkpoint) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// copyEarlierCheckpoints makes sure every checkpoint of the earlier layout
// (an item "$checkpoint#" + name, sort key 0) has an item of the current
// layout, so that Checkpoints lists it, and then records checkpoint layout 2
// in the layout item. Only a scan finds those items: one strongly
// consistent Scan of the whole table, once per table, never in a table set
// up by a driver with checkpoint layout 2. The earlier items stay (older
// drivers read them; DeleteCheckpoint deletes them).
func (d *Driver) copyEarlierCheckpoints(ctx context.Context) error {
	if d.checkpointsCopied.Load() {
		return nil
	}
	select {
	case d.copying <- struct{}{}:
		defer func() { <-d.copying }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if d.checkpointsCopied.Load() {
		return nil
	}
	// Another process may have copied them since this driver opened.
	layout, err := d.getItem(ctx, layoutPK)
	if err != nil {
		return wrapNative(err)
	}
	if hasCheckpointLayout(layout) {
		d.checkpointsCopied.Store(true)
		return nil
	}
	d.logger.Info("dynamodb: copying the checkpoints of the earlier layout: reading the whole table once",
		"driver", "dynamodb", "table", d.table)
	in := &awsdynamodb.ScanInput{
		TableName:                aws.String(d.table),
		ConsistentRead:           aws.Bool(true),
		FilterExpression:         aws.String("#sk = :zero AND begins_with(#pk, :prefix)"),
		ProjectionExpression:     aws.String("#pk, #p, #pp"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK, "#p": attrPos, "#pp": attrPrepare},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": num(0), ":prefix": str(earlierCheckpointPrefix),
		},
	}
	var read, found, copied int
	for {
		var page *awsdynamodb.ScanOutput
		err := d.call(ctx, "Scan", func(ctx context.Context) error {
			var err error
			page, err = d.client.Scan(ctx, in, noRetry)
			return err
		})
		if err != nil {
			return wrapNative(err)
		}
		read += int(page.ScannedCount)
		for _, item := range page.Items {
			pk, err := getStr(item, attrPK)
			if err != nil {
				return fmt.Errorf("dynamodb: checkpoints of the earlier layout: %w", err)
			}
			name := strings.TrimPrefix(pk, earlierCheckpointPrefix)
			pos, err := decodePosition(item)
			if err != nil {
				return fmt.Errorf("dynamodb: checkpoint %q of the earlier layout: %w", name, err)
			}
			ok, err := d.copyEarlierCheckpoint(ctx, name, pos)
			if err != nil {
				return err
			}
			found++
			if ok {
				copied++
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	err = d.call(ctx, "UpdateItem", func(ctx context.Context) error {
		_, err := d.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
			TableName:                 aws.String(d.table),
			Key:                       key(layoutPK, 0),
			UpdateExpression:          aws.String("SET #c = :c"),
			ConditionExpression:       aws.String("attribute_exists(pk)"),
			ExpressionAttributeNames:  map[string]string{"#c": attrCheckpoints},
			ExpressionAttributeValues: map[string]types.AttributeValue{":c": num(checkpointLayout)},
		}, noRetry)
		return err
	})
	if err != nil {
		return wrapNative(err)
	}
	d.checkpointsCopied.Store(true)
	d.logger.Info("dynamodb: copied the checkpoints of the earlier layout", "driver", "dynamodb", "table", d.table,
		"items_read", read, "found", found, "copied", copied)
	return nil
}

// copyEarlierCheckpoint gives the checkpoint of the earlier layout saved
// under name, read as pos, an item of the current layout, in a transaction
// that checks the earlier item still holds pos: a checkpoint deleted since
// is not brought back (DeleteCheckpoint deletes the earlier item first),
// and one an older driver saved since is read again. A name that has an
// item already keeps it: a driver of this layout saved it, later. copied
// is false when nothing was written.
func (d *Driver) copyEarlierCheckpoint(ctx context.Context, name string, pos driver.Position) (copied bool, err error) {
	earlier := key(earlierCheckpointPrefix+name, 0)
	for range maxCopyTries {
		items := []types.TransactWriteItem{
			{ConditionCheck: &types.ConditionCheck{
				TableName:                aws.String(d.table),
				Key:                      earlier,
				ConditionExpression:      aws.String("#p = :p AND #pp = :pp"),
				ExpressionAttributeNames: map[string]string{"#p": attrPos, "#pp": attrPrepare},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":p": num(pos.Commit), ":pp": num(pos.Prepare),
				},
			}},
			{Put: &types.Put{
				TableName: aws.String(d.table), Item: checkpointItem(name, pos),
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
		}
		err := d.call(ctx, "TransactWriteItems", func(ctx context.Context) error {
			_, err := d.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{TransactItems: items}, noRetry)
			return err
		})
		if err == nil {
			return true, nil
		}
		reasons, ok := cancellationReasons(err, len(items))
		switch {
		case !ok:
			return false, wrapNative(err)
		case reasons[1] == classConflict:
			return false, nil // the name has an item of its own
		case reasons[0] != classConflict:
			return false, wrapNative(err)
		}
		item, err := d.getKey(ctx, earlier)
		if err != nil {
			return false, wrapNative(err)
		}
		if item == nil {
			return false, nil // deleted meanwhile
		}
		if pos, err = decodePosition(item); err != nil {
			return false, fmt.Errorf("dynamodb: checkpoint %q of the earlier layout: %w", name, err)
		}
	}
	return false, fmt.Errorf("dynamodb: checkpoint %q of the earlier layout changed %d times while being copied", name, maxCopyTries)
}
