package dynamodb

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Leases are items of their own, one per lease, in one partition per
// consumer group ("$lease#" + group), so a group's leases are listed with one
// strongly consistent Query and a group whose name is a prefix of another's
// shares nothing with it. The table's sort key is a number, so it holds 120
// bits of the SHA-256 of the lease's key, as for checkpoints, and the key
// itself is in attribute "lk"; every write is conditional on it, so two keys
// of a group sharing a hash would be an error, not a lost lease.
//
// Expiry is judged by the clock of the process that calls: DynamoDB has no
// clock a condition can read. A caller writes its own now + ttl as the
// expiry and takes a lease over only when the stored expiry is at or before
// its own now, so members' clocks must agree within a margin much smaller
// than the lease's duration.

// maxLeaseTries bounds the tries of AcquireLease when the lease changes
// between its renewal and its takeover (a holder releasing it, a racer
// taking it over and losing it again); each change needs another member's
// write, so the bound is never reached in practice.
const maxLeaseTries = 8

// leaseNames returns the placeholders of the given lease attributes for an
// expression's ExpressionAttributeNames: DynamoDB refuses unused ones.
func leaseNames(placeholders ...string) map[string]string {
	all := map[string]string{
		"#lk": attrLeaseKey, "#o": attrOwner, "#g": attrGeneration, "#e": attrExpires,
		"#p": attrPos, "#pp": attrPrepare,
	}
	names := make(map[string]string, len(placeholders))
	for _, p := range placeholders {
		names[p] = all[p]
	}
	return names
}

// leasePK returns the partition key of the leases of group.
func leasePK(group string) string { return leasePrefix + group }

// leaseItemKey returns the primary key of lease (group, key): the group's
// partition, and as sort key 120 bits of the SHA-256 of the key (at most 37
// digits; see checkpointKey).
func leaseItemKey(group, key string) map[string]types.AttributeValue {
	h := sha256.Sum256([]byte(key))
	return map[string]types.AttributeValue{
		attrPK: str(leasePK(group)),
		attrSK: &types.AttributeValueMemberN{Value: new(big.Int).SetBytes(h[:15]).String()},
	}
}

// unixNano is t as a number of nanoseconds since the Unix epoch.
func unixNano(t time.Time) *types.AttributeValueMemberN { return num(uint64(t.UnixNano())) }

// decodeLease decodes a lease item of group.
func decodeLease(group string, item map[string]types.AttributeValue) (driver.Lease, error) {
	l := driver.Lease{Group: group}
	var err error
	if l.Key, err = getStr(item, attrLeaseKey); err != nil {
		return driver.Lease{}, err
	}
	if _, ok := item[attrOwner]; ok { // absent once released
		if l.Owner, err = getStr(item, attrOwner); err != nil {
			return driver.Lease{}, err
		}
	}
	if l.Generation, err = getNum(item, attrGeneration); err != nil {
		return driver.Lease{}, err
	}
	exp, err := getNum(item, attrExpires)
	if err != nil {
		return driver.Lease{}, err
	}
	l.Expires = time.Unix(0, int64(exp))
	if _, ok := item[attrPos]; ok {
		if l.Position, err = decodePosition(item); err != nil {
			return driver.Lease{}, err
		}
		l.HasPosition = true
	}
	return l, nil
}

