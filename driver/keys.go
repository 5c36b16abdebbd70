package driver

import "context"

// KeyStore is an optional Driver capability: the keys of data subjects, for
// crypto-shredding (package shred), kept in the backend beside the events
// but never in the global log, so ReadAll, subscriptions and migrations
// never see them. Without it, eventstore.Store.LoadKey, CreateKey and
// DeleteKey return eventstore.ErrNotSupported and an application passes
// shred another key store.
//
// A key is opaque bytes (at most [MaxKeySize]); the driver stores them as
// given and never logs them or puts them in an error.
type KeyStore interface {
	// LoadKey returns the key stored for subject; ok is false when there
	// is none (never created, or deleted).
	LoadKey(ctx context.Context, subject string) (key []byte, ok bool, err error)
	// CreateKey stores key for subject unless a key is stored for it
	// already, and returns the key stored afterwards: key, or the one
	// stored before (a racing creator's), which the caller must use.
	CreateKey(ctx context.Context, subject string, key []byte) (stored []byte, err error)
	// DeleteKey removes subject's key, so that LoadKey reports none and a
	// later CreateKey stores a new one. Deleting a key that does not exist
	// is not an error. The driver removes the bytes as far as its backend
	// allows (its documentation says what remains, e.g. in backups).
	DeleteKey(ctx context.Context, subject string) error
	// KeySubjects returns up to limit subjects that have a key, in byte
	// order, starting after the subject after ("" for the first page): a
	// listing for moving keys to another store. Fewer than limit means no
	// more follow.
	KeySubjects(ctx context.Context, after string, limit int) ([]string, error)
}

// MaxKeySize is the most bytes a key given to [KeyStore.CreateKey] holds.
const MaxKeySize = 1024
