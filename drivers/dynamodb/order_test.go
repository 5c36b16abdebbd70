package dynamodb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readAllAfter reads the whole global log after pos.
func readAllAfter(t testing.TB, s *eventstore.Store, pos eventstore.Position) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{After: pos}) {
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

// TestNoSkipWithAppendInFlight provokes the interleaving that breaks naive
// global orders: an append has taken its positions (its log entry is
// visible) but its events are not visible yet — as while DynamoDB applies a
// committed transaction item by item — and a later append commits behind it.
// A reader that has seen everything before must not get the later append
// first (it would then skip the earlier one): it stops before the gap, and
// gets both, in order, once the events appear.
func TestNoSkipWithAppendInFlight(t *testing.T) {
	client := newClient(t, nil)
	store, d := newStore(t, client, dynamodb.Options{})
	ctx := t.Context()

	first, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
	require.NoError(t, err)
	seen := readAllAfter(t, store, eventstore.Position{})
	require.Len(t, seen, 1)
	last := seen[0].Position

	// The append "in flight": its log entry at positions 2 and 3, written
	// the way the driver writes it, without its two event items.
	inFlight := []eventstore.Event{eventstore.NewEvent("Held", []byte(`{"n":1}`)), eventstore.NewEvent("Held", []byte(`{"n":2}`))}
	at := driver.Now()
	putRaw(t, client, d.Table(), dynamodb.LogItem(d, 2, "Order-3", 1, inFlight))

	// A later append commits behind it, at position 4.
	later, err := store.Append(ctx, "Order-2", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
	require.NoError(t, err)
	require.Equal(t, eventstore.Position{Commit: 4}, later.Position, "the later append takes the positions after the held one")

	// A subscriber that is live after the first event.
	received := make(chan eventstore.RecordedEvent, 10)
	subCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		store.Subscribe(subCtx, eventstore.SubscribeOptions{After: first.Position, PollInterval: 50 * time.Millisecond},
			func(_ context.Context, ev eventstore.RecordedEvent) error {
				received <- ev
				return nil
			})
	})
	defer func() { cancel(); wg.Wait() }()

	got := readAllAfter(t, store, last)
	assert.Empty(t, got, "reading after %s while position 2 is taken but not visible: want nothing (stop at the gap), got %d events", last, len(got))
	// A read filtered to the held append's category stops there too. (A
	// filter that excludes it rightly reads past it: its events will never
	// be in that reader's view.)
	for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Order"}}}) {
		require.NoError(t, err)
		assert.NotEqual(t, later.Position, ev.Position, "a filtered read must stop at the gap too")
	}
	select {
	case ev := <-received:
		t.Fatalf("the subscription delivered %s version %d at %s before the held append's events were visible", ev.StreamID, ev.Version, ev.Position)
	default:
	}
	// Backwards from the head, the top append is visible but the held one
	// below it is not: the read fails rather than leave a hole.
	for _, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{Backwards: true}) {
		require.Error(t, err, "reading backwards across the held append")
		assert.Contains(t, err.Error(), "not visible")
		break
	}

	// The held transaction's events become visible.
	for i, e := range inFlight {
		putRaw(t, client, d.Table(), dynamodb.EventItem("Order-3", uint64(i+1), uint64(i+2), e, at))
	}
	got = readAllAfter(t, store, last)
	require.Len(t, got, 3, "after the held events appear")
	assert.Equal(t, []string{"Order-3/1@2/0", "Order-3/2@3/0", "Order-2/1@4/0"}, describe(got))
	for i := range 3 {
		select {
		case ev := <-received:
			assert.Equal(t, got[i].Position, ev.Position, "subscription delivery %d", i)
		case <-time.After(30 * time.Second):
			t.Fatalf("the subscription delivered %d of 3 events", i)
		}
	}
}

// describe lists events as "stream/version@position".
func describe(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprintf("%s/%d@%s", ev.StreamID, ev.Version, ev.Position)
	}
	return out
}

