package dynamodb

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

var _ driver.StreamLister = (*Driver)(nil)

// The table has no item per stream and no index by stream ID: a stream is
// the run of its event items (pk = stream ID, sk = version). A listing is
// therefore a paged Scan of the whole table, filtered to the first event
// of each stream (sk = 1, pk not starting with "$", the system items, and
// starting with the prefix), followed by one Query per listed stream for
// its last version (streamVersion).
//
// Each stream has exactly one version-1 item, and a Scan resumed with
// ExclusiveStartKey continues after that key in the table's order, so a
// stream whose items span two Scan pages (or two listing pages) is listed
// once, from its first item, with the version of its last. A Scan page may
// hold more matches than the listing page wants: the listing page then
// ends at its last stream, and its cursor is that stream's version-1 key.
//
// Order: the table's (by a hash of the stream ID), not by ID. Cost: a full
// listing reads the whole table with strongly consistent reads (a Scan is
// charged for the items it reads, not those it returns: every event, log
// entry and checkpoint), plus one consistent Query (one read unit) per
// stream. A listing page reads at most maxListScans Scan pages of 1 MB; it
// returns fewer streams, or none, when those hold too few first events,
// with a cursor to go on.
const (
	// maxListScans bounds the Scan requests of one listing page.
	maxListScans = 8
	// listVersionQueries bounds the version queries in flight at once.
	listVersionQueries = 8
)

// listCursor is a listing's cursor: the prefix it lists (a cursor is only
// valid with it) and the key after which the Scan resumes. It travels as
// unpadded base64url JSON.
type listCursor struct {
	Prefix string `json:"p"`
	PK     string `json:"k"`
	SK     uint64 `json:"s"`
}

func (c listCursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// listCursorAt returns the cursor of a listing of prefix that resumes the
// Scan after the key of an item.
func listCursorAt(prefix string, k map[string]types.AttributeValue) (string, error) {
	pk, err := getStr(k, attrPK)
	if err != nil {
		return "", err
	}
	sk, err := getNum(k, attrSK)
	if err != nil {
		return "", err
	}
	return listCursor{Prefix: prefix, PK: pk, SK: sk}.String(), nil
}

// parseListCursor decodes a cursor of a listing of prefix; anything else
// fails with eventstore.ErrInvalidCursor.
func parseListCursor(s, prefix string) (listCursor, error) {
	var c listCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	switch {
	case err != nil:
		return c, fmt.Errorf("dynamodb: %w: %q is not a cursor of this driver: %w", eventstore.ErrInvalidCursor, s, err)
	case c.Prefix != prefix:
		return c, fmt.Errorf("dynamodb: %w: the cursor is of a listing of prefix %q, not %q", eventstore.ErrInvalidCursor, c.Prefix, prefix)
	case c.PK == "":
		return c, fmt.Errorf("dynamodb: %w: the cursor has no key", eventstore.ErrInvalidCursor)
	}
	return c, nil
}

// ListStreams implements [driver.StreamLister] with a Scan of the table:
// see the comment on maxListScans for the order and the cost. The cursor
// is an encoded Scan key; one this driver did not hand out for req.Prefix
// fails with [eventstore.ErrInvalidCursor].
func (d *Driver) ListStreams(ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error) {
	in := &awsdynamodb.ScanInput{
		TableName:                aws.String(d.table),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#pk"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": num(1),
		},
	}
	if req.Prefix == "" {
		in.FilterExpression = aws.String("#sk = :one AND NOT begins_with(#pk, :system)")
		in.ExpressionAttributeValues[":system"] = str("$")
	} else {
		// A prefix never starts with "$" (the Store checks it).
		in.FilterExpression = aws.String("#sk = :one AND begins_with(#pk, :prefix)")
		in.ExpressionAttributeValues[":prefix"] = str(req.Prefix)
	}
	if req.Cursor != "" {
		c, err := parseListCursor(req.Cursor, req.Prefix)
		if err != nil {
			return driver.StreamPage{}, err
		}
		in.ExclusiveStartKey = key(c.PK, c.SK)
	}

	var page driver.StreamPage
	for scans := 1; ; scans++ {
		var out *awsdynamodb.ScanOutput
		err := d.call(ctx, "Scan", func(ctx context.Context) error {
			var err error
			out, err = d.client.Scan(ctx, in, noRetry)
			return err
		})
		if err != nil {
			return driver.StreamPage{}, wrapNative(fmt.Errorf("list streams: %w", err))
		}
		for i, item := range out.Items {
			id, err := getStr(item, attrPK)
			if err != nil {
				return driver.StreamPage{}, fmt.Errorf("dynamodb: list streams: %w", err)
			}
			page.Streams = append(page.Streams, driver.StreamInfo{ID: id})
			if len(page.Streams) == req.Limit && i < len(out.Items)-1 {
				// More matches follow in this Scan page: resume after
				// the listing page's last stream.
				out.LastEvaluatedKey = key(id, 1)
				break
			}
		}
		if out.LastEvaluatedKey == nil {
			break // the end of the table
		}
		if len(page.Streams) == req.Limit || scans == maxListScans {
			if page.Next, err = listCursorAt(req.Prefix, out.LastEvaluatedKey); err != nil {
				return driver.StreamPage{}, fmt.Errorf("dynamodb: list streams: %w", err)
			}
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if err := d.listVersions(ctx, page.Streams); err != nil {
		return driver.StreamPage{}, wrapNative(fmt.Errorf("list streams: %w", err))
	}
	page.Streams = withoutDeleted(page.Streams)
	return page, nil
}

// listVersions fills in the version of each stream, with at most
// listVersionQueries queries at a time.
func (d *Driver) listVersions(ctx context.Context, streams []driver.StreamInfo) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, listVersionQueries)
	var mu sync.Mutex // protects first
	var first error
	for i := range streams {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			// Version 0: a deleted stream (its first item is a stub; see
			// retention.go), left out below.
			v, err := d.streamVersion(ctx, streams[i].ID)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("version of %q: %w", streams[i].ID, err)
				}
				mu.Unlock()
				cancel()
				return
			}
			streams[i].Version = v
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// withoutDeleted leaves out the streams of a listing whose version is 0:
// deleted streams, which keep their first item as a stub.
func withoutDeleted(streams []driver.StreamInfo) []driver.StreamInfo {
	return slices.DeleteFunc(streams, func(s driver.StreamInfo) bool { return s.Version == 0 })
}
