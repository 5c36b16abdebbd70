package dynamodb

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/driver"
)

// The streams ApplyRetention visits are listed in one partition, so that it
// finds them without scanning the table:
//
//	listed stream  pk = "$retention"  sk = hash of the stream ID, attributes s (the stream ID), tk (a token)
//
// The sort key is 120 bits of the SHA-256 of the stream ID, as for
// checkpoints. A stream is listed (a PutItem with a fresh token) by
// SetStreamRetention with a retention, before it stores it, and by
// DeleteStream and TruncateStream before their commit, so that a sweep cut
// short (see retention.go) is finished by the next ApplyRetention rather
// than by the next removal of the stream, which may never come. Appends to
// a stream with a retention write nothing here: the stream was listed when
// its retention was set. ApplyRetention removes the item of a stream that
// has neither a retention nor an unfinished sweep, on condition that its
// token is the one it read (a concurrent SetStreamRetention listed it
// again). So the partition holds the streams with a retention, plus those
// deleted or truncated since the last ApplyRetention.
//
// Tables written by a version without the list: streams whose retention was
// set then are not listed until SetStreamRetention is called for them again
// (docs/dynamodb.md, "Deleting, truncating, retention").
const (
	retainedPK = "$retention"
	attrToken  = "tk" // N, written by each listing
	// retainedPage is how many listed streams one Query of ApplyRetention
	// reads.
	retainedPage = 100
	// retainedWorkers bounds the streams ApplyRetention works on at once.
	retainedWorkers = 8
)

var _ driver.RetentionApplier = (*Driver)(nil)

// retainedKey is the key of the item listing stream.
func retainedKey(stream string) map[string]types.AttributeValue {
	h := sha256.Sum256([]byte(stream))
	return map[string]types.AttributeValue{
		attrPK: str(retainedPK),
		attrSK: &types.AttributeValueMemberN{Value: new(big.Int).SetBytes(h[:15]).String()},
	}
}

// register lists stream for ApplyRetention (one PutItem).
func (d *Driver) register(ctx context.Context, stream string) error {
	item := retainedKey(stream)
	item[attrStream] = str(stream)
	item[attrToken] = num(rand.Uint64())
	err := d.call(ctx, "PutItem", func(ctx context.Context) error {
		_, err := d.client.PutItem(ctx, &awsdynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}, noRetry)
		return err
	})
	if err != nil {
		return fmt.Errorf("dynamodb: list %q for ApplyRetention: %w", stream, wrapNative(err))
	}
	return nil
}

// unregister removes the item listing a stream, unless it was written again
// since it was read with token.
func (d *Driver) unregister(ctx context.Context, k map[string]types.AttributeValue, token types.AttributeValue) error {
	err := d.call(ctx, "DeleteItem", func(ctx context.Context) error {
		_, err := d.client.DeleteItem(ctx, &awsdynamodb.DeleteItemInput{
			TableName:                 aws.String(d.table),
			Key:                       k,
			ConditionExpression:       aws.String("#tk = :tk"),
			ExpressionAttributeNames:  map[string]string{"#tk": attrToken},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tk": token},
		}, noRetry)
		return err
	})
	if err != nil && classify(err) != classConflict { // listed again meanwhile
		return wrapNative(err)
	}
	return nil
}

// ApplyRetention implements [driver.RetentionApplier]. It reads the listed
// streams (see above) in Query pages of retainedPage and works on up to
// retainedWorkers of them at once: for each it reads the meta item, applies
// the retention as an append would (or only finishes an interrupted sweep,
// for a stream without one), and removes the listing of a stream left with
// neither a retention nor a sweep to finish. Its cost: one Query read unit
// per ~40 listed streams, a GetItem per stream, and per stream with a
// retention what an append's retention costs (see retention.go).
func (d *Driver) ApplyRetention(ctx context.Context) (driver.RetentionResult, error) {
	var (
		mu  sync.Mutex // protects res and err
		res driver.RetentionResult
		err error
	)
	now := time.Now()
	in := &awsdynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :r"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": str(retainedPK)},
		Limit:                     aws.Int32(retainedPage),
	}
	for {
		out, qerr := d.query(ctx, in)
		if qerr != nil {
			return res, fmt.Errorf("dynamodb: apply retention: %w", wrapNative(qerr))
		}
		sem := make(chan struct{}, retainedWorkers)
		var wg sync.WaitGroup
		for _, item := range out.Items {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				applied, removed, e := d.applyListed(ctx, item, now)
				mu.Lock()
				defer mu.Unlock()
				if e != nil && err == nil {
					err = e
				}
				if applied {
					res.Streams++
				}
				res.Events += removed
			})
		}
		wg.Wait()
		if err != nil {
			return res, err
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if out.LastEvaluatedKey == nil {
			return res, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// applyListed applies the retention of the stream an item lists at time
// now; applied reports that it had one.
func (d *Driver) applyListed(ctx context.Context, item map[string]types.AttributeValue, now time.Time) (applied bool, removed uint64, err error) {
	stream, err := getStr(item, attrStream)
	if err != nil {
		return false, 0, fmt.Errorf("dynamodb: apply retention: %w", err)
	}
	m, err := d.meta(ctx, stream)
	if err != nil {
		return false, 0, fmt.Errorf("dynamodb: apply retention to %q: %w", stream, wrapNative(err))
	}
	if !m.retention.IsZero() || m.pending() {
		if removed, err = d.applyRetention(ctx, stream, m.retention, now); err != nil {
			return false, 0, fmt.Errorf("dynamodb: apply retention to %q: %w", stream, err)
		}
	}
	if m.retention.IsZero() {
		// Nothing more to do for it (a sweep it had is finished).
		if err := d.unregister(ctx, map[string]types.AttributeValue{attrPK: item[attrPK], attrSK: item[attrSK]}, item[attrToken]); err != nil {
			return false, 0, fmt.Errorf("dynamodb: apply retention to %q: %w", stream, err)
		}
		return false, removed, nil
	}
	return true, removed, nil
}
