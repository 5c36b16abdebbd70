package eventstore_test

import (
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
