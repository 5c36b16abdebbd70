package dynamodb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// meter counts what a client asks DynamoDB for, by operation: it sets
// ReturnConsumedCapacity on every Query and BatchGetItem and adds up the
// read units DynamoDB reports.
type meter struct {
	mu  sync.Mutex // protects ops
	ops map[string]usage
}

// usage is what one kind of request cost.
type usage struct {
	requests int
	keys     int // keys asked for (BatchGetItem)
	items    int // items returned
	units    float64
}

// install adds the meter to a client's options.
func (m *meter) install(o *awsdynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("meter", m.handle), middleware.After)
	})
}

func (m *meter) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	var op string
	var u usage
	switch p := in.Parameters.(type) {
	case *awsdynamodb.QueryInput:
		op = "Query"
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	case *awsdynamodb.BatchGetItemInput:
		op = "BatchGetItem"
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
		for _, ka := range p.RequestItems {
			u.keys += len(ka.Keys)
		}
	}
	out, md, err := next.HandleInitialize(ctx, in)
	if op == "" || err != nil {
		return out, md, err
	}
	switch r := out.Result.(type) {
	case *awsdynamodb.QueryOutput:
		u.items = len(r.Items)
		if r.ConsumedCapacity != nil {
			u.units = aws.ToFloat64(r.ConsumedCapacity.CapacityUnits)
		}
	case *awsdynamodb.BatchGetItemOutput:
		for _, items := range r.Responses {
			u.items += len(items)
		}
		for _, c := range r.ConsumedCapacity {
			u.units += aws.ToFloat64(c.CapacityUnits)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ops == nil {
		m.ops = map[string]usage{}
	}
	t := m.ops[op]
	t.requests++
	t.keys += u.keys
	t.items += u.items
	t.units += u.units
	m.ops[op] = t
	return out, md, err
}

// take returns the usage of op since the last take and starts again.
func (m *meter) take(op string) usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.ops[op]
	delete(m.ops, op)
	return u
}

// reset forgets everything counted so far.
func (m *meter) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops = nil
}

// binaryEvents returns n binary events of size bytes each.
func binaryEvents(n, size int) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent("Large", make([]byte, size))
		evs[i].ContentType = eventstore.Binary
	}
	return evs
}

// TestPagesStopFetchingAtMaxBytes checks that a page bounded by MaxBytes
// stops asking DynamoDB for events once it is full, rather than fetching
// its whole Limit and dropping the rest: the events of the global log are
// fetched in BatchGetItem rounds sized by the bytes still missing, and a
// stream is read in Query pages of at most 1 MB.
func TestPagesStopFetchingAtMaxBytes(t *testing.T) {
	var m meter
	client := newClient(t, nil, m.install)
	store, d := newStore(t, client, dynamodb.Options{})
	const size, n = 200_000, 20 // 4 MB in all
	for i := range 4 {
		_, err := store.Append(t.Context(), "Big-1", eventstore.Any, binaryEvents(n/4, size)...)
		require.NoError(t, err, "append %d", i)
	}
	maxBytes := size*2 + size/2 // three events
	for _, tc := range []struct {
		name string
		read func() ([]driver.RecordedEvent, error)
		op   string
		max  int // items DynamoDB may return
	}{
		// Three events, then the rest of the round: one event of the
		// largest size at first (the bytes missing allow one), then two.
		{"ReadAll", func() ([]driver.RecordedEvent, error) {
			return d.ReadAll(t.Context(), driver.AllQuery{Limit: 100, MaxBytes: maxBytes})
		}, "BatchGetItem", 3},
		{"ReadAll filtered", func() ([]driver.RecordedEvent, error) {
			return d.ReadAll(t.Context(), driver.AllQuery{Limit: 100, MaxBytes: maxBytes, Filter: driver.Filter{Categories: []string{"Big"}}})
		}, "BatchGetItem", 3},
		{"ReadAllScan", func() ([]driver.RecordedEvent, error) {
			p, err := d.ReadAllScan(t.Context(), driver.AllQuery{Limit: 100, MaxBytes: maxBytes, Filter: driver.Filter{Categories: []string{"Big"}}})
			return p.Events, err
		}, "BatchGetItem", 3},
		// One Query page: 1 MB, and the item that crosses it (six
		// events of 200 KB), not the whole stream.
		{"ReadStream", func() ([]driver.RecordedEvent, error) {
			return d.ReadStream(t.Context(), driver.StreamQuery{Stream: "Big-1", From: 1, Limit: 100, MaxBytes: maxBytes})
		}, "Query", 6},
		{"ReadStream backwards", func() ([]driver.RecordedEvent, error) {
			return d.ReadStream(t.Context(), driver.StreamQuery{Stream: "Big-1", Limit: 100, Backwards: true, MaxBytes: maxBytes})
		}, "Query", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.reset()
			page, err := tc.read()
			require.NoError(t, err)
			assert.Len(t, page, 3, "a page stops once it holds MaxBytes or more")
			u := m.take(tc.op)
			assert.LessOrEqual(t, u.items, tc.max, "%s: %d items fetched (%d requests) for a page of 3 events of %d", tc.op, u.items, u.requests, n)
		})
	}
}

