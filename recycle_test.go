package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recyclingDriver is the memory driver, reading pages of 3 events, that
// returns each page in an array of its own and takes pages back as a
// driver.PageRecycler does. It checks that every page given back is one it
// returned and not yet given back, no longer than returned, and then
// overwrites the whole array, so that an event the Store handed out from it
// and still shared with the page would show the change.
type recyclingDriver struct {
	*memory.Driver

	mu     sync.Mutex
	out    map[*driver.RecordedEvent]int // first element of each page out: its length
	pages  int                           // pages returned with events
	misuse error
}

func newRecyclingDriver() *recyclingDriver {
	return &recyclingDriver{Driver: memory.New(), out: map[*driver.RecordedEvent]int{}}
}

func (d *recyclingDriver) PageSize() int { return 3 }

// own returns page in an array of its own, with room to spare.
func (d *recyclingDriver) own(page []driver.RecordedEvent) []driver.RecordedEvent {
	if len(page) == 0 {
		return page
	}
	p := append(make([]driver.RecordedEvent, 0, len(page)+2), page...)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.out[&p[0]] = len(p)
	d.pages++
	return p
}

func (d *recyclingDriver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	page, err := d.Driver.ReadStream(ctx, q)
	return d.own(page), err
}

func (d *recyclingDriver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	page, err := d.Driver.ReadAll(ctx, q)
	return d.own(page), err
}

func (d *recyclingDriver) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	page, err := d.Driver.ReadAllScan(ctx, q)
	page.Events = d.own(page.Events)
	return page, err
}

func (d *recyclingDriver) RecyclePage(events []driver.RecordedEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cap(events) == 0 {
		d.misuse = errors.New("an empty page given back")
		return
	}
	all := events[:cap(events)]
	n, ok := d.out[&all[0]]
	switch {
	case !ok:
		d.misuse = errors.New("a page given back that is not out")
	case len(events) > n:
		d.misuse = fmt.Errorf("a page of %d events given back with %d", n, len(events))
	}
	delete(d.out, &all[0])
	for i := range all {
		all[i] = driver.RecordedEvent{StreamID: "Poison-1", Type: "Poison", Data: []byte(`"poison"`)}
	}
}

// check reports a misuse, and how many pages with events are still out.
func (d *recyclingDriver) check() (out int, misuse error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.out), d.misuse
}

// TestReadsGiveBackEveryPage reads through a driver that reuses its pages
// (driver.PageRecycler) every way the Store reads pages: every page comes
// back once it has been handed out, also from a read its caller left
// early, and no event the caller got changes when the driver overwrites
// the page it came in.
func TestReadsGiveBackEveryPage(t *testing.T) {
	const n = 10
	read := func(s *eventstore.Store, seq func(func(eventstore.RecordedEvent, error) bool), stop int) ([]eventstore.RecordedEvent, error) {
		var got []eventstore.RecordedEvent
		for ev, err := range seq {
			if err != nil {
				return got, err
			}
			got = append(got, ev)
			if len(got) == stop {
				break
			}
		}
		return got, nil
	}
	cases := []struct {
		name string
		stop int // events the caller takes; 0: all
		read func(ctx context.Context, s *eventstore.Store, stop int) ([]eventstore.RecordedEvent, error)
	}{
		{"read stream", 0, func(ctx context.Context, s *eventstore.Store, stop int) ([]eventstore.RecordedEvent, error) {
			return read(s, s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}), stop)
		}},
		{"read stream, left early", 4, func(ctx context.Context, s *eventstore.Store, stop int) ([]eventstore.RecordedEvent, error) {
			return read(s, s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}), stop)
		}},
		{"read stream backwards", 0, func(ctx context.Context, s *eventstore.Store, stop int) ([]eventstore.RecordedEvent, error) {
			evs, err := read(s, s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{Backwards: true}), stop)
			for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
				evs[i], evs[j] = evs[j], evs[i]
			}
			return evs, err
		}},
		{"read all", 0, func(ctx context.Context, s *eventstore.Store, stop int) ([]eventstore.RecordedEvent, error) {
			return read(s, s.ReadAll(ctx, eventstore.ReadAllOptions{}), stop)
		}},
		{"read all, filtered", 0, func(ctx context.Context, s *eventstore.Store, stop int) ([]eventstore.RecordedEvent, error) {
			return read(s, s.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Order"}}}), stop)
		}},
		{"subscription", 0, func(ctx context.Context, s *eventstore.Store, stop int) ([]eventstore.RecordedEvent, error) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var got []eventstore.RecordedEvent
			err := s.Subscribe(ctx, eventstore.SubscribeOptions{}, func(_ context.Context, ev eventstore.RecordedEvent) error {
				got = append(got, ev)
				if len(got) == n {
					cancel()
				}
				return nil
			})
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return got, err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newRecyclingDriver()
			s := eventstore.New(d, eventstore.Options{})
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			for i := range n {
				data := []byte(strconv.Itoa(i + 1))
				_, err := s.Append(ctx, "Order-1", eventstore.Exact(uint64(i)), eventstore.Event{Type: "Placed", Data: data})
				require.NoError(t, err)
			}
			got, err := c.read(ctx, s, c.stop)
			require.NoError(t, err)
			want := n
			if c.stop > 0 {
				want = c.stop
			}
			require.Len(t, got, want)
			for i, ev := range got {
				assert.Equal(t, "Order-1", ev.StreamID, "event %d", i)
				assert.Equal(t, uint64(i+1), ev.Version, "event %d", i)
				assert.Equal(t, "Placed", ev.Type, "event %d", i)
				assert.Equal(t, strconv.Itoa(i+1), string(ev.Data), "event %d", i)
			}
			out, misuse := d.check()
			assert.NoError(t, misuse)
			assert.Zero(t, out, "pages not given back")
			assert.Positive(t, d.pages)
		})
	}
}
