package dynamodb

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/driver"
)

// SaveSnapshot implements [driver.Driver]: one item per stream, put on
// condition that no snapshot of a higher version is stored.
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap driver.Snapshot) error {
	item := key(snapshotPrefix+stream, 0)
	item[attrVersion] = num(snap.Version)
	if len(snap.Data) > 0 {
		item[attrData] = bin(snap.Data)
	}
	err := d.call(ctx, "PutItem", func(ctx context.Context) error {
		_, err := d.client.PutItem(ctx, &awsdynamodb.PutItemInput{
			TableName:                 aws.String(d.table),
			Item:                      item,
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR v <= :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": num(snap.Version)},
		}, noRetry)
		return err
	})
	if classify(err) == classConflict {
		return nil // a later snapshot is stored: it wins
	}
	return wrapNative(err)
}

// LoadSnapshot implements [driver.Driver] with a strongly consistent GetItem.
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (driver.Snapshot, bool, error) {
	item, err := d.getItem(ctx, snapshotPrefix+stream)
	if err != nil || item == nil {
		return driver.Snapshot{}, false, wrapNative(err)
	}
	v, err := getNum(item, attrVersion)
	if err != nil {
		return driver.Snapshot{}, false, wrapNative(err)
	}
	snap := driver.Snapshot{Version: v}
	if b, ok := item[attrData].(*types.AttributeValueMemberB); ok {
		snap.Data = b.Value
	}
	return snap, true, nil
}

// getItem reads the item with partition key pk and sort key 0; nil when absent.
func (d *Driver) getItem(ctx context.Context, pk string) (map[string]types.AttributeValue, error) {
	return d.getKey(ctx, key(pk, 0))
}

// getKey reads the item with primary key k, strongly consistent; nil when
// absent.
func (d *Driver) getKey(ctx context.Context, k map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	var out *awsdynamodb.GetItemOutput
	err := d.call(ctx, "GetItem", func(ctx context.Context) error {
		var err error
		out, err = d.client.GetItem(ctx, &awsdynamodb.GetItemInput{
			TableName: aws.String(d.table), Key: k, ConsistentRead: aws.Bool(true),
		}, noRetry)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}
