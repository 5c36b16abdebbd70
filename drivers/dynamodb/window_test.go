package dynamodb_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTagIndexWindow builds what a transaction being applied leaves —
// its log entry at position 2 (and, in an indexed table, the head item
// moved past it) visible, its tag item not yet; or in an indexed table
// the head item alone — and has a driver that
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
		// noEntry leaves the log entry at 2 out too: in an indexed table
		// the head item is applied, the rest of its transaction is not;
		// in a head table the entry of another append of the same
		// transaction, at 3, is (the writer then waits to write 4).
		noEntry bool
	}{
		{"head", dynamodb.Options{}, false},
		{"head, the entry above only", dynamodb.Options{}, true},
		{"indexed", indexedOptions(), false},
		{"indexed, head item only", indexedOptions(), true},
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
			applyRest := func() {
				putRaw(t, client, table, dynamodb.LogItem(d1, 2, "User-2", 1, []eventstore.Event{held}))
				putRaw(t, client, table, dynamodb.EventItem("User-2", 1, 2, held, driver.Now()))
			}
			if !tc.noEntry {
				applyRest()
			}
			next := uint64(3) // where the writer must wait to write
			switch {
			case tc.opts.Log == dynamodb.LogIndexed:
				putRaw(t, client, table, map[string]types.AttributeValue{
					"pk": &types.AttributeValueMemberS{Value: "$loghead"}, "sk": &types.AttributeValueMemberN{Value: "0"},
					"next": &types.AttributeValueMemberN{Value: "3"}, "g": &types.AttributeValueMemberN{Value: "1"},
				})
			case tc.noEntry:
				other := eventstore.NewEvent("Placed", []byte(`{}`))
				putRaw(t, client, table, dynamodb.LogItem(d1, 3, "Order-1", 1, []eventstore.Event{other}))
				putRaw(t, client, table, dynamodb.EventItem("Order-1", 1, 3, other, driver.Now()))
				next = 4
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
			case at := <-waiting:
				assert.Equal(t, next, at, "the position the writer waits to write")
			case err := <-done:
				t.Fatalf("the append returned (%v, at %s) above an entry whose tag item is missing", err, res.Position)
			case <-time.After(30 * time.Second):
				t.Fatal("the append neither waited for the tag item nor returned")
			}
			out, err := client.GetItem(ctx, &awsdynamodb.GetItemInput{
				TableName: aws.String(table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "$log#0"}, "sk": &types.AttributeValueMemberN{Value: fmt.Sprint(next)}},
			})
			require.NoError(t, err)
			assert.Empty(t, out.Item, "no log entry at %d while the tag item of 2 is missing", next)

			// The transaction's last items are applied: the append goes on.
			if tc.noEntry {
				applyRest()
			}
			putRaw(t, client, table, map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "$tag#user:2"}, "sk": &types.AttributeValueMemberN{Value: "2"},
				"o":  &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "0"}}},
				"ty": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "Registered"}}},
				"es": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "User-2"}}},
				"ev": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}}},
			})
			require.NoError(t, <-done)
			assert.Equal(t, eventstore.Position{Commit: next}, res.Position)
			var got []eventstore.Position
			for ev, err := range second.ReadQuery(ctx, eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"user:2"}}}}, eventstore.ReadQueryOptions{}) {
				require.NoError(t, err)
				got = append(got, ev.Position)
			}
			assert.Equal(t, []eventstore.Position{{Commit: 2}}, got, "ReadQuery by the held event's tag")
		})
	}
}

// requestCounter counts a client's requests by operation (the X-Amz-Target
// header).
type requestCounter struct {
	next http.RoundTripper
	mu   sync.Mutex // protects ops
	ops  map[string]int
}

func (c *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = map[string]int{}
	return ops
}

// BenchmarkSettle measures what settling the log below a position read
// from the table costs (see window.go) where it applies most: a head table
// written by two drivers (two processes) at once, every event tagged with
// a tag of its own (unique usernames), so each lost race for the head
// settles the entries below, tag items and all. Each round, each driver
// appends 20 such events one after the other; "settle" and "before" (the
// settling turned off) run interleaved on tables of their own. Besides
// events/s it reports the requests per event of each.
func BenchmarkSettle(b *testing.B) {
	const perDriver = 20
	var cs []conformance.Contender
	counters := map[string]*requestCounter{}
	for _, name := range []string{"settle", "before"} {
		rc := &requestCounter{next: http.DefaultTransport, ops: map[string]int{}}
		counters[name] = rc
		client := newClient(b, rc)
		d1 := newDriver(b, client, dynamodb.Options{})
		d2, err := dynamodb.New(b.Context(), client, d1.Table(), dynamodb.Options{})
		require.NoError(b, err)
		stores := []*eventstore.Store{eventstore.New(d1, eventstore.Options{}), eventstore.New(d2, eventstore.Options{})}
		for i, s := range stores {
			b.Cleanup(func() { s.Close() })
			if name == "before" {
				dynamodb.SetNoSettle([]*dynamodb.Driver{d1, d2}[i])
			}
		}
		cs = append(cs, conformance.Contender{Name: name, Round: func(ctx context.Context) (int, error) {
			var wg sync.WaitGroup
			errs := make(chan error, len(stores))
			for _, s := range stores {
				wg.Go(func() {
					for range perDriver {
						ev := eventstore.NewEvent("Registered", []byte(`{}`))
						ev.Tags = []string{"username:" + uuid.NewString()}
						if _, err := s.Append(ctx, conformance.BenchStream("User"), eventstore.NoStream, ev); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			return len(stores) * perDriver, <-errs
		}})
	}
	for _, rc := range counters {
		rc.take()
	}
	rates := conformance.RunInterleaved(b, 1, cs)
	b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "settle/before-%")
	events := float64(len(rates)*2*perDriver + 2*perDriver) // the rounds and the warmup
	for name, rc := range counters {
		ops := rc.take()
		total := 0
		for _, n := range ops {
			total += n
		}
		b.ReportMetric(float64(total)/events, name+"-requests/event")
		b.ReportMetric(float64(ops["Query"])/events, name+"-queries/event")
		b.ReportMetric(float64(ops["BatchGetItem"])/events, name+"-batchgets/event")
		b.ReportMetric(float64(ops["TransactWriteItems"])/events, name+"-transactions/event")
	}
}
