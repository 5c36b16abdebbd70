package memory_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/memory"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, reopenHarness{func(testing.TB) eventstore.Driver { return memory.New() }})
}

// limited is the memory driver reporting backend limits like DynamoDB's
// (item size, items per transaction), so the suite's limit rules run.
type limited struct{ *memory.Driver }

func (limited) Limits() eventstore.Limits {
	return eventstore.Limits{MaxEventSize: 350_000, MaxAppendEvents: 99, MaxAppendSize: 1_000_000}
}

// TestConformanceWithLimits checks the suite respects a driver's limits: an
// event at the limit passes, anything over it is rejected whole.
func TestConformanceWithLimits(t *testing.T) {
	conformance.Run(t, conformance.HarnessFunc(func(testing.TB) eventstore.Driver { return limited{memory.New()} }))
}

// reopenHarness lets the durability rules "reopen" a memory store: every
// open returns the same driver, whose Close keeps its contents.
type reopenHarness struct{ conformance.HarnessFunc }

func (reopenHarness) NewStorage(testing.TB) func() eventstore.Driver {
	d := memory.New()
	return func() eventstore.Driver { return d }
}
