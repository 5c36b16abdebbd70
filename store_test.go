package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closeDriver is the memory driver with a Close that counts its calls and
// returns err. It has none of the optional capabilities.
type closeDriver struct {
	driver.Driver
	err    error
	closes atomic.Int32
}

func (d *closeDriver) Close() error {
	d.closes.Add(1)
	if err := d.Driver.Close(); err != nil {
		return err
	}
	return d.err
}

func TestClose(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		driverErr error
	}{
		{"driver closes cleanly", nil},
		{"driver close fails", boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &closeDriver{Driver: memory.New(), err: tc.driverErr}
			s := eventstore.New(d, eventstore.Options{})
			_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
			require.NoError(t, err)

			err = s.Close()
			if tc.driverErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.driverErr, "the first Close returns the driver's error")
			}
			assert.NoError(t, s.Close(), "a second Close returns nil, as database/sql's DB.Close does")
			assert.Equal(t, int32(1), d.closes.Load(), "the driver is closed once")

			_, err = s.Append(t.Context(), "Order-1", eventstore.Exact(1), eventstore.NewEvent("Paid", nil))
			assert.ErrorIs(t, err, eventstore.ErrClosed, "the store is closed even if the driver's Close failed")
			_, err = s.StreamVersion(t.Context(), "Order-1")
			assert.ErrorIs(t, err, eventstore.ErrClosed)
		})
	}
}

// Concurrent Close calls close the driver once; exactly one of them
// returns its error, and every call returns after the driver is closed.
func TestCloseConcurrent(t *testing.T) {
	boom := errors.New("boom")
	d := &closeDriver{Driver: memory.New(), err: boom}
	s := eventstore.New(d, eventstore.Options{})
	const n = 8
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			errs[i] = s.Close()
			assert.Equal(t, int32(1), d.closes.Load(), "Close returned before the driver was closed")
		})
	}
	close(gate)
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, boom)
			failed++
		}
	}
	assert.Equal(t, 1, failed, "one Close returns the driver's error: %v", errs)
	assert.Equal(t, int32(1), d.closes.Load())
}

// The Store uses the optional capabilities the driver has, and falls back
// (ErrNotSupported, As false) for those it lacks.
func TestCapabilities(t *testing.T) {
	events := []eventstore.RecordedEvent{{StreamID: "Account-1", Version: 1, ID: uuid.New(), Type: "Opened"}}
	tests := []struct {
		name       string
		driver     driver.Driver
		wantImport error
	}{
		{"memory driver imports", memory.New(), nil},
		{"wrapper without Importer", &closeDriver{Driver: memory.New()}, eventstore.ErrNotSupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := eventstore.New(tc.driver, eventstore.Options{})
			defer s.Close()
			err := s.Import(t.Context(), events)
			if tc.wantImport == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantImport)
			}
			var p *int
			assert.False(t, s.As(&p), "As of an unknown type")
			assert.False(t, s.As(nil), "As(nil)")
		})
	}
}

// pageSizeDriver states a page size (driver.PageSizer) and records the
// Limit of each read page the Store asks for.
type pageSizeDriver struct {
	driver.Driver
	size int

	mu     sync.Mutex // protects limits
	limits []int
}

func (d *pageSizeDriver) PageSize() int { return d.size }

func (d *pageSizeDriver) record(limit int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.limits = append(d.limits, limit)
}

func (d *pageSizeDriver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	d.record(q.Limit)
	return d.Driver.ReadStream(ctx, q)
}

func (d *pageSizeDriver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	d.record(q.Limit)
	return d.Driver.ReadAll(ctx, q)
}

// The Store reads pages of the size a driver.PageSizer states, 512 events
// without one (or when it states less than 1), and no more than a read's
// Limit still wants.
func TestStoreReadsPagesOfTheDriversSize(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		limit  int
		stream []int // the Limit of each page of ReadStream
		all    []int // and of ReadAll
	}{
		{"pages of 7", 7, 0, []int{7, 7, 7}, []int{7, 7, 7}},
		{"pages of 7, limit 10", 7, 10, []int{7, 3}, []int{7, 3}},
		{"pages of 100", 100, 0, []int{100}, []int{100}},
		{"no size stated", 0, 0, []int{512}, []int{512}},
		{"a negative size", -1, 0, []int{512}, []int{512}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &pageSizeDriver{Driver: memory.New(), size: tc.size}
			s := eventstore.New(d, eventstore.Options{})
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			evs := make([]eventstore.Event, 20)
			for i := range evs {
				evs[i] = eventstore.NewEvent("Placed", nil)
			}
			_, err := s.Append(ctx, "Order-1", eventstore.NoStream, evs...)
			require.NoError(t, err)
			want := min(20, tc.limit)
			if tc.limit == 0 {
				want = 20
			}
			n := 0
			for _, err := range s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{Limit: tc.limit}) {
				require.NoError(t, err)
				n++
			}
			assert.Equal(t, want, n, "events read from the stream")
			assert.Equal(t, tc.stream, d.limits, "page limits of ReadStream")
			d.limits = nil
			n = 0
			for _, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{Limit: tc.limit}) {
				require.NoError(t, err)
				n++
			}
			assert.Equal(t, want, n, "events read from the log")
			assert.Equal(t, tc.all, d.limits, "page limits of ReadAll")
		})
	}
}
