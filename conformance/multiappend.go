package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Multi-stream append": a driver that implements
// driver.MultiAppender writes records to several streams all or none, in
// slice order and contiguous in the global log, names every stream whose
// expectation failed, lets exactly one of many racers on the same streams
// win, returns the original result to a retry, and never splits a request
// over its limits. A driver without it must report ErrNotSupported and
// write nothing (MultiAppendNotSupported, which runs for every driver).

func init() { ruleSets = append(ruleSets, multiAppendRules) }

func multiAppendRules() []rule {
	return []rule{
		{name: "MultiAppendAllOrNothing", run: multiAppender(testMultiAllOrNothing)},
		{name: "MultiAppendNamesEveryViolation", run: multiAppender(testMultiNamesViolations)},
		{name: "MultiAppendResultDescribesWrite", run: multiAppender(testMultiResult)},
		{name: "MultiAppendContiguousInSliceOrder", run: multiAppender(testMultiContiguous)},
		{name: "MultiAppendRejectsBadInput", run: multiAppender(testMultiBadInput)},
		{name: "MultiAppendRacersHaveOneWinner", run: multiAppender(testMultiRace)},
		{name: "MultiAppendDisjointRacersAllWin", run: multiAppender(testMultiDisjoint)},
		{name: "MultiAppendRetryReturnsOriginalResult", run: multiAppender(testMultiRetry)},
		{name: "MultiAppendOverLimitFailsWhole", run: multiAppender(testMultiOverLimit)},
		{name: "MultiAppendNotSupported", run: testMultiNotSupported},
	}
}

const (
	// multiRacers is how many goroutines race in the multi-stream and
	// condition race rules, and multiRounds how often they race.
	multiRacers = 16
	multiRounds = 50
)

// multiAppender runs a rule only for drivers that implement
// driver.MultiAppender.
func multiAppender(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
	return withCapability[driver.MultiAppender]("MultiAppendNotSupported", run)
}

// rec is a record of a multi-stream append.
func rec(stream string, ev eventstore.Event) eventstore.Record {
	return eventstore.Record{Stream: stream, Event: ev}
}

// expect is an expectation of a multi-stream append.
func expect(stream string, e eventstore.ExpectedVersion) eventstore.StreamExpectation {
	return eventstore.StreamExpectation{Stream: stream, Expected: e}
}

// describeMulti spells a multi-stream append for failure messages.
func describeMulti(a eventstore.MultiAppend) string {
	var b strings.Builder
	b.WriteString("append ")
	for i, r := range a.Records {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s to %q", r.Event.Type, r.Stream)
		if len(r.Event.Tags) > 0 {
			fmt.Fprintf(&b, " tagged %q", r.Event.Tags)
		}
	}
	if len(a.Expect) > 0 {
		b.WriteString(" expecting")
		for _, e := range a.Expect {
			fmt.Fprintf(&b, " %q at %s", e.Stream, expectationName(e.Expected))
		}
	}
	if c := a.Condition; c != nil {
		fmt.Fprintf(&b, " if no event matching %s follows %s", describeQuery(c.FailIfEventsMatch), c.After)
	}
	return b.String()
}

// multiState is what a rejected multi-stream append must leave as it was:
// some streams and the global log.
type multiState struct {
	streams map[string]writeState
	all     []eventstore.RecordedEvent
}

// multiStateOf records the versions and events of streams and the global log.
func (f *fixture) multiStateOf(streams ...string) multiState {
	f.t.Helper()
	st := multiState{streams: map[string]writeState{}, all: f.readAll()}
	for _, s := range streams {
		st.streams[s] = writeState{stream: s, version: f.version(s), events: f.readStream(s)}
	}
	return st
}

// checkNothingWrittenMulti fails the rule when a stream of before or the
// global log changed.
func (f *fixture) checkNothingWrittenMulti(doing string, before multiState) {
	t := f.t
	t.Helper()
	for _, s := range slices.Sorted(maps.Keys(before.streams)) {
		b := before.streams[s]
		if v := f.version(s); v != b.version {
			t.Errorf("%s: want nothing written, but stream %q went from version %d to %d", doing, s, b.version, v)
		}
		if got := f.readStream(s); !sameIDs(idsOf(got), idsOf(b.events)) {
			t.Errorf("%s: want nothing written, but reading stream %q returned %d events instead of %d", doing, s, len(got), len(b.events))
		}
	}
	if got := f.readAll(); !sameIDs(idsOf(got), idsOf(before.all)) {
		t.Errorf("%s: want nothing written, but read all returned %d events instead of %d", doing, len(got), len(before.all))
	}
}

