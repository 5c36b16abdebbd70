package dynamodb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/driver"
)

// The keys of data subjects ([driver.KeyStore]) are items of their own,
// outside the log's key space:
//
//	subject key  pk = "$key#" + subject    sk = 0, attribute "key" (B)
//
// Subjects are valid names (no "$" first), and no event, log entry or other
// system item has a pk starting with "$key#", so reads, stream listings and
// migrations never meet a key. DeleteItem removes the item; DynamoDB's
// backups (on-demand, point-in-time recovery up to 35 days) keep it as long
// as they keep the table (docs/gdpr.md).
const (
	keyPrefix = "$key#"
	attrKey   = "key" // B, the key's bytes
)

var _ driver.KeyStore = (*Driver)(nil)

// LoadKey implements [driver.KeyStore] with a strongly consistent GetItem.
func (d *Driver) LoadKey(ctx context.Context, subject string) ([]byte, bool, error) {
	item, err := d.getItem(ctx, keyPrefix+subject)
	if err != nil {
		return nil, false, wrapNative(fmt.Errorf("load key: %w", err))
	}
	b, ok := item[attrKey].(*types.AttributeValueMemberB)
	if !ok {
		return nil, false, nil
	}
	return b.Value, true, nil
}

// CreateKey implements [driver.KeyStore]: a PutItem on condition that no
// key is stored, and on a conflict a read of the stored one. A key deleted
// between the two is created again, at most a few times.
func (d *Driver) CreateKey(ctx context.Context, subject string, key []byte) ([]byte, error) {
	for range 3 {
		item := keyItem(subject)
		item[attrKey] = bin(key)
		err := d.call(ctx, "PutItem", func(ctx context.Context) error {
			_, err := d.client.PutItem(ctx, &awsdynamodb.PutItemInput{
				TableName:           aws.String(d.table),
				Item:                item,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}, noRetry)
			return err
		})
		if err == nil {
			return key, nil
		}
		if classify(err) != classConflict {
			return nil, wrapNative(fmt.Errorf("create key: %w", err))
		}
		stored, ok, err := d.LoadKey(ctx, subject)
		if err != nil || ok {
			return stored, err
		}
	}
	return nil, fmt.Errorf("dynamodb: create key: the key was deleted while it was created, three times")
}

// DeleteKey implements [driver.KeyStore] with one DeleteItem.
func (d *Driver) DeleteKey(ctx context.Context, subject string) error {
	err := d.call(ctx, "DeleteItem", func(ctx context.Context) error {
		_, err := d.client.DeleteItem(ctx, &awsdynamodb.DeleteItemInput{
			TableName: aws.String(d.table), Key: keyItem(subject),
		}, noRetry)
		return err
	})
	if err != nil {
		return wrapNative(fmt.Errorf("delete key: %w", err))
	}
	return nil
}

// keyItem returns the primary key of subject's key item.
func keyItem(subject string) map[string]types.AttributeValue {
	return key(keyPrefix+subject, 0)
}

// KeySubjects implements [driver.KeyStore] with a Scan of the whole table
// for the key items, sorted afterwards: every page costs a full scan, which
// is acceptable for its one use, moving keys to another store.
func (d *Driver) KeySubjects(ctx context.Context, after string, limit int) ([]string, error) {
	in := &awsdynamodb.ScanInput{
		TableName:                 aws.String(d.table),
		ConsistentRead:            aws.Bool(true),
		ProjectionExpression:      aws.String("#pk"),
		FilterExpression:          aws.String("begins_with(#pk, :prefix) AND #pk > :after"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":prefix": str(keyPrefix), ":after": str(keyPrefix + after)},
	}
	var out []string
	for {
		var page *awsdynamodb.ScanOutput
		err := d.call(ctx, "Scan", func(ctx context.Context) error {
			var err error
			page, err = d.client.Scan(ctx, in, noRetry)
			return err
		})
		if err != nil {
			return nil, wrapNative(fmt.Errorf("key subjects: %w", err))
		}
		for _, item := range page.Items {
			pk, err := getStr(item, attrPK)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: key subjects: %w", err)
			}
			out = append(out, strings.TrimPrefix(pk, keyPrefix))
		}
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}
