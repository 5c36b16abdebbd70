package dynamodb_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashAfter cancels a context once a number of BatchWriteItem requests
// (a sweep's) have been answered: the removal stops there, as if its
// process had died, with the commit made and the sweep half done.
type crashAfter struct {
	next http.RoundTripper

	mu     sync.Mutex // protects left and cancel
	left   int
	cancel context.CancelFunc
}

func (c *crashAfter) arm(n int, cancel context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left, c.cancel = n, cancel
}

func (c *crashAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".BatchWriteItem") {
		c.mu.Lock()
		if c.cancel != nil {
			if c.left--; c.left == 0 {
				c.cancel()
				c.cancel = nil
			}
		}
		c.mu.Unlock()
	}
	return resp, err
}

// TestRemovalInterrupted stops a DeleteStream and a TruncateStream after
// their commit and one request of their sweep: the stream reads as deleted
// (truncated) from its start, appends follow the rules, the global log
// passes over what is removed, swept or not, without stopping, and the
// next removal finishes the sweep.
func TestRemovalInterrupted(t *testing.T) {
	for _, layout := range []struct {
		name string
		opts dynamodb.Options
	}{{"head", dynamodb.Options{}}, {"indexed", indexedOptions()}} {
		t.Run(layout.name, func(t *testing.T) {
			t.Parallel()
			crash := &crashAfter{next: http.DefaultTransport}
			store, _ := newStore(t, newClient(t, crash), layout.opts)
			ctx := t.Context()
			other := "Other-" + randomTable()
			gone := "Gone-" + randomTable()
			kept := "Kept-" + randomTable()
			for i := range 3 { // 90 events each, interleaved with others
				_, err := store.Append(ctx, gone, eventstore.Any, binaryEvents(30, 10)...)
				require.NoError(t, err)
				_, err = store.Append(ctx, other, eventstore.Any, binaryEvents(1, 10)...)
				require.NoError(t, err, "round %d", i)
				_, err = store.Append(ctx, gone, eventstore.Any, binaryEvents(60, 10)...)
				require.NoError(t, err)
				_, err = store.Append(ctx, kept, eventstore.Any, binaryEvents(90, 10)...)
				require.NoError(t, err)
			}
			inAll := func(stream string) []uint64 {
				var vs []uint64
				for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
					require.NoError(t, err)
					if ev.StreamID == stream {
						vs = append(vs, ev.Version)
					}
				}
				return vs
			}
			readStream := func(stream string, opts eventstore.ReadStreamOptions) []uint64 {
				var vs []uint64
				for ev, err := range store.ReadStream(ctx, stream, opts) {
					require.NoError(t, err)
					vs = append(vs, ev.Version)
				}
				return vs
			}

			// A truncation cut short.
			cctx, cancel := context.WithCancel(ctx)
			crash.arm(1, cancel)
			err := store.TruncateStream(cctx, kept, 200)
			require.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, seqOf(200, 270), readStream(kept, eventstore.ReadStreamOptions{}), "a truncation cut short: stream reads start at the first kept version")
			assert.Equal(t, seqOf(200, 270), readStream(kept, eventstore.ReadStreamOptions{From: 150}), "and so do reads from a version below it, the stub of 199 being met first")
			back := readStream(kept, eventstore.ReadStreamOptions{Backwards: true})
			assert.Len(t, back, 71, "backwards: down to the stub below the first kept version")
			v, err := store.StreamVersion(ctx, kept)
			require.NoError(t, err)
			assert.Equal(t, uint64(270), v)
			assert.Equal(t, seqOf(200, 270), inAll(kept), "the global log passes over removed events, swept or not")

			// A delete cut short.
			cctx, cancel = context.WithCancel(ctx)
			crash.arm(1, cancel)
			err = store.DeleteStream(cctx, gone, eventstore.Exact(270))
			require.ErrorIs(t, err, context.Canceled)
			v, err = store.StreamVersion(ctx, gone)
			require.NoError(t, err)
			assert.Zero(t, v, "the delete committed: version 0")
			assert.Empty(t, readStream(gone, eventstore.ReadStreamOptions{}), "a delete cut short: the stream reads as deleted")
			assert.Empty(t, readStream(gone, eventstore.ReadStreamOptions{Backwards: true}))
			_, err = store.Append(ctx, gone, eventstore.Exact(270), binaryEvents(1, 10)...)
			require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion, "Exact of the deleted version")
			assert.Equal(t, seqOf(1, 3), inAll(other), "the global log reads past the half-removed events")
			assert.Empty(t, inAll(gone), "a delete cut short: nothing of the stream in the global log")

			// The next removal finishes the sweeps.
			require.NoError(t, store.DeleteStream(ctx, gone, eventstore.Any))
			assert.Empty(t, inAll(gone), "after the delete finished: nothing in the global log")
			require.NoError(t, store.TruncateStream(ctx, kept, 2))
			assert.Equal(t, seqOf(200, 270), inAll(kept), "after the truncation finished")
			res, err := store.Append(ctx, gone, eventstore.NoStream, binaryEvents(1, 10)...)
			require.NoError(t, err)
			assert.Equal(t, uint64(271), res.Version, "recreated after its last version")
		})
	}
}

