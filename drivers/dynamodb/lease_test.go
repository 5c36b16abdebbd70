package dynamodb_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLeaseRequests checks what each lease operation sends (the costs
// docs/dynamodb.md states): conditional UpdateItem requests only, never a
// read before a write, and the item they leave in the group's partition.
func TestLeaseRequests(t *testing.T) {
	tr := newFaulty() // counts requests; nothing fails
	d := newDriver(t, newClient(t, tr), dynamodb.Options{})
	ctx := t.Context()
	const ttl = 200 * time.Millisecond
	steps := []struct {
		name  string
		do    func() error
		sends map[string]int
	}{
		{"first grant", func() error {
			l, granted, err := d.AcquireLease(ctx, "g", "k", "a", ttl)
			assert.True(t, granted && l.Owner == "a" && l.Generation == 1, "%+v %v", l, granted)
			return err
		}, map[string]int{"UpdateItem": 2}}, // renewal refused (no item), takeover
		{"renewal", func() error {
			l, granted, err := d.AcquireLease(ctx, "g", "k", "a", ttl)
			assert.True(t, granted && l.Generation == 1, "%+v %v", l, granted)
			return err
		}, map[string]int{"UpdateItem": 1}},
		{"refusal", func() error {
			l, granted, err := d.AcquireLease(ctx, "g", "k", "b", time.Minute)
			assert.True(t, !granted && l.Owner == "a", "%+v %v", l, granted)
			return err
		}, map[string]int{"UpdateItem": 1}}, // the failed renewal returns the holder
		{"save position", func() error {
			return d.SaveLeasePosition(ctx, "g", "k", "a", 1, driver.Position{Commit: 4})
		}, map[string]int{"UpdateItem": 1}},
		{"takeover after expiry", func() error {
			time.Sleep(2 * ttl)
			l, granted, err := d.AcquireLease(ctx, "g", "k", "b", time.Minute)
			assert.True(t, granted && l.Owner == "b" && l.Generation == 2 && l.Position.Commit == 4, "%+v %v", l, granted)
			return err
		}, map[string]int{"UpdateItem": 2}},
		{"release", func() error { return d.ReleaseLease(ctx, "g", "k", "b", 2) }, map[string]int{"UpdateItem": 1}},
		{"list", func() error {
			leases, _, err := d.Leases(ctx, "g")
			assert.Len(t, leases, 1)
			return err
		}, map[string]int{"Query": 1}},
	}
	for _, s := range steps {
		tr.arm("", throttle, 0)
		require.NoError(t, s.do(), s.name)
		for _, op := range []string{"UpdateItem", "GetItem", "Query", "PutItem"} {
			assert.Equal(t, s.sends[op], tr.count(op), "%s: %s requests", s.name, op)
		}
	}

	var client *awsdynamodb.Client
	require.True(t, d.As(&client))
	out, err := client.GetItem(ctx, &awsdynamodb.GetItemInput{
		TableName: aws.String(d.Table()), Key: dynamodb.LeaseKey("g", "k"), ConsistentRead: aws.Bool(true),
	})
	require.NoError(t, err)
	assert.Equal(t, &types.AttributeValueMemberS{Value: "$lease#g"}, out.Item["pk"])
	assert.Equal(t, &types.AttributeValueMemberS{Value: "k"}, out.Item["lk"])
	assert.Equal(t, &types.AttributeValueMemberN{Value: "2"}, out.Item["g"])
	assert.NotContains(t, out.Item, "o", "a released lease has no owner attribute")

	// Leases are neither checkpoints nor events.
	store := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { store.Close() })
	cps, err := store.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Empty(t, cps)
	for _, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		t.Fatal("ReadAll returned an event of a store holding only leases")
	}
}

// TestDeleteLeasesInBatches deletes a group of more leases than one
// BatchWriteItem takes, leaving the group next to it alone.
func TestDeleteLeasesInBatches(t *testing.T) {
	tr := newFaulty()
	d := newDriver(t, newClient(t, tr), dynamodb.Options{})
	ctx := t.Context()
	const n = 60
	for i := range n {
		_, _, err := d.AcquireLease(ctx, "big", fmt.Sprintf("partition/%d/%d", n, i), "x", time.Minute)
		require.NoError(t, err)
	}
	_, _, err := d.AcquireLease(ctx, "big2", "member/x", "x", time.Minute)
	require.NoError(t, err)
	leases, _, err := d.Leases(ctx, "big")
	require.NoError(t, err)
	require.Len(t, leases, n)

	tr.arm("", throttle, 0)
	require.NoError(t, d.DeleteLeases(ctx, "big"))
	assert.Equal(t, 3, tr.count("BatchWriteItem"), "60 deletions in batches of 25")
	leases, _, err = d.Leases(ctx, "big")
	require.NoError(t, err)
	assert.Empty(t, leases)
	leases, _, err = d.Leases(ctx, "big2")
	require.NoError(t, err)
	assert.Len(t, leases, 1)
}
