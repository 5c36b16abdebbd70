package migrate

import (
	"fmt"

	"github.com/eventkit/eventstore"
)

// Source is the store a migration reads from; [From] makes one. [Copy] and
// [Verify] take the source and the destination as two distinct types, so
// passing them the wrong way round does not compile, and every call names
// which store is which:
//
//	migrate.Copy(ctx, migrate.From(old), migrate.To(new), migrate.Options{})
//
// Copy and Verify only read a Source.
type Source struct{ store *eventstore.Store }

// From marks s as the source of a [Copy] or [Verify].
func From(s *eventstore.Store) Source { return Source{s} }

// Destination is the store a migration writes to; [To] makes one.
type Destination struct{ store *eventstore.Store }

// To marks s as the destination of a [Copy] or [Verify].
func To(s *eventstore.Store) Destination { return Destination{s} }

// check reports a missing store: a zero Source or Destination, or one made
// from a nil *Store.
func check(from Source, to Destination) error {
	switch {
	case from.store == nil:
		return fmt.Errorf("no source store (use migrate.From(store)): %w", eventstore.ErrInvalidArgument)
	case to.store == nil:
		return fmt.Errorf("no destination store (use migrate.To(store)): %w", eventstore.ErrInvalidArgument)
	}
	return nil
}

// sideError says which store an error came from.
type sideError struct {
	side string // "source" or "destination"
	err  error
}

func (e *sideError) Error() string { return e.side + ": " + e.err.Error() }

func (e *sideError) Unwrap() error { return e.err }

// srcErr and dstErr name the store a read or write error came from; nil
// stays nil.
func srcErr(err error) error {
	if err == nil {
		return nil
	}
	return &sideError{"source", err}
}

func dstErr(err error) error {
	if err == nil {
		return nil
	}
	return &sideError{"destination", err}
}
