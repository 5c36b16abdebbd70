package kurrentdb_test

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A page bounded by MaxBytes stops receiving once it is full: reading 3
// events of a 48 MiB stream allocates (client and in-process server
// together) far less than the stream, where collecting Limit events and
// trimming would allocate all of it twice.
func TestPagesStopReceivingWhenFull(t *testing.T) {
	const size, n = 1 << 20, 48
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	opts := kurrentdb.Options{MaxAppendSize: 64 << 20}
	plain := openDriver(t, srv.URL(), opts)
	opts.Namespace = "ns"
	spaced := openDriver(t, srv.URL(), opts)
	for _, d := range []*kurrentdb.Driver{plain, spaced} {
		s := eventstore.New(d, eventstore.Options{})
		t.Cleanup(func() { s.Close() })
		evs := make([]eventstore.Event, n)
		for i := range evs {
			evs[i] = eventstore.Event{Type: "Large", ContentType: eventstore.Binary, Data: make([]byte, size)}
		}
		_, err := s.Append(t.Context(), "Large-1", eventstore.NoStream, evs...)
		require.NoError(t, err)
	}
	ctx := t.Context()
	maxBytes := 2*size + size/2
	filter := driver.Filter{Categories: []string{"Large"}}
	for _, tc := range []struct {
		name string
		read func() ([]driver.RecordedEvent, error)
	}{
		{"ReadStream", func() ([]driver.RecordedEvent, error) {
			return plain.ReadStream(ctx, driver.StreamQuery{Stream: "Large-1", From: 1, Limit: n, MaxBytes: maxBytes})
		}},
		{"ReadStream backwards", func() ([]driver.RecordedEvent, error) {
			return plain.ReadStream(ctx, driver.StreamQuery{Stream: "Large-1", Limit: n, Backwards: true, MaxBytes: maxBytes})
		}},
		{"ReadAll", func() ([]driver.RecordedEvent, error) {
			return plain.ReadAll(ctx, driver.AllQuery{Limit: n, MaxBytes: maxBytes})
		}},
		{"ReadAll backwards", func() ([]driver.RecordedEvent, error) {
			return plain.ReadAll(ctx, driver.AllQuery{Limit: n, Backwards: true, MaxBytes: maxBytes})
		}},
		{"ReadAll in a namespace", func() ([]driver.RecordedEvent, error) {
			return spaced.ReadAll(ctx, driver.AllQuery{Limit: n, MaxBytes: maxBytes})
		}},
		{"ReadAllScan", func() ([]driver.RecordedEvent, error) {
			p, err := plain.ReadAllScan(ctx, driver.AllQuery{Limit: n, MaxBytes: maxBytes, Filter: filter})
			return p.Events, err
		}},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		page, err := tc.read()
		runtime.ReadMemStats(&after)
		require.NoError(t, err, tc.name)
		assert.Len(t, page, 3, "%s: a page stops once it holds MaxBytes", tc.name)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d MiB allocated for a page of 3 MiB", tc.name, alloc>>20)
		assert.Less(t, alloc, uint64(24<<20), "%s: allocated %d MiB for a page of 3 events of 1 MiB", tc.name, alloc>>20)
	}
}

// scanAll follows ReadAllScan pages after q.After until a page says End,
// checking what every page promises, and returns the events found and
// the number of pages.
func scanAll(t *testing.T, d driver.ScanReader, q driver.AllQuery) (found []driver.RecordedEvent, pages int) {
	t.Helper()
	for {
		pages++
		p, err := d.ReadAllScan(t.Context(), q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Events), q.Limit)
		if n := len(p.Events); n > 0 {
			require.False(t, p.Scanned.Less(p.Events[n-1].Position), "Scanned %s before the last event %s", p.Scanned, p.Events[n-1].Position)
		}
		found = append(found, p.Events...)
		if p.End {
			return found, pages
		}
		require.True(t, q.After.Less(p.Scanned), "a page that is not the End scanned nothing after %s", q.After)
		q.After = p.Scanned
	}
}