// TestScanStopsWhereEventsCouldStillAppear plays the hazards of the global
// log against ReadAllScan: an append whose log entry is visible but whose
// events are not yet, and a hole in the log (a position no visible entry
// covers). Scanned passes an append in flight the filter does not keep (its
// events can never be this reader's), and stops before one it keeps and
// before a hole; once they are visible, scanning after Scanned gets them.
func TestScanStopsWhereEventsCouldStillAppear(t *testing.T) {
	client := newClient(t, nil)
	filter := driver.Filter{Categories: []string{"Mine"}}
	held := eventstore.NewEvent("Held", []byte(`{}`))
	type want struct {
		events  []uint64 // positions
		scanned uint64
		end     bool
	}
	for _, tc := range []struct {
		name string
		// setup follows Mine-1@1, Other-1@2,3 (head 3).
		setup  func(t *testing.T, s *eventstore.Store, d *dynamodb.Driver)
		first  want
		settle func(t *testing.T, d *dynamodb.Driver) // then, read after first.scanned
		then   want
	}{
		{
			name: "append in flight of another category",
			setup: func(t *testing.T, s *eventstore.Store, d *dynamodb.Driver) {
				putRaw(t, client, d.Table(), dynamodb.LogItem(d, 4, "Other-2", 1, []eventstore.Event{held}))
				_, err := s.Append(t.Context(), "Mine-1", eventstore.Exact(1), eventstore.NewEvent("Placed", nil))
				require.NoError(t, err)
			},
			first: want{events: []uint64{1, 5}, scanned: 5, end: true},
			settle: func(t *testing.T, d *dynamodb.Driver) {
				putRaw(t, client, d.Table(), dynamodb.EventItem("Other-2", 1, 4, held, driver.Now()))
			},
			then: want{end: true},
		},
		{
			name: "append in flight of the filter's category",
			setup: func(t *testing.T, s *eventstore.Store, d *dynamodb.Driver) {
				putRaw(t, client, d.Table(), dynamodb.LogItem(d, 4, "Mine-2", 1, []eventstore.Event{held}))
				_, err := s.Append(t.Context(), "Mine-1", eventstore.Exact(1), eventstore.NewEvent("Placed", nil))
				require.NoError(t, err)
			},
			first: want{events: []uint64{1}, scanned: 3, end: true},
			settle: func(t *testing.T, d *dynamodb.Driver) {
				putRaw(t, client, d.Table(), dynamodb.EventItem("Mine-2", 1, 4, held, driver.Now()))
			},
			then: want{events: []uint64{4, 5}, scanned: 5, end: true},
		},
		{
			name: "hole in the log",
			setup: func(t *testing.T, s *eventstore.Store, d *dynamodb.Driver) {
				putRaw(t, client, d.Table(), dynamodb.LogItem(d, 5, "Mine-3", 1, []eventstore.Event{held}))
				putRaw(t, client, d.Table(), dynamodb.EventItem("Mine-3", 1, 5, held, driver.Now()))
			},
			first: want{events: []uint64{1}, scanned: 3, end: true},
			settle: func(t *testing.T, d *dynamodb.Driver) {
				putRaw(t, client, d.Table(), dynamodb.LogItem(d, 4, "Other-3", 1, []eventstore.Event{held}))
			},
			then: want{events: []uint64{5}, scanned: 5, end: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, d := newStore(t, client, dynamodb.Options{})
			_, err := s.Append(t.Context(), "Mine-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
			require.NoError(t, err)
			_, err = s.Append(t.Context(), "Other-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("Paid", nil))
			require.NoError(t, err)
			tc.setup(t, s, d)
			check := func(stage string, after uint64, w want) {
				t.Helper()
				p, err := d.ReadAllScan(t.Context(), driver.AllQuery{After: driver.Position{Commit: after}, Limit: 100, Filter: filter})
				require.NoError(t, err, stage)
				var got []uint64
				for _, ev := range p.Events {
					got = append(got, ev.Position.Commit)
				}
				assert.Equal(t, w, want{events: got, scanned: p.Scanned.Commit, end: p.End}, "%s: scanning after %d", stage, after)
			}
			check("first", 0, tc.first)
			tc.settle(t, d)
			check("once visible", tc.first.scanned, tc.then)
		})
	}
}

// TestScanBound checks that one ReadAllScan page examines a bounded part of
// the log: over 4,214 events the filter does not keep, the first page
// returns none and says how far it got (at least 4,096 positions, less than
// one entry more), and following Scanned finds the one event it keeps.
func TestScanBound(t *testing.T) {
	client := newClient(t, nil)
	for _, bucket := range []uint64{0, 100} {
		t.Run(fmt.Sprintf("log partitions of %d", bucket), func(t *testing.T) {
			var opts dynamodb.Options
			if bucket > 0 {
				dynamodb.SetLogBucketSize(&opts, bucket)
			}
			s, d := newStore(t, client, opts)
			const appends, size = 43, 98
			for i := range appends {
				_, err := s.Append(t.Context(), fmt.Sprintf("Other-%d", i), eventstore.NoStream, binaryEvents(size, 1)...)
				require.NoError(t, err)
			}
			res, err := s.Append(t.Context(), "Mine-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
			require.NoError(t, err)
			q := driver.AllQuery{Limit: 100, Filter: driver.Filter{Categories: []string{"Mine"}}}
			p, err := d.ReadAllScan(t.Context(), q)
			require.NoError(t, err)
			assert.Empty(t, p.Events)
			assert.False(t, p.End, "the first page stopped at the bound, not the end")
			assert.GreaterOrEqual(t, p.Scanned.Commit, uint64(4096))
			assert.Less(t, p.Scanned.Commit, uint64(4096+size))
			var got []driver.RecordedEvent
			for pages := 1; !p.End; pages++ {
				require.Less(t, pages, 10, "pages to the end of the log")
				q.After = p.Scanned
				p, err = d.ReadAllScan(t.Context(), q)
				require.NoError(t, err)
				got = append(got, p.Events...)
			}
			require.Len(t, got, 1)
			assert.Equal(t, driver.Position(res.Position), got[0].Position)
			assert.Equal(t, driver.Position(res.Position), p.Scanned)
		})
	}
}

// TestScanCost measures what a filtered scan costs in requests and read
// units, over logs of single-event appends (a log entry per position, the
// most entries there can be) and of appends of up to 98 events, about 8,192
// positions each (streams "Other-" and a UUID, type "OrderPlaced"), where the
// filter keeps one event in a thousand. Events the filter does
// not keep are never fetched: BatchGetItem asks for the matches only (and
// the meta items of their streams). The
// figures (go test -v) are in docs/dynamodb.md.
func TestScanCost(t *testing.T) {
	var m meter
	client := newClient(t, nil, m.install)
	for _, tc := range []struct {
		name    string
		perItem int // events per log entry
	}{
		{"single-event appends", 1},
		{"98-event appends", 98},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, client, dynamodb.Options{})
			const positions = 8192
			// The log entries of appends to other streams, written as the
			// driver writes them (the scan never reads their events), with
			// an event kept by the filter every 1,000 positions.
			var reqs []types.WriteRequest
			flush := func() {
				for len(reqs) > 0 {
					out, err := client.BatchWriteItem(t.Context(), &awsdynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{d.Table(): reqs}})
					require.NoError(t, err)
					reqs = out.UnprocessedItems[d.Table()]
				}
			}
			matches := 0
			start := uint64(1) // the next position
			for start <= positions {
				// Entries end before each thousand, which is an entry of
				// one event the filter keeps.
				stream := "Other-" + uuid.NewString()
				evs := binaryEvents(min(tc.perItem, int(1000-start%1000)), 80)
				for i := range evs {
					evs[i].Type = "OrderPlaced"
				}
				if start%1000 == 0 {
					stream, evs = "Mine-"+uuid.NewString(), evs[:1]
					reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: dynamodb.EventItem(stream, 1, start, evs[0], driver.Now())}})
					matches++
				}
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: dynamodb.LogItem(d, start, stream, 1, evs)}})
				if len(reqs) >= 20 {
					flush()
				}
				start += uint64(len(evs))
			}
			flush()
			written := start - 1
			m.reset()
			q := driver.AllQuery{Limit: 100, Filter: driver.Filter{Categories: []string{"Mine"}}}
			var got, pages int
			for {
				p, err := d.ReadAllScan(t.Context(), q)
				require.NoError(t, err)
				pages++
				got += len(p.Events)
				if p.End {
					break
				}
				q.After = p.Scanned
			}
			qu, bu := m.take("Query"), m.take("BatchGetItem")
			require.Equal(t, matches, got)
			// Each match is of a stream of its own: its meta item is read
			// with it (see fetchEvents).
			assert.Equal(t, 2*matches, bu.keys, "BatchGetItem asks for the events the filter keeps and the meta items of their streams, and only those")
			t.Logf("%d positions in %d pages: Query %d requests, %d entries, %.1f read units (%.1f per 1,000 positions); BatchGetItem %d requests, %d events, %.1f read units",
				written, pages, qu.requests, qu.items, qu.units, qu.units*1000/float64(written), bu.requests, bu.keys, bu.units)
		})
	}
}
