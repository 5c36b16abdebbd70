package conformance

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md for concurrent appenders: with the same
// expectation exactly one wins; versions never repeat and never skip; the
// events of one append stay contiguous in the global log. The rules release
// goroutines together through a closed channel and check invariants, never
// durations.

func init() { ruleSets = append(ruleSets, concurrencyRules) }

func concurrencyRules() []rule {
	return []rule{
		{name: "ConcurrentExactAppendsHaveOneWinner", run: testConcurrentExact},
		{name: "ConcurrentAnyAppendsAllWin", run: testConcurrentAny},
		{name: "ConcurrentAppendsToDistinctStreams", run: testConcurrentDistinctStreams},
	}
}

const (
	appenders = 8 // goroutines racing in the concurrency rules
	// raceTimeout only turns a hung driver into a failure; nothing is timed.
	raceTimeout = 2 * time.Minute
)

// appendOutcome is what one racing Append returned.
type appendOutcome struct {
	appender int
	batch    []eventstore.Event
	res      eventstore.AppendResult
	err      error
}

// race runs do(i) for i in [0, n) in n goroutines released at once and
// returns their outcomes, in the order they finished.
func race(t *testing.T, n int, do func(i int) appendOutcome) []appendOutcome {
	t.Helper()
	gate := make(chan struct{})
	done := make(chan appendOutcome, n)
	for i := range n {
		go func() {
			<-gate
			done <- do(i)
		}()
	}
	close(gate)
	out := make([]appendOutcome, 0, n)
	for range n {
		out = append(out, waitFor(t, done, raceTimeout, fmt.Sprintf("%d racing appends to return (%d did)", n, len(out))))
	}
	return out
}

func testConcurrentExact(t *testing.T, f *fixture) {
	const rounds = 5
	s := stream("")
	var version uint64
	var want []string // IDs of the winning batches, in order
	for round := range rounds {
		exp := eventstore.Exact(version)
		outs := race(t, appenders, func(i int) appendOutcome {
			batch := events(1+i%3, "Raced")
			res, err := f.store.Append(f.ctx, s, exp, batch...)
			return appendOutcome{appender: i, batch: batch, res: res, err: err}
		})
		var winner *appendOutcome
		for _, o := range outs {
			doing := fmt.Sprintf("round %d: %d appenders race at %s to a stream at version %d; appender %d", round, appenders, expectationName(exp), version, o.appender)
			switch {
			case o.err == nil && winner != nil:
				t.Fatalf("%s also succeeded (version %d) after appender %d did (version %d): want exactly one winner",
					doing, o.res.Version, winner.appender, winner.res.Version)
			case o.err == nil:
				winner = &o
			case !errors.Is(o.err, eventstore.ErrWrongExpectedVersion):
				t.Fatalf("%s: want success or ErrWrongExpectedVersion, got %v", doing, o.err)
			default:
				var wev *eventstore.WrongExpectedVersionError
				if !errors.As(o.err, &wev) || wev.Stream != s || wev.Expected != exp || wev.Actual <= version {
					t.Errorf("%s lost: want a *WrongExpectedVersionError for %q at %s with an actual version above %d, got %#v",
						doing, s, expectationName(exp), version, wev)
				}
			}
		}
		if winner == nil {
			t.Fatalf("round %d: %d appenders race at %s to a stream at version %d: want one winner, got none", round, appenders, expectationName(exp), version)
		}
		n := uint64(len(winner.batch))
		if winner.res.Version != version+n || winner.res.FirstVersion() != version+1 {
			t.Errorf("round %d: the winner appended %d events at %s: want version %d and first version %d, got %d and %d",
				round, n, expectationName(exp), version+n, version+1, winner.res.Version, winner.res.FirstVersion())
		}
		for _, o := range outs {
			if o.err != nil {
				var wev *eventstore.WrongExpectedVersionError
				if errors.As(o.err, &wev) && wev.Actual > version+n {
					t.Errorf("round %d: appender %d lost and reported actual version %d, beyond the stream's %d", round, o.appender, wev.Actual, version+n)
				}
			}
		}
		version += n
		want = append(want, idsOfEvents(winner.batch)...)
	}
	doing := fmt.Sprintf("%d rounds of %d appenders racing at the same expected version", rounds, appenders)
	f.checkStreamIDs(doing, s, want)
	if got := idsOf(f.readAll()); !sameIDs(got, want) {
		t.Errorf("%s: read all returned %d events, want exactly the %d events of the winners in order", doing, len(got), len(want))
	}
}

