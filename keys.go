package eventstore

import (
	"context"
	"fmt"

	"github.com/eventkit/eventstore/driver"
)

// The keys of data subjects (crypto-shredding, package shred). The driver's
// [driver.KeyStore] is looked up on each call rather than kept by New, so
// this file stays apart from the Store's other capabilities; the type
// assertion costs nanoseconds.

// keyStore returns the driver's key store, or ErrNotSupported.
func (s *Store) keyStore() (driver.KeyStore, error) {
	ks, ok := s.driver.(driver.KeyStore)
	if !ok {
		return nil, fmt.Errorf("%w: the driver keeps no keys", ErrNotSupported)
	}
	return ks, nil
}

// ValidateSubject reports whether subject is a valid data subject ID for a
// key store: the rules of a stream ID ([ValidateStreamID]). The error
// matches [ErrInvalidArgument].
func ValidateSubject(subject string) error {
	return validateName(ErrInvalidArgument, "subject", subject)
}

// LoadKey returns the key a driver that keeps keys ([driver.KeyStore]) holds
// for subject; ok is false when there is none. Keys live beside the events
// but outside the global log: no read, subscription or migration sees them.
// Package shred uses them; applications rarely call this directly.
//
// Errors: [ErrNotSupported] when the driver keeps no keys,
// [ErrInvalidArgument] for a bad subject, [ErrClosed], the context's error,
// or the driver's (wrapped; it never holds key bytes).
func (s *Store) LoadKey(ctx context.Context, subject string) (key []byte, ok bool, err error) {
	err = s.keyCall(ctx, "load key", subject, func(ks driver.KeyStore) (err error) {
		key, ok, err = ks.LoadKey(ctx, subject)
		return err
	})
	return key, ok, err
}

// CreateKey stores key for subject unless one is stored already, and returns
// the key stored afterwards (key, or the one stored before, which the caller
// must use). key holds 1 to [driver.MaxKeySize] bytes. Errors as for
// [Store.LoadKey].
func (s *Store) CreateKey(ctx context.Context, subject string, key []byte) ([]byte, error) {
	if len(key) == 0 || len(key) > driver.MaxKeySize {
		return nil, fmt.Errorf("eventstore: create key %q: %w", subject,
			invalid(ErrInvalidArgument, "a key holds 1 to %d bytes, not %d", driver.MaxKeySize, len(key)))
	}
	var stored []byte
	err := s.keyCall(ctx, "create key", subject, func(ks driver.KeyStore) (err error) {
		stored, err = ks.CreateKey(ctx, subject, key)
		return err
	})
	return stored, err
}

// DeleteKey removes subject's key; deleting a key that does not exist is not
// an error. What the backend may still hold afterwards (dead rows until
// vacuumed, backups) is in the driver's documentation and docs/gdpr.md.
// Errors as for [Store.LoadKey].
func (s *Store) DeleteKey(ctx context.Context, subject string) error {
	return s.keyCall(ctx, "delete key", subject, func(ks driver.KeyStore) error {
		return ks.DeleteKey(ctx, subject)
	})
}

// keyCall validates subject and runs f on the driver's key store as a
// driver call, wrapping its error.
func (s *Store) keyCall(ctx context.Context, op, subject string, f func(driver.KeyStore) error) error {
	err := ValidateSubject(subject)
	if err == nil {
		var ks driver.KeyStore
		if ks, err = s.keyStore(); err == nil {
			err = s.do(ctx, func() error { return f(ks) })
		}
	}
	if err != nil {
		return fmt.Errorf("eventstore: %s %q: %w", op, subject, err)
	}
	return nil
}

// KeySubjects returns up to limit (1 to [driver.MaxListStreams]) subjects
// that have a key, in byte order, after the subject after ("" for the first
// page); fewer than limit means no more follow. It is for moving keys to
// another store (shred.CopyKeys). Errors as for [Store.LoadKey].
func (s *Store) KeySubjects(ctx context.Context, after string, limit int) ([]string, error) {
	wrap := func(err error) error { return fmt.Errorf("eventstore: key subjects: %w", err) }
	if limit < 1 || limit > driver.MaxListStreams {
		return nil, wrap(invalid(ErrInvalidArgument, "limit %d: want 1 to %d", limit, driver.MaxListStreams))
	}
	ks, err := s.keyStore()
	if err != nil {
		return nil, wrap(err)
	}
	var subjects []string
	err = s.do(ctx, func() (err error) {
		subjects, err = ks.KeySubjects(ctx, after, limit)
		return err
	})
	if err != nil {
		return nil, wrap(err)
	}
	return subjects, nil
}
