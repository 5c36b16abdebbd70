package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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

// A stalled writer of the store (an insert into its events table, not
// committed) holds the visibility fence back. The listener notices when it
// ends and wakes the watchers, whose next read returns the event appended
// meanwhile. With ReadWait negative, reads never wait for the fence
// themselves, so only the listener's wake-up can deliver the event. Both an
// append through this driver and one through another driver (another
// process) are covered.
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
			stalled, _ := beginHolder(t, pool)
			rawEvent(t, stalled, schema, "Stalled-"+tc.name, 1)
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
			require.Empty(t, readAllAfter(t, d, last), "the event is held back while an older append is open")
			require.NoError(t, stalled.Rollback(ctx))
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
	evs, err := d.ReadAll(t.Context(), driver.AllQuery{After: driver.Position(pos), Limit: 1000})
	require.NoError(t, err)
	out := make([]eventstore.RecordedEvent, len(evs))
	for i, e := range evs {
		out[i] = eventstore.RecordedEvent{StreamID: e.StreamID, Version: e.Version, Position: eventstore.Position(e.Position), ID: e.ID,
			Type: e.Type, ContentType: eventstore.ContentType(e.ContentType), Data: e.Data, Metadata: e.Metadata, RecordedAt: e.RecordedAt}
	}
	return out
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

// statementCounter is a pgx tracer counting the statements whose text
// contains one of its markers.
type statementCounter struct {
	markers []string
	counts  []atomic.Int64
}

func newStatementCounter(markers ...string) *statementCounter {
	return &statementCounter{markers: markers, counts: make([]atomic.Int64, len(markers))}
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	for i, m := range c.markers {
		if strings.Contains(data.SQL, m) {
			c.counts[i].Add(1)
		}
	}
	return ctx
}
func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countingPool returns a pool of its own on the test server, closed when t
// ends, whose statements are counted by a statementCounter of markers.
func countingPool(t testing.TB, markers ...string) (*pgxpool.Pool, *statementCounter) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	counter := newStatementCounter(markers...)
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, counter
}

// Any role may NOTIFY the store's channel. Thousands of notifications, junk
// and valid-looking (forged transaction IDs, low, high and far in the
// future), must not turn into thousands of reads: the listener ignores what
// it cannot parse, checks the log at most once per few milliseconds, and
// wakes subscriptions only when events became readable. A real append from
// another process after the flood is still delivered live, and the
// subscription has read the log only a handful of times meanwhile.
func TestNotificationFloodIsCoalesced(t *testing.T) {
	const readMarker, checkMarker = "coalesce(top >= fence, false)", "SELECT s.fence, s.horizon"
	pool, counter := countingPool(t, readMarker, checkMarker)
	schema := randomSchema()
	d := newDriver(t, pool, postgres.Options{Schema: schema})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()

	sub := subscribe(t, s, eventstore.SubscribeOptions{PollInterval: noPoll})
	_, err := s.Append(ctx, "Before-1", eventstore.NoStream, eventstore.NewEvent("Live", nil))
	require.NoError(t, err)
	receive(t, sub, 1, "an event before the flood")

	// The flood, from another role's point of view: a plain connection.
	flooder := newPool(t)
	channel := "eventstore." + schema
	readsBefore, checksBefore := counter.counts[0].Load(), counter.counts[1].Load()
	const rounds, perRound = 40, 100
	for r := range rounds {
		// One transaction per round delivers its notifications together;
		// distinct payloads, as PostgreSQL folds duplicates in a transaction.
		_, err := flooder.Exec(ctx, `SELECT pg_notify($1, CASE i % 5
				WHEN 0 THEN 'junk ' || i
				WHEN 1 THEN i || '/forged'
				WHEN 2 THEN (9223372036854775807 - i) || '/forged'
				WHEN 3 THEN '-' || i || '/forged'
				ELSE (pg_current_xact_id()::text::bigint + i) || '/' || i END)
			FROM generate_series($2::int, $3::int) i`, channel, r*perRound, (r+1)*perRound-1)
		require.NoError(t, err)
	}
	// A real append from another process, notified after the flood: the
	// listener has handled every notification of the flood once it wakes
	// the subscription for this one.
	other := eventstore.New(newDriver(t, pool, postgres.Options{Schema: schema}), eventstore.Options{})
	_, err = other.Append(ctx, "After-1", eventstore.NoStream, eventstore.NewEvent("Live", nil))
	require.NoError(t, err)
	require.NoError(t, other.Close())
	got := receive(t, sub, 1, "the event appended after the flood")
	assert.Equal(t, "After-1", got[0].StreamID)

	reads, checks := counter.counts[0].Load()-readsBefore, counter.counts[1].Load()-checksBefore
	t.Logf("%d notifications: %d reads of the log by the subscription, %d checks by the listener", rounds*perRound, reads, checks)
	assert.LessOrEqual(t, reads, int64(5), "reads of the log caused by %d notifications", rounds*perRound)
	assert.Less(t, checks, int64(rounds*perRound/4), "the listener's checks are coalesced")
}

// A driver notifies only while some driver listens on its schema's channel
// (a listening connection holds the listeners' advisory lock): a bare
// LISTEN on the channel, which a driver's listener is not, receives the
// notification only once another driver watches. Notifications arrive in
// commit order, so a marker sent after the driver's shows whether the
// driver's went out.
func TestNotifyOnlyWhileSomeoneListens(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	appender := newDriver(t, pool, postgres.Options{Schema: schema})
	watcher := newDriver(t, pool, postgres.Options{Schema: schema})
	ctx := t.Context()
	bare, err := pool.Acquire(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		bare.Exec(context.Background(), "UNLISTEN *")
		bare.Release()
	})
	channel := "eventstore." + schema
	_, err = bare.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize())
	require.NoError(t, err)
	// first returns the payload of the next notification the bare
	// connection receives, after a marker is sent.
	first := func() string {
		_, err := pool.Exec(ctx, `SELECT pg_notify($1, 'marker')`, channel)
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		n, err := bare.Conn().WaitForNotification(wctx)
		require.NoError(t, err)
		return n.Payload
	}
	for _, tc := range []struct {
		name   string
		watch  bool
		notify bool
	}{
		{"NobodyListens", false, false},
		{"ADriverListens", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.watch {
				_, err := watcher.Watch(ctx)
				require.NoError(t, err)
			}
			sent := postgres.Notify(ctx, appender, 42)
			assert.Equal(t, tc.notify, sent, "notified")
			want := "marker"
			if tc.notify {
				want = "42/"
			}
			assert.True(t, strings.HasPrefix(first(), want), "the bare listener's first notification starts with %q", want)
		})
	}
}