func testConcurrentAny(t *testing.T, f *fixture) {
	// Contention beyond the usual appenders too: a driver that retries a
	// lost race a fixed number of times fails some of them.
	testConcurrentAnyN(t, f, appenders, eventstore.Any)
	testConcurrentAnyN(t, f, appenders, eventstore.StreamExists)
	testConcurrentAnyN(t, f, 3*appenders, eventstore.Any)
}

// testConcurrentAnyN races appenders goroutines, each appending batches at
// exp to one stream.
func testConcurrentAnyN(t *testing.T, f *fixture, appenders int, exp eventstore.ExpectedVersion) {
	const perAppender, batchSize = 5, 2
	t.Run(fmt.Sprintf("%s/appenders=%d", expectationName(exp), appenders), func(t *testing.T) {
		f := f.sub(t)
		f.store = f.newStore() // the rule counts the whole log
		s := stream("")
		var prior uint64
		if exp == eventstore.StreamExists {
			prior = f.mustAppend(s, eventstore.NoStream, events(1, "First")...).Version
		}
		// written[i] holds appender i's batches with the first version
		// each append reported.
		type writtenBatch struct {
			ids   []string
			first uint64
		}
		written := make([][]writtenBatch, appenders)
		outs := race(t, appenders, func(i int) appendOutcome {
			for range perAppender {
				batch := events(batchSize, "Raced")
				res, err := f.store.Append(f.ctx, s, exp, batch...)
				if err != nil {
					return appendOutcome{appender: i, err: err}
				}
				if res.Version-res.FirstVersion()+1 != batchSize {
					return appendOutcome{appender: i, err: fmt.Errorf("result versions %d..%d for a batch of %d", res.FirstVersion(), res.Version, batchSize)}
				}
				written[i] = append(written[i], writtenBatch{idsOfEvents(batch), res.FirstVersion()})
			}
			return appendOutcome{appender: i}
		})
		doing := fmt.Sprintf("%d appenders each append %d batches of %d at %s to one stream", appenders, perAppender, batchSize, expectationName(exp))
		for _, o := range outs {
			if o.err != nil {
				t.Fatalf("%s: appender %d: want every append to succeed, got %v", doing, o.appender, o.err)
			}
		}
		total := prior + uint64(appenders*perAppender*batchSize)
		got := f.readStream(s)
		if uint64(len(got)) != total {
			t.Fatalf("%s: stream holds %d events, want %d", doing, len(got), total)
		}
		seen := map[string]int{}
		for i, ev := range got {
			if ev.Version != uint64(i+1) {
				t.Errorf("%s: event %d read back at version %d: versions must not repeat or skip", doing, i, ev.Version)
			}
			if i > 0 && !got[i-1].Position.Less(ev.Position) {
				t.Errorf("%s: version %d at %s is not after version %d at %s", doing, ev.Version, ev.Position, i, got[i-1].Position)
			}
			seen[ev.ID.String()]++
		}
		// The results are read only after every goroutine has sent its outcome.
		for i, batches := range written {
			for _, b := range batches {
				for j, id := range b.ids {
					v := b.first + uint64(j)
					switch {
					case seen[id] != 1:
						t.Errorf("%s: event %s of appender %d is in the stream %d times, want once", doing, id, i, seen[id])
					case v < 1 || v > total || got[v-1].ID.String() != id:
						t.Errorf("%s: appender %d's event %s: its append result puts it at version %d, but it is not there", doing, i, id, v)
					}
				}
			}
		}
		if v := f.version(s); v != total {
			t.Errorf("%s: StreamVersion %d, want %d", doing, v, total)
		}
		if n := len(f.readAll()); uint64(n) != total {
			t.Errorf("%s: read all returned %d events, want %d", doing, n, total)
		}
	})
}

