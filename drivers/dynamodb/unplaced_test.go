package dynamodb_test

import (
	"os"
	"strings"
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

// separateOrdererEnv runs all of TestConformanceIndexedSeparateOrderer
// when set to 1: the whole suite once more, minutes, so not in every test
// run.
const separateOrdererEnv = "EVENTSTORE_DYNAMODB_SEPARATE_ORDERER"

// TestConformanceIndexedSeparateOrderer runs the suite on indexed tables
// whose driver does not order the log (orderer=off): another driver on the
// same table does, so every single-event append is one PutItem of an event
// marked unplaced (see unplaced.go), the others go through the inbox, and
// conditional appends are placed without the lease (see pinned.go).
// TestIndexedSingleEventPut covers the unplaced path in every run.
//
// Without separateOrdererEnv it runs the rules of conditional appends
// only (what placing without the lease changes), leaving out the 50 rounds
// of 16 racers of ConditionRacersHaveOneWinner (TestIndexedConditionWithoutLease
// races the lease holder and two other drivers instead).
func TestConformanceIndexedSeparateOrderer(t *testing.T) {
	var match func(string) bool
	if os.Getenv(separateOrdererEnv) != "1" {
		t.Logf("the conditional-append rules only: set %s=1 to run the whole suite with a separate orderer (minutes)", separateOrdererEnv)
		match = func(rule string) bool {
			return rule != "ConditionRacersHaveOneWinner" && (strings.HasPrefix(rule, "Condition") || strings.HasPrefix(rule, "HostileCondition"))
		}
	}
	conformance.RunMatching(t, separateOrderer{client: newClient(t, nil)}, match)
}

// separateOrderer is a harness whose drivers run without an orderer, next
// to a driver on the same table that orders it and does nothing else.
type separateOrderer struct{ client *awsdynamodb.Client }

func (h separateOrderer) NewDriver(t testing.TB) driver.Driver {
	return h.NewStorage(t)()
}

func (separateOrderer) Unsupported() map[conformance.Feature]string { return nil }

func (separateOrderer) NativeTypes() []any { return []any{new(*awsdynamodb.Client)} }

func (h separateOrderer) NewStorage(t testing.TB) func() driver.Driver {
	opts := indexedOptions()
	opts.OrderPoll = 20 * time.Millisecond // the writers' appends wait for its look
	orderer := newDriver(t, h.client, opts)
	opts.NoOrderer = true
	return func() driver.Driver {
		d, err := dynamodb.New(t.Context(), h.client, orderer.Table(), opts)
		require.NoError(t, err)
		return d
	}
}

// TestIndexedSingleEventPut: in an indexed table with the index of
// unplaced events (item layout 2), a driver that does not hold the
// orderer's lease writes each single-event append as one PutItem, and the
// orderer places those events and multi-event appends (inbox) of the same
// streams in per-stream order, once each, in a dense log. A table created
// with the earlier schema (no global index) keeps item layout 1 and the
// inbox for every append.
func TestIndexedSingleEventPut(t *testing.T) {
	client := newClient(t, nil)
	for _, tc := range []struct {
		name      string
		withIndex bool
	}{
		{"with the index", true},
		{"earlier schema", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			table := randomTable()
			in := dynamodb.CreateTableInput(table)
			if tc.withIndex {
				in = dynamodb.CreateIndexedTableInput(table)
			}
			_, err := client.CreateTable(ctx, in)
			require.NoError(t, err)
			deleteTableAtCleanup(t, client, table)

			oopts := indexedOptions()
			oopts.OrderPoll = 20 * time.Millisecond
			od, err := dynamodb.New(ctx, client, table, oopts)
			require.NoError(t, err)
			ordering := eventstore.New(od, eventstore.Options{})
			t.Cleanup(func() { ordering.Close() })

			wopts := indexedOptions()
			wopts.NoOrderer = true
			wopts.OrderTimeout = -1 // do not wait: the orderer meets out-of-order versions
			wd, err := dynamodb.New(ctx, client, table, wopts)
			require.NoError(t, err)
			w := eventstore.New(wd, eventstore.Options{})
			t.Cleanup(func() { w.Close() })

			out, err := client.GetItem(ctx, &awsdynamodb.GetItemInput{
				TableName: aws.String(table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "$layout"}, "sk": &types.AttributeValueMemberN{Value: "0"}},
			})
			require.NoError(t, err)
			wantLayout := "1"
			if tc.withIndex {
				wantLayout = "2"
			}
			assert.Equal(t, &types.AttributeValueMemberN{Value: wantLayout}, out.Item["layout"], "item layout")

			ev := func(typ string) eventstore.Event { return eventstore.NewEvent(typ, []byte(`{}`)) }
			streams := make([]string, 8)
			singles := 0
			for i := range streams {
				s := "Order-" + uuid.NewString()[:8]
				streams[i] = s
				first := ev("E1")
				_, err := w.Append(ctx, s, eventstore.NoStream, first)
				require.NoError(t, err)
				_, err = w.Append(ctx, s, eventstore.Exact(1), ev("E2"), ev("E3")) // inbox
				require.NoError(t, err)
				_, err = w.Append(ctx, s, eventstore.Exact(3), ev("E4"))
				require.NoError(t, err)
				_, err = w.Append(ctx, s, eventstore.Any, ev("E5"))
				require.NoError(t, err)
				singles += 3
				// A retry of the first append is recognised; a wrong
				// expectation fails, and writes nothing.
				res, err := w.Append(ctx, s, eventstore.NoStream, first)
				require.NoError(t, err, "retry")
				assert.Equal(t, uint64(1), res.Version, "retry")
				_, err = w.Append(ctx, s, eventstore.Exact(9), ev("Wrong"))
				require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
			}
			if tc.withIndex {
				assert.Equal(t, uint64(singles), dynamodb.UnplacedPuts(wd), "single-event appends written as one PutItem")
			} else {
				assert.Zero(t, dynamodb.UnplacedPuts(wd), "appends written as one PutItem without the index")
			}

			want := 5 * len(streams)
			requireDenseLog(t, ordering, want)
			for _, s := range streams {
				n := 0
				for e, err := range w.ReadStream(ctx, s, eventstore.ReadStreamOptions{}) {
					require.NoError(t, err)
					n++
					assert.False(t, e.Position.IsZero(), "%s@%d has no position", s, e.Version)
				}
				assert.Equal(t, 5, n, "%s: events", s)
			}
		})
	}
}

// requireDenseLog waits (up to 30 s) until store's log holds want events,
// and requires exactly those: at positions 1…want with nothing missing, each
// stream's in version order. It returns them.
func requireDenseLog(t *testing.T, store *eventstore.Store, want int) []eventstore.RecordedEvent {
	t.Helper()
	var log []eventstore.RecordedEvent
	require.Eventually(t, func() bool {
		log = log[:0]
		for ev, err := range store.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
			require.NoError(t, err)
			log = append(log, ev)
		}
		return len(log) >= want
	}, 30*time.Second, 10*time.Millisecond, "events placed in the log")
	require.Len(t, log, want)
	last := map[string]uint64{}
	for i, ev := range log {
		require.Equal(t, uint64(i+1), ev.Position.Commit, "the log is not dense")
		require.Equal(t, last[ev.StreamID]+1, ev.Version, "%s out of version order in the log", ev.StreamID)
		last[ev.StreamID] = ev.Version
	}
	return log
}
