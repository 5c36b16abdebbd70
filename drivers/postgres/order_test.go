package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// subscription runs Store.Subscribe in a goroutine, sending what it handles
// on events; stop cancels it and returns Subscribe's error.
type subscription struct {
	events <-chan eventstore.RecordedEvent
	stop   func() error
}

func subscribe(t testing.TB, s *eventstore.Store, opts eventstore.SubscribeOptions) subscription {
	t.Helper()
	ch := make(chan eventstore.RecordedEvent, 10000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, opts, func(_ context.Context, ev eventstore.RecordedEvent) error {
			ch <- ev
			return nil
		})
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case <-time.After(30 * time.Second):
			buf := make([]byte, 1<<20)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			return fmt.Errorf("subscription did not stop in 30s")
		}
	}
	t.Cleanup(func() { stop() })
	return subscription{events: ch, stop: stop}
}

// receive waits for n events from sub.
func receive(t testing.TB, sub subscription, n int, what string) []eventstore.RecordedEvent {
	t.Helper()
	out := make([]eventstore.RecordedEvent, 0, n)
	deadline := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case ev := <-sub.events:
			out = append(out, ev)
		case <-deadline:
			t.Fatalf("%s: received %d of %d events in 30s", what, len(out), n)
		}
	}
	return out
}

func ids(evs []eventstore.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// No skipping, provoked: an append takes its position (transaction ID and
// sequence) and stays open, blocked on a row another transaction holds,
// while other appends commit with later transaction IDs and higher sequence
// numbers. A reader ordering by sequence alone would pass the open append's
// first event and never see it. Here the reader and a durable subscription
// (stopped and restarted in the middle) see every event exactly once, in
// position order.
func TestNoSkipWithAWriterHeldOpen(t *testing.T) {
	pool := newPool(t)
	d := newDriver(t, pool, postgres.Options{ReadWait: 20 * time.Millisecond})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	subOpts := eventstore.SubscribeOptions{Name: "projection", BatchSize: 2}

	early, err := s.Append(ctx, "Early-1", eventstore.NoStream, eventstore.NewEvent("Early", nil))
	require.NoError(t, err)
	sub := subscribe(t, s, subOpts)
	got := receive(t, sub, 1, "before the held append")

	// The held append: it writes version 1 (taking its position) and waits
	// for version 2, which the holder has inserted and not committed.
	holder, pid := beginHolder(t, pool)
	rawEvent(t, holder, d.Schema(), "Held-1", 2)
	held := appendAsync(s, "Held-1", eventstore.Any, eventstore.NewEvent("Held", nil), eventstore.NewEvent("Held", nil))
	heldPID := waitBlockedBy(t, pool, pid)
	var heldTx int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT backend_xid::text::bigint FROM pg_stat_activity WHERE pid = $1`, heldPID).Scan(&heldTx))

	// Other appends commit meanwhile, after the held one took its position.
	var later []eventstore.AppendResult
	for i := range 5 {
		res, err := s.Append(ctx, fmt.Sprintf("Later-%d", i), eventstore.NoStream, eventstore.NewEvent("Later", nil))
		require.NoError(t, err)
		later = append(later, res)
		require.Greater(t, res.Position.Commit, uint64(heldTx), "a later append has a later transaction ID")
	}

	// The reader advances from what it has seen and must not pass the held
	// append: nothing after the early event is returned while it is open.
	var seen []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{After: early.Position}) {
		require.NoError(t, err)
		seen = append(seen, ev)
	}
	assert.Empty(t, seen, "events after an open append's position are held back")
	require.NoError(t, sub.stop(), "stopping the subscription saves its checkpoint")

	// Release the held append, then restart the subscription.
	require.NoError(t, holder.Rollback(ctx))
	out := waitFor(t, held, 30*time.Second, "the held append")
	require.NoError(t, out.err)
	assert.Less(t, out.res.Position.Commit, later[0].Position.Commit, "the held append is before the later ones in the log")
	var firstHeld, lastLater int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT min(seq) FILTER (WHERE stream_id = 'Held-1'), max(seq) FILTER (WHERE stream_id LIKE 'Later-%') FROM `+
		pgx.Identifier{d.Schema()}.Sanitize()+`.events`).Scan(&firstHeld, &lastLater))
	assert.Less(t, firstHeld, lastLater, "the interleaving happened: a sequence-only reader would have skipped the held append")

	after, err := s.Append(ctx, "After-1", eventstore.NoStream, eventstore.NewEvent("After", nil))
	require.NoError(t, err)
	sub2 := subscribe(t, s, subOpts)
	got = append(got, receive(t, sub2, 2+5+1, "after the restart")...)
	require.NoError(t, sub2.stop())

	var all []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		all = append(all, ev)
	}
	require.Len(t, all, 1+2+5+1)
	assert.Equal(t, ids(all), ids(got), "the subscription delivered the log exactly once, in order")
	assert.Equal(t, "Held-1", all[1].StreamID)
	assert.Equal(t, "Held-1", all[2].StreamID)
	assert.Equal(t, after.Position, all[len(all)-1].Position)
	for i := 1; i < len(all); i++ {
		assert.True(t, all[i-1].Position.Less(all[i].Position), "positions increase")
	}
	select {
	case ev := <-sub2.events:
		t.Fatalf("delivered twice: %s %d", ev.StreamID, ev.Version)
	default:
	}
}

// Dump and restore into another cluster: the restored rows carry the old
// cluster's transaction IDs, higher than the new cluster's. Opening the store
// re-bases positions so that new appends still come after every restored
// event, and a checkpoint taken before the dump still works.
func TestRebaseAfterRestore(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	d := newDriver(t, pool, postgres.Options{Schema: schema})
	s := eventstore.New(d, eventstore.Options{})
	ctx := t.Context()
	for i := range 3 {
		_, err := s.Append(ctx, fmt.Sprintf("Old-%d", i), eventstore.NoStream, eventstore.NewEvent("Old", nil))
		require.NoError(t, err)
	}
	sub := subscribe(t, s, eventstore.SubscribeOptions{Name: "proj"})
	receive(t, sub, 3, "the old events")
	require.NoError(t, sub.stop())
	require.NoError(t, s.Close())

	// What a restore into a younger cluster looks like: every stored
	// transaction ID (and checkpoint) is far ahead of the cluster's counter.
	const ahead = 1_000_000_000_000
	q := pgx.Identifier{schema}.Sanitize()
	_, err := pool.Exec(ctx, `UPDATE `+q+`.events SET tx_id = tx_id + $1`, ahead)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE `+q+`.checkpoints SET tx_id = tx_id + $1`, ahead)
	require.NoError(t, err)

	d2, err := postgres.New(ctx, pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	s2 := eventstore.New(d2, eventstore.Options{})
	t.Cleanup(func() { s2.Close() })
	res, err := s2.Append(ctx, "New-1", eventstore.NoStream, eventstore.NewEvent("New", nil))
	require.NoError(t, err)
	assert.Greater(t, res.Position.Commit, uint64(ahead), "a new append comes after the restored events")
	sub = subscribe(t, s2, eventstore.SubscribeOptions{Name: "proj"})
	got := receive(t, sub, 1, "the new event after the old checkpoint")
	assert.Equal(t, "New-1", got[0].StreamID)
	var all []eventstore.RecordedEvent
	for ev, err := range s2.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		all = append(all, ev)
	}
	require.Len(t, all, 4)
	assert.Equal(t, "New-1", all[3].StreamID)
}