// checkConflict checks err is an *AppendConflictError naming exactly the
// streams of want (sorted by stream ID, with expected and actual versions)
// and the condition's failure when condition is set, and that it matches
// ErrWrongExpectedVersion and ErrAppendConditionFailed accordingly.
func checkConflict(t testing.TB, doing string, err error, want []eventstore.WrongExpectedVersionError, condition bool) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: want an append conflict, got success", doing)
		return
	}
	var ce *eventstore.AppendConflictError
	if !errors.As(err, &ce) {
		t.Errorf("%s: want an *eventstore.AppendConflictError, got %v", doing, err)
		return
	}
	if got := errors.Is(err, eventstore.ErrWrongExpectedVersion); got != (len(want) > 0) {
		t.Errorf("%s: errors.Is(err, ErrWrongExpectedVersion) = %t, want %t (err: %v)", doing, got, len(want) > 0, err)
	}
	if got := errors.Is(err, eventstore.ErrAppendConditionFailed); got != condition {
		t.Errorf("%s: errors.Is(err, ErrAppendConditionFailed) = %t, want %t (err: %v)", doing, got, condition, err)
	}
	if ce.Condition != condition {
		t.Errorf("%s: AppendConflictError.Condition = %t, want %t", doing, ce.Condition, condition)
	}
	if !slices.Equal(ce.Streams, want) {
		t.Errorf("%s: the conflict names the failed streams %s, want exactly %s", doing, describeViolations(ce.Streams), describeViolations(want))
	}
}

func describeViolations(vs []eventstore.WrongExpectedVersionError) string {
	if len(vs) == 0 {
		return "none"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%q (want %s, have %d)", v.Stream, expectationName(v.Expected), v.Actual)
	}
	return strings.Join(parts, ", ")
}

// violation is the conflict of a stream at actual with expectation e.
func violation(s string, e eventstore.ExpectedVersion, actual uint64) eventstore.WrongExpectedVersionError {
	return eventstore.WrongExpectedVersionError{Stream: s, Expected: e, Actual: actual}
}

