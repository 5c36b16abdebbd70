package dynamodb_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/eventkit/eventstore/internal/listcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListStreamsTableOrder writes small streams and two whose items take
// over 1 MB each, so that their events span Scan pages, and lists them in
// pages of 1, 3 and 100: every page size gives the same sequence, the
// table's order (a raw Scan's), with each stream once and the big ones at
// their full version.
func TestListStreamsTableOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	client := newClient(t, nil)
	s, d := newStore(t, client, dynamodb.Options{})

	want := map[string]uint64{}
	for i := range 20 {
		id := fmt.Sprintf("Order-%02d", i)
		_, err := s.Append(ctx, id, eventstore.NoStream, eventstore.NewEvent("Listed", nil))
		require.NoError(t, err)
		want[id] = 1
	}
	data := bytes.Repeat([]byte{'x'}, 300<<10)
	for _, id := range []string{"Order-big-1", "Order-big-2"} {
		for range 4 { // 1.2 MB: more than one Scan page
			big := eventstore.NewEvent("Big", data)
			big.ContentType = eventstore.Binary
			_, err := s.Append(ctx, id, eventstore.Any, big)
			require.NoError(t, err)
		}
		want[id] = 4
	}

	// The table's order: the partition keys of a raw Scan, each once.
	var tableOrder []string
	scanPages := 0
	in := &awsdynamodb.ScanInput{TableName: aws.String(d.Table()), ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("pk")}
	for {
		out, err := client.Scan(ctx, in)
		require.NoError(t, err)
		scanPages++
		for _, item := range out.Items {
			pk := item["pk"].(*types.AttributeValueMemberS).Value
			if _, ok := want[pk]; ok && (len(tableOrder) == 0 || tableOrder[len(tableOrder)-1] != pk) {
				tableOrder = append(tableOrder, pk)
			}
		}
		if out.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	require.Len(t, tableOrder, len(want), "a stream's items are not together in the Scan: %q", tableOrder)
	require.GreaterOrEqual(t, scanPages, 3, "2.4 MB of big events should take several Scan pages")

	for _, limit := range []int{1, 3, 100} {
		var got []string
		for _, st := range listcheck.ListAll(t, s, eventstore.ListStreamsOptions{Category: "Order", Limit: limit}) {
			got = append(got, st.ID)
			assert.Equal(t, want[st.ID], st.Version, "version of %q (limit %d)", st.ID, limit)
		}
		assert.Equal(t, tableOrder, got, "pages of %d: want the table's order", limit)
	}
}

func TestListStreamsDuringAppends(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, newClient(t, nil), dynamodb.Options{})
	listcheck.DuringAppends(t, s, 100, 7)
}

// TestListStreamsBadCursor checks that a cursor the driver did not hand
// out fails with ErrInvalidCursor, as does one of another prefix.
func TestListStreamsBadCursor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t, newClient(t, nil), dynamodb.Options{})
	for i := range 3 {
		_, err := s.Append(ctx, fmt.Sprintf("Cur-%d", i), eventstore.NoStream, eventstore.NewEvent("Listed", nil))
		require.NoError(t, err)
	}
	page, err := s.ListStreams(ctx, eventstore.ListStreamsOptions{Prefix: "Cur-", Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, page.Next)
	for _, tc := range []struct{ name, prefix, cursor string }{
		{"garbage", "Cur-", "not a cursor"},
		{"base64 of garbage", "Cur-", "bm90IGpzb24"},
		{"no key", "Cur-", "eyJwIjoiQ3VyLSJ9"}, // {"p":"Cur-"}
		{"another prefix", "Cu", page.Next},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ListStreams(ctx, eventstore.ListStreamsOptions{Prefix: tc.prefix, Cursor: tc.cursor})
			require.ErrorIs(t, err, eventstore.ErrInvalidCursor)
		})
	}
}
