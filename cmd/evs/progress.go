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
// line, then "erase to the end of the line"), at most every barInterval:
//
//	[#########...........]  45.0%  4500/10000 events  5400 ev/s  ETA 1s  at 4512/0
//	live: 12 events copied since caught up  3 ev/s  10012 copied, 0 skipped  at 10024/0
//
// Elsewhere (a file, a pipe, a CI log) it prints plain lines, at most every
// lineInterval and once more at the end, in a stable key=value form:
//
//	progress read=4600 copied=4400 skipped=100 total=10000 rate=5400/s eta=1s position=4512/0
//	progress live read=10012 copied=10012 skipped=0 since_live=12 rate=3/s position=10024/0
//
// read counts the source events read so far, including some not yet written;
// copied+skipped is how far the copy has got, and what the percentage, rate
// and ETA are computed from. eta is "unknown" until there is a rate.
const (
	barInterval  = 100 * time.Millisecond
	lineInterval = time.Second
	// rateWindow is how far back the rate looks: long enough to smooth
	// batches out, short enough to follow a change of pace (a rerun skips
	// fast, then copies at the destination's speed).
	rateWindow = 5 * time.Second
)

// writesToTerminal reports whether w is a terminal (a character device).
func writesToTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress renders migrate.Stats. Its methods may be called from several
// goroutines (Copy's Progress callback and a ticker).
type progress struct {
	w        io.Writer
	bar      bool             // a redrawn line on a terminal, else plain lines
	now      func() time.Time // the clock; time.Now outside tests
	interval time.Duration

	mu sync.Mutex // protects everything below
	// total is the number of source events counted before the copy.
	total   int
	stats   migrate.Stats
	changed bool // stats changed since the last draw
	drawn   time.Time
	// samples of (time, events done) within rateWindow, oldest first; the
	// first one is the start.
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

func newProgress(w io.Writer, bar bool, now func() time.Time, total int) *progress {
	p := &progress{w: w, bar: bar, now: now, total: total, interval: lineInterval}
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
	first := done(s) > 0 && done(p.stats) == 0 && p.drawn.IsZero()
	becameLive := s.Live && !p.live
	if becameLive {
		p.live, p.liveFrom = true, s.Copied
	}
	p.changed = p.changed || s != p.stats
	p.stats = s
	now := p.now()
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
		line = "\r" + p.barLine(rate) + "\x1b[K"
		p.lineOpen = true
	} else {
		line = p.plainLine(rate) + "\n"
	}
	io.WriteString(p.w, line)
	p.drawn = now
	p.changed = false
}

// rate returns events done per second over the last rateWindow, recording a
// sample for now; -1 when it cannot be told yet.
func (p *progress) rate(now time.Time) float64 {
	d := done(p.stats)
	p.samples = append(p.samples, sample{now, d})
	// Keep the newest sample older than the window as the base, so the
	// window is always covered.
	for len(p.samples) > 2 && now.Sub(p.samples[1].at) >= rateWindow {
		p.samples = p.samples[1:]
	}
	base := p.samples[0]
	elapsed := now.Sub(base.at).Seconds()
	if elapsed <= 0 {
		return -1
	}
	return float64(d-base.done) / elapsed
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

func (p *progress) barLine(rate float64) string {
	s := p.stats
	if p.live {
		return fmt.Sprintf("live: %d events copied since caught up  %s ev/s  %d copied, %d skipped  at %s",
			s.Copied-p.liveFrom, formatRate(rate), s.Copied, s.Skipped, s.Last)
	}
	const width = 20
	frac := p.fraction()
	filled := int(frac * width)
	return fmt.Sprintf("[%s%s] %5.1f%%  %d/%d events  %s ev/s  ETA %s  at %s",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), frac*100,
		done(s), p.total, formatRate(rate), p.eta(rate), s.Last)
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

// formatRate prints a rate as a whole number, "?" when unknown.
func formatRate(rate float64) string {
	if rate < 0 {
		return "?"
	}
	return strconv.FormatInt(int64(rate+0.5), 10)
}
