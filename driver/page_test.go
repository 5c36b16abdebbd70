package driver

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPage checks that a page filled with Add and one filled in place with
// Next and Added hold the same events and are full at the same one, by
// Limit and by MaxBytes.
func TestPage(t *testing.T) {
	events := []RecordedEvent{
		{StreamID: "a", Version: 1, Data: []byte("12345")},
		{StreamID: "a", Version: 2, Data: []byte("12"), Metadata: []byte(`{}`)},
		{StreamID: "b", Version: 1},
	}
	cases := []struct {
		name            string
		limit, maxBytes int
		fullAt          int // index of the event that fills the page; -1: none
	}{
		{"by limit", 2, 0, 1},
		{"by bytes", 10, 9, 1},
		{"by bytes at once", 10, 5, 0},
		{"not full", 10, 100, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			added, inPlace := NewPage(c.limit, c.maxBytes), NewPage(c.limit, c.maxBytes)
			fullAt := -1
			for i, ev := range events {
				full := added.Add(ev)
				*inPlace.Next() = ev
				assert.Equal(t, full, inPlace.Added(), "event %d", i)
				if full {
					fullAt = i
					break
				}
			}
			assert.Equal(t, c.fullAt, fullAt)
			assert.Equal(t, added.Events, inPlace.Events)
			assert.Equal(t, added.Full(), inPlace.Full())
		})
	}
}
