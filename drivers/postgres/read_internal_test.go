package postgres

import (
	"testing"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadAllPagesAtTheirSize pins what the head row of a read of the log
// gives the client: an unfiltered page that the byte bound may cut is
// allocated once at its size (the statement's count, whether the page ends
// at its limit, at MaxBytes or at the end of the log), one that it cannot
// cut (not counted, see pageRows) at its limit, copied to its size when it
// ends under a quarter full (pageBuilder); and every page, filtered or not,
// holds the events in order, with nothing left out between pages.
func TestReadAllPagesAtTheirSize(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, _, _ := newTestDriver(t)
	// 25 events of 100 bytes, in streams of two categories.
	for i := range 25 {
		stream := "A-1"
		if i%5 == 0 {
			stream = "B-1"
		}
		_, err := d.Append(ctx, driver.AppendRequest{Stream: stream, Expected: driver.Expect(driver.ExpectAny, 0),
			Events:     []driver.Event{{ID: uuid.New(), Type: "T", Data: make([]byte, 100)}},
			RecordedAt: time.Now().UTC().Truncate(time.Microsecond)})
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		name      string
		q         driver.AllQuery
		sizes     []int // events per page
		exactCaps bool  // each page's capacity is its length
		uncounted bool  // each page's capacity is the limit, or its length under a quarter of it
	}{
		{"forwards, pages of 10", driver.AllQuery{Limit: 10}, []int{10, 10, 5}, false, true},
		{"backwards, pages of 10", driver.AllQuery{Limit: 10, Backwards: true}, []int{10, 10, 5}, false, true},
		{"forwards, pages of 12, the last under a quarter", driver.AllQuery{Limit: 12}, []int{12, 12, 1}, false, true},
		{"cut at MaxBytes", driver.AllQuery{Limit: 10, MaxBytes: 250}, []int{3, 3, 3, 3, 3, 3, 3, 3, 1}, true, false},
		{"counted: the limit times 4,096 bytes over MaxBytes", driver.AllQuery{Limit: 10, MaxBytes: 10*largeEventBytes - 1}, []int{10, 10, 5}, true, false},
		{"filtered on a category", driver.AllQuery{Limit: 3, Filter: driver.Filter{Categories: []string{"B"}}}, []int{3, 2}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			var sizes []int
			var last driver.Position
			for range 20 {
				page, err := d.ReadAll(ctx, q)
				require.NoError(t, err)
				if len(page) == 0 {
					break
				}
				sizes = append(sizes, len(page))
				switch {
				case tc.exactCaps:
					assert.Equal(t, len(page), cap(page), "capacity of page %d", len(sizes))
				case tc.uncounted && len(page) < q.Limit/4:
					assert.Equal(t, len(page), cap(page), "capacity of page %d", len(sizes))
				case tc.uncounted:
					assert.Equal(t, q.Limit, cap(page), "capacity of page %d", len(sizes))
				}
				for _, ev := range page {
					if !last.IsZero() {
						assert.Equal(t, !q.Backwards, last.Less(ev.Position), "order at %v after %v", ev.Position, last)
					}
					last = ev.Position
				}
				if q.Backwards {
					q.Before = last
				} else {
					q.After = last
				}
			}
			assert.Equal(t, tc.sizes, sizes, "events per page")
		})
	}
}

// TestJoinPages checks the room of a page read in two statements (below
// xmin, then fenced): the rules of pageBuilder, whichever part was counted.
func TestJoinPages(t *testing.T) {
	events := func(n, room int) []driver.RecordedEvent {
		page := make([]driver.RecordedEvent, n, room)
		for i := range page {
			page[i].Version = uint64(i + 1)
		}
		return page
	}
	for _, tc := range []struct {
		name             string
		first, rest      []driver.RecordedEvent
		wantLen, wantCap int
	}{
		{"counted first part: the page's size", events(4, 4), events(6, 6), 10, 10},
		{"uncounted first part: the limit", events(4, 10), events(3, 3), 7, 10},
		{"under a quarter of the limit: its size", events(1, 16), events(2, 2), 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := joinPages(tc.first, tc.rest)
			assert.Equal(t, tc.wantLen, len(page))
			assert.Equal(t, tc.wantCap, cap(page))
			for i := range tc.first {
				assert.Equal(t, tc.first[i].Version, page[i].Version)
			}
			for i := range tc.rest {
				assert.Equal(t, tc.rest[i].Version, page[len(tc.first)+i].Version)
			}
		})
	}
}
