package driver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPagePool checks that a page given back is cleared, that a later Get
// of no more than its room reuses its array, and that Get always returns an
// empty slice with the room asked for.
func TestPagePool(t *testing.T) {
	cases := []struct {
		name      string
		kept, get int
		reused    bool
	}{
		{"same size", 512, 512, true},
		{"smaller page", 4096, 100, true},
		{"larger page", 100, 512, false},
		{"too small to keep", minPooledPage - 1, minPooledPage - 1, false},
		{"too small to look", 512, minPooledPage - 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var pool PagePool
			// sync.Pool drops a quarter of what it is given under the race
			// detector: give back until a reuse shows, or often enough that
			// none would have.
			reused := false
			for range 50 {
				page := NewPageIn(pool.Get(c.kept), c.kept, 0)
				for v := range 3 {
					page.Add(RecordedEvent{StreamID: "s", Version: uint64(v + 1), Data: []byte("x")})
				}
				kept := page.Events
				pool.Put(kept)
				if c.kept >= minPooledPage {
					assert.Equal(t, make([]RecordedEvent, 3), kept[:3], "cleared")
				}
				got := pool.Get(c.get)
				require.Empty(t, got)
				require.GreaterOrEqual(t, cap(got), c.get)
				if cap(got) > 0 && &got[:1][0] == &kept[:1][0] {
					reused = true
					assert.Equal(t, RecordedEvent{}, got[:1][0])
					break
				}
			}
			assert.Equal(t, c.reused, reused)
		})
	}
}

// TestNewPageIn checks that a page started in room fills room's array.
func TestNewPageIn(t *testing.T) {
	room := make([]RecordedEvent, 0, 4)
	page := NewPageIn(room, 2, 0)
	assert.False(t, page.Add(RecordedEvent{Version: 1}))
	assert.True(t, page.Add(RecordedEvent{Version: 2}))
	assert.Same(t, &room[:1][0], &page.Events[0])
	assert.Equal(t, uint64(2), room[:2][1].Version)
}

// TestNilPagePool checks that a nil pool allocates and keeps nothing.
func TestNilPagePool(t *testing.T) {
	var pool *PagePool
	got := pool.Get(100)
	assert.Empty(t, got)
	assert.GreaterOrEqual(t, cap(got), 100)
	assert.NotPanics(t, func() { pool.Put(append(got, RecordedEvent{Version: 1})) })
}