// updateLease sends one UpdateItem of a lease item, returning the item as
// written. When its condition fails, it returns the item as it was (nil if
// there was none) and failed true, with a nil error.
func (d *Driver) updateLease(ctx context.Context, in *awsdynamodb.UpdateItemInput) (item map[string]types.AttributeValue, failed bool, err error) {
	in.TableName = aws.String(d.table)
	in.ReturnValues = types.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	var out *awsdynamodb.UpdateItemOutput
	err = d.call(ctx, "UpdateItem", func(ctx context.Context) error {
		var err error
		out, err = d.client.UpdateItem(ctx, in, noRetry)
		return err
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true, nil
	}
	if err != nil {
		return nil, false, wrapNative(err)
	}
	return out.Attributes, false, nil
}

// AcquireLease implements [driver.Leaser] with conditional UpdateItem
// requests, never a read-modify-write: first a renewal, conditional on
// owner being the holder; when that fails and the lease as it was (returned
// with the failure) is free, a takeover, conditional on the lease not
// existing, having been released, or having expired by this process's
// clock, which sets the owner and increments the generation. A refused
// takeover returns the holder as stored. One write unit per renewal or
// refusal, two per takeover.
func (d *Driver) AcquireLease(ctx context.Context, group, key, owner string, ttl time.Duration) (driver.Lease, bool, error) {
	k := leaseItemKey(group, key)
	decode := func(item map[string]types.AttributeValue) (driver.Lease, error) {
		l, err := decodeLease(group, item)
		if err != nil {
			return driver.Lease{}, fmt.Errorf("dynamodb: lease %q %q: %w", group, key, err)
		}
		if l.Key != key {
			return driver.Lease{}, fmt.Errorf("dynamodb: lease %q %q: its item holds the lease %q (a SHA-256 collision)", group, key, l.Key)
		}
		return l, nil
	}
	for range maxLeaseTries {
		now := time.Now()
		values := map[string]types.AttributeValue{":k": str(key), ":o": str(owner), ":e": unixNano(now.Add(ttl))}
		item, failed, err := d.updateLease(ctx, &awsdynamodb.UpdateItemInput{
			Key:                       k,
			UpdateExpression:          aws.String("SET #e = :e"),
			ExpressionAttributeNames:  leaseNames("#lk", "#o", "#e"),
			ConditionExpression:       aws.String("#lk = :k AND #o = :o"),
			ExpressionAttributeValues: values,
		})
		if err != nil {
			return driver.Lease{}, false, err
		}
		if !failed {
			l, err := decode(item)
			return l, err == nil, err
		}
		if item != nil {
			l, err := decode(item)
			if err != nil {
				return driver.Lease{}, false, err
			}
			if l.Owner != "" && now.Before(l.Expires) {
				return l, false, nil
			}
		}
		values[":now"] = unixNano(now)
		values[":zero"] = num(0)
		values[":one"] = num(1)
		item, failed, err = d.updateLease(ctx, &awsdynamodb.UpdateItemInput{
			Key:                       k,
			UpdateExpression:          aws.String("SET #lk = :k, #o = :o, #e = :e, #g = if_not_exists(#g, :zero) + :one"),
			ExpressionAttributeNames:  leaseNames("#lk", "#o", "#e", "#g"),
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR #lk = :k AND (attribute_not_exists(#o) OR #e <= :now)"),
			ExpressionAttributeValues: values,
		})
		if err != nil {
			return driver.Lease{}, false, err
		}
		if !failed {
			l, err := decode(item)
			return l, err == nil, err
		}
		if item == nil {
			continue // deleted since
		}
		l, err := decode(item)
		if err != nil {
			return driver.Lease{}, false, err
		}
		if l.Owner != owner && l.Owner != "" && now.Before(l.Expires) {
			return l, false, nil
		}
		// Taken by this owner in a call of its own, or freed since: again.
	}
	return driver.Lease{}, false, fmt.Errorf("dynamodb: lease %q %q: it changed %d times while %q asked for it", group, key, maxLeaseTries, owner)
}

// ReleaseLease implements [driver.Leaser] with one UpdateItem (one write
// unit), conditional on owner holding the lease at generation, that removes
// the owner and sets the expiry to now.
func (d *Driver) ReleaseLease(ctx context.Context, group, key, owner string, generation uint64) error {
	_, _, err := d.updateLease(ctx, &awsdynamodb.UpdateItemInput{
		Key:                      leaseItemKey(group, key),
		UpdateExpression:         aws.String("SET #e = :now REMOVE #o"),
		ExpressionAttributeNames: leaseNames("#lk", "#o", "#g", "#e"),
		ConditionExpression:      aws.String("#lk = :k AND #o = :o AND #g = :g"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": str(key), ":o": str(owner), ":g": num(generation), ":now": unixNano(time.Now()),
		},
	})
	return err
}

// SaveLeasePosition implements [driver.Leaser] with one UpdateItem (one
// write unit), conditional on owner holding the lease at generation.
func (d *Driver) SaveLeasePosition(ctx context.Context, group, key, owner string, generation uint64, pos driver.Position) error {
	_, failed, err := d.updateLease(ctx, &awsdynamodb.UpdateItemInput{
		Key:                      leaseItemKey(group, key),
		UpdateExpression:         aws.String("SET #p = :p, #pp = :pp"),
		ExpressionAttributeNames: leaseNames("#lk", "#o", "#g", "#p", "#pp"),
		ConditionExpression:      aws.String("#lk = :k AND #o = :o AND #g = :g"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": str(key), ":o": str(owner), ":g": num(generation), ":p": num(pos.Commit), ":pp": num(pos.Prepare),
		},
	})
	if err == nil && failed {
		err = fmt.Errorf("dynamodb: lease %q %q of %q at generation %d: %w", group, key, owner, generation, eventstore.ErrLeaseLost)
	}
	return err
}

// Leases implements [driver.Leaser] with a strongly consistent Query of the
// group's partition (one read unit per 4 KB, about 40 leases), sorted by
// key here. The time returned is this process's clock after the read.
func (d *Driver) Leases(ctx context.Context, group string) ([]driver.Lease, time.Time, error) {
	var out []driver.Lease
	err := d.eachLease(ctx, group, "", func(item map[string]types.AttributeValue) error {
		l, err := decodeLease(group, item)
		if err != nil {
			return fmt.Errorf("dynamodb: leases of %q: %w", group, err)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	slices.SortFunc(out, func(a, b driver.Lease) int { return strings.Compare(a.Key, b.Key) })
	return out, time.Now(), nil
}

// DeleteLeases implements [driver.Leaser]: a strongly consistent Query of
// the group's keys, then BatchWriteItem requests of up to 25 deletions (one
// write unit per lease).
func (d *Driver) DeleteLeases(ctx context.Context, group string) error {
	var keys []map[string]types.AttributeValue
	err := d.eachLease(ctx, group, "pk, sk", func(item map[string]types.AttributeValue) error {
		keys = append(keys, item)
		return nil
	})
	if err != nil {
		return err
	}
	for batch := range slices.Chunk(keys, maxBatchWrite) {
		if err := d.deleteItems(ctx, batch); err != nil {
			return fmt.Errorf("dynamodb: delete leases of %q: %w", group, err)
		}
	}
	return nil
}

// eachLease calls f with each lease item of group, reading only the
// attributes of projection ("" for all).
func (d *Driver) eachLease(ctx context.Context, group, projection string, f func(map[string]types.AttributeValue) error) error {
	in := &awsdynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(leasePK(group))},
	}
	if projection != "" {
		in.ProjectionExpression = aws.String(projection)
	}
	for {
		page, err := d.query(ctx, in)
		if err != nil {
			return wrapNative(err)
		}
		for _, item := range page.Items {
			if err := f(item); err != nil {
				return err
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// deleteItems deletes the items of keys (at most maxBatchWrite) with
// BatchWriteItem, sending the deletions DynamoDB left unprocessed again
// (see writeItems).
func (d *Driver) deleteItems(ctx context.Context, keys []map[string]types.AttributeValue) error {
	reqs := make([]types.WriteRequest, len(keys))
	for i, k := range keys {
		reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}}
	}
	return d.writeItems(ctx, reqs)
}
