package dynamodb_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// earlierCheckpoint is a checkpoint item as drivers before checkpoint
// layout 2 wrote it: a partition of its own, sort key 0.
func earlierCheckpoint(name string, pos eventstore.Position) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "$checkpoint#" + name},
		"sk": &types.AttributeValueMemberN{Value: "0"},
		"p":  &types.AttributeValueMemberN{Value: strconv.FormatUint(pos.Commit, 10)},
		"pp": &types.AttributeValueMemberN{Value: strconv.FormatUint(pos.Prepare, 10)},
	}
}

// earlierTable creates a table as a driver before checkpoint layout 2 set
// it up: its layout item records no checkpoint layout. The table is deleted
// when t ends.
func earlierTable(t *testing.T, client *awsdynamodb.Client) string {
	t.Helper()
	table := randomTable()
	_, err := client.CreateTable(t.Context(), dynamodb.CreateTableInput(table))
	require.NoError(t, err)
	deleteTableAtCleanup(t, client, table)
	putRaw(t, client, table, map[string]types.AttributeValue{
		"pk":     &types.AttributeValueMemberS{Value: "$layout"},
		"sk":     &types.AttributeValueMemberN{Value: "0"},
		"layout": &types.AttributeValueMemberN{Value: "1"},
		"bucket": &types.AttributeValueMemberN{Value: "1000000"},
	})
	return table
}

// openStore opens a Store over a new driver on an existing table, closed
// when t ends, as another process would.
func openStore(t *testing.T, client *awsdynamodb.Client, table string) *eventstore.Store {
	t.Helper()
	d, err := dynamodb.New(t.Context(), client, table, dynamodb.Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// rawItem reads the item with partition key pk and sort key 0 directly.
func rawItem(t *testing.T, client *awsdynamodb.Client, table, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(t.Context(), &awsdynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberN{Value: "0"}},
		ConsistentRead: aws.Bool(true),
	})
	require.NoError(t, err)
	return out.Item
}

// checkpointLayout returns the checkpoint layout the table's layout item
// records ("" for none).
func checkpointLayout(t *testing.T, client *awsdynamodb.Client, table string) string {
	t.Helper()
	v, _ := rawItem(t, client, table, "$layout")["checkpoints"].(*types.AttributeValueMemberN)
	if v == nil {
		return ""
	}
	return v.Value
}

