package dynamodb_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

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
// passes over what is gone without stopping, and the next removal finishes
// the sweep, after which the global log holds nothing removed.
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
			all := inAll(kept)
			require.NotEmpty(t, all)
			assert.Greater(t, all[0], uint64(25), "the sweep removed the first events")
			assert.Equal(t, uint64(270), all[len(all)-1], "the global log passes over removed events")

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
