package memory_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/memory"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.HarnessFunc(func(testing.TB) eventstore.Driver { return memory.New() }))
}