func seqOf(from, to uint64) []uint64 {
	var out []uint64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// writeMeter adds up the write units DynamoDB reports for the driver's
// writes, by operation (ReturnConsumedCapacity TOTAL).
type writeMeter struct {
	mu  sync.Mutex // protects ops
	ops map[string]usage
}

func (m *writeMeter) install(o *awsdynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("writeMeter", m.handle), middleware.After)
	})
}

func (m *writeMeter) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	var op string
	items := 0
	switch p := in.Parameters.(type) {
	case *awsdynamodb.TransactWriteItemsInput:
		op, items = "TransactWriteItems", len(p.TransactItems)
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	case *awsdynamodb.BatchWriteItemInput:
		op = "BatchWriteItem"
		for _, r := range p.RequestItems {
			items += len(r)
		}
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	case *awsdynamodb.UpdateItemInput:
		op, items = "UpdateItem", 1
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	case *awsdynamodb.PutItemInput:
		op, items = "PutItem", 1
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	case *awsdynamodb.DeleteItemInput:
		op, items = "DeleteItem", 1
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	case *awsdynamodb.QueryInput:
		op = "Query"
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	case *awsdynamodb.GetItemInput:
		op, items = "GetItem", 1
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	case *awsdynamodb.BatchGetItemInput:
		op = "BatchGetItem"
		for _, r := range p.RequestItems {
			items += len(r.Keys)
		}
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	}
	out, md, err := next.HandleInitialize(ctx, in)
	if op == "" || err != nil {
		return out, md, err
	}
	var units float64
	switch r := out.Result.(type) {
	case *awsdynamodb.TransactWriteItemsOutput:
		for _, c := range r.ConsumedCapacity {
			units += aws.ToFloat64(c.CapacityUnits)
		}
	case *awsdynamodb.BatchWriteItemOutput:
		for _, c := range r.ConsumedCapacity {
			units += aws.ToFloat64(c.CapacityUnits)
		}
	case *awsdynamodb.UpdateItemOutput:
		units = capacity(r.ConsumedCapacity)
	case *awsdynamodb.PutItemOutput:
		units = capacity(r.ConsumedCapacity)
	case *awsdynamodb.DeleteItemOutput:
		units = capacity(r.ConsumedCapacity)
	case *awsdynamodb.QueryOutput:
		units, items = capacity(r.ConsumedCapacity), len(r.Items)
	case *awsdynamodb.GetItemOutput:
		units = capacity(r.ConsumedCapacity)
	case *awsdynamodb.BatchGetItemOutput:
		for _, c := range r.ConsumedCapacity {
			units += aws.ToFloat64(c.CapacityUnits)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ops == nil {
		m.ops = map[string]usage{}
	}
	u := m.ops[op]
	u.requests++
	u.items += items
	u.units += units
	m.ops[op] = u
	return out, md, err
}

func capacity(c *types.ConsumedCapacity) float64 {
	if c == nil {
		return 0
	}
	return aws.ToFloat64(c.CapacityUnits)
}

func (m *writeMeter) take() map[string]usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	ops := m.ops
	m.ops = nil
	return ops
}