// TestCheckpointsOfEarlierLayout opens a table in which a driver from
// before checkpoint layout 2 saved checkpoints (one item per name, which
// only a scan finds): they load at once, the first listing copies them
// (one scan, once per table, none in a new table), and deleting removes
// the items of both layouts.
func TestCheckpointsOfEarlierLayout(t *testing.T) {
	tr := newFaulty() // counts requests; nothing fails
	client := newClient(t, tr)
	ctx := t.Context()
	table := earlierTable(t, client)
	member := eventstore.CheckpointName("grp", eventstore.Group{Member: 0, Size: 2})
	putRaw(t, client, table, earlierCheckpoint("old-a", eventstore.Position{Commit: 5, Prepare: 7}))
	putRaw(t, client, table, earlierCheckpoint(member, eventstore.Position{Commit: 3}))
	putRaw(t, client, table, earlierCheckpoint("both", eventstore.Position{Commit: 1, Prepare: 1}))
	store := openStore(t, client, table)
	_, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("Paid", nil))
	require.NoError(t, err)
	assert.Empty(t, checkpointLayout(t, client, table), "opening a table from before records no checkpoint layout")

	pos, ok, err := store.Checkpoint(ctx, "old-a")
	require.NoError(t, err)
	assert.True(t, ok, "a checkpoint of the earlier layout loads before any listing")
	assert.Equal(t, eventstore.Position{Commit: 5, Prepare: 7}, pos)
	require.NoError(t, store.SetCheckpoint(ctx, "both", eventstore.Position{Commit: 9}))
	pos, _, err = store.Checkpoint(ctx, "both")
	require.NoError(t, err)
	assert.Equal(t, eventstore.Position{Commit: 9}, pos, "a checkpoint saved since wins over the earlier one")
	require.NoError(t, store.SetCheckpoint(ctx, "new-b", eventstore.Position{Commit: 2}))

	want := []eventstore.Checkpoint{
		{Name: member, Position: eventstore.Position{Commit: 3}},
		{Name: "both", Position: eventstore.Position{Commit: 9}},
		{Name: "new-b", Position: eventstore.Position{Commit: 2}},
		{Name: "old-a", Position: eventstore.Position{Commit: 5, Prepare: 7}},
	}
	got, err := store.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, 1, tr.count("Scan"), "the first listing scans the table once")
	assert.Equal(t, "2", checkpointLayout(t, client, table), "the copy is recorded in the layout item")
	got, err = store.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	got, err = openStore(t, client, table).Checkpoints(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got, "listed by another process")
	assert.Equal(t, 1, tr.count("Scan"), "later listings, in any process, do not scan")

	for _, name := range []string{"old-a", "both"} {
		require.NoError(t, store.DeleteCheckpoint(ctx, name))
		_, ok, err := store.Checkpoint(ctx, name)
		require.NoError(t, err)
		assert.False(t, ok, "%s after DeleteCheckpoint (the earlier item must not resurface)", name)
		assert.Nil(t, rawItem(t, client, table, "$checkpoint#"+name), "the item of the earlier layout is deleted too")
	}
	got, err = store.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Equal(t, []eventstore.Checkpoint{want[0], want[2]}, got)

	// An older driver still running saves in the earlier layout after the
	// copy: the checkpoint loads, and the next listing after the layout
	// item's mark is removed (docs/dynamodb.md) lists it.
	putRaw(t, client, table, earlierCheckpoint("late", eventstore.Position{Commit: 4}))
	pos, ok, err = store.Checkpoint(ctx, "late")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, eventstore.Position{Commit: 4}, pos)
	_, err = client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
		TableName:        aws.String(table),
		Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "$layout"}, "sk": &types.AttributeValueMemberN{Value: "0"}},
		UpdateExpression: aws.String("REMOVE checkpoints"),
	})
	require.NoError(t, err)
	later := openStore(t, client, table)
	got, err = later.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Equal(t, []eventstore.Checkpoint{want[0], {Name: "late", Position: eventstore.Position{Commit: 4}}, want[2]}, got)
	assert.Equal(t, 2, tr.count("Scan"))
	require.NoError(t, later.DeleteCheckpoint(ctx, "late"))
	_, ok, err = later.Checkpoint(ctx, "late")
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestCheckpointsOfNewTable: a table set up by this driver records
// checkpoint layout 2 from the start, so listing never scans it: it
// queries the 16 checkpoint partitions.
func TestCheckpointsOfNewTable(t *testing.T) {
	tr := newFaulty()
	store, d := newStore(t, newClient(t, tr), dynamodb.Options{})
	ctx := t.Context()
	for i := range 40 {
		require.NoError(t, store.SetCheckpoint(ctx, "cp-"+strconv.Itoa(i), eventstore.Position{Commit: uint64(i + 1), Prepare: uint64(i)}))
	}
	got, err := store.Checkpoints(ctx)
	require.NoError(t, err)
	require.Len(t, got, 40)
	for i := 1; i < len(got); i++ {
		assert.Less(t, got[i-1].Name, got[i].Name, "sorted by name")
	}
	assert.Equal(t, eventstore.Position{Commit: 1, Prepare: 0}, got[0].Position) // cp-0
	assert.Zero(t, tr.count("Scan"))
	assert.Equal(t, 16, tr.count("Query"), "one Query per checkpoint partition")
	assert.Equal(t, "2", checkpointLayout(t, newClient(t, nil), d.Table()))
}

// TestCopyEarlierCheckpoint copies a checkpoint of the earlier layout that
// changed between the scan that found it and the copy: the copy never
// brings back a deleted checkpoint, takes a newer save of an older driver,
// and never overwrites a checkpoint of the current layout.
func TestCopyEarlierCheckpoint(t *testing.T) {
	client := newClient(t, nil)
	store, d := newStore(t, client, dynamodb.Options{})
	ctx := t.Context()
	scanned := eventstore.Position{Commit: 5, Prepare: 1}
	cases := []struct {
		name    string
		earlier *eventstore.Position // the earlier item at copy time; nil: none
		own     *eventstore.Position // a checkpoint saved by this driver; nil: none
		copied  bool
		want    *eventstore.Position // what LoadCheckpoint returns after; nil: none
	}{
		{name: "Unchanged", earlier: &scanned, copied: true, want: &scanned},
		{name: "SavedAgainByAnOlderDriver", earlier: &eventstore.Position{Commit: 8}, copied: true, want: &eventstore.Position{Commit: 8}},
		{name: "DeletedSinceTheScan"},
		{name: "SavedSinceByThisDriver", earlier: &scanned, own: &eventstore.Position{Commit: 9}, want: &eventstore.Position{Commit: 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.earlier != nil {
				putRaw(t, client, d.Table(), earlierCheckpoint(tc.name, *tc.earlier))
			}
			if tc.own != nil {
				require.NoError(t, store.SetCheckpoint(ctx, tc.name, *tc.own))
			}
			copied, err := dynamodb.CopyEarlierCheckpoint(ctx, d, tc.name, scanned)
			require.NoError(t, err)
			assert.Equal(t, tc.copied, copied)
			if tc.earlier != nil {
				// Without the earlier item, only the one of the current layout is left.
				_, err := client.DeleteItem(ctx, &awsdynamodb.DeleteItemInput{TableName: aws.String(d.Table()), Key: map[string]types.AttributeValue{
					"pk": &types.AttributeValueMemberS{Value: "$checkpoint#" + tc.name}, "sk": &types.AttributeValueMemberN{Value: "0"},
				}})
				require.NoError(t, err)
			}
			pos, ok, err := store.Checkpoint(ctx, tc.name)
			require.NoError(t, err)
			if tc.want == nil {
				assert.False(t, ok, "got %s", pos)
				return
			}
			assert.True(t, ok)
			assert.Equal(t, *tc.want, pos)
		})
	}
}