// testMultiAllOrNothing fails one expectation at a time (of a written
// stream, of a check-only stream, of several) and appends with a cancelled
// context: each time no event of the call is visible anywhere.
func testMultiAllOrNothing(t *testing.T, f *fixture) {
	a, b, c := stream("Multi"), stream("Multi"), stream("Multi")
	f.mustAppend(a, eventstore.NoStream, events(2, "Seeded")...)
	f.mustAppend(c, eventstore.NoStream, events(1, "Seeded")...)
	records := func() []eventstore.Record {
		evs := events(3, "Moved")
		return []eventstore.Record{rec(a, evs[0]), rec(b, evs[1]), rec(a, evs[2])}
	}
	for _, tc := range []struct {
		name   string
		expect []eventstore.StreamExpectation
		want   []eventstore.WrongExpectedVersionError
	}{
		{"written stream behind", []eventstore.StreamExpectation{expect(a, eventstore.Exact(1)), expect(b, eventstore.NoStream)},
			[]eventstore.WrongExpectedVersionError{violation(a, eventstore.Exact(1), 2)}},
		{"new stream exists expected", []eventstore.StreamExpectation{expect(a, eventstore.Exact(2)), expect(b, eventstore.StreamExists)},
			[]eventstore.WrongExpectedVersionError{violation(b, eventstore.StreamExists, 0)}},
		{"check-only stream moved", []eventstore.StreamExpectation{expect(a, eventstore.Exact(2)), expect(c, eventstore.NoStream)},
			[]eventstore.WrongExpectedVersionError{violation(c, eventstore.NoStream, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			ma := eventstore.MultiAppend{Records: records(), Expect: tc.expect}
			doing := describeMulti(ma)
			before := f.multiStateOf(a, b, c)
			_, err := f.store.AppendMulti(f.ctx, ma)
			checkConflict(t, doing, err, sortedViolations(tc.want), false)
			f.checkNothingWrittenMulti(doing, before)
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		f := f.sub(t)
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		ma := eventstore.MultiAppend{Records: records()}
		doing := describeMulti(ma) + " with a cancelled context"
		before := f.multiStateOf(a, b, c)
		if _, err := f.store.AppendMulti(ctx, ma); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: want an error matching context.Canceled, got %v", doing, err)
		}
		f.checkNothingWrittenMulti(doing, before)
	})
}

func sortedViolations(vs []eventstore.WrongExpectedVersionError) []eventstore.WrongExpectedVersionError {
	vs = slices.Clone(vs)
	slices.SortFunc(vs, func(x, y eventstore.WrongExpectedVersionError) int { return strings.Compare(x.Stream, y.Stream) })
	return vs
}

// testMultiNamesViolations fails three of four expectations of different
// kinds at once: the error names exactly those three, with their actual
// versions, sorted by stream ID.
func testMultiNamesViolations(t *testing.T, f *fixture) {
	a, b, c, d := stream("Multi"), stream("Multi"), stream("Multi"), stream("Multi")
	f.mustAppend(a, eventstore.NoStream, events(2, "Seeded")...)
	f.mustAppend(b, eventstore.NoStream, events(1, "Seeded")...)
	f.mustAppend(d, eventstore.NoStream, events(3, "Seeded")...)
	evs := events(3, "Moved")
	ma := eventstore.MultiAppend{
		Records: []eventstore.Record{rec(a, evs[0]), rec(b, evs[1]), rec(c, evs[2])},
		Expect: []eventstore.StreamExpectation{
			expect(a, eventstore.Exact(1)),     // fails: at 2
			expect(b, eventstore.Exact(1)),     // holds
			expect(c, eventstore.StreamExists), // fails: no stream
			expect(d, eventstore.NoStream),     // check-only, fails: at 3
		},
	}
	doing := describeMulti(ma)
	before := f.multiStateOf(a, b, c, d)
	_, err := f.store.AppendMulti(f.ctx, ma)
	checkConflict(t, doing, err, sortedViolations([]eventstore.WrongExpectedVersionError{
		violation(a, eventstore.Exact(1), 2), violation(c, eventstore.StreamExists, 0), violation(d, eventstore.NoStream, 3),
	}), false)
	var wev *eventstore.WrongExpectedVersionError
	if err != nil && !errors.As(err, &wev) {
		t.Errorf("%s: errors.As(err, *WrongExpectedVersionError) fails on %v", doing, err)
	}
	f.checkNothingWrittenMulti(doing, before)
}

// testMultiResult checks the result of a successful append: the last
// version of every written stream (none for a check-only one), the
// position of the last event and the events' IDs, as the reads show them.
func testMultiResult(t *testing.T, f *fixture) {
	a, b, c := stream("Multi"), stream("Multi"), stream("Multi")
	f.mustAppend(a, eventstore.NoStream, events(2, "Seeded")...)
	f.mustAppend(c, eventstore.NoStream, events(1, "Seeded")...)
	evs := events(4, "Moved")
	evs[1].ID = noID // the store fills it in
	ma := eventstore.MultiAppend{
		Records: []eventstore.Record{rec(a, evs[0]), rec(b, evs[1]), rec(a, evs[2]), rec(b, evs[3])},
		Expect:  []eventstore.StreamExpectation{expect(a, eventstore.Exact(2)), expect(c, eventstore.Exact(1))},
	}
	doing := describeMulti(ma)
	res, err := f.store.AppendMulti(f.ctx, ma)
	if err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
	if want := map[string]uint64{a: 4, b: 2}; !maps.Equal(res.Versions, want) {
		t.Errorf("%s: result Versions %v, want %v (written streams only, at their last version)", doing, res.Versions, want)
	}
	if len(res.EventIDs) != len(ma.Records) {
		t.Fatalf("%s: result has %d event IDs, want %d", doing, len(res.EventIDs), len(ma.Records))
	}
	for i, id := range res.EventIDs {
		if id == noID || (evs[i].ID != noID && id != evs[i].ID) {
			t.Errorf("%s: result EventIDs[%d] = %s, want the record's ID %s (or a fresh one for a zero ID)", doing, i, id, evs[i].ID)
		}
	}
	all := f.readAll()
	if len(all) == 0 || all[len(all)-1].Position != res.Position {
		t.Errorf("%s: result Position %s, want the position of the last event in the log (log: %s)", doing, res.Position, describe(all))
	}
	if len(all) > 0 && all[len(all)-1].ID != res.EventIDs[3] {
		t.Errorf("%s: the last event in the log is %s, want the last record's", doing, describeOne(all[len(all)-1]))
	}
	f.checkStreamIDs(doing, b, []string{res.EventIDs[1].String(), res.EventIDs[3].String()})
	if got := f.readStream(a); len(got) != 4 || got[2].ID != res.EventIDs[0] || got[3].ID != res.EventIDs[2] {
		t.Errorf("%s: stream %q reads %s, want the records at versions 3 and 4", doing, a, describe(got))
	}
	if v := f.version(c); v != 1 {
		t.Errorf("%s: the check-only stream %q moved to version %d", doing, c, v)
	}
}

// testMultiContiguous runs appenders that each interleave records of
// three streams of their own, concurrently: each call's events are
// contiguous in the global log, in slice order, at the versions the
// records' order gives, and the result's position is its last event's.
func testMultiContiguous(t *testing.T, f *fixture) {
	const writers, calls = 8, 10
	type call struct {
		records []eventstore.Record
		res     eventstore.MultiAppendResult
	}
	done := make([][]call, writers)
	gate := make(chan struct{})
	finished := make(chan struct{}, writers)
	for w := range writers {
		streams := []string{stream("Multi"), stream("Multi"), stream("Multi")}
		go func() {
			defer func() { finished <- struct{}{} }()
			<-gate
			for i := range calls {
				evs := events(5, "Interleaved")
				order := []int{0, 1, 0, 2, 1}
				if i%2 == 1 {
					order = []int{2, 0, 1, 2, 2}
				}
				ma := eventstore.MultiAppend{Records: make([]eventstore.Record, len(evs))}
				for j, k := range order {
					ma.Records[j] = rec(streams[k], evs[j])
				}
				res, err := f.store.AppendMulti(f.ctx, ma)
				if err != nil {
					t.Errorf("writer %d: %s: %v", w, describeMulti(ma), err)
					return
				}
				done[w] = append(done[w], call{ma.Records, res})
			}
		}()
	}
	close(gate)
	for range writers {
		waitFor(t, finished, raceTimeout, "the concurrent multi-stream appenders")
	}
	if t.Failed() {
		return
	}
	log := f.readAll()
	index := map[string]int{}
	for i, ev := range log {
		index[ev.ID.String()] = i
	}
	for w := range writers {
		versions := map[string]uint64{}
		for i, c := range done[w] {
			doing := fmt.Sprintf("%d writers each made %d interleaved multi-stream appends; call %d of writer %d (%s)", writers, calls, i, w, describeMulti(eventstore.MultiAppend{Records: c.records}))
			first, ok := index[c.records[0].Event.ID.String()]
			if !ok {
				t.Errorf("%s: its first event is not in the log", doing)
				continue
			}
			for j, r := range c.records {
				versions[r.Stream]++
				k := first + j
				if k >= len(log) || log[k].ID != r.Event.ID {
					t.Errorf("%s: record %d is not at log index %d right after record %d (log there: %s): the call's events must be contiguous, in slice order", doing, j, k, j-1, describe(log[min(first, len(log)):min(first+len(c.records), len(log))]))
					break
				}
				if ev := log[k]; ev.StreamID != r.Stream || ev.Version != versions[r.Stream] {
					t.Errorf("%s: record %d reads back as %s, want %q version %d", doing, j, describeOne(ev), r.Stream, versions[r.Stream])
				}
			}
			if last := first + len(c.records) - 1; last < len(log) && log[last].Position != c.res.Position {
				t.Errorf("%s: result position %s, want its last event's %s", doing, c.res.Position, log[last].Position)
			}
		}
	}
}

// testMultiBadInput checks that invalid requests fail with
// ErrInvalidArgument and write nothing.
func testMultiBadInput(t *testing.T, f *fixture) {
	a, b := stream("Multi"), stream("Multi")
	ev := eventstore.NewEvent("Moved", []byte(`{}`))
	badTag := eventstore.NewEvent("Moved", []byte(`{}`))
	badTag.Tags = []string{"ok", ""}
	for _, tc := range []struct {
		name string
		ma   eventstore.MultiAppend
		want error
	}{
		{"no records", eventstore.MultiAppend{Expect: []eventstore.StreamExpectation{expect(a, eventstore.NoStream)}}, eventstore.ErrInvalidArgument},
		{"two expectations for one stream", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev)},
			Expect: []eventstore.StreamExpectation{expect(a, eventstore.NoStream), expect(a, eventstore.Exact(0))}}, eventstore.ErrInvalidArgument},
		{"check-only Any", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev)},
			Expect: []eventstore.StreamExpectation{expect(b, eventstore.Any)}}, eventstore.ErrInvalidVersion},
		{"empty stream ID", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev), rec("", events(1, "Moved")[0])}}, eventstore.ErrInvalidStreamID},
		{"empty tag", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, badTag)}}, eventstore.ErrInvalidTag},
		{"empty type in a query item", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev)},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{""}}}}}}, eventstore.ErrInvalidQuery},
		{"query item with neither", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev)},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{}}}}}, eventstore.ErrInvalidQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			doing := tc.name + ": " + describeMulti(tc.ma)
			before := f.multiStateOf(a, b)
			_, err := f.store.AppendMulti(f.ctx, tc.ma)
			checkInvalid(t, doing, err, tc.want)
			f.checkNothingWrittenMulti(doing, before)
		})
	}
}