// TestRemovalCost counts the requests and items of removals, and the units
// DynamoDB Local reports (it does not bill like the service: see
// docs/dynamodb.md, "Deleting, truncating, retention", for the service's
// figures, which follow from the items). Run with -v for the table.
func TestRemovalCost(t *testing.T) {
	var m writeMeter
	client := newClient(t, nil, m.install)
	store, _ := newStore(t, client, dynamodb.Options{})
	ctx := t.Context()
	s := "Cost-" + randomTable()
	for range 10 { // 1,000 events of 100 bytes, in appends of 100
		_, err := store.Append(ctx, s, eventstore.Any, binaryEvents(98, 100)...)
		require.NoError(t, err)
	}
	_, err := store.Append(ctx, s, eventstore.Any, binaryEvents(20, 100)...)
	require.NoError(t, err)
	report := func(what string, want map[string]int) {
		t.Helper()
		ops := m.take()
		for op, n := range want {
			assert.Equal(t, n, ops[op].requests, "%s: %s requests", what, op)
		}
		for op, u := range ops {
			t.Logf("%s: %s: %d requests, %d items, %.1f units", what, op, u.requests, u.items, u.units)
		}
	}
	m.take()
	require.NoError(t, store.TruncateStream(ctx, s, 501))
	// The commit (meta item and stub), the sweep: a Query of the range, 20
	// BatchWriteItem of 25 (version 1 and each append's first event become
	// stubs keeping the ID, the others are deleted), its record.
	report("TruncateStream before 501 (500 events, 6 appends)", map[string]int{"TransactWriteItems": 1, "BatchWriteItem": 20, "UpdateItem": 1})
	require.NoError(t, store.DeleteStream(ctx, s, eventstore.Any))
	report("DeleteStream (520 events left, stubs of 6 appends)", map[string]int{"TransactWriteItems": 1, "BatchWriteItem": 21, "UpdateItem": 1, "DeleteItem": 1})

	r := "Ret-" + randomTable()
	require.NoError(t, store.SetStreamRetention(ctx, r, eventstore.Retention{MaxCount: 10}))
	_, err = store.Append(ctx, r, eventstore.NoStream, binaryEvents(10, 100)...)
	require.NoError(t, err)
	m.take()
	_, err = store.Append(ctx, r, eventstore.Exact(10), binaryEvents(1, 100)...)
	require.NoError(t, err)
	report("an append of 1 event to a stream with MaxCount 10", map[string]int{"TransactWriteItems": 2})
	plain := "Plain-" + randomTable()
	_, err = store.Append(ctx, plain, eventstore.NoStream, binaryEvents(1, 100)...)
	require.NoError(t, err)
	m.take()
	_, err = store.Append(ctx, plain, eventstore.Exact(1), binaryEvents(1, 100)...)
	require.NoError(t, err)
	report("an append of 1 event to a stream without retention", map[string]int{"TransactWriteItems": 1, "GetItem": 1})
}

