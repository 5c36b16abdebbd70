package driver

import "strconv"

// ExpectationKind says which check an [ExpectedVersion] makes.
type ExpectationKind uint8

// The kinds of expectation. The zero kind is ExpectExact.
const (
	ExpectExact        ExpectationKind = iota // the stream is at exactly Version (0: it has no events)
	ExpectAny                                 // no check
	ExpectStreamExists                        // the stream has at least one event
)

// ExpectedVersion is the optimistic-concurrency check of an append. The zero
// value expects a stream with no events.
type ExpectedVersion struct {
	kind    ExpectationKind
	version uint64
}

// Expect returns an expectation of kind; version counts only for ExpectExact.
func Expect(kind ExpectationKind, version uint64) ExpectedVersion {
	if kind != ExpectExact {
		version = 0
	}
	return ExpectedVersion{kind: kind, version: version}
}

// Kind reports which check e makes.
func (e ExpectedVersion) Kind() ExpectationKind { return e.kind }

// Version returns the exact version expected; it is 0 unless Kind is ExpectExact.
func (e ExpectedVersion) Version() uint64 { return e.version }

// Matches reports whether a stream at version actual satisfies e.
func (e ExpectedVersion) Matches(actual uint64) bool {
	switch e.kind {
	case ExpectAny:
		return true
	case ExpectStreamExists:
		return actual > 0
	default:
		return actual == e.version
	}
}

// String returns "any", "stream-exists", "no-stream" or the decimal version.
func (e ExpectedVersion) String() string {
	switch e.kind {
	case ExpectAny:
		return "any"
	case ExpectStreamExists:
		return "stream-exists"
	}
	if e.version == 0 {
		return "no-stream"
	}
	return strconv.FormatUint(e.version, 10)
}
