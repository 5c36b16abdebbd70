package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pollingDriver is the memory driver without its Watcher capability, so the
// subscription engine must fall back to polling.
type pollingDriver struct{ driver.Driver }

func TestSubscribePollsWithBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := eventstore.New(pollingDriver{memory.New()}, eventstore.Options{})
		defer s.Close()
		ctx, cancel := context.WithCancel(t.Context())
		got := make(chan eventstore.RecordedEvent, 10)
		done := make(chan error, 1)
		go func() {
			done <- s.Subscribe(ctx, eventstore.SubscribeOptions{PollInterval: time.Second}, func(_ context.Context, ev eventstore.RecordedEvent) error {
				got <- ev
				return nil
			})
		}()
		// Idle for a long time: the back-off must have reached its cap.
		time.Sleep(time.Minute)
		synctest.Wait()
		start := time.Now()
		_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
		ev := <-got
		waited := time.Since(start)
		assert.Equal(t, "Order-1", ev.StreamID)
		assert.LessOrEqual(t, waited, time.Second, "a polling subscription waits at most PollInterval")
		assert.Greater(t, waited, time.Duration(0), "without a Watcher the event is found by the poll timer")

		// Right after an event the poll restarts from the shortest step.
		start = time.Now()
		_, err = s.Append(ctx, "Order-1", eventstore.Exact(1), eventstore.NewEvent("Paid", nil))
		require.NoError(t, err)
		<-got
		assert.Less(t, time.Since(start), 100*time.Millisecond, "polling backs off again from a short step after activity")

		cancel()
		err = <-done
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestSubscribeWakesAtOnceWithWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := eventstore.New(memory.New(), eventstore.Options{})
		defer s.Close()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		got := make(chan eventstore.RecordedEvent, 1)
		go s.Subscribe(ctx, eventstore.SubscribeOptions{}, func(_ context.Context, ev eventstore.RecordedEvent) error {
			got <- ev
			return nil
		})
		time.Sleep(time.Hour)
		synctest.Wait()
		start := time.Now()
		_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
		<-got
		assert.Equal(t, time.Duration(0), time.Since(start), "a Watcher wakes the subscription without waiting for a timer")
	})
}

func TestCloseStopsSubscriptionAndSavesCheckpoint(t *testing.T) {
	d := memory.New()
	s := eventstore.New(d, eventstore.Options{})
	ctx := t.Context()
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("Paid", nil))
	require.NoError(t, err)
	handled := make(chan struct{}, 2)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, eventstore.SubscribeOptions{Name: "projector"}, func(context.Context, eventstore.RecordedEvent) error {
			handled <- struct{}{}
			return nil
		})
	}()
	for range 2 {
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			t.Fatal("events not delivered")
		}
	}
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, eventstore.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the subscription")
	}
	pos, ok, err := d.LoadCheckpoint(ctx, "projector")
	require.NoError(t, err)
	require.True(t, ok, "the checkpoint is saved before the driver closes")
	assert.Equal(t, driver.Position{Commit: 2}, pos)
	assert.NoError(t, s.Close(), "a second Close returns nil")
}

func TestSubscribeHandlerErrorKeepsCheckpointBeforeEvent(t *testing.T) {
	d := memory.New()
	s := eventstore.New(d, eventstore.Options{})
	defer s.Close()
	ctx := t.Context()
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("Paid", nil))
	require.NoError(t, err)
	boom := errors.New("boom")
	err = s.Subscribe(ctx, eventstore.SubscribeOptions{Name: "p"}, func(_ context.Context, ev eventstore.RecordedEvent) error {
		if ev.Version == 2 {
			return boom
		}
		return nil
	})
	var he *eventstore.HandlerError
	require.ErrorAs(t, err, &he)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, uint64(2), he.Event.Version)
	pos, ok, err := d.LoadCheckpoint(ctx, "p")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, driver.Position{Commit: 1}, pos, "the checkpoint stays on the last handled event")
}

// forwardsOnly is the memory driver without backwards reads of the log, like
// a driver that declares read-all-backwards unsupported.
type forwardsOnly struct{ *memory.Driver }

func (d forwardsOnly) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	if q.Backwards {
		return nil, eventstore.ErrNotSupported
	}
	return d.Driver.ReadAll(ctx, q)
}

func TestSubscribeFromEndWithoutBackwardsReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := eventstore.New(forwardsOnly{memory.New()}, eventstore.Options{})
		defer s.Close()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// More than one page of the log to skip.
		for i := range 11 {
			evs := make([]eventstore.Event, 100)
			for j := range evs {
				evs[j] = eventstore.NewEvent("Old", nil)
			}
			_, err := s.Append(ctx, "Order-1", eventstore.Exact(uint64(i*100)), evs...)
			require.NoError(t, err)
		}
		got := make(chan eventstore.RecordedEvent, 1)
		done := make(chan error, 1)
		go func() {
			done <- s.Subscribe(ctx, eventstore.SubscribeOptions{FromEnd: true}, func(_ context.Context, ev eventstore.RecordedEvent) error {
				got <- ev
				return nil
			})
		}()
		synctest.Wait() // the subscription has found the end and waits for events
		res, err := s.Append(ctx, "Order-2", eventstore.NoStream, eventstore.NewEvent("New", nil))
		require.NoError(t, err)
		ev := <-got
		assert.Equal(t, res.Position, ev.Position, "FromEnd delivers only events appended after it started")
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
}

