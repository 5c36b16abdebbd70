package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventstore/migrate"
)

// Progress display of evs migrate, on standard error.
//
// On a terminal it is one line redrawn in place (a carriage return, then the
// line, then "erase to the end of the line"), at most every barInterval.
// The line fits the terminal's width, read at each draw (so a resize is
// followed): it is never longer than the width minus one column, so it never
// wraps, which would break the redraw. Fields are dropped, least useful
// first, when the width is short. At 80 columns:
//
//	[####################]  45.0%  4500/10000 events  5400 ev/s  ETA 1s  at 4512/0
//	live: 12 new events  3.0 ev/s  10012 copied, 0 skipped  at 10024/0
//
// Elsewhere (a file, a pipe, a CI log) it prints plain lines, at most every
// lineInterval and once more at the end, in a stable key=value form:
//
//	progress read=4600 copied=4400 skipped=100 total=10000 rate=5400/s eta=1s position=4512/0
//	progress live read=10012 copied=10012 skipped=0 since_live=12 rate=3.0/s position=10024/0
//
// read counts the source events read so far, including some not yet written;
// copied+skipped is how far the copy has got, and what the percentage, rate
// and ETA are computed from. The rate is the current one: the events done in
// the last rateWindow, divided by the window (or by the time since the
// start, when that is shorter). Once the copy has caught up (live), the
// window starts again, so the live rate never includes the catch-up. It
// shows "?" and eta "unknown" until they can be told.
const (
	barInterval  = 100 * time.Millisecond
	lineInterval = time.Second
	// rateWindow is how far back the rate looks: long enough to smooth
	// batches out, short enough to follow a change of pace (a rerun skips
	// fast, then copies at the destination's speed).
	rateWindow = 5 * time.Second
	// defaultWidth is the terminal width assumed when it cannot be read.
	defaultWidth = 80
)

// writesToTerminal reports whether w is a terminal (a character device).
func writesToTerminal(w io.Writer) bool {
	f, ok := rawWriter(w).(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// terminalWidth returns the width of the terminal w writes to, in columns:
// from the terminal itself, else from $COLUMNS, else defaultWidth.
func terminalWidth(w io.Writer) int {
	if f, ok := rawWriter(w).(*os.File); ok {
		if n, err := fileWidth(f); err == nil && n > 0 {
			return n
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return defaultWidth
}

// progress renders migrate.Stats. Its methods may be called from several
// goroutines (Copy's Progress callback and a ticker).
type progress struct {
	w        io.Writer        // the raw writer: the bar's control sequences go out as they are
	bar      bool             // a redrawn line on a terminal, else plain lines
	now      func() time.Time // the clock; time.Now outside tests
	width    func() int       // the terminal's width in columns, for the bar
	interval time.Duration

	mu sync.Mutex // protects everything below
	// total is the number of source events counted before the copy.
	total   int
	stats   migrate.Stats
	changed bool // stats changed since the last draw
	drawn   time.Time
	// samples of (time, events done), oldest first: the first is the
	// start (of the copy, or of live mode), and at most one is older than
	// rateWindow. Every update adds one, so the count at any time is known.
	samples []sample
	// liveFrom is Copied when the copy caught up (Stats.Live became true).
	liveFrom int
	live     bool
	// lineOpen: the bar is on screen without a newline after it.
	lineOpen bool
}

type sample struct {
	at   time.Time
	done int
}

// newProgress returns a progress display on w: a bar if bar is true (w is a
// terminal), else plain lines. now is the clock and total the number of
// events to copy.
func newProgress(w io.Writer, bar bool, now func() time.Time, total int) *progress {
	raw := rawWriter(w)
	p := &progress{w: raw, bar: bar, now: now, total: total, interval: lineInterval,
		width: func() int { return terminalWidth(raw) }}
	if bar {
		p.interval = barInterval
	}
	p.samples = []sample{{at: now()}}
	return p
}

// update records s and draws it if the last draw is older than the interval.
// The first update with events done draws at once, and so does the switch
// to live: a reader sees that the copy started and that it caught up without
// waiting for the next tick.
func (p *progress) update(s migrate.Stats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	first := done(s) > 0 && done(p.stats) == 0 && p.drawn.IsZero()
	becameLive := s.Live && !p.live
	if becameLive {
		p.live, p.liveFrom = true, s.Copied
		// The live rate starts from here: the catch-up is not part of it.
		p.samples = p.samples[:0]
	}
	p.changed = p.changed || s != p.stats
	p.stats = s
	p.sample(now)
	if first || becameLive || now.Sub(p.drawn) >= p.interval {
		p.draw(now)
	}
}

// tick redraws when the interval has passed: a bar always (its rate and ETA
// move on), plain lines only when something changed.
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.drawn) < p.interval || !p.bar && !p.changed {
		return
	}
	p.draw(now)
}

// finish draws the final state, unless the last plain line already shows
// it, and, on a terminal, ends the line, so that what is printed next starts
// on a line of its own.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar || p.changed || p.drawn.IsZero() {
		p.draw(p.now())
	}
	p.endLine()
}

// endLine ends a bar left on screen. Messages printed while the bar shows
// call it first.
func (p *progress) endLine() {
	if p.lineOpen {
		io.WriteString(p.w, "\n")
		p.lineOpen = false
	}
}

func done(s migrate.Stats) int { return s.Copied + s.Skipped }