// TestCheckpointCallsTransient: the checkpoint calls retry throttling, 5xx
// and transaction conflicts like every other request, and once the tries
// are spent report ErrTransient with the native error reachable; a copy of
// the earlier layout's checkpoints that failed is done by the next listing.
func TestCheckpointCallsTransient(t *testing.T) {
	pos := eventstore.Position{Commit: 1}
	cases := []struct {
		name    string
		earlier bool // on a table from before, with a checkpoint of the earlier layout
		op      string
		fault   fault
		call    func(s *eventstore.Store) error
	}{
		{name: "SetCheckpoint", op: "PutItem", fault: throttle, call: func(s *eventstore.Store) error { return s.SetCheckpoint(t.Context(), "cp", pos) }},
		{name: "Checkpoint", op: "GetItem", fault: serverError, call: func(s *eventstore.Store) error {
			_, _, err := s.Checkpoint(t.Context(), "cp")
			return err
		}},
		{name: "DeleteCheckpoint", op: "DeleteItem", fault: provisioned, call: func(s *eventstore.Store) error { return s.DeleteCheckpoint(t.Context(), "cp") }},
		{name: "Checkpoints", op: "Query", fault: throttle, call: func(s *eventstore.Store) error {
			_, err := s.Checkpoints(t.Context())
			return err
		}},
		{name: "CheckpointsScan", earlier: true, op: "Scan", fault: serverError, call: func(s *eventstore.Store) error {
			_, err := s.Checkpoints(t.Context())
			return err
		}},
		{name: "CheckpointsCopy", earlier: true, op: "TransactWriteItems", fault: conflict, call: func(s *eventstore.Store) error {
			_, err := s.Checkpoints(t.Context())
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newFaulty()
			client := newClient(t, tr)
			var table string
			if tc.earlier {
				table = earlierTable(t, client)
				putRaw(t, client, table, earlierCheckpoint("cp", pos))
			} else {
				table = newDriver(t, client, dynamodb.Options{}).Table()
			}
			d, err := dynamodb.New(t.Context(), client, table, dynamodb.Options{MaxAttempts: 3})
			require.NoError(t, err)
			s := eventstore.New(d, eventstore.Options{})
			t.Cleanup(func() { s.Close() })

			tr.arm(tc.op, tc.fault, 1000)
			err = tc.call(s)
			require.ErrorIs(t, err, eventstore.ErrTransient)
			assert.Equal(t, 3, tr.count(tc.op), "MaxAttempts tries")
			var native interface{ ErrorCode() string }
			assert.True(t, errors.As(err, &native), "the native error is reachable in %v", err)

			tr.arm(tc.op, tc.fault, 2)
			require.NoError(t, tc.call(s), "two injected %s on %s, three tries", tc.fault, tc.op)
			assert.Zero(t, tr.remaining())
		})
	}
}

// TestCheckpointKeyTaken puts an item of another name at a name's key, as a
// SHA-256 collision would: saving under the name fails instead of
// overwriting it, loading finds none, and deleting leaves it.
func TestCheckpointKeyTaken(t *testing.T) {
	client := newClient(t, nil)
	store, d := newStore(t, client, dynamodb.Options{})
	ctx := t.Context()
	item := dynamodb.CheckpointKey("taken")
	item["cn"] = &types.AttributeValueMemberS{Value: "other"}
	item["p"] = &types.AttributeValueMemberN{Value: "7"}
	item["pp"] = &types.AttributeValueMemberN{Value: "0"}
	putRaw(t, client, d.Table(), item)

	err := store.SetCheckpoint(ctx, "taken", eventstore.Position{Commit: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "collision")
	_, ok, err := store.Checkpoint(ctx, "taken")
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, store.DeleteCheckpoint(ctx, "taken"))
	got, err := store.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Equal(t, []eventstore.Checkpoint{{Name: "other", Position: eventstore.Position{Commit: 7}}}, got, "the other name's item is untouched")
}