// testMultiRace races multiRacers appenders multiRounds times. In even
// rounds each writes one event to both A and B expecting both at their
// versions; in odd rounds each writes to A or B only but expects both
// (the other is check-only), which a driver that checks only written
// streams lets two of them through (write skew). Each round exactly one
// wins, and every loser's conflict names every stream the winner moved,
// with its new version.
func testMultiRace(t *testing.T, f *fixture) {
	a, b := stream("RaceA"), stream("RaceB")
	var va, vb uint64
	var want []string
	for round := range multiRounds {
		expA, expB := eventstore.Exact(va), eventstore.Exact(vb)
		type outcome struct {
			ma  eventstore.MultiAppend
			res eventstore.MultiAppendResult
			err error
		}
		outs := make([]outcome, multiRacers)
		race(t, multiRacers, func(i int) appendOutcome {
			evs := events(2, "Raced")
			ma := eventstore.MultiAppend{Expect: []eventstore.StreamExpectation{expect(a, expA), expect(b, expB)}}
			switch {
			case round%2 == 0:
				ma.Records = []eventstore.Record{rec(a, evs[0]), rec(b, evs[1])}
			case i%2 == 0:
				ma.Records = []eventstore.Record{rec(a, evs[0])}
			default:
				ma.Records = []eventstore.Record{rec(b, evs[1])}
			}
			res, err := f.store.AppendMulti(f.ctx, ma)
			outs[i] = outcome{ma, res, err}
			return appendOutcome{appender: i, err: err}
		})
		winner := -1
		for i, o := range outs {
			if o.err != nil {
				continue
			}
			if winner >= 0 {
				t.Fatalf("round %d: %d racers %s: racer %d and racer %d both succeeded: want exactly one winner",
					round, multiRacers, describeMulti(o.ma), winner, i)
			}
			winner = i
		}
		if winner < 0 {
			t.Fatalf("round %d: %d racers appended to %q and %q at versions %d and %d: none succeeded, want one (first error: %v)",
				round, multiRacers, a, b, va, vb, outs[0].err)
		}
		w := outs[winner]
		var moved []eventstore.WrongExpectedVersionError
		for _, r := range w.ma.Records {
			want = append(want, r.Event.ID.String())
			switch r.Stream {
			case a:
				va++
				moved = append(moved, violation(a, expA, va))
			case b:
				vb++
				moved = append(moved, violation(b, expB, vb))
			}
		}
		for i, o := range outs {
			if i != winner {
				checkConflict(t, fmt.Sprintf("round %d: racer %d lost to racer %d (%s); its own %s", round, i, winner, describeMulti(w.ma), describeMulti(o.ma)), o.err, moved, false)
			}
		}
		if t.Failed() {
			return
		}
	}
	doing := fmt.Sprintf("%d rounds of %d multi-stream racers", multiRounds, multiRacers)
	if got := idsOf(f.readAll()); !sameIDs(got, want) {
		t.Errorf("%s: read all returned %d events, want exactly the %d events of the winners in order", doing, len(got), len(want))
	}
	if v := f.version(a); v != va {
		t.Errorf("%s: stream %q at version %d, want %d", doing, a, v, va)
	}
	if v := f.version(b); v != vb {
		t.Errorf("%s: stream %q at version %d, want %d", doing, b, v, vb)
	}
}

