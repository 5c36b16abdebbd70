package shred

import (
	"context"
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
