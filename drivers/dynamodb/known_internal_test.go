package dynamodb

import (
	"fmt"
	"testing"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
)

func knownEvents(n int) []driver.Event {
	events := make([]driver.Event, n)
	for i := range events {
		events[i] = driver.Event{ID: uuid.New(), Type: "T"}
	}
	return events
}

// TestKnownStreams checks what knownStreams answers after each kind of
// append, and that it stays within its bounds.
func TestKnownStreams(t *testing.T) {
	var k knownStreams
	one, two := knownEvents(2), knownEvents(1)
	k.appended("s", 1, one) // a new stream: every ID known
	k.appended("s", 3, two)
	other := uuid.New()
	cases := []struct {
		name     string
		stream   string
		expected uint64
		id       uuid.UUID
		want     bool
	}{
		{"at Exact(0), never", "x", 0, other, false},
		{"an unknown stream", "x", 3, other, true},
		{"the known end, a new ID", "s", 3, other, false},
		{"the known end, an ID of the stream", "s", 3, one[1].ID, true},
		{"short of the known end", "s", 2, other, true},
		{"past the known end", "s", 4, other, true},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, k.lookupNeeded(c.stream, c.expected, c.id), c.name)
	}
	assert.True(t, k.exists("s", 3))
	assert.False(t, k.exists("s", 4))

	// Another writer's events in between: versions known, IDs not.
	k.appended("s", 5, knownEvents(1))
	assert.True(t, k.lookupNeeded("s", 5, other), "after a gap in what the driver wrote")
	assert.True(t, k.exists("s", 5))
	assert.Equal(t, 0, k.ids, "IDs held once the stream's are dropped")

	// A stream appended to first at a later version: versions only.
	k.appended("t", 7, knownEvents(1))
	assert.True(t, k.lookupNeeded("t", 7, other))
	assert.True(t, k.exists("t", 6))

	// Bounds: streams and IDs.
	var b knownStreams
	for i := range maxKnownStreams + 10 {
		b.appended(fmt.Sprint("s", i), 1, knownEvents(1))
	}
	assert.LessOrEqual(t, len(b.streams), maxKnownStreams)
	assert.Equal(t, len(b.streams), b.ids)
	var c knownStreams
	c.appended("big", 1, knownEvents(maxKnownIDs))
	c.appended("big", maxKnownIDs+1, knownEvents(1))
	assert.Zero(t, c.ids, "a stream past the bound alone keeps no IDs")
	assert.True(t, c.lookupNeeded("big", maxKnownIDs+1, other))
	assert.True(t, c.exists("big", maxKnownIDs+1))
}