// testMultiDisjoint races multiRacers appenders on pairs of streams of
// their own, several rounds at exact versions: every append succeeds.
func testMultiDisjoint(t *testing.T, f *fixture) {
	const rounds = 5
	pairs := make([][2]string, multiRacers)
	for i := range pairs {
		pairs[i] = [2]string{stream("PairA"), stream("PairB")}
	}
	for round := range rounds {
		race(t, multiRacers, func(i int) appendOutcome {
			evs := events(2, "Disjoint")
			p := pairs[i]
			ma := eventstore.MultiAppend{
				Records: []eventstore.Record{rec(p[0], evs[0]), rec(p[1], evs[1])},
				Expect:  []eventstore.StreamExpectation{expect(p[0], eventstore.Exact(uint64(round))), expect(p[1], eventstore.Exact(uint64(round)))},
			}
			if _, err := f.store.AppendMulti(f.ctx, ma); err != nil {
				t.Errorf("round %d: %d racers on disjoint pairs of streams; racer %d %s: want success, got %v", round, multiRacers, i, describeMulti(ma), err)
			}
			return appendOutcome{appender: i}
		})
		if t.Failed() {
			return
		}
	}
	for _, p := range pairs {
		for _, s := range p {
			if v := f.version(s); v != rounds {
				t.Errorf("after %d rounds of disjoint racers: stream %q at version %d, want %d", rounds, s, v, rounds)
			}
		}
	}
}

