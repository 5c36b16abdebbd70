package kurrentdb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// patience bounds every wait; only a failing test waits that long.
const patience = 30 * time.Second

// handled runs a subscription in the background and collects its events.
type handled struct {
	events chan eventstore.RecordedEvent
	done   chan struct{} // closed when Subscribe has returned
	err    error         // what it returned; read after done
	cancel context.CancelFunc
}

func subscribeStore(t testing.TB, s *eventstore.Store, opts eventstore.SubscribeOptions) *handled {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	h := &handled{events: make(chan eventstore.RecordedEvent, 100), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(h.done)
		h.err = s.Subscribe(ctx, opts, func(_ context.Context, ev eventstore.RecordedEvent) error {
			h.events <- ev
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(patience):
			t.Errorf("Subscribe did not return")
		}
	})
	return h
}

// next returns the next handled event.
func (h *handled) next(t testing.TB) eventstore.RecordedEvent {
	t.Helper()
	select {
	case ev := <-h.events:
		return ev
	case <-h.done:
		t.Fatalf("the subscription ended: %v", h.err)
	case <-time.After(patience):
		t.Fatalf("no event within %s", patience)
	}
	return eventstore.RecordedEvent{}
}

// none checks no event is waiting.
func (h *handled) none(t testing.TB) {
	t.Helper()
	select {
	case ev := <-h.events:
		t.Errorf("unexpected event %q version %d", ev.StreamID, ev.Version)
	default:
	}
}

// appendRetrying appends, retrying for up to patience while the client
// reconnects after a restart of the server (a call may fail at once while
// the client gives up on the old connection, so tries are spaced out).
func appendRetrying(t testing.TB, s *eventstore.Store, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.Event) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err = s.Append(t.Context(), stream, exp, evs...); err == nil {
			return
		}
	}
	t.Fatalf("append to %q: %v", stream, err)
}

