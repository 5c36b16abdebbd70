// Package errkind marks the kind of a driver's error for the portable API:
// Transient makes it match eventstore.ErrTransient, so callers (and the
// subscription engine) know to wait and try again. Drivers mark errors once
// their own tries are spent.
package errkind

import "github.com/eventkit/eventstore"

// Transient returns err marked as a transient failure: errors.Is(err,
// eventstore.ErrTransient) holds, its message is unchanged, and err stays
// reachable with errors.Is and errors.As. It returns nil for nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err}
}

type transientError struct{ err error }

func (e *transientError) Error() string        { return e.err.Error() }
func (e *transientError) Unwrap() error        { return e.err }
func (e *transientError) Is(target error) bool { return target == eventstore.ErrTransient }