// testMultiRetry retries a successful multi-stream append with the same
// event IDs: at once, and after another append moved one of its streams.
// Each retry returns the original result and writes nothing; a retry with
// other content fails with ErrDuplicateEventID.
func testMultiRetry(t *testing.T, f *fixture) {
	a, b := stream("Multi"), stream("Multi")
	f.mustAppend(a, eventstore.NoStream, events(1, "Seeded")...)
	evs := events(3, "Moved")
	ma := eventstore.MultiAppend{
		Records: []eventstore.Record{rec(a, evs[0]), rec(b, evs[1]), rec(a, evs[2])},
		Expect:  []eventstore.StreamExpectation{expect(a, eventstore.Exact(1)), expect(b, eventstore.NoStream)},
	}
	doing := describeMulti(ma)
	orig, err := f.store.AppendMulti(f.ctx, ma)
	if err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
	check := func(doing string) {
		t.Helper()
		before := f.multiStateOf(a, b)
		res, err := f.store.AppendMulti(f.ctx, ma)
		if err != nil {
			t.Errorf("%s: want the original result, got %v", doing, err)
			return
		}
		if res.Position != orig.Position || !maps.Equal(res.Versions, orig.Versions) || !slices.Equal(res.EventIDs, orig.EventIDs) {
			t.Errorf("%s: got result %+v, want the original %+v", doing, res, orig)
		}
		f.checkNothingWrittenMulti(doing, before)
	}
	check("retry at once: " + doing)
	f.mustAppend(a, eventstore.Exact(3), events(1, "Later")...)
	check("retry after another append to " + a + ": " + doing)

	// The same records and one more, to a stream whose expectation fails:
	// not a retry, and the failed stream is named.
	c := stream("Multi")
	longer := ma
	longer.Records = append(slices.Clone(ma.Records), rec(c, events(1, "Moved")[0]))
	longer.Expect = append(slices.Clone(ma.Expect), expect(c, eventstore.StreamExists))
	doing = "the records again and one more to a new stream expected to exist: " + describeMulti(longer)
	before := f.multiStateOf(a, b, c)
	_, err = f.store.AppendMulti(f.ctx, longer)
	var ce *eventstore.AppendConflictError
	if !errors.As(err, &ce) || !slices.Contains(ce.Streams, violation(c, eventstore.StreamExists, 0)) {
		t.Errorf("%s: want an *AppendConflictError naming %q (want stream-exists, have 0), got %v", doing, c, err)
	}
	f.checkNothingWrittenMulti(doing, before)

	changed := ma
	changed.Records = slices.Clone(ma.Records)
	changed.Records[1].Event.Data = []byte(`{"n":"other"}`)
	doing = "retry with other data in record 1: " + describeMulti(changed)
	before = f.multiStateOf(a, b)
	_, err = f.store.AppendMulti(f.ctx, changed)
	var dup *eventstore.DuplicateEventIDError
	if !errors.Is(err, eventstore.ErrDuplicateEventID) || !errors.As(err, &dup) || dup.Stream != b || dup.ID != evs[1].ID {
		t.Errorf("%s: want a *DuplicateEventIDError for event %s of %q, got %v", doing, evs[1].ID, b, err)
	}
	f.checkNothingWrittenMulti(doing, before)
}

