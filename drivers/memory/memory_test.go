package memory_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/stretchr/testify/require"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, reopenHarness{func(testing.TB) driver.Driver { return memory.New() }})
}

// limited is the memory driver reporting backend limits like DynamoDB's
// (item size, items per transaction), so the suite's limit rules run.
type limited struct{ *memory.Driver }

func (limited) Limits() driver.Limits {
	return driver.Limits{MaxEventSize: 350_000, MaxAppendEvents: 99, MaxAppendSize: 1_000_000}
}

// TestConformanceWithLimits checks the suite respects a driver's limits: an
// event at the limit passes, anything over it is rejected whole.
func TestConformanceWithLimits(t *testing.T) {
	conformance.Run(t, volatileHarness{func(testing.TB) driver.Driver { return limited{memory.New()} }})
}

// volatileHarness declares what the memory driver is: it keeps nothing once
// closed, so the rules that reopen storage are skipped with the reason.
type volatileHarness struct{ conformance.HarnessFunc }

func (volatileHarness) Unsupported() map[conformance.Feature]string {
	return map[conformance.Feature]string{
		conformance.Persistence: "the memory driver keeps its events in the process; nothing outlives it",
	}
}

// reopenHarness lets the durability rules "reopen" a memory store: every
// open returns the same driver, whose Close keeps its contents.
type reopenHarness struct{ conformance.HarnessFunc }

func (reopenHarness) NewStorage(testing.TB) func() driver.Driver {
	d := memory.New()
	return func() driver.Driver { return d }
}

func TestOpenURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want error // nil: opens
	}{
		{"memory://", nil},
		{"memory:", nil},
		{"memory:///", nil},
		{"memory://?must_exist=false", nil},
		{"memory://?must_exist=true", eventstore.ErrStoreNotFound},
		{"memory://?must_exist=yes", eventstore.ErrInvalidArgument},
		{"memory://?must_exist=", eventstore.ErrInvalidArgument},
		{"memory://?must_exist=true&must_exist=true", eventstore.ErrInvalidArgument},
		{"memory://?must_exist=true;x=1", eventstore.ErrInvalidArgument},
		{"memory://?must_exist=%zz", eventstore.ErrInvalidArgument},
		{"memory://?other=1", eventstore.ErrInvalidArgument},
		{"memory://host", eventstore.ErrInvalidArgument},
		{"memory:///path", eventstore.ErrInvalidArgument},
		{"memory://user@", eventstore.ErrInvalidArgument},
		{"memory://#frag", eventstore.ErrInvalidArgument},
	} {
		t.Run(tc.url, func(t *testing.T) {
			s, err := eventstore.Open(t.Context(), tc.url)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			require.NoError(t, s.Close())
		})
	}
}
