package shred

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// KeyStore keeps one key per data subject. An *eventstore.Store whose
// driver keeps keys is one (see the package documentation); so is
// [MemoryKeys]. Implementations must be safe for concurrent use, must never
// log a key or put one in an error, and must really delete: once DeleteKey
// returned, LoadKey reports no key.
type KeyStore interface {
	// LoadKey returns subject's key; ok is false when it has none.
	LoadKey(ctx context.Context, subject string) (key []byte, ok bool, err error)
	// CreateKey stores key for subject unless one is stored, and returns
	// the key stored afterwards (the earlier one if there was one).
	CreateKey(ctx context.Context, subject string, key []byte) (stored []byte, err error)
	// DeleteKey removes subject's key; a missing key is not an error.
	DeleteKey(ctx context.Context, subject string) error
}

// MemoryKeys is a [KeyStore] in memory, for tests. The zero value is ready
// to use.
type MemoryKeys struct {
	mu   sync.Mutex        // protects keys
	keys map[string][]byte // subject → key
}

var _ KeyStore = (*MemoryKeys)(nil)

// LoadKey implements [KeyStore].
func (m *MemoryKeys) LoadKey(_ context.Context, subject string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[subject]
	return slices.Clone(k), ok, nil
}

// CreateKey implements [KeyStore].
func (m *MemoryKeys) CreateKey(_ context.Context, subject string, key []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[subject]; ok {
		return slices.Clone(k), nil
	}
	if m.keys == nil {
		m.keys = map[string][]byte{}
	}
	m.keys[subject] = slices.Clone(key)
	return slices.Clone(key), nil
}

// DeleteKey implements [KeyStore]; it zeroes the key's bytes.
func (m *MemoryKeys) DeleteKey(_ context.Context, subject string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[subject]; ok {
		clear(k)
		delete(m.keys, subject)
	}
	return nil
}

// KeySubjects lists subjects with a key, as [KeyLister] says.
func (m *MemoryKeys) KeySubjects(_ context.Context, after string, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for s := range m.keys {
		if s > after {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}

// KeyLister is a [KeyStore] that lists its subjects, so that its keys can
// be moved ([CopyKeys]). An *eventstore.Store whose driver keeps keys is
// one, and so is [MemoryKeys].
type KeyLister interface {
	KeyStore
	// KeySubjects returns up to limit subjects with a key, in byte order,
	// after the subject after ("" for the first page); fewer than limit
	// means no more follow.
	KeySubjects(ctx context.Context, after string, limit int) ([]string, error)
}

var _ KeyLister = (*MemoryKeys)(nil)

// ErrKeyConflict reports that [CopyKeys] found a different key for a
// subject in the destination: events sealed under either key would not
// open under the other. Nothing was overwritten.
var ErrKeyConflict = errors.New("shred: the destination holds another key for the subject")

// CopyKeys copies every key of from to to, as a migration of the events
// (package migrate copies events as stored, sealed, and never keys) needs:
// keys of forgotten subjects are gone and stay gone. A subject whose key
// to already holds is skipped, so a rerun is safe. Run it after the events
// are copied, and forget subjects in both stores until the old one is
// retired. Errors: an error matching [ErrKeyConflict] for a subject with
// a different key in to (the copy stops there), the stores' errors.
func CopyKeys(ctx context.Context, from KeyLister, to KeyStore) error {
	const page = 500
	after := ""
	for {
		subjects, err := from.KeySubjects(ctx, after, page)
		if err != nil {
			return fmt.Errorf("shred: copy keys: source: %w", err)
		}
		for _, s := range subjects {
			key, ok, err := from.LoadKey(ctx, s)
			if err != nil {
				return fmt.Errorf("shred: copy keys: source: %w", err)
			}
			if !ok {
				continue // forgotten meanwhile
			}
			stored, err := to.CreateKey(ctx, s, key)
			same := subtle.ConstantTimeCompare(stored, key) == 1
			clear(key)
			clear(stored)
			if err != nil {
				return fmt.Errorf("shred: copy keys: destination: %w", err)
			}
			if !same {
				return fmt.Errorf("shred: copy keys: subject %q: %w", s, ErrKeyConflict)
			}
		}
		if len(subjects) < page {
			return nil
		}
		after = subjects[len(subjects)-1]
	}
}
