package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/migrate"
	"github.com/stretchr/testify/assert"
)

// TestProgress drives the renderer with a fake clock: each step moves the
// clock, then reports stats (update), lets the ticker fire (tick) or ends
// (finish), and says what must have been written by that step.
func TestProgress(t *testing.T) {
	at := func(commit uint64) eventstore.Position { return eventstore.Position{Commit: commit} }
	type step struct {
		after  time.Duration // since the previous step
		action string        // "update", "tick" or "finish"
		stats  migrate.Stats
		want   string // written by this step
	}
	tests := []struct {
		name  string
		bar   bool
		total int
		steps []step
	}{
		{
			name: "plain lines: the first at once, then one a second, and a final one", total: 1000,
			steps: []step{
				{after: 500 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 100, Copied: 100, Last: at(100)},
					want: "progress read=100 copied=100 skipped=0 total=1000 rate=200/s eta=5s position=100/0\n"},
				{after: 300 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 200, Copied: 200, Last: at(200)}},
				{after: 700 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 300, Copied: 250, Skipped: 50, Last: at(300)},
					want: "progress read=300 copied=250 skipped=50 total=1000 rate=200/s eta=4s position=300/0\n"},
				{after: 1500 * time.Millisecond, action: "tick"}, // nothing new: no line
				{after: 100 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 400, Copied: 350, Skipped: 50, Last: at(400)},
					want: "progress read=400 copied=350 skipped=50 total=1000 rate=129/s eta=5s position=400/0\n"},
				{after: 200 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 1000, Copied: 950, Skipped: 50, Last: at(1000)}},
				{after: 0, action: "finish",
					want: "progress read=1000 copied=950 skipped=50 total=1000 rate=303/s eta=0s position=1000/0\n"},
			},
		},
		{
			name: "plain lines: a tick prints what changed since the last line", total: 10,
			steps: []step{
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 2, Copied: 2, Last: at(2)},
					want: "progress read=2 copied=2 skipped=0 total=10 rate=2/s eta=4s position=2/0\n"},
				{after: 100 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 4, Copied: 4, Last: at(4)}},
				{after: 500 * time.Millisecond, action: "tick"},
				{after: 500 * time.Millisecond, action: "tick",
					want: "progress read=4 copied=4 skipped=0 total=10 rate=2/s eta=3s position=4/0\n"},
			},
		},
		{
			name: "no rate yet, then a stall: eta unknown", total: 10,
			steps: []step{
				{after: 0, action: "update", stats: migrate.Stats{Read: 1, Copied: 1, Last: at(1)},
					want: "progress read=1 copied=1 skipped=0 total=10 rate=?/s eta=unknown position=1/0\n"},
				{after: 6 * time.Second, action: "update", stats: migrate.Stats{Read: 2, Copied: 1, Last: at(1)},
					want: "progress read=2 copied=1 skipped=0 total=10 rate=0/s eta=unknown position=1/0\n"},
			},
		},
		{
			name: "the rate looks back five seconds", total: 100000,
			steps: []step{
				// A fast resume pass, then a slow copy: the rate follows.
				{after: time.Second, action: "update", stats: migrate.Stats{Skipped: 50000},
					want: "progress read=0 copied=0 skipped=50000 total=100000 rate=50000/s eta=1s position=0/0\n"},
				{after: 2 * time.Second, action: "update", stats: migrate.Stats{Copied: 200, Skipped: 50000},
					want: "progress read=0 copied=200 skipped=50000 total=100000 rate=16733/s eta=3s position=0/0\n"},
				// Five seconds on, the fast pass is out of the window.
				{after: 5 * time.Second, action: "update", stats: migrate.Stats{Copied: 700, Skipped: 50000},
					want: "progress read=0 copied=700 skipped=50000 total=100000 rate=100/s eta=8m13s position=0/0\n"},
			},
		},
		{
			name: "live: at once when caught up, then what was copied since", total: 3,
			steps: []step{
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 3, Copied: 3, Last: at(3)},
					want: "progress read=3 copied=3 skipped=0 total=3 rate=3/s eta=0s position=3/0\n"},
				{after: 0, action: "update", stats: migrate.Stats{Read: 3, Copied: 3, Last: at(3), Live: true},
					want: "progress live read=3 copied=3 skipped=0 since_live=0 rate=3/s position=3/0\n"},
				{after: time.Second, action: "tick"},
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 5, Copied: 5, Last: at(7), Live: true},
					want: "progress live read=5 copied=5 skipped=0 since_live=2 rate=2/s position=7/0\n"},
				{after: 0, action: "update", stats: migrate.Stats{Read: 5, Copied: 5, Last: at(7), Live: true}},
				{after: 0, action: "finish"}, // the last line says it all
			},
		},
		{
			name: "empty source", total: 0,
			steps: []step{
				{after: 0, action: "finish", want: "progress read=0 copied=0 skipped=0 total=0 rate=?/s eta=0s position=0/0\n"},
			},
		},
		{
			name: "bar: redrawn in place at most ten times a second", bar: true, total: 1000,
			steps: []step{
				{after: 500 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 100, Copied: 100, Last: at(100)},
					want: "\r[##..................]  10.0%  100/1000 events  200 ev/s  ETA 5s  at 100/0\x1b[K"},
				{after: 50 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 110, Copied: 110, Last: at(110)}},
				{after: 50 * time.Millisecond, action: "tick",
					want: "\r[##..................]  11.0%  110/1000 events  183 ev/s  ETA 5s  at 110/0\x1b[K"},
				// A bar redraws on a tick even without news: the rate moves.
				{after: 400 * time.Millisecond, action: "tick",
					want: "\r[##..................]  11.0%  110/1000 events  110 ev/s  ETA 8s  at 110/0\x1b[K"},
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 1000, Copied: 500, Skipped: 500, Last: at(1000)},
					want: "\r[####################] 100.0%  1000/1000 events  500 ev/s  ETA 0s  at 1000/0\x1b[K"},
				{after: 0, action: "finish",
					want: "\r[####################] 100.0%  1000/1000 events  500 ev/s  ETA 0s  at 1000/0\x1b[K\n"},
			},
		},
		{
			name: "bar: live", bar: true, total: 2,
			steps: []step{
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 2, Skipped: 2, Last: at(2), Live: true},
					want: "\rlive: 0 events copied since caught up  2 ev/s  0 copied, 2 skipped  at 2/0\x1b[K"},
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 3, Copied: 1, Skipped: 2, Last: at(3), Live: true},
					want: "\rlive: 1 events copied since caught up  2 ev/s  1 copied, 2 skipped  at 3/0\x1b[K"},
				{after: 0, action: "finish",
					want: "\rlive: 1 events copied since caught up  2 ev/s  1 copied, 2 skipped  at 3/0\x1b[K\n"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
			var out strings.Builder
			p := newProgress(&out, tc.bar, func() time.Time { return now }, tc.total)
			for i, st := range tc.steps {
				now = now.Add(st.after)
				before := out.Len()
				switch st.action {
				case "update":
					p.update(st.stats)
				case "tick":
					p.tick()
				case "finish":
					p.finish()
				default:
					t.Fatalf("step %d: unknown action %q", i, st.action)
				}
				assert.Equalf(t, st.want, out.String()[before:], "step %d (%s)", i, st.action)
			}
		})
	}
}

func TestWritesToTerminal(t *testing.T) {
	assert.False(t, writesToTerminal(&strings.Builder{}), "a buffer")
	f, err := os.CreateTemp(t.TempDir(), "progress")
	if assert.NoError(t, err) {
		defer f.Close()
		assert.False(t, writesToTerminal(f), "a regular file")
	}
}
