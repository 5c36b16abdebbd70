package dynamodb

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/eventkit/eventstore/driver"
)

// SaveCheckpoint implements [driver.Driver]: one item per subscription name.
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	item := key(checkpointPrefix+name, 0)
	item[attrPos] = num(pos.Commit)
	item[attrPrepare] = num(pos.Prepare)
	err := d.call(ctx, "PutItem", func(ctx context.Context) error {
		_, err := d.client.PutItem(ctx, &awsdynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}, noRetry)
		return err
	})
	return wrapNative(err)
}

// LoadCheckpoint implements [driver.Driver] with a strongly consistent GetItem.
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	item, err := d.getItem(ctx, checkpointPrefix+name)
	if err != nil || item == nil {
		return driver.Position{}, false, wrapNative(err)
	}
	var pos driver.Position
	if pos.Commit, err = getNum(item, attrPos); err == nil {
		pos.Prepare, err = getNum(item, attrPrepare)
	}
	if err != nil {
		return driver.Position{}, false, wrapNative(err)
	}
	return pos, true, nil
}