func testConcurrentDistinctStreams(t *testing.T, f *fixture) {
	const perAppender, batchSize = 5, 3
	streams := make([]string, appenders)
	for i := range streams {
		streams[i] = stream(fmt.Sprintf("Racer%d", i))
	}
	// Each appender records its batches' IDs in order.
	type result struct {
		ids       []string
		positions []eventstore.Position
	}
	results := make([]result, appenders)
	outs := race(t, appenders, func(i int) appendOutcome {
		var version uint64
		for range perAppender {
			batch := events(batchSize, "Parallel")
			res, err := f.store.Append(f.ctx, streams[i], eventstore.Exact(version), batch...)
			if err != nil {
				return appendOutcome{appender: i, err: err}
			}
			version = res.Version
			results[i].ids = append(results[i].ids, idsOfEvents(batch)...)
			results[i].positions = append(results[i].positions, res.Position)
		}
		return appendOutcome{appender: i}
	})
	doing := fmt.Sprintf("%d appenders each append %d batches of %d to its own stream", appenders, perAppender, batchSize)
	for _, o := range outs {
		if o.err != nil {
			t.Fatalf("%s: appender %d: want every append to succeed, got %v", doing, o.appender, o.err)
		}
	}
	// The results are read only after every goroutine has sent its outcome.
	batchOf := map[string]int{} // event ID → index of its batch across all appenders
	for i, s := range streams {
		f.checkStreamIDs(doing, s, results[i].ids)
		got := f.readStream(s)
		for j, ev := range got {
			if j > 0 && !got[j-1].Position.Less(ev.Position) {
				t.Errorf("%s: stream %q version %d at %s is not after version %d at %s", doing, s, ev.Version, ev.Position, j, got[j-1].Position)
			}
			if (j+1)%batchSize == 0 && len(results[i].positions) > j/batchSize && ev.Position != results[i].positions[j/batchSize] {
				t.Errorf("%s: stream %q: append %d returned position %s, but its last event reads back at %s", doing, s, j/batchSize, results[i].positions[j/batchSize], ev.Position)
			}
			batchOf[ev.ID.String()] = i*perAppender + j/batchSize
		}
	}
	all := f.readAll()
	if len(all) != appenders*perAppender*batchSize {
		t.Fatalf("%s: read all returned %d events, want %d", doing, len(all), appenders*perAppender*batchSize)
	}
	for i, ev := range all {
		if i > 0 && !all[i-1].Position.Less(ev.Position) {
			t.Errorf("%s: read all event %d at %s is not after event %d at %s: positions must be unique and increasing", doing, i, ev.Position, i-1, all[i-1].Position)
		}
	}
	// Each batch is contiguous in the log: its events follow each other.
	for i := 0; i+batchSize <= len(all); i += batchSize {
		b := batchOf[all[i].ID.String()]
		for j := i; j < i+batchSize; j++ {
			if batchOf[all[j].ID.String()] != b || all[j].Version != all[i].Version+uint64(j-i) {
				t.Fatalf("%s: read all events %d..%d interleave appends: %q version %d starts a batch, then %q version %d",
					doing, i, i+batchSize-1, all[i].StreamID, all[i].Version, all[j].StreamID, all[j].Version)
			}
		}
	}
	if !slices.IsSortedFunc(all, func(a, b eventstore.RecordedEvent) int { return a.Position.Compare(b.Position) }) {
		t.Errorf("%s: read all is not in position order", doing)
	}
}
