package sqlite_test

import (
	"testing"

	"github.com/eventkit/eventstore/conformance"
)

// BenchmarkScale compares appends and reads against logs of the sizes in
// EVENTSTORE_SCALE (`make bench-scale`: 1M and 10M events), each in a
// file of its own in a temporary directory, removed when it ends, with the
// driver's defaults; see conformance.RunScale. It skips unless
// EVENTSTORE_SCALE is set. The figures are in docs/benchmarks.md ("At
// scale").
func BenchmarkScale(b *testing.B) {
	sizes := conformance.ScaleSizes(b)
	conformance.RunScale(b, sizes, func(b *testing.B) conformance.ScaleStore {
		return conformance.ScaleStore{Store: benchStore(b)}
	})
}