func putRaw(t testing.TB, client *awsdynamodb.Client, table string, item map[string]types.AttributeValue) {
	t.Helper()
	_, err := client.PutItem(t.Context(), &awsdynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	require.NoError(t, err)
}

// TestWritersInSeveralProcesses runs drivers on one table as separate
// processes would: they race for the head of the log, and the positions
// still come out dense, unique and with each append contiguous.
func TestWritersInSeveralProcesses(t *testing.T) {
	client := newClient(t, nil)
	var opts dynamodb.Options
	dynamodb.SetLogBucketSize(&opts, 100) // cross log partitions too
	first := newDriver(t, client, opts)
	const writers, appends = 4, 15
	stores := make([]*eventstore.Store, writers)
	for i := range stores {
		d, err := dynamodb.New(t.Context(), client, first.Table(), dynamodb.Options{})
		require.NoError(t, err)
		stores[i] = eventstore.New(d, eventstore.Options{})
		t.Cleanup(func() { stores[i].Close() })
	}
	gate := make(chan struct{})
	var wg sync.WaitGroup
	ids := make([][]uuid.UUID, writers)
	for w := range writers {
		wg.Go(func() {
			<-gate
			stream := fmt.Sprintf("Writer%d-%s", w, uuid.NewString()[:8])
			for i := range appends {
				evs := make([]eventstore.Event, 1+(i+w)%5)
				for j := range evs {
					evs[j] = eventstore.NewEvent("Written", []byte(`{}`))
				}
				res, err := stores[w].Append(t.Context(), stream, eventstore.Any, evs...)
				if !assert.NoError(t, err) {
					return
				}
				ids[w] = append(ids[w], res.EventIDs...)
			}
		})
	}
	close(gate)
	wg.Wait()

	all := readAllAfter(t, stores[0], eventstore.Position{})
	total := 0
	for _, l := range ids {
		total += len(l)
	}
	require.Len(t, all, total)
	for i, ev := range all {
		require.Equal(t, eventstore.Position{Commit: uint64(i + 1)}, ev.Position, "positions are dense and in log order")
	}
	// Each writer's events appear in the order it appended them.
	next := make(map[string]int)
	for _, ev := range all {
		w := int(ev.StreamID[len("Writer")] - '0')
		require.Equal(t, ids[w][next[ev.StreamID]], ev.ID, "writer %d's events in order", w)
		next[ev.StreamID]++
	}
}

// TestHeadFoundAcrossManyPartitions fills many log partitions, then opens a
// driver that knows nothing about them (a new process): its first append
// lands right after the last event.
func TestHeadFoundAcrossManyPartitions(t *testing.T) {
	client := newClient(t, nil)
	var opts dynamodb.Options
	dynamodb.SetLogBucketSize(&opts, 100)
	store, d := newStore(t, client, opts)
	const batches, size = 23, 98 // 2,254 events over 23 partitions
	for i := range batches {
		evs := make([]eventstore.Event, size)
		for j := range evs {
			evs[j] = eventstore.NewEvent("Filled", nil)
		}
		_, err := store.Append(t.Context(), fmt.Sprintf("Fill-%d", i), eventstore.NoStream, evs...)
		require.NoError(t, err)
	}
	cold, err := dynamodb.New(t.Context(), client, d.Table(), dynamodb.Options{})
	require.NoError(t, err)
	s2 := eventstore.New(cold, eventstore.Options{})
	defer s2.Close()
	res, err := s2.Append(t.Context(), "Late-1", eventstore.NoStream, eventstore.NewEvent("Late", nil))
	require.NoError(t, err)
	assert.Equal(t, eventstore.Position{Commit: batches*size + 1}, res.Position)

	// Backwards from the head, and forwards across every partition.
	var back []eventstore.RecordedEvent
	for ev, err := range s2.ReadAll(t.Context(), eventstore.ReadAllOptions{Backwards: true, Limit: 150}) {
		require.NoError(t, err)
		back = append(back, ev)
	}
	require.Len(t, back, 150)
	for i, ev := range back {
		require.Equal(t, uint64(batches*size+1-i), ev.Position.Commit)
	}
	all := readAllAfter(t, s2, eventstore.Position{})
	require.Len(t, all, batches*size+1)
	for i, ev := range all {
		require.Equal(t, uint64(i+1), ev.Position.Commit)
	}
}

// TestBackwardsLeavesOutAppendsInFlight: an append whose log entry is at the
// top of the log but whose events are not visible yet is left out of
// backward reads (the log is read as it was before it), so a subscription
// from the end starts before it and gets it once it is visible.
func TestBackwardsLeavesOutAppendsInFlight(t *testing.T) {
	client := newClient(t, nil)
	store, d := newStore(t, client, dynamodb.Options{})
	ctx := t.Context()
	_, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("Paid", nil))
	require.NoError(t, err)
	held := eventstore.NewEvent("Held", nil)
	putRaw(t, client, d.Table(), dynamodb.LogItem(d, 3, "Order-2", 1, []eventstore.Event{held}))

	var back []eventstore.RecordedEvent
	for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{Backwards: true}) {
		require.NoError(t, err)
		back = append(back, ev)
	}
	assert.Equal(t, []string{"Order-1/2@2/0", "Order-1/1@1/0"}, describe(back))

	// The end of the log as a subscription FromEnd finds it (the newest
	// event, read backwards), then a forward read after it once the held
	// events are visible.
	var end eventstore.Position
	for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{Backwards: true, Limit: 1}) {
		require.NoError(t, err)
		end = ev.Position
	}
	require.Equal(t, eventstore.Position{Commit: 2}, end, "the end of the log, before the held append")
	putRaw(t, client, d.Table(), dynamodb.EventItem("Order-2", 1, 3, held, driver.Now()))
	assert.Equal(t, []string{"Order-2/1@3/0"}, describe(readAllAfter(t, store, end)))
}
