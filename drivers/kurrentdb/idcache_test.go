package kurrentdb

import (
	"encoding/binary"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
)

// idAt is the event ID the cache tests put at version v.
func idAt(v uint64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[8:], v)
	return id
}

// idsFrom returns the IDs of versions first..last.
func idsFrom(first, last uint64) []uuid.UUID {
	ids := make([]uuid.UUID, 0, last-first+1)
	for v := first; v <= last; v++ {
		ids = append(ids, idAt(v))
	}
	return ids
}

// The cache answers the check before an Exact(n) append from the last
// retryWindow versions up to n, and says what to read when it cannot.
func TestIDCacheCheck(t *testing.T) {
	type learned struct{ first, last uint64 }
	other := uuid.New()
	for _, tc := range []struct {
		name    string
		learned []learned // in order
		n       uint64    // the append expects Exact(n)
		id      uuid.UUID // the batch's first ID
		found   bool
		next    uint64 // the first version to read, when not done
		done    bool
	}{
		{"UnknownStream", nil, 10, idAt(3), false, 1, false},
		{"UnknownLongStream", nil, 1000, idAt(3), false, 1000 - retryWindow + 1, false},
		{"AtTheEndFound", []learned{{1, 10}}, 10, idAt(3), true, 0, true},
		{"AtTheEndNotFound", []learned{{1, 10}}, 10, other, false, 0, true},
		{"PastTheEndReadsOnlyTheRest", []learned{{1, 10}}, 12, idAt(3), true, 11, false},
		{"StreamPastNLeftToTheServer", []learned{{1, 10}}, 9, idAt(3), false, 0, true},
		{"LongReadKeepsTheWindow", []learned{{1, 1000}}, 1000, idAt(1000 - retryWindow + 1), true, 0, true},
		{"LongReadForgetsBeforeTheWindow", []learned{{1, 1000}}, 1000, idAt(1000 - retryWindow), false, 0, true},
		{"LaterRangeWithAGapReplaces", []learned{{1, 10}, {700, 1010}}, 1010, idAt(1005), true, 0, true},
		{"ReplacedRangeIsForgotten", []learned{{1, 10}, {20, 30}}, 30, idAt(3), false, 1, false},
		{"EarlierRangeWithAGapIgnored", []learned{{20, 30}, {1, 10}}, 30, idAt(3), false, 1, false},
		{"EarlierRangeThatJoinsExtends", []learned{{5, 10}, {1, 7}}, 10, idAt(2), true, 0, true},
		{"AppendOnlyMidStreamReadsTheWindow", []learned{{500, 502}}, 502, idAt(501), false, 502 - retryWindow + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newIDCache(idCacheLimit)
			for _, l := range tc.learned {
				c.learn("s", l.first, idsFrom(l.first, l.last))
			}
			found, next, done := c.check("s", tc.n, windowStart(tc.n), tc.id)
			assert.Equal(t, tc.found, found, "found")
			assert.Equal(t, tc.done, done, "done")
			if !tc.done {
				assert.Equal(t, tc.next, next, "next")
			}
		})
	}
}

// Appends one at a time keep between retryWindow and twice as many IDs.
func TestIDCacheStaysBounded(t *testing.T) {
	c := newIDCache(idCacheLimit)
	for v := uint64(1); v <= 10*retryWindow; v++ {
		c.learn("s", v, []uuid.UUID{idAt(v)})
		held := c.size
		assert.LessOrEqual(t, held, 2*retryWindow)
		assert.GreaterOrEqual(t, held, int(min(v, retryWindow)))
	}
	found, _, done := c.check("s", 10*retryWindow, windowStart(10*retryWindow), idAt(9*retryWindow+1))
	assert.True(t, found && done)

	// An ID held twice stays found when its older copy is forgotten.
	d := newIDCache(idCacheLimit)
	ids := idsFrom(1, 2*retryWindow)
	ids[len(ids)-1] = ids[0]
	d.learn("s", 1, ids)
	d.learn("s", 2*retryWindow+1, []uuid.UUID{idAt(2*retryWindow + 1)}) // trims
	found, _, done = d.check("s", 2*retryWindow+1, windowStart(2*retryWindow+1), ids[0])
	assert.True(t, found && done)

	// Streams used least recently are forgotten first.
	e := newIDCache(10)
	e.learn("a", 1, idsFrom(1, 6))
	e.learn("b", 1, idsFrom(1, 6))
	known, _ := e.before("a", uuid.New())
	assert.Zero(t, known, "a forgotten")
	known, _ = e.before("b", uuid.New())
	assert.Equal(t, uint64(6), known)
}