// testMultiOverLimit appends a large request over many streams: it is
// written whole, or (past the driver's limits) fails with ErrBatchTooLarge
// and writes nothing. A request over the Store's reported MaxAppendEvents
// always fails so.
func testMultiOverLimit(t *testing.T, f *fixture) {
	lim := f.store.Limits()
	const streams = 20
	n := largeBatch
	if lim.MaxAppendSize > 0 {
		n = min(n, lim.MaxAppendSize/len(`{"n":1000}`))
	}
	ids := make([]string, streams)
	for i := range ids {
		ids[i] = stream("Wide")
	}
	build := func(n int) eventstore.MultiAppend {
		ma := eventstore.MultiAppend{Records: make([]eventstore.Record, n)}
		for i, ev := range events(n, "Bulk") {
			ma.Records[i] = rec(ids[i%streams], ev)
		}
		return ma
	}
	size := n
	if lim.MaxAppendEvents > 0 {
		size = min(n, lim.MaxAppendEvents)
	}
	ma := build(size)
	doing := fmt.Sprintf("append %d events to %d streams in one call (limits %+v)", size, streams, lim)
	before := f.multiStateOf(ids...)
	res, err := f.store.AppendMulti(f.ctx, ma)
	switch {
	case err == nil:
		all := f.readAll()
		if len(all) != len(before.all)+size || all[len(all)-1].Position != res.Position {
			t.Errorf("%s: succeeded, but the log grew from %d to %d events (want +%d) ending at %s (result %s)", doing, len(before.all), len(all), size, all[len(all)-1].Position, res.Position)
		}
	case errors.Is(err, eventstore.ErrBatchTooLarge):
		checkInvalid(t, doing, err, eventstore.ErrBatchTooLarge)
		f.checkNothingWrittenMulti(doing+" (failed as too large)", before)
	default:
		t.Errorf("%s: want success or ErrBatchTooLarge, got %v", doing, err)
	}
	if lim.MaxAppendEvents > 0 {
		over := build(lim.MaxAppendEvents + 1)
		doing := fmt.Sprintf("append %d events to %d streams, over MaxAppendEvents %d", len(over.Records), streams, lim.MaxAppendEvents)
		before := f.multiStateOf(ids...)
		_, err := f.store.AppendMulti(f.ctx, over)
		checkInvalid(t, doing, err, eventstore.ErrBatchTooLarge)
		f.checkNothingWrittenMulti(doing, before)
	}
}

// testMultiNotSupported checks that a driver without driver.MultiAppender
// makes AppendMulti fail with ErrNotSupported and write nothing.
func testMultiNotSupported(t *testing.T, f *fixture) {
	if _, ok := f.driver.(driver.MultiAppender); ok {
		t.Skip("the driver implements driver.MultiAppender: the other MultiAppend rules apply")
	}
	a, b := stream("Multi"), stream("Multi")
	f.mustAppend(a, eventstore.NoStream, events(1, "Seeded")...)
	evs := events(2, "Moved")
	ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(a, evs[0]), rec(b, evs[1])},
		Expect: []eventstore.StreamExpectation{expect(a, eventstore.Exact(1))}}
	doing := describeMulti(ma) + " on a driver without driver.MultiAppender"
	before := f.multiStateOf(a, b)
	if _, err := f.store.AppendMulti(f.ctx, ma); !errors.Is(err, eventstore.ErrNotSupported) {
		t.Errorf("%s: want ErrNotSupported, got %v", doing, err)
	}
	f.checkNothingWrittenMulti(doing, before)
}
