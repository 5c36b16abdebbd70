package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noPoll is a poll interval no test waits for: a subscription that receives
// a live event under it was woken by a notification.
const noPoll = time.Hour

func TestWatchWakesSubscriptions(t *testing.T) {
	pool := newPool(t)
	s, _ := newStore(t, pool)
	sub := subscribe(t, s, eventstore.SubscribeOptions{PollInterval: noPoll})
	for i := range 3 {
		_, err := s.Append(t.Context(), fmt.Sprintf("Live-%d", i), eventstore.NoStream, eventstore.NewEvent("Live", nil))
		require.NoError(t, err)
		got := receive(t, sub, 1, "a live event")
		assert.Equal(t, fmt.Sprintf("Live-%d", i), got[0].StreamID)
	}
}

// An unrelated write transaction holds the visibility fence back. The
// listener notices when it ends and wakes the watchers, whose next read
// returns the event appended meanwhile. With ReadWait negative, reads never
// wait for the fence themselves, so only the listener's wake-up can deliver
// the event. Both an append through this driver and one through another
// driver (another process) are covered.
func TestWatchWakesWhenTheFenceMoves(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	d := newDriver(t, pool, postgres.Options{Schema: schema, ReadWait: -1})
	other := newDriver(t, pool, postgres.Options{Schema: schema})
	for _, tc := range []struct {
		name     string
		appender *postgres.Driver
	}{{"SameDriver", d}, {"OtherDriver", other}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			wake, err := d.Watch(ctx)
			require.NoError(t, err)
			var last eventstore.Position
			if evs := readAllAfter(t, d, eventstore.Position{}); len(evs) > 0 {
				last = evs[len(evs)-1].Position
			}
			unrelated, _ := beginHolder(t, pool)
			var xid string
			require.NoError(t, unrelated.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid))
			s := eventstore.New(tc.appender, eventstore.Options{})
			_, err = s.Append(ctx, "Blocked-"+tc.name, eventstore.NoStream, eventstore.NewEvent("Blocked", nil))
			require.NoError(t, err)
			// Whatever woke the watcher so far, a read now finds nothing:
			// the event is held back.
			for drained := false; !drained; {
				select {
				case <-wake:
				default:
					drained = true
				}
			}
			require.Empty(t, readAllAfter(t, d, last), "the event is held back while an older transaction is open")
			require.NoError(t, unrelated.Commit(ctx))
			// Other tests' transactions on the same cluster may hold the
			// fence a little longer: a wake-up must come each time it moves,
			// until the event is readable.
			deadline := time.Now().Add(30 * time.Second)
			var got []eventstore.RecordedEvent
			for len(got) == 0 {
				waitFor(t, wake, time.Until(deadline), "a wake-up once the older transactions ended")
				got = readAllAfter(t, d, last)
			}
			require.Len(t, got, 1)
			assert.Equal(t, "Blocked-"+tc.name, got[0].StreamID)
		})
	}
}

// readAllAfter reads the global log after pos straight from the driver.
func readAllAfter(t testing.TB, d *postgres.Driver, pos eventstore.Position) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := d.ReadAll(t.Context(), eventstore.AllQuery{After: pos, Limit: 1000})
	require.NoError(t, err)
	return evs
}

// The listening connection is killed (pg_terminate_backend) between appends.
// The listener reconnects, the subscription goes on, and a durable
// subscription restarted afterwards neither loses nor repeats an event.
func TestWatchSurvivesListenerKill(t *testing.T) {
	pool := newPool(t)
	s, d := newStore(t, pool)
	ctx := t.Context()
	opts := eventstore.SubscribeOptions{Name: "live", PollInterval: noPoll}
	sub := subscribe(t, s, opts)
	appendOne := func(stream string) {
		t.Helper()
		_, err := s.Append(ctx, stream, eventstore.NoStream, eventstore.NewEvent("Live", nil))
		require.NoError(t, err)
	}
	appendOne("Before-1")
	got := receive(t, sub, 1, "before the kill")

	for round := range 3 {
		pid := postgres.ListenerPID(d)
		require.NotZero(t, pid)
		var killed bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&killed))
		require.True(t, killed)
		// Appended while the listener is down or reconnecting: the
		// reconnected listener wakes the subscription.
		appendOne(fmt.Sprintf("During-%d", round))
		require.Eventually(t, func() bool {
			p := postgres.ListenerPID(d)
			return p != 0 && p != pid
		}, 30*time.Second, 10*time.Millisecond, "the listener reconnects")
		got = append(got, receive(t, sub, 1, "appended during the outage")...)
		appendOne(fmt.Sprintf("After-%d", round))
		got = append(got, receive(t, sub, 1, "appended after the reconnect")...)
	}
	require.NoError(t, sub.stop())

	appendOne("WhileStopped-1")
	sub2 := subscribe(t, s, opts)
	got = append(got, receive(t, sub2, 1, "after the restart")...)
	require.NoError(t, sub2.stop())
	select {
	case ev := <-sub2.events:
		t.Fatalf("delivered twice: %s", ev.StreamID)
	default:
	}
	var all []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		all = append(all, ev)
	}
	assert.Equal(t, ids(all), ids(got), "every event once, in order")
}

// A short-lived process (a CLI, a job) appends and closes at once: its
// queued notification is still sent, so subscribers elsewhere wake without
// waiting for their poll.
func TestCloseSendsTheQueuedNotification(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	d := newDriver(t, pool, postgres.Options{Schema: schema})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	sub := subscribe(t, s, eventstore.SubscribeOptions{PollInterval: noPoll})
	for i := range 3 {
		writer := eventstore.New(newDriver(t, pool, postgres.Options{Schema: schema}), eventstore.Options{})
		_, err := writer.Append(t.Context(), fmt.Sprintf("Job-%d", i), eventstore.NoStream, eventstore.NewEvent("Ran", nil))
		require.NoError(t, err)
		require.NoError(t, writer.Close())
		got := receive(t, sub, 1, "the event of a driver that closed right after appending")
		assert.Equal(t, fmt.Sprintf("Job-%d", i), got[0].StreamID)
	}
}