// A scan examines a bounded number of events per page: over 10,000
// events of other categories it returns pages without events that move
// Scanned on, and then finds the one event it wants.
func TestReadAllScanBoundsEachPage(t *testing.T) {
	t.Parallel()
	for _, ns := range []string{"", "ns"} {
		t.Run("namespace "+ns, func(t *testing.T) {
			t.Parallel()
			srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
			d := openDriver(t, srv.URL(), kurrentdb.Options{Namespace: ns})
			s := eventstore.New(d, eventstore.Options{})
			t.Cleanup(func() { s.Close() })
			for i := range 20 {
				_, err := s.Append(t.Context(), fmt.Sprintf("Other-%d", i), eventstore.NoStream, newEvents(500)...)
				require.NoError(t, err)
			}
			res, err := s.Append(t.Context(), "Rare-1", eventstore.NoStream, newEvents(1)...)
			require.NoError(t, err)
			start := time.Now()
			found, pages := scanAll(t, d, driver.AllQuery{Limit: 100, Filter: driver.Filter{Categories: []string{"Rare"}}})
			t.Logf("%d pages over 10,001 events in %s", pages, time.Since(start))
			require.Len(t, found, 1)
			assert.Equal(t, driver.Position(res.Position), found[0].Position)
			assert.GreaterOrEqual(t, pages, 10_000/4352, "pages of about 4,096 events examined")
			assert.LessOrEqual(t, pages, 10_000/3840+2, "pages of about 4,096 events examined")
		})
	}
}

// Following Scanned while writers append finds every matching event: no
// Scanned position passes an event that becomes visible later. Other
// namespaces' writers make the head of $all move too.
func TestReadAllScanNeverSkipsUnderConcurrentAppends(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	for _, ns := range []string{"", "ns"} {
		t.Run("namespace "+ns, func(t *testing.T) {
			t.Parallel()
			d := openDriver(t, srv.URL(), kurrentdb.Options{Namespace: ns})
			s := eventstore.New(d, eventstore.Options{})
			t.Cleanup(func() { s.Close() })
			other := newStore(t, srv.URL(), kurrentdb.Options{Namespace: "other-" + ns})
			rare := "Rare" + ns + "-1"
			var wg sync.WaitGroup
			done := make(chan struct{})
			for w := range 4 {
				wg.Go(func() {
					for i := range 100 {
						stream := fmt.Sprintf("Common-%d", w)
						if i%5 == w {
							stream = rare
						}
						_, err := s.Append(t.Context(), stream, eventstore.Any, newEvents(1+i%3)...)
						assert.NoError(t, err)
						_, err = other.Append(t.Context(), stream, eventstore.Any, newEvents(1)...)
						assert.NoError(t, err)
					}
				})
			}
			go func() { wg.Wait(); close(done) }()
			q := driver.AllQuery{Limit: 7, Filter: driver.Filter{Categories: []string{eventstore.Category(rare)}}}
			var found []driver.Position
			for finished := false; ; {
				p, err := d.ReadAllScan(t.Context(), q)
				require.NoError(t, err)
				for _, ev := range p.Events {
					found = append(found, ev.Position)
				}
				if !q.After.Less(p.Scanned) && !p.End {
					t.Fatalf("no progress after %s", q.After)
				}
				if q.After.Less(p.Scanned) {
					q.After = p.Scanned
				}
				if p.End && finished {
					break
				}
				select {
				case <-done:
					finished = true
				default:
				}
			}
			var want []driver.Position
			for ev, err := range s.ReadStream(t.Context(), rare, eventstore.ReadStreamOptions{}) {
				require.NoError(t, err)
				want = append(want, driver.Position(ev.Position))
			}
			slices.SortFunc(want, driver.Position.Compare)
			assert.Equal(t, want, found, "following Scanned finds every event of %q in order", rare)
		})
	}
}

// A page that stopped at the scan bound may end at a checkpoint's
// position, (p, 0): reads resume from it, forwards after it and backwards
// before it, with the event on each side of it.
func TestReadsFromACheckpointPosition(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	d := openDriver(t, srv.URL(), kurrentdb.Options{})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	for i := range 10 {
		_, err := s.Append(t.Context(), fmt.Sprintf("Other-%d", i), eventstore.NoStream, newEvents(500)...)
		require.NoError(t, err)
	}
	p, err := d.ReadAllScan(t.Context(), driver.AllQuery{Limit: 10, Filter: driver.Filter{Categories: []string{"None"}}})
	require.NoError(t, err)
	require.False(t, p.End)
	cp := p.Scanned
	require.Zero(t, cp.Prepare, "the page ends at a checkpoint: %s", cp)
	var all []driver.Position
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		all = append(all, driver.Position(ev.Position))
	}
	i, _ := slices.BinarySearchFunc(all, cp, driver.Position.Compare)
	require.True(t, i > 0 && i < len(all))
	fwd, err := d.ReadAll(t.Context(), driver.AllQuery{After: cp, Limit: 1})
	require.NoError(t, err)
	back, err := d.ReadAll(t.Context(), driver.AllQuery{Before: cp, Backwards: true, Limit: 1})
	require.NoError(t, err)
	require.Len(t, fwd, 1)
	require.Len(t, back, 1)
	assert.Equal(t, all[i], fwd[0].Position, "forwards after %s", cp)
	assert.Equal(t, all[i-1], back[0].Position, "backwards before %s", cp)
}
