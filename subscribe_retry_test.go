package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/errkind"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flakyDriver is the memory driver whose reads and checkpoint calls fail on
// the calls listed, numbered from 1 per method, with err.
type flakyDriver struct {
	*memory.Driver
	err error

	mu                   sync.Mutex
	reads, saves, loads  int
	failReads, failSaves map[int]bool
	failLoads            map[int]bool
}

func (d *flakyDriver) fail(n *int, which map[int]bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	*n++
	if which[*n] {
		return d.err
	}
	return nil
}

func (d *flakyDriver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	if err := d.fail(&d.reads, d.failReads); err != nil {
		return nil, err
	}
	return d.Driver.ReadAll(ctx, q)
}

func (d *flakyDriver) SaveCheckpoint(ctx context.Context, name string, pos driver.Position) error {
	if err := d.fail(&d.saves, d.failSaves); err != nil {
		return err
	}
	return d.Driver.SaveCheckpoint(ctx, name, pos)
}

func (d *flakyDriver) LoadCheckpoint(ctx context.Context, name string) (driver.Position, bool, error) {
	if err := d.fail(&d.loads, d.failLoads); err != nil {
		return driver.Position{}, false, err
	}
	return d.Driver.LoadCheckpoint(ctx, name)
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSubscribeRetriesTransientFailures fails the checkpoint load, reads
// and a checkpoint save transiently: one Subscribe call delivers every
// event once, in order, logs each retry, and saves its checkpoint.
func TestSubscribeRetriesTransientFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &flakyDriver{
			Driver:    memory.New(),
			err:       errkind.Transient(errors.New("connection reset by peer")),
			failLoads: map[int]bool{1: true, 2: true},
			failReads: map[int]bool{1: true, 3: true, 4: true, 5: true, 9: true},
			failSaves: map[int]bool{2: true},
		}
		var logs syncBuffer
		s := eventstore.New(d, eventstore.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		defer s.Close()
		ctx, cancel := context.WithCancel(t.Context())
		const n = 250
		for i := range n {
			_, err := s.Append(ctx, fmt.Sprintf("Order-%d", i%7), eventstore.Any, eventstore.NewEvent("Placed", nil))
			require.NoError(t, err)
		}
		var got []eventstore.RecordedEvent
		err := s.Subscribe(ctx, eventstore.SubscribeOptions{Name: "projector", BatchSize: 40}, func(_ context.Context, ev eventstore.RecordedEvent) error {
			got = append(got, ev)
			if len(got) == n {
				cancel()
			}
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Len(t, got, n, "every event once")
		for i := 1; i < n; i++ {
			require.True(t, got[i-1].Position.Less(got[i].Position), "in log order")
		}
		pos, ok, err := d.Driver.LoadCheckpoint(t.Context(), "projector")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, driver.Position(got[n-1].Position), pos)
		out := logs.String()
		for _, op := range []string{`operation=start`, `operation=read`, `operation="save checkpoint"`} {
			assert.Contains(t, out, op, "the retries are logged")
		}
		assert.Equal(t, 2+5+1, strings.Count(out, "subscription retrying after a transient failure"), "one line per retry:\n%s", out)
	})
}

// TestSubscribeStopsOnPermanentFailure checks that an error not matching
// ErrTransient ends the subscription at once, without a retry.
func TestSubscribeStopsOnPermanentFailure(t *testing.T) {
	boom := errors.New("boom")
	d := &flakyDriver{Driver: memory.New(), err: boom, failReads: map[int]bool{1: true}}
	var logs syncBuffer
	s := eventstore.New(d, eventstore.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer s.Close()
	err := s.Subscribe(t.Context(), eventstore.SubscribeOptions{}, func(context.Context, eventstore.RecordedEvent) error { return nil })
	require.ErrorIs(t, err, boom)
	assert.NotContains(t, logs.String(), "retrying")
}

// TestSubscribeRetryStopsWithContext checks that a subscription waiting to
// retry stops when its context ends, and when the Store closes.
func TestSubscribeRetryStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		always := map[int]bool{}
		for i := range 1000 {
			always[i+1] = true
		}
		d := &flakyDriver{Driver: memory.New(), err: errkind.Transient(errors.New("unavailable")), failReads: always}
		s := eventstore.New(d, eventstore.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- s.Subscribe(ctx, eventstore.SubscribeOptions{}, func(context.Context, eventstore.RecordedEvent) error { return nil })
		}()
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)

		go func() {
			done <- s.Subscribe(t.Context(), eventstore.SubscribeOptions{}, func(context.Context, eventstore.RecordedEvent) error { return nil })
		}()
		synctest.Wait()
		require.NoError(t, s.Close())
		require.ErrorIs(t, <-done, eventstore.ErrClosed)
	})
}
