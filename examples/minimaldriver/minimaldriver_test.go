package minimaldriver_test

import (
	"testing"

	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/examples/minimaldriver"
)

// harness gives the suite a fresh store per subtest. The store keeps its
// events in its Driver value, so "reopening" it is handing out that value
// again, as a restarted process would find the same file.
type harness struct{}

func (harness) NewDriver(testing.TB) driver.Driver { return minimaldriver.New() }

func (harness) Unsupported() map[conformance.Feature]string { return nil }

func (harness) NewStorage(testing.TB) func() driver.Driver {
	d := minimaldriver.New()
	return func() driver.Driver { return d }
}

func TestConformance(t *testing.T) { conformance.Run(t, harness{}) }
