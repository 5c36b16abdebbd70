package eventstore

import "strconv"

// ExpectationKind says which check an [ExpectedVersion] makes.
type ExpectationKind uint8

// The kinds of expectation. The zero kind is ExactVersion.
const (
	ExactVersion     ExpectationKind = iota // the stream is at exactly Version (0: it has no events)
	AnyVersion                              // no check
	StreamExistsKind                        // the stream has at least one event
)

// ExpectedVersion is the optimistic-concurrency check an append makes. Build it
// with [Any], [NoStream], [StreamExists] or [Exact]. The zero value is
// NoStream (Exact(0)): the stream must not have any events yet.
type ExpectedVersion struct {
	kind    ExpectationKind
	version uint64
}

var (
	// Any skips the check.
	Any = ExpectedVersion{kind: AnyVersion}
	// NoStream expects a stream with no events (version 0). Same as Exact(0).
	NoStream = ExpectedVersion{}
	// StreamExists expects a stream with at least one event.
	StreamExists = ExpectedVersion{kind: StreamExistsKind}
)

// Exact expects the stream to be at version n: n events, the last one being
// version n. Exact(0) is NoStream.
func Exact(n uint64) ExpectedVersion { return ExpectedVersion{version: n} }

// Kind reports which check e makes.
func (e ExpectedVersion) Kind() ExpectationKind { return e.kind }

// Version returns the exact version expected; it is 0 unless Kind is ExactVersion.
func (e ExpectedVersion) Version() uint64 { return e.version }

// Matches reports whether a stream at version actual satisfies e.
func (e ExpectedVersion) Matches(actual uint64) bool {
	switch e.kind {
	case AnyVersion:
		return true
	case StreamExistsKind:
		return actual > 0
	default:
		return actual == e.version
	}
}

// String returns "any", "stream-exists", "no-stream" or the decimal version.
func (e ExpectedVersion) String() string {
	switch e.kind {
	case AnyVersion:
		return "any"
	case StreamExistsKind:
		return "stream-exists"
	}
	if e.version == 0 {
		return "no-stream"
	}
	return strconv.FormatUint(e.version, 10)
}
