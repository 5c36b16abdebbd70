package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/eventkit/eventstore/internal/errkind"
	"github.com/jackc/pgx/v5/pgconn"
)

// errorClass is what the driver does about a native error.
type errorClass int

const (
	classOther errorClass = iota
	// classVersionTaken: 23505 on events_stream_version_key. A concurrent
	// append took the version; running the append again sees it and either
	// succeeds (Any, StreamExists, a retry of that very append) or returns a
	// *WrongExpectedVersionError with the actual version.
	classVersionTaken
	// classRetry: 40001 serialization_failure (for example under
	// default_transaction_isolation=serializable) or 40P01
	// deadlock_detected. The server rolled the transaction back; it is run
	// again a bounded number of times.
	classRetry
	// classConnLost: the connection broke after the statement may have
	// reached the server. The append wrote all of its events or none, and
	// the driver cannot tell which.
	classConnLost
	// classNotConnected: no connection could be made (refused, a timeout,
	// TLS, authentication, a FATAL from the server such as 57P03 "starting
	// up" or 3D000 "database does not exist"): nothing was sent, so nothing
	// was written.
	classNotConnected
)

// The SQLSTATE codes and the constraint the driver acts on.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	streamVersionConstraint  = "events_stream_version_key"
)

// classify maps a native error to what the driver does about it. This is the
// only place that inspects native errors; it compares codes and constraint
// names, never message text.
func classify(err error) errorClass {
	// First: a failed connect wraps the server's FATAL *PgError, which
	// would otherwise read as a connection lost mid-statement.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return classNotConnected
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == streamVersionConstraint:
			return classVersionTaken
		case pgErr.Code == codeSerializationFailure || pgErr.Code == codeDeadlockDetected:
			return classRetry
		case pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC":
			// e.g. 57P01 terminating connection due to administrator command
			return classConnLost
		}
		return classOther
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classOther
	}
	if pgconn.SafeToRetry(err) {
		return classOther // never reached the server: nothing was written
	}
	// Anything else (EOF, a reset or timed-out socket) broke the connection
	// while the server may have been working on the statement.
	return classConnLost
}

// transient reports whether err is a failure that may pass, reported with
// eventstore.ErrTransient: the connection broke or could not be made (but not
// for a reason that stays, such as a wrong password or a missing database),
// the server is starting, stopping or out of connections, a statement timed
// out, or a serialization failure or deadlock outlived the driver's retries.
// A done context is not transient: the caller gave up.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeSerializationFailure, codeDeadlockDetected,
			"57014", // query_canceled: statement_timeout and the like
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now: starting up or shutting down
			"57P05", // idle_session_timeout
			"53300": // too_many_connections
			return true
		}
		// Class 08: connection exceptions.
		return strings.HasPrefix(pgErr.Code, "08")
	}
	// No answer from the server: a refused, reset or timed-out connection
	// (a ConnectError without a PgError, EOF, a network error), or a
	// request pgx knows it never sent.
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// appendError wraps an append's native error; a lost connection or a failed
// connect says what the caller can and cannot know.
func appendError(err error) error {
	return writeError("append", err)
}

// writeError wraps the native error of a write (op: "append", "import").
func writeError(op string, err error) error {
	switch classify(err) {
	case classConnLost:
		advice := ""
		if op == "append" {
			advice = "; retry with the same event IDs to find out"
		}
		return fmt.Errorf("postgres: %s: connection lost: the %s wrote all of its events or none%s: %w", op, op, advice, native(err))
	case classNotConnected:
		return fmt.Errorf("postgres: %s: could not connect: nothing was sent, nothing was written: %w", op, native(err))
	}
	return wrapNative(err)
}

// wrapNative prefixes a native error with the driver's name, keeping it
// reachable with errors.As (a *pgconn.PgError, for example) and keeping
// context errors recognisable with errors.Is. A transient error also
// matches eventstore.ErrTransient.
func wrapNative(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %w", native(err))
}

// native returns err, marked with eventstore.ErrTransient when transient.
func native(err error) error {
	if transient(err) {
		return errkind.Transient(err)
	}
	return err
}