// slowAppendDriver is the memory driver whose appends wait for a gate, so a
// test can keep an append in flight.
type slowAppendDriver struct {
	*memory.Driver
	entered chan struct{}
	gate    chan struct{}
}

func (d slowAppendDriver) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	d.entered <- struct{}{}
	<-d.gate
	return d.Driver.Append(ctx, req)
}

func TestSubscriptionStopsWhileAnAppendIsInFlight(t *testing.T) {
	d := slowAppendDriver{memory.New(), make(chan struct{}, 1), make(chan struct{})}
	s := eventstore.New(d, eventstore.Options{})
	defer s.Close()
	appended := make(chan error, 1)
	go func() {
		_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
		appended <- err
	}()
	<-d.entered
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, eventstore.SubscribeOptions{Name: "p"}, func(context.Context, eventstore.RecordedEvent) error { return nil })
	}()
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("a subscription could not stop while another call was in flight")
	}
	v, err := s.StreamVersion(t.Context(), "Order-1")
	require.NoError(t, err, "other calls go on while an append is in flight")
	assert.Equal(t, uint64(0), v)
	close(d.gate)
	require.NoError(t, <-appended)
}

// A durable subscription that starts at the end of the log saves where it
// started, so events appended while it is stopped are delivered when it
// restarts, even when it handled nothing before it stopped.
func TestSubscribeFromEndDurableKeepsItsStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		older int // events in the log before the subscription starts
	}{
		{"empty log", 0},
		{"log with events", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := eventstore.New(memory.New(), eventstore.Options{})
				defer s.Close()
				for range tc.older {
					_, err := s.Append(t.Context(), "Order-1", eventstore.Any, eventstore.NewEvent("Old", nil))
					require.NoError(t, err)
				}
				opts := eventstore.SubscribeOptions{Name: "p", FromEnd: true}
				got := make(chan eventstore.RecordedEvent, 10)
				handler := func(_ context.Context, ev eventstore.RecordedEvent) error {
					got <- ev
					return nil
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- s.Subscribe(ctx, opts, handler) }()
				synctest.Wait() // it has found the end and waits for events
				cancel()
				require.ErrorIs(t, <-done, context.Canceled)

				// Appended while the subscription is stopped.
				res, err := s.Append(t.Context(), "Order-2", eventstore.NoStream, eventstore.NewEvent("New", nil))
				require.NoError(t, err)

				ctx, cancel = context.WithCancel(t.Context())
				defer cancel()
				go func() { done <- s.Subscribe(ctx, opts, handler) }()
				synctest.Wait()
				select {
				case ev := <-got:
					assert.Equal(t, res.Position, ev.Position, "the restart delivers what was appended while it was stopped")
				default:
					t.Fatal("the event appended while the subscription was stopped was skipped")
				}
				cancel()
				require.ErrorIs(t, <-done, context.Canceled)
			})
		})
	}
}

// A handler that honours its context returns the context's error when Close
// stops the subscription: that is the store closing, not a handler failure.
func TestCloseWhileHandlerWaitsOnItsContext(t *testing.T) {
	s := eventstore.New(memory.New(), eventstore.Options{})
	_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	entered := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(t.Context(), eventstore.SubscribeOptions{}, func(ctx context.Context, _ eventstore.RecordedEvent) error {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("event not delivered")
	}
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, eventstore.ErrClosed)
		var he *eventstore.HandlerError
		assert.False(t, errors.As(err, &he), "not a handler failure: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the subscription")
	}
}

// closingWatcher is the memory driver whose Watch channel is closed, as a
// driver might do when it loses its notification connection.
type closingWatcher struct {
	*memory.Driver
	reads    int
	spinning chan struct{}
}

func (d *closingWatcher) Watch(context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{})
	close(ch)
	return ch, nil
}

func (d *closingWatcher) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	if d.reads++; d.reads == 1000 {
		close(d.spinning)
	}
	return d.Driver.ReadAll(ctx, q)
}

// A closed wake-up channel means no more signals: the subscription polls
// instead of reading the log again and again.
func TestSubscribeWithClosedWakeChannelPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &closingWatcher{Driver: memory.New(), spinning: make(chan struct{})}
		s := eventstore.New(d, eventstore.Options{})
		defer s.Close()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- s.Subscribe(ctx, eventstore.SubscribeOptions{}, func(context.Context, eventstore.RecordedEvent) error { return nil })
		}()
		select {
		case <-d.spinning:
			t.Error("the subscription reads the log in a loop without waiting")
		case <-time.After(10 * time.Second):
		}
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
}