// TestRemovalCutShortAfterCommit stops the sweeps of a DeleteStream, a
// TruncateStream and a SetStreamRetention right after their commit, with
// nothing swept: no read path returns a removed event (ReadAll forwards and
// backwards, a subscription, ReadQuery, ReadStream from a middle version in
// small pages and backwards from it), and the next ApplyRetention finishes
// the sweeps, after which the events' items are gone.
func TestRemovalCutShortAfterCommit(t *testing.T) {
	for _, layout := range []struct {
		name string
		opts dynamodb.Options
	}{{"head", dynamodb.Options{}}, {"indexed", indexedOptions()}} {
		t.Run(layout.name, func(t *testing.T) {
			t.Parallel()
			store, d := newStore(t, newClient(t, nil), layout.opts)
			ctx := t.Context()
			id := randomTable()
			gone, kept, ret, other := "Gone-"+id, "Kept-"+id, "Ret-"+id, "Other-"+id
			for range 2 { // 20 events each, interleaved with others
				for _, s := range []string{gone, kept, ret} {
					_, err := store.Append(ctx, s, eventstore.Any, binaryEvents(10, 10)...)
					require.NoError(t, err)
					_, err = store.Append(ctx, other, eventstore.Any, binaryEvents(1, 10)...)
					require.NoError(t, err)
				}
			}
			dynamodb.StopSweeps(d, func(string) bool { return true })
			require.NoError(t, store.DeleteStream(ctx, gone, eventstore.Exact(20)))
			require.NoError(t, store.TruncateStream(ctx, kept, 15))
			require.NoError(t, store.SetStreamRetention(ctx, ret, eventstore.Retention{MaxCount: 3}))
			dynamodb.StopSweeps(d, nil)
			last, err := store.Append(ctx, other, eventstore.Any, binaryEvents(1, 10)...)
			require.NoError(t, err)

			want := map[string][]uint64{gone: nil, kept: seqOf(15, 20), ret: seqOf(18, 20), other: seqOf(1, 7)}
			byStream := func(evs []eventstore.RecordedEvent) map[string][]uint64 {
				out := map[string][]uint64{gone: nil}
				for _, ev := range evs {
					out[ev.StreamID] = append(out[ev.StreamID], ev.Version)
				}
				return out
			}
			collect := func(seq func(func(eventstore.RecordedEvent, error) bool)) []eventstore.RecordedEvent {
				var evs []eventstore.RecordedEvent
				for ev, err := range seq {
					require.NoError(t, err)
					evs = append(evs, ev)
				}
				return evs
			}
			check := func(when string) {
				t.Helper()
				assert.Equal(t, want, byStream(collect(store.ReadAll(ctx, eventstore.ReadAllOptions{}))), "%s: ReadAll", when)
				back := collect(store.ReadAll(ctx, eventstore.ReadAllOptions{Backwards: true}))
				slices.Reverse(back)
				assert.Equal(t, want, byStream(back), "%s: ReadAll backwards", when)
				q := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Large"}}}}
				assert.Equal(t, want, byStream(collect(store.ReadQuery(ctx, q, eventstore.ReadQueryOptions{}))), "%s: ReadQuery", when)
				for _, tc := range []struct {
					stream string
					opts   eventstore.ReadStreamOptions
					want   []uint64
				}{
					{kept, eventstore.ReadStreamOptions{From: 3, Limit: 4}, seqOf(15, 18)},
					{kept, eventstore.ReadStreamOptions{From: 11}, seqOf(15, 20)},
					{ret, eventstore.ReadStreamOptions{From: 2, Limit: 2}, seqOf(18, 19)},
					{gone, eventstore.ReadStreamOptions{From: 5, Limit: 3}, nil},
					{kept, eventstore.ReadStreamOptions{From: 16, Backwards: true}, []uint64{16, 15}},
					{kept, eventstore.ReadStreamOptions{From: 9, Backwards: true}, nil},
					{gone, eventstore.ReadStreamOptions{From: 12, Backwards: true}, nil},
				} {
					var vs []uint64
					for _, ev := range collect(store.ReadStream(ctx, tc.stream, tc.opts)) {
						vs = append(vs, ev.Version)
					}
					assert.Equal(t, tc.want, vs, "%s: ReadStream(%q, %+v)", when, tc.stream, tc.opts)
				}
				subCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				var delivered []eventstore.RecordedEvent
				err := store.Subscribe(subCtx, eventstore.SubscribeOptions{BatchSize: 7, PollInterval: 50 * time.Millisecond},
					func(_ context.Context, ev eventstore.RecordedEvent) error {
						delivered = append(delivered, ev)
						if ev.Position == last.Position {
							cancel()
						}
						return nil
					})
				require.ErrorIs(t, err, context.Canceled)
				assert.Equal(t, want, byStream(delivered), "%s: a subscription from the start", when)
			}
			check("sweeps cut short after their commit")

			res, err := store.ApplyRetention(ctx)
			require.NoError(t, err)
			assert.Equal(t, uint64(1), res.Streams, "ApplyRetention: the one stream with a retention")
			check("after ApplyRetention")
			// The items are gone: a read of the table's items finds none
			// below the first kept versions but the stubs.
			for s, tb := range map[string]uint64{gone: 21, kept: 15, ret: 18} {
				items := dynamodb.StreamItems(t, d, s)
				for _, it := range items {
					if it.Version > 0 && it.Version < tb-1 && it.Version > 1 {
						assert.True(t, it.Stub, "%q version %d: an event item left below the first kept version %d after ApplyRetention", s, it.Version, tb)
					}
				}
			}
			res, err = store.ApplyRetention(ctx)
			require.NoError(t, err)
			assert.Equal(t, eventstore.RetentionResult{Streams: 1}, res, "ApplyRetention again: nothing to do")
		})
	}
}

// TestGlobalLogReadCost counts the requests and keys of a ReadAll of 100
// events: of one stream (the meta item of the stream adds a key to each
// BatchGetItem of 99 events), and of 100 streams of one event each (each
// BatchGetItem asks for 50 events and the meta items of their 50 streams:
// twice the requests and keys of reading the events alone). Run with -v for
// the table; docs/dynamodb.md has the figures.
func TestGlobalLogReadCost(t *testing.T) {
	var m writeMeter
	client := newClient(t, nil, m.install)
	store, _ := newStore(t, client, dynamodb.Options{})
	ctx := t.Context()
	one := "One-" + randomTable()
	for range 2 {
		_, err := store.Append(ctx, one, eventstore.Any, binaryEvents(50, 10)...)
		require.NoError(t, err)
	}
	m.take()
	read := func(what string, from eventstore.Position) (last eventstore.Position) {
		t.Helper()
		n := 0
		for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{After: from}) {
			require.NoError(t, err)
			n++
			last = ev.Position
		}
		require.Equal(t, 100, n, what)
		u := m.take()["BatchGetItem"]
		t.Logf("ReadAll of %s: BatchGetItem: %d requests, %d keys, %.1f units", what, u.requests, u.items, u.units)
		return last
	}
	last := read("100 events of one stream", eventstore.Position{})
	for i := range 100 {
		_, err := store.Append(ctx, fmt.Sprintf("Many%d-%s", i, randomTable()), eventstore.NoStream, binaryEvents(1, 10)...)
		require.NoError(t, err)
	}
	m.take()
	read("100 events of 100 streams", last)
}
