package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/eventkit/eventstore/internal/errkind"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file is the only place that inspects the client's errors. It
// compares types and codes, never message text, and reaches the client's
// *kurrentdb.Error with errors.As: the client wraps it in most paths
// ("failed to perform delete, details: %w"), so kurrentdb.FromError, which
// does not unwrap, would report ErrorCodeUnknown.
//
// What the driver does with each code:
//
//   - ErrorCodeWrongExpectedVersion on an append: a
//     *eventstore.WrongExpectedVersionError, with the actual version read
//     after the rejection (the client does not expose the server's).
//   - ErrorCodeResourceNotFound on a stream read: the stream has no events
//     (never written, or deleted): an empty read.
//   - ErrorCodeStreamDeleted on an append expecting StreamExists: the
//     stream is soft-deleted, at version 0: a
//     *eventstore.WrongExpectedVersionError.
//   - FailedPrecondition on a delete (ErrorCodeUnknown): the expectation
//     failed (deleteConflict); the driver reads the version again.
//   - ErrorCodeConnectionClosed that the driver did not cause: the client
//     gave up on the server for good; the driver builds a new client and
//     tries again (see call).
//   - ErrorUnavailable, io.EOF from a send on a broken stream, or a
//     subscription dropped with Unavailable: the
//     connection broke or the server restarted; reads, and appends the
//     server recognises when retried, are tried again (see call).
//   - ErrorCodeDeadlineExceeded: the client's own deadline (10 s for
//     appends by default) expired; the error also matches
//     context.DeadlineExceeded and eventstore.ErrTransient.
//   - Unavailable, and a connection the client closed, also match
//     eventstore.ErrTransient once the driver's own tries are spent.
//   - Anything else is returned wrapped, and a call whose context is done
//     fails with an error matching the context's error.

// hasCode reports whether err holds a *kurrentdb.Error with code.
func hasCode(err error, code kdb.ErrorCode) bool {
	var e *kdb.Error
	return errors.As(err, &e) && e.Code() == code
}

// unavailable reports whether err says the server could not be reached:
// ErrorUnavailable from a call, the raw Unavailable status a dropped
// subscription carries, or io.EOF, which gRPC returns from sending on a
// stream the connection under it has lost (the client then reports
// ErrorCodeUnknown: "could not send append request header … EOF").
func unavailable(err error) bool {
	return hasCode(err, kdb.ErrorUnavailable) || status.Code(err) == codes.Unavailable || errors.Is(err, io.EOF)
}

// wrapError returns a native error as the driver reports it, keeping it
// reachable with errors.As. The client's own deadline, a server that cannot
// be reached and a client that gave up on it also match
// eventstore.ErrTransient; a done ctx (the caller's) does not.
func wrapError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The client turns a cancelled call into ErrorCodeUnknown holding
		// a gRPC status: say why, so errors.Is finds context.Canceled.
		return fmt.Errorf("kurrentdb: %w: %w", ctxErr, err)
	}
	if hasCode(err, kdb.ErrorCodeDeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		return fmt.Errorf("kurrentdb: %w: %w", context.DeadlineExceeded, errkind.Transient(err))
	}
	if unavailable(err) || hasCode(err, kdb.ErrorCodeConnectionClosed) || errors.Is(err, errRetired) {
		return fmt.Errorf("kurrentdb: %w", errkind.Transient(err))
	}
	return fmt.Errorf("kurrentdb: %w", err)
}

// deleteConflict reports whether a delete failed its expectation: the
// server answers FailedPrecondition with the trailer exception
// wrong-expected-version, which the client reports as ErrorCodeUnknown
// holding the status (a tombstoned stream's FailedPrecondition becomes
// ErrorCodeStreamDeleted instead).
func deleteConflict(err error) bool {
	return err != nil && !hasCode(err, kdb.ErrorCodeStreamDeleted) && status.Code(err) == codes.FailedPrecondition
}

// errDropped is returned for a subscription the server ended.
var errDropped = errors.New("subscription dropped")

// droppedError describes the error a subscription was dropped with: the
// client hands over the raw gRPC status, not a *kurrentdb.Error.
func droppedError(err error) error {
	if err == nil {
		return errDropped
	}
	return fmt.Errorf("%w: %w", errDropped, err)
}