// waitCheckpoint waits until the checkpoint of a subscription is at pos.
func waitCheckpoint(t testing.TB, url, name string, pos eventstore.Position) {
	t.Helper()
	c := nativeClient(t, url)
	want := `"` + pos.String() + `"`
	require.Eventually(t, func() bool {
		rs, err := c.ReadStream(t.Context(), kurrentdb.CheckpointStream("", name), kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
		if err != nil {
			return false
		}
		defer rs.Close()
		ev, err := rs.Recv()
		return err == nil && strings.Contains(string(ev.Event.Data), want)
	}, patience, 5*time.Millisecond, "checkpoint %s of %q", pos, name)
}

// A live subscription waits on the driver's native subscription (the poll
// is an hour away). The server restarts: the driver subscribes again and
// signals once, so the events appended after the restart are delivered,
// none lost and none twice.
func TestWatchResubscribesAfterRestart(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	appendRetrying(t, s, "Order-1", eventstore.NoStream, newEvents(3)...)
	h := subscribeStore(t, s, eventstore.SubscribeOptions{Name: "projection", PollInterval: time.Hour})
	var last eventstore.RecordedEvent
	for v := uint64(1); v <= 3; v++ {
		last = h.next(t)
		assert.Equal(t, v, last.Version)
	}
	waitCheckpoint(t, srv.URL(), "projection", last.Position)

	srv.Stop()
	require.NoError(t, srv.Restart())
	appendRetrying(t, s, "Order-1", eventstore.Exact(3), newEvents(2)...)
	for v := uint64(4); v <= 5; v++ {
		assert.Equal(t, v, h.next(t).Version, "after the restart")
	}
	appendRetrying(t, s, "Order-1", eventstore.Exact(5), newEvents(1)...)
	assert.Equal(t, uint64(6), h.next(t).Version, "live again")
	h.none(t)
}

// A subscription that reads while the server is away does not give up: it
// retries (ErrTransient), and the same Subscribe call delivers the events
// appended after the restart, none lost and none twice. Started again with
// the same name afterwards, it resumes after its checkpoint.
func TestSubscriptionResumesAfterOutage(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	appendRetrying(t, s, "Order-1", eventstore.NoStream, newEvents(3)...)
	opts := eventstore.SubscribeOptions{Name: "projection", PollInterval: 10 * time.Millisecond, MaxRetryWait: 200 * time.Millisecond}
	h := subscribeStore(t, s, opts)
	for v := uint64(1); v <= 3; v++ {
		last := h.next(t)
		assert.Equal(t, v, last.Version)
		if v == 3 {
			waitCheckpoint(t, srv.URL(), "projection", last.Position)
		}
	}
	srv.Stop()
	time.Sleep(time.Second) // several tries fail meanwhile (MaxRetryWait is 200 ms)
	select {
	case <-h.done:
		t.Fatalf("the subscription gave up while the server was away: %v", h.err)
	default:
	}
	require.NoError(t, srv.Restart())
	appendRetrying(t, s, "Order-1", eventstore.Exact(3), newEvents(2)...)
	for v := uint64(4); v <= 5; v++ {
		assert.Equal(t, v, h.next(t).Version, "the same subscription, after the restart")
	}
	h.none(t)
	h.cancel()
	<-h.done
	appendRetrying(t, s, "Order-1", eventstore.Exact(5), newEvents(1)...)
	again := subscribeStore(t, s, opts)
	assert.Equal(t, uint64(6), again.next(t).Version, "resumed after the checkpoint")
	again.none(t)
}

// The client closes itself for good when it fails to find the server; a
// driver that built its client builds a new one, a driver given a client
// cannot.
func TestClientRebuiltAfterLongOutage(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	owned := newStore(t, srv.URL(), kurrentdb.Options{})
	// Not closed at the end: it has stopped on its own, and calls may be
	// stuck inside it (a client bug, see client.go).
	cfg, err := kdb.ParseConnectionString(srv.URL())
	require.NoError(t, err)
	cfg.Logger = kdb.NoopLogging()
	given, err := kdb.NewClient(cfg)
	require.NoError(t, err)
	d, err := kurrentdb.New(given, kurrentdb.Options{})
	require.NoError(t, err)
	borrowed := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { borrowed.Close() })
	for _, s := range []*eventstore.Store{owned, borrowed} {
		appendRetrying(t, s, "Order-1", eventstore.Any, newEvents(1)...)
	}
	var before *kdb.Client
	require.True(t, owned.As(&before))

	srv.Stop()
	for _, s := range []*eventstore.Store{owned, borrowed} {
		for range 3 { // Unavailable, then a failed discovery closes the client
			_, err := s.StreamVersion(t.Context(), "Order-1")
			require.Error(t, err)
		}
	}
	require.NoError(t, srv.Restart())

	v, err := owned.StreamVersion(t.Context(), "Order-1")
	require.NoError(t, err, "a new client")
	assert.Equal(t, uint64(2), v)
	var after *kdb.Client
	require.True(t, owned.As(&after))
	assert.NotSame(t, before, after)

	_, err = borrowed.StreamVersion(t.Context(), "Order-1")
	var native *kdb.Error
	require.ErrorAs(t, err, &native)
	assert.Equal(t, kdb.ErrorCodeConnectionClosed, native.Code(), "the application's client is not replaced")
}

// The client (v1.4.1) serves calls one at a time while it looks for the
// server, and when it gives up, the calls that were waiting wait forever.
// The driver's calls return anyway, and work again once the server is back.
func TestConcurrentCallsDuringOutageReturn(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	appendRetrying(t, s, "Order-1", eventstore.NoStream, newEvents(1)...)
	srv.Stop()
	const callers = 6
	done := make(chan error, callers)
	for i := range callers {
		go func() {
			var err error
			for range 3 {
				if i%2 == 0 {
					_, err = s.Append(context.Background(), "Order-1", eventstore.Exact(1), newEvents(1)...)
				} else {
					_, err = s.StreamVersion(context.Background(), "Order-1")
				}
			}
			done <- err
		}()
	}
	for range callers {
		select {
		case err := <-done:
			assert.Error(t, err, "the server is down")
		case <-time.After(patience):
			t.Fatalf("a call during the outage did not return within %s", patience)
		}
	}
	require.NoError(t, srv.Restart())
	appendRetrying(t, s, "Order-1", eventstore.Exact(1), newEvents(1)...)
}
