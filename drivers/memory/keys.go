package memory

import (
	"context"
	"slices"
	"sync"
)

// keys holds the subjects' keys of [driver.KeyStore], apart from the log:
// no read sees them.
type keys struct {
	mu sync.Mutex        // protects m
	m  map[string][]byte // subject → key; nil until the first key
}

// LoadKey implements [driver.KeyStore].
func (d *Driver) LoadKey(_ context.Context, subject string) ([]byte, bool, error) {
	d.keys.mu.Lock()
	defer d.keys.mu.Unlock()
	k, ok := d.keys.m[subject]
	return slices.Clone(k), ok, nil
}

// CreateKey implements [driver.KeyStore].
func (d *Driver) CreateKey(_ context.Context, subject string, key []byte) ([]byte, error) {
	d.keys.mu.Lock()
	defer d.keys.mu.Unlock()
	if k, ok := d.keys.m[subject]; ok {
		return slices.Clone(k), nil
	}
	if d.keys.m == nil {
		d.keys.m = map[string][]byte{}
	}
	d.keys.m[subject] = slices.Clone(key)
	return slices.Clone(key), nil
}

// DeleteKey implements [driver.KeyStore]: it zeroes the key's bytes before
// dropping them.
func (d *Driver) DeleteKey(_ context.Context, subject string) error {
	d.keys.mu.Lock()
	defer d.keys.mu.Unlock()
	if k, ok := d.keys.m[subject]; ok {
		clear(k)
		delete(d.keys.m, subject)
	}
	return nil
}

// KeySubjects implements [driver.KeyStore].
func (d *Driver) KeySubjects(_ context.Context, after string, limit int) ([]string, error) {
	d.keys.mu.Lock()
	defer d.keys.mu.Unlock()
	var out []string
	for s := range d.keys.m {
		if s > after {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}
