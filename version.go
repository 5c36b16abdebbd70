package eventstore

import "github.com/eventkit/eventstore/driver"

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
