package dynamodb_test

import (
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

// TestTagIndexWindow builds what a transaction being applied leaves —
// its log entry at position 2 (and, in an indexed table, the head item
// moved past it) visible, its tag item not yet — and has a driver that
// reads the next position from the table (another process of a head
// table; a new lease holder of an indexed table) append. The append must
// wait for the tag item instead of writing position 3 above it: a reader
// that saw position 3 would read the tag items below it as complete and
// miss the event at 2 (docs/dynamodb.md, "The tag index").
func TestTagIndexWindow(t *testing.T) {
	t.Parallel()
	client := newClient(t, nil)
	for _, tc := range []struct {
		name string
		opts dynamodb.Options
	}{
		{"head", dynamodb.Options{}},
		{"indexed", indexedOptions()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			first, d1 := newStore(t, client, tc.opts)
			table := d1.Table()
			tagged := eventstore.NewEvent("Registered", []byte(`{}`))
			tagged.Tags = []string{"user:1"}
			_, err := first.Append(ctx, "User-1", eventstore.NoStream, tagged)
			require.NoError(t, err)
			require.NoError(t, first.Close()) // an indexed table's lease goes at once

			// The transaction being applied: entry, event and (indexed)
			// head at position 2, not its tag item.
			held := eventstore.NewEvent("Registered", []byte(`{}`))
			held.Tags = []string{"user:2"}
			putRaw(t, client, table, dynamodb.LogItem(d1, 2, "User-2", 1, []eventstore.Event{held}))
			putRaw(t, client, table, dynamodb.EventItem("User-2", 1, 2, held, driver.Now()))
			if tc.opts.Log == dynamodb.LogIndexed {
				putRaw(t, client, table, map[string]types.AttributeValue{
					"pk": &types.AttributeValueMemberS{Value: "$loghead"}, "sk": &types.AttributeValueMemberN{Value: "0"},
					"next": &types.AttributeValueMemberN{Value: "3"}, "g": &types.AttributeValueMemberN{Value: "1"},
				})
			}

			opts := tc.opts
			d2, err := dynamodb.New(ctx, client, table, opts)
			require.NoError(t, err)
			waiting := make(chan uint64, 1)
			dynamodb.SetSettleHook(d2, func(next uint64, missing int) {
				select {
				case waiting <- next:
				default:
				}
			})
			second := eventstore.New(d2, eventstore.Options{})
			t.Cleanup(func() { second.Close() })
			done := make(chan error, 1)
			var res eventstore.AppendResult
			go func() {
				var err error
				res, err = second.Append(ctx, "User-3", eventstore.NoStream, eventstore.NewEvent("Registered", []byte(`{}`)))
				done <- err
			}()
			select {
			case next := <-waiting:
				assert.Equal(t, uint64(3), next, "the position the writer waits to write")
			case err := <-done:
				t.Fatalf("the append returned (%v, at %s) above an entry whose tag item is missing", err, res.Position)
			case <-time.After(30 * time.Second):
				t.Fatal("the append neither waited for the tag item nor returned")
			}
			out, err := client.GetItem(ctx, &awsdynamodb.GetItemInput{
				TableName: aws.String(table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "$log#0"}, "sk": &types.AttributeValueMemberN{Value: "3"}},
			})
			require.NoError(t, err)
			assert.Empty(t, out.Item, "no log entry at 3 while the tag item of 2 is missing")

			// The transaction's last item is applied: the append goes on.
			putRaw(t, client, table, map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "$tag#user:2"}, "sk": &types.AttributeValueMemberN{Value: "2"},
				"o":  &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "0"}}},
				"ty": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "Registered"}}},
				"es": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "User-2"}}},
				"ev": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}}},
			})
			require.NoError(t, <-done)
			assert.Equal(t, eventstore.Position{Commit: 3}, res.Position)
			var got []eventstore.Position
			for ev, err := range second.ReadQuery(ctx, eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"user:2"}}}}, eventstore.ReadQueryOptions{}) {
				require.NoError(t, err)
				got = append(got, ev.Position)
			}
			assert.Equal(t, []eventstore.Position{{Commit: 2}}, got, "ReadQuery by the held event's tag")
		})
	}
}
