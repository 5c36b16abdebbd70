package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/errkind"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// progress records the latest Stats a Copy reported and signals each report.
type progress struct {
	mu     sync.Mutex
	last   migrate.Stats
	signal chan struct{}
}

func newProgress() *progress { return &progress{signal: make(chan struct{}, 1)} }

func (p *progress) report(st migrate.Stats) {
	p.mu.Lock()
	p.last = st
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// waitFor waits until the reported stats satisfy ok.
func (p *progress) waitFor(t *testing.T, what string, ok func(migrate.Stats) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		p.mu.Lock()
		st := p.last
		p.mu.Unlock()
		if ok(st) {
			return
		}
		select {
		case <-p.signal:
		case <-deadline:
			t.Fatalf("waiting for %s: last progress %+v", what, st)
		}
	}
}

// TestCopyFollow copies a store, then keeps copying while four writers
// append to old and new streams, until cancelled; a second follow resumes
// after events appended while nothing was copying. PostgreSQL as the source
// wakes the follow by LISTEN/NOTIFY, SQLite and memory in-process.
func TestCopyFollow(t *testing.T) {
	pairs := []struct {
		name     string
		src, dst func(testing.TB) *eventstore.Store
	}{
		{"memory-to-sqlite", nil, storetest.SQLite},
		{"postgres-to-sqlite", storetest.Postgres, storetest.SQLite},
		{"sqlite-to-postgres", storetest.SQLite, storetest.Postgres},
	}
	for _, pair := range pairs {
		t.Run(pair.name, func(t *testing.T) {
			src, ds := newSource(t, 11, 1_000, 60)
			if pair.src != nil {
				seeded := pair.src(t)
				_, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(seeded), migrate.Options{})
				require.NoError(t, err)
				src = seeded
			}
			testFollow(t, src, pair.dst(t), ds)
		})
	}
}

func testFollow(t *testing.T, src, dst *eventstore.Store, ds dataset) {
	follow := func(t *testing.T, write func(), want int) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		p := newProgress()
		done := make(chan error, 1)
		go func() {
			_, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{Follow: true, BatchSize: 50, Progress: p.report})
			done <- err
		}()
		p.waitFor(t, "catch-up", func(st migrate.Stats) bool { return st.Live })
		write()
		p.waitFor(t, "live copy", func(st migrate.Stats) bool { return st.Copied+st.Skipped == want })
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(30 * time.Second):
			t.Fatal("Copy did not return after cancel")
		}
		requireEqualStores(t, src, dst)
	}
	total := ds.events
	t.Run("live", func(t *testing.T) {
		total += 4 * 150
		follow(t, func() { appendConcurrently(t, src, ds.streams, 4, 150) }, total)
	})
	t.Run("resume", func(t *testing.T) {
		appendConcurrently(t, src, ds.streams, 2, 100)
		total += 2*100 + 50
		follow(t, func() { appendConcurrently(t, src, ds.streams, 1, 50) }, total)
	})
}

