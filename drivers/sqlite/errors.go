package sqlite

import (
	"errors"
	"fmt"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/errkind"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// mapError maps a native go-sqlite3 error to the portable form; the result
// still unwraps to the sqlite3.Error, and other errors (context errors
// included) pass through unchanged.
//
//   - A UNIQUE or PRIMARY KEY constraint violation (ExtendedCode
//     ErrConstraintUnique or ErrConstraintPrimaryKey) from inserting events
//     breaks the (stream, version) key: when conflict is not nil it is
//     returned, as *eventstore.WrongExpectedVersionError, with the cause.
//     Writes hold the write lock from their first statement, so this backs
//     up the version check made in the same transaction.
//   - SQLITE_BUSY (Code ErrBusy) is a bug or an overloaded file: every write
//     begins IMMEDIATE and waits up to Options.BusyTimeout for the lock, and
//     reads in WAL mode are not blocked by writers. It is returned wrapped,
//     with a message saying so, and matches eventstore.ErrTransient: the
//     lock may be free on the next try. Nothing was written.
func mapError(err error, conflict *eventstore.WrongExpectedVersionError) error {
	if err == nil {
		return nil
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch {
	case conflict != nil && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey):
		conflict.Err = err
		return conflict
	case se.Code == sqlite3.ErrBusy:
		return fmt.Errorf("the write lock was not free within the busy timeout, or a read met a lock (a bug unless another connection holds the lock that long): %w", errkind.Transient(err))
	}
	return err
}
