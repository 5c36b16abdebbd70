package eventstore

import (
	"errors"
	"math"

	"github.com/eventkit/eventstore/driver"
)

// ExpectedVersion is the optimistic-concurrency check an append makes. Build it
// with [Any], [NoStream], [StreamExists] or [Exact]. The zero value is
// NoStream (Exact(0)): the stream must not have any events yet. It converts
// to and from the driver's form, which drivers inspect.
type ExpectedVersion driver.ExpectedVersion

var (
	// Any skips the check.
	Any = ExpectedVersion(driver.Expect(driver.ExpectAny, 0))
	// NoStream expects a stream with no events (version 0). Same as Exact(0).
	NoStream = ExpectedVersion{}
	// StreamExists expects a stream with at least one event.
	StreamExists = ExpectedVersion(driver.Expect(driver.ExpectStreamExists, 0))
)

// Exact expects the stream to be at version n: n events, the last one being
// version n. Exact(0) is NoStream.
func Exact(n uint64) ExpectedVersion { return ExpectedVersion(driver.Expect(driver.ExpectExact, n)) }

// Matches reports whether a stream at version actual satisfies e.
func (e ExpectedVersion) Matches(actual uint64) bool {
	return driver.ExpectedVersion(e).Matches(actual)
}

// String returns "any", "stream-exists", "no-stream" or the decimal version.
func (e ExpectedVersion) String() string { return driver.ExpectedVersion(e).String() }

// maxExactVersion is the highest exact version the Store asks a driver to
// expect. No backend numbers a stream's events past it (they count in
// signed 64 bits, and KurrentDB reads larger revisions as its negative
// "any" and "no stream" codes), so an expectation above it cannot hold: the
// driver is asked this one, which fails the same way with the stream's
// actual version, and the error names the caller's expectation.
const maxExactVersion = math.MaxInt64

// clampExpected returns e as the driver is asked it, and whether it was
// lowered to maxExactVersion.
func clampExpected(e driver.ExpectedVersion) (driver.ExpectedVersion, bool) {
	if e.Kind() == driver.ExpectExact && e.Version() > maxExactVersion {
		return driver.Expect(driver.ExpectExact, maxExactVersion), true
	}
	return e, false
}

// restoreExpected puts the caller's expectations back into the version
// conflicts of err for the streams whose expectation clampExpected lowered.
func restoreExpected(err error, caller map[string]ExpectedVersion) {
	if len(caller) == 0 {
		return
	}
	var ce *AppendConflictError
	if errors.As(err, &ce) {
		for i := range ce.Streams {
			if e, ok := caller[ce.Streams[i].Stream]; ok {
				ce.Streams[i].Expected = e
			}
		}
		return
	}
	var wev *WrongExpectedVersionError
	if errors.As(err, &wev) {
		if e, ok := caller[wev.Stream]; ok {
			wev.Expected = e
		}
	}
}