// appendConcurrently has writers goroutines append n single events each,
// to existing streams and to new streams of their own, interleaved.
func appendConcurrently(t *testing.T, s *eventstore.Store, streams []string, writers, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(n)))
			for i := range n {
				stream := streams[rng.IntN(len(streams))]
				if i%3 == 0 {
					stream = fmt.Sprintf("Live-%d-%d", w, i%7)
				}
				if _, err := s.Append(t.Context(), stream, eventstore.Any, genEvent(rng)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// TestCopyFollowStopsOnConflict: a destination write that contradicts the
// source ends a follow with the conflict, not silently.
func TestCopyFollowStopsOnConflict(t *testing.T) {
	ctx := t.Context()
	src, dst := storetest.Memory(t), storetest.Memory(t)
	p := newProgress()
	done := make(chan error, 1)
	go func() {
		_, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{Follow: true, Progress: p.report})
		done <- err
	}()
	p.waitFor(t, "catch-up", func(st migrate.Stats) bool { return st.Live })
	_, err := dst.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Foreign", []byte(`{}`)))
	require.NoError(t, err)
	_, err = src.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Created", []byte(`{}`)))
	require.NoError(t, err)
	select {
	case err := <-done:
		assert.ErrorIs(t, err, migrate.ErrConflict)
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not stop")
	}
}

// TestCopyFollowFromAfter: a follow that starts after a position and reads
// nothing in its catch-up goes on from that position, not from the start.
func TestCopyFollowFromAfter(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src, dst := storetest.Memory(t), storetest.Memory(t)
	res, err := src.Append(ctx, "Old-1", eventstore.NoStream, eventstore.NewEvent("Old", nil))
	require.NoError(t, err)
	p := newProgress()
	done := make(chan error, 1)
	go func() {
		_, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{Follow: true, After: res.Position, Progress: p.report})
		done <- err
	}()
	p.waitFor(t, "catch-up", func(st migrate.Stats) bool { return st.Live })
	_, err = src.Append(ctx, "New-1", eventstore.NoStream, eventstore.NewEvent("New", nil))
	require.NoError(t, err)
	p.waitFor(t, "the new event", func(st migrate.Stats) bool { return st.Copied == 1 })
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	v, err := dst.StreamVersion(t.Context(), "Old-1")
	require.NoError(t, err)
	assert.Zero(t, v, "the event before After was not copied")
	v, err = dst.StreamVersion(t.Context(), "New-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), v)
}

// flakyDestination is the memory driver whose imports and appends fail
// transiently on the calls listed (numbered from 1), after writing on the
// calls in written (a write that reached the destination, then the
// connection broke).
type flakyDestination struct {
	*memory.Driver
	mu      sync.Mutex
	calls   int
	fail    map[int]bool
	written map[int]bool
}

func (d *flakyDestination) try(write func() error) error {
	d.mu.Lock()
	d.calls++
	n := d.calls
	d.mu.Unlock()
	if d.fail[n] {
		if d.written[n] {
			if err := write(); err != nil {
				return err
			}
		}
		return errkind.Transient(errors.New("connection reset by peer"))
	}
	return write()
}

func (d *flakyDestination) Import(ctx context.Context, req driver.ImportRequest) error {
	return d.try(func() error { return d.Driver.Import(ctx, req) })
}

func (d *flakyDestination) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	var res driver.AppendResult
	err := d.try(func() (err error) { res, err = d.Driver.Append(ctx, req); return err })
	return res, err
}

// TestCopyFollowRetriesTransientWrites fails writes to the destination
// transiently while a follow copies live, some after they were written:
// the follow keeps going and the destination ends with every event once.
func TestCopyFollowRetriesTransientWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := eventstore.New(memory.New(), eventstore.Options{})
	defer src.Close()
	dstDriver := &flakyDestination{Driver: memory.New(), fail: map[int]bool{2: true, 3: true, 5: true}, written: map[int]bool{3: true}}
	dst := eventstore.New(dstDriver, eventstore.Options{})
	defer dst.Close()
	_, err := src.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	p := newProgress()
	done := make(chan error, 1)
	go func() {
		_, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{Follow: true, Progress: p.report})
		done <- err
	}()
	p.waitFor(t, "live", func(st migrate.Stats) bool { return st.Live })
	const n = 8
	for i := range n {
		_, err := src.Append(ctx, fmt.Sprintf("Order-%d", 2+i), eventstore.NoStream, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
		time.Sleep(5 * time.Millisecond)
	}
	p.waitFor(t, "every event copied", func(st migrate.Stats) bool { return st.Copied+st.Skipped == n+1 && st.Retries >= 3 })
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	count := 0
	for _, err := range dst.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		count++
	}
	assert.Equal(t, n+1, count, "every event once in the destination")
}
