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
					want: "progress read=2 copied=2 skipped=0 total=10 rate=2.0/s eta=4s position=2/0\n"},
				{after: 100 * time.Millisecond, action: "update", stats: migrate.Stats{Read: 4, Copied: 4, Last: at(4)}},
				{after: 500 * time.Millisecond, action: "tick"},
				{after: 500 * time.Millisecond, action: "tick",
					want: "progress read=4 copied=4 skipped=0 total=10 rate=1.9/s eta=3s position=4/0\n"},
			},
		},
		{
			name: "no rate yet, then a stall: eta unknown", total: 10,
			steps: []step{
				{after: 0, action: "update", stats: migrate.Stats{Read: 1, Copied: 1, Last: at(1)},
					want: "progress read=1 copied=1 skipped=0 total=10 rate=?/s eta=unknown position=1/0\n"},
				{after: 6 * time.Second, action: "update", stats: migrate.Stats{Read: 2, Copied: 1, Last: at(1)},
					want: "progress read=2 copied=1 skipped=0 total=10 rate=0.0/s eta=unknown position=1/0\n"},
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
			name: "live: at once when caught up, then what was copied since, at the rate since", total: 3,
			steps: []step{
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 3, Copied: 3, Last: at(3)},
					want: "progress read=3 copied=3 skipped=0 total=3 rate=3.0/s eta=0s position=3/0\n"},
				{after: 0, action: "update", stats: migrate.Stats{Read: 3, Copied: 3, Last: at(3), Live: true},
					want: "progress live read=3 copied=3 skipped=0 since_live=0 rate=?/s position=3/0\n"},
				{after: time.Second, action: "tick"},
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 5, Copied: 5, Last: at(7), Live: true},
					want: "progress live read=5 copied=5 skipped=0 since_live=2 rate=1.0/s position=7/0\n"},
				{after: 0, action: "update", stats: migrate.Stats{Read: 5, Copied: 5, Last: at(7), Live: true}},
				{after: 0, action: "finish"}, // the last line says it all
			},
		},
		{
			name: "live: the rate is the current one, not an average since the last line", total: 100000,
			steps: []step{
				// A fast catch-up, then a live trickle.
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 100000, Copied: 100000, Last: at(100000)},
					want: "progress read=100000 copied=100000 skipped=0 total=100000 rate=100000/s eta=0s position=100000/0\n"},
				{after: 0, action: "update", stats: migrate.Stats{Read: 100000, Copied: 100000, Last: at(100000), Live: true},
					want: "progress live read=100000 copied=100000 skipped=0 since_live=0 rate=?/s position=100000/0\n"},
				{after: 2 * time.Second, action: "update", stats: migrate.Stats{Read: 100004, Copied: 100004, Last: at(100004), Live: true},
					want: "progress live read=100004 copied=100004 skipped=0 since_live=4 rate=2.0/s position=100004/0\n"},
				// A minute without events: no line (nothing changed), then one
				// event: the rate looks back five seconds, not to the last line.
				{after: time.Minute, action: "tick"},
				{after: 0, action: "update", stats: migrate.Stats{Read: 100005, Copied: 100005, Last: at(100005), Live: true},
					want: "progress live read=100005 copied=100005 skipped=0 since_live=5 rate=0.2/s position=100005/0\n"},
				// A burst of 50 in five seconds reads 10/s, whatever came before.
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 100030, Copied: 100030, Last: at(100030), Live: true},
					want: "progress live read=100030 copied=100030 skipped=0 since_live=30 rate=5.2/s position=100030/0\n"},
				{after: 4 * time.Second, action: "update", stats: migrate.Stats{Read: 100055, Copied: 100055, Last: at(100055), Live: true},
					want: "progress live read=100055 copied=100055 skipped=0 since_live=55 rate=10/s position=100055/0\n"},
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
					want: "\r[####################]  100.0%  1000/1000 events  500 ev/s  ETA 0s  at 1000/0\x1b[K"},
				{after: 0, action: "finish",
					want: "\r[####################]  100.0%  1000/1000 events  500 ev/s  ETA 0s  at 1000/0\x1b[K\n"},
			},
		},
		{
			name: "bar: live", bar: true, total: 2,
			steps: []step{
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 2, Skipped: 2, Last: at(2), Live: true},
					want: "\rlive: 0 new events  ? ev/s  0 copied, 2 skipped  at 2/0\x1b[K"},
				{after: time.Second, action: "update", stats: migrate.Stats{Read: 3, Copied: 1, Skipped: 2, Last: at(3), Live: true},
					want: "\rlive: 1 new event  1.0 ev/s  1 copied, 2 skipped  at 3/0\x1b[K"},
				{after: 0, action: "finish",
					want: "\rlive: 1 new event  1.0 ev/s  1 copied, 2 skipped  at 3/0\x1b[K\n"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
			var out strings.Builder
			p := newProgress(&out, tc.bar, func() time.Time { return now }, tc.total)
			p.width = func() int { return 80 }
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

// The bar fits the terminal: never longer than its width minus one column
// (a full-width line would wrap on some terminals, and a wrapped line cannot
// be redrawn in place). Fields go, least useful first, as the width shrinks.
func TestProgressWidth(t *testing.T) {
	at := func(commit uint64) eventstore.Position { return eventstore.Position{Commit: commit} }
	catchUp := migrate.Stats{Read: 45500, Copied: 45000, Skipped: 321, Last: at(45321)}
	live := migrate.Stats{Read: 1234567, Copied: 1234567, Last: at(1234567), Live: true}
	tests := []struct {
		name  string
		width int
		stats migrate.Stats
		want  string
	}{
		{"catch-up, 120 columns", 120, catchUp, "[#########...........]  45.3%  45321/100000 events  15107 ev/s  ETA 4s  at 45321/0"},
		{"catch-up, 80 columns", 80, catchUp, "[#######..........]  45.3%  45321/100000 events  15107 ev/s  ETA 4s  at 45321/0"},
		{"catch-up, 60 columns", 60, catchUp, "45.3%  45321/100000 events  15107 ev/s  ETA 4s  at 45321/0"},
		{"catch-up, 40 columns", 40, catchUp, "45.3%  45321/100000 events  ETA 4s"},
		{"catch-up, 20 columns", 20, catchUp, "45.3%  ETA 4s"},
		{"catch-up, 5 columns", 5, catchUp, "45.3"},
		{"live, 120 columns", 120, live, "live: 1134567 new events  378189 ev/s  1234567 copied, 0 skipped  at 1234567/0"},
		{"live, 80 columns", 80, live, "live: 1134567 new events  378189 ev/s  1234567 copied, 0 skipped  at 1234567/0"},
		{"live, 40 columns", 40, live, "live: 1134567 new events  378189 ev/s"},
		{"live, 30 columns", 30, live, "live: 1134567 new events"},
		{"live, 20 columns", 20, live, "live: 1134567 new e"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
			var out strings.Builder
			p := newProgress(&out, true, func() time.Time { return now }, 100000)
			p.width = func() int { return tc.width }
			if tc.stats.Live {
				now = now.Add(time.Second)
				p.update(migrate.Stats{Read: 100000, Copied: 100000, Last: at(100000), Live: true})
			}
			now = now.Add(3 * time.Second)
			out.Reset()
			p.update(tc.stats)
			line := out.String()
			assert.True(t, strings.HasPrefix(line, "\r") && strings.HasSuffix(line, "\x1b[K"), "redrawn in place: %q", line)
			line = strings.TrimSuffix(strings.TrimPrefix(line, "\r"), "\x1b[K")
			assert.Equal(t, tc.want, line)
			assert.LessOrEqual(t, len(line), tc.width-1, "the line fits in %d columns", tc.width)
		})
	}
}

func TestTerminalWidth(t *testing.T) {
	t.Setenv("COLUMNS", "")
	assert.Equal(t, 80, terminalWidth(&strings.Builder{}), "not a terminal, no $COLUMNS: the default")
	t.Setenv("COLUMNS", "132")
	assert.Equal(t, 132, terminalWidth(&strings.Builder{}))
	assert.Equal(t, 132, terminalWidth(&termWriter{w: &strings.Builder{}}))
	t.Setenv("COLUMNS", "wide")
	assert.Equal(t, 80, terminalWidth(&strings.Builder{}))
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 events", 1: "1 event", 2: "2 events", -1: "-1 events"} {
		assert.Equal(t, want, plural(n, "event", "events"))
	}
}
