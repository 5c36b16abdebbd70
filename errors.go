package eventstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Sentinel errors. Match them with [errors.Is]; every error the Store returns
// for one of these conditions wraps the matching sentinel.
var (
	// ErrWrongExpectedVersion reports that a stream was not at the version an
	// append expected. The error is also a *[WrongExpectedVersionError] that
	// carries the stream, the expectation and the actual version. Nothing was written.
	ErrWrongExpectedVersion = errors.New("wrong expected version")

	// ErrInvalidArgument reports bad input: a malformed stream ID, event type,
	// payload, option or position, or an append over a backend limit. Nothing
	// was written. The more specific errors below also match it.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrClosed reports a call on a Store after Close.
	ErrClosed = errors.New("store is closed")

	// ErrNotSupported reports an operation the driver cannot do. It also
	// matches [errors.ErrUnsupported].
	ErrNotSupported error = notSupportedError{}

	// ErrStoreNotFound reports that a store opened with the URL parameter
	// must_exist=true (or a driver's MustExist option) does not exist: no
	// database file, schema, table or server-side store of this driver.
	// Nothing was created.
	ErrStoreNotFound = errors.New("store not found")

	// ErrDuplicateEventID reports an append that reuses the ID of an event
	// the stream already holds, with different content (type, content type,
	// data or metadata). It is not a retry of that append, so nothing was
	// written. The error is also a *[DuplicateEventIDError].
	ErrDuplicateEventID = errors.New("event id already used with different content")

	// ErrTransient reports that an operation failed for a reason that may
	// pass: a lost connection, a timeout, throttling, a server starting or
	// stopping. The driver has already retried what it safely could; the
	// caller may try again later. For an append, whether it was written is
	// unknown unless the error says nothing was sent: retry with the same
	// event IDs, which returns the original result if it was. The native
	// error stays reachable with [errors.As]. A done context of the caller's
	// own (context.Canceled, or its deadline) is not transient, and neither
	// is any other sentinel here: a wrong expected version, invalid input or
	// a closed Store fail the same way on every try. Code that must tell
	// "wait and retry" from "stop", such as a long-running consumer, tests
	// errors.Is(err, ErrTransient).
	ErrTransient = errors.New("transient failure")

	// ErrLeaseLost reports that a consumer group member no longer holds a
	// lease it presented: another member was granted it since (the first
	// had stopped renewing, was slow or cut off). Nothing was written.
	ErrLeaseLost = errors.New("lease lost to another member")

	// ErrCheckpointMoved reports that a projection's checkpoint was not
	// where the projection last left it: another instance of it (or
	// SetCheckpoint) moved it. The projection's transaction was rolled
	// back; Store.Project reloads the checkpoint and goes on from there.
	ErrCheckpointMoved = errors.New("checkpoint moved by another writer")

	// ErrAppendConditionFailed reports that a conditional append
	// ([AppendCondition]) found an event matching its query after its After
	// position. The error is also an *[AppendConflictError] with Condition
	// set. Nothing was written.
	ErrAppendConditionFailed = errors.New("append condition failed")
)

// Specific invalid-argument errors. Each matches [ErrInvalidArgument] too.
var (
	ErrInvalidStreamID  error = &argumentError{"invalid stream id"}
	ErrInvalidEventType error = &argumentError{"invalid event type"}
	ErrInvalidPayload   error = &argumentError{"invalid payload"}
	ErrEventTooLarge    error = &argumentError{"event too large"}
	ErrBatchTooLarge    error = &argumentError{"batch too large"}
	ErrInvalidPosition  error = &argumentError{"invalid position"}
	ErrInvalidVersion   error = &argumentError{"invalid version"}
	ErrInvalidCursor    error = &argumentError{"invalid cursor"}
	ErrInvalidTag       error = &argumentError{"invalid tag"}
	ErrInvalidQuery     error = &argumentError{"invalid query"}
)

// argumentError is a kind of invalid argument; it matches ErrInvalidArgument.
type argumentError struct{ msg string }

func (e *argumentError) Error() string        { return e.msg }
func (e *argumentError) Is(target error) bool { return target == ErrInvalidArgument }

type notSupportedError struct{}

func (notSupportedError) Error() string { return "not supported" }
func (notSupportedError) Is(target error) bool {
	return target == errors.ErrUnsupported
}

// WrongExpectedVersionError is the error an append returns when the stream's
// version did not satisfy the expectation. It matches [ErrWrongExpectedVersion].
// Drivers return it (as a pointer) from Append; Err may hold the native cause.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   uint64 // the stream's version when the append was rejected
	Err      error  // the native error, if any
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("wrong expected version: want %s, have %d", e.Expected, e.Actual)
}

// Is reports whether target is ErrWrongExpectedVersion.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// Unwrap returns the native cause, if any.
func (e *WrongExpectedVersionError) Unwrap() error { return e.Err }

// DuplicateEventIDError is the error an append returns when one of its event
// IDs is stored in the stream with other content. It matches
// [ErrDuplicateEventID].
type DuplicateEventIDError struct {
	Stream  string
	ID      uuid.UUID
	Version uint64 // the version of the stored event with that ID
	Field   string // the first field that differs: "type", "content type", "data", "metadata" or "tags"
}

func (e *DuplicateEventIDError) Error() string {
	return fmt.Sprintf("event id %s already used with different content: the stored event (version %d) has another %s; a retry must send the same events",
		e.ID, e.Version, e.Field)
}

// Is reports whether target is ErrDuplicateEventID.
func (e *DuplicateEventIDError) Is(target error) bool { return target == ErrDuplicateEventID }

// HandlerError is returned by [Store.Subscribe] when the handler failed. The
// subscription's checkpoint stays before Event, so a restart delivers it again.
type HandlerError struct {
	Subscription string
	Event        RecordedEvent
	Err          error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("handler failed on %q version %d at %s: %v", e.Event.StreamID, e.Event.Version, e.Event.Position, e.Err)
}

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }

// AppendConflictError is the error [Store.AppendMulti] returns when
// expectations or the append condition failed. Nothing was written. It
// matches [ErrWrongExpectedVersion] when Streams is not empty (each element
// is reachable with [errors.As] as a *[WrongExpectedVersionError]) and
// [ErrAppendConditionFailed] when Condition is set.
type AppendConflictError struct {
	// Streams are the expectations that failed, with the streams' actual
	// versions, sorted by stream ID. Every driver names every failed stream
	// and no stream whose expectation held.
	Streams []WrongExpectedVersionError
	// Condition reports that the append condition failed.
	Condition bool
}

func (e *AppendConflictError) Error() string {
	var b strings.Builder
	b.WriteString("append conflict:")
	if e.Condition {
		b.WriteString(" an event matches the append condition;")
	}
	for _, v := range e.Streams {
		fmt.Fprintf(&b, " %q: want %s, have %d;", v.Stream, v.Expected, v.Actual)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Is reports whether target is ErrAppendConditionFailed and the condition failed.
func (e *AppendConflictError) Is(target error) bool {
	return e.Condition && target == ErrAppendConditionFailed
}

// Unwrap returns a *WrongExpectedVersionError per failed stream.
func (e *AppendConflictError) Unwrap() []error {
	errs := make([]error, len(e.Streams))
	for i := range e.Streams {
		errs[i] = &e.Streams[i]
	}
	return errs
}

// invalid builds an error matching kind (one of the Err* argument errors).
func invalid(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}