// draw writes the current state. p.mu is held.
func (p *progress) draw(now time.Time) {
	rate := p.rate(now)
	var line string
	if p.bar {
		width := defaultWidth
		if p.width != nil {
			if w := p.width(); w > 0 {
				width = w
			}
		}
		line = "\r" + p.barLine(rate, width-1) + "\x1b[K"
		p.lineOpen = true
	} else {
		line = p.plainLine(rate) + "\n"
	}
	io.WriteString(p.w, line)
	p.drawn = now
	p.changed = false
}

// sample records the events done now and forgets the samples the rate no
// longer needs. p.mu is held.
func (p *progress) sample(now time.Time) {
	p.samples = append(p.samples, sample{now, done(p.stats)})
	// Keep the newest sample at or before the window's start: the count
	// there is the base.
	for len(p.samples) > 1 && !p.samples[1].at.After(now.Add(-rateWindow)) {
		p.samples = p.samples[1:]
	}
}

// rate returns events done per second over the last rateWindow (over the
// time since the first sample, if shorter); -1 when it cannot be told yet.
// p.mu is held.
func (p *progress) rate(now time.Time) float64 {
	p.sample(now)
	from := p.samples[0].at
	if start := now.Add(-rateWindow); from.Before(start) {
		from = start
	}
	elapsed := now.Sub(from).Seconds()
	if elapsed <= 0 {
		return -1
	}
	return float64(done(p.stats)-p.samples[0].done) / elapsed
}

func (p *progress) plainLine(rate float64) string {
	s := p.stats
	var b strings.Builder
	b.WriteString("progress")
	if p.live {
		b.WriteString(" live")
	}
	fmt.Fprintf(&b, " read=%d copied=%d skipped=%d", s.Read, s.Copied, s.Skipped)
	if p.live {
		fmt.Fprintf(&b, " since_live=%d", s.Copied-p.liveFrom)
	} else {
		fmt.Fprintf(&b, " total=%d", p.total)
	}
	fmt.Fprintf(&b, " rate=%s/s", formatRate(rate))
	if !p.live {
		fmt.Fprintf(&b, " eta=%s", p.eta(rate))
	}
	fmt.Fprintf(&b, " position=%s", s.Last)
	return b.String()
}

// Bar widths, in columns.
const (
	maxBar = 20
	minBar = 10
)

// barLine returns the bar's text, at most maxLen columns (all of it is ASCII:
// a byte is a column).
func (p *progress) barLine(rate float64, maxLen int) string {
	s := p.stats
	type field struct {
		text string
		rank int // the field kept first is rank 0
	}
	var fields []field
	barAt := -1 // index in fields of the bar, which takes the room left
	if p.live {
		fields = []field{
			{"live: " + plural(s.Copied-p.liveFrom, "new event", "new events"), 0},
			{formatRate(rate) + " ev/s", 1},
			{fmt.Sprintf("%d copied, %d skipped", s.Copied, s.Skipped), 3},
			{"at " + s.Last.String(), 2},
		}
	} else {
		frac := p.fraction()
		noun := "events"
		if p.total == 1 {
			noun = "event"
		}
		barAt = 0
		fields = []field{
			{"", 5}, // the bar
			{fmt.Sprintf("%.1f%%", frac*100), 0},
			{fmt.Sprintf("%d/%d %s", done(s), p.total, noun), 1},
			{formatRate(rate) + " ev/s", 3},
			{"ETA " + p.eta(rate), 2},
			{"at " + s.Last.String(), 4},
		}
	}
	const sep = "  "
	// Keep the fields by rank while they fit, the bar last.
	keep := make([]bool, len(fields))
	used := 0
	for rank := range len(fields) {
		for i, f := range fields {
			if f.rank != rank || i == barAt {
				continue
			}
			n := len(f.text)
			if used > 0 {
				n += len(sep)
			}
			switch {
			case used+n <= maxLen:
				keep[i], used = true, used+n
			case rank == 0:
				// The one field that must show does not fit: show
				// what does of it, alone.
				return f.text[:max(maxLen, 0)]
			}
		}
	}
	if barAt >= 0 {
		room := maxLen - used - len(sep) - 2 // the brackets
		if used == 0 {
			room = maxLen - 2
		}
		if n := min(room, maxBar); n >= minBar {
			filled := int(p.fraction() * float64(n))
			fields[barAt].text = "[" + strings.Repeat("#", filled) + strings.Repeat(".", n-filled) + "]"
			keep[barAt] = true
		}
	}
	var b strings.Builder
	for i, f := range fields {
		if !keep[i] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(f.text)
	}
	return b.String()
}

// fraction is how much of the counted total is done, in [0, 1]. Events
// appended to the source after the count can take done past the total.
func (p *progress) fraction() float64 {
	if p.total <= 0 {
		return 1
	}
	return min(float64(done(p.stats))/float64(p.total), 1)
}

// eta is the time left at rate, rounded to the second, or "unknown".
func (p *progress) eta(rate float64) string {
	left := p.total - done(p.stats)
	switch {
	case left <= 0:
		return "0s"
	case rate <= 0:
		return "unknown"
	}
	return time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second).String()
}

// formatRate prints a rate: "?" when unknown, with one decimal below 10
// (a live copy may run at a few events a second), else a whole number.
func formatRate(rate float64) string {
	switch {
	case rate < 0:
		return "?"
	case rate < 9.95:
		return strconv.FormatFloat(rate, 'f', 1, 64)
	}
	return strconv.FormatInt(int64(rate+0.5), 10)
}
