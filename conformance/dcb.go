package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Tags, queries and append conditions" (Dynamic
// Consistency Boundaries): a driver that implements driver.QueryReader keeps
// tags on every write and read path, reads by query exactly, and fails a
// conditional append iff an event matching the condition's query follows
// its After position, with exactly one winner among racers whose queries
// overlap and no failures among racers whose queries do not, and no gap a
// late writer could slip an event into. A driver without it must reject
// tags, queries and conditions with ErrNotSupported (QueryNotSupported,
// which runs for every driver).

func init() { ruleSets = append(ruleSets, dcbRules) }

func dcbRules() []rule {
	return []rule{
		{name: "TagsRoundTripEveryPath", run: queryReader(testTagsRoundTrip)},
		{name: "ReadQuerySelectsByTypesAndTags", run: queryReader(testReadQuerySelects)},
		{name: "ConditionFailsOnlyOnMatchAfterPosition", run: conditional(testConditionAfter)},
		{name: "ConditionWithoutPositionKeepsNamesUnique", run: conditional(testConditionUnique)},
		{name: "ConditionRacersHaveOneWinner", run: conditional(testConditionRace)},
		{name: "ConditionDisjointRacersAllWin", run: conditional(testConditionDisjoint)},
		{name: "ConditionGapSafeWithHeldWriter", run: conditional(testConditionGapSafe)},
		{name: "ConditionalRetryReturnsOriginalResult", run: conditional(testConditionRetry)},
		{name: "QueryNotSupported", run: testQueryNotSupported},
	}
}

// WriterHolder is implemented by the harness of a driver whose appends take
// their global positions before they commit (PostgreSQL's, whose positions
// come from a sequence), so that the rule ConditionGapSafeWithHeldWriter
// can hold such an append open while others commit above it. The rule
// skips, saying so, for a harness without it; a driver whose appends take
// positions in commit order (one writer at a time) has no such gap.
type WriterHolder interface {
	// HoldAppend starts req on d (a driver from NewDriver, wrapped in the
	// rule's Store) the way the driver's Append writes, and returns once its
	// events hold their positions but before it commits, so they are not
	// yet visible. commit finishes it and returns its error; the rule calls
	// it once. A read of the driver while the append is held should not
	// wait long for it (PostgreSQL: a short ReadWait), so that the rule
	// sees what a read returns past it.
	HoldAppend(t testing.TB, d driver.Driver, req driver.AppendRequest) (commit func() error)
}

// queryReader runs a rule only for drivers that implement driver.QueryReader.
func queryReader(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
	return withCapability[driver.QueryReader]("QueryNotSupported", run)
}

// conditional runs a rule only for drivers that implement both
// driver.QueryReader and driver.MultiAppender, which takes the condition.
func conditional(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
	return queryReader(multiAppender(run))
}

// tag returns a fresh tag of kind ("course:3fa2…").
func tag(kind string) string { return kind + ":" + randomHex() }

// tagged returns an event of type typ with tags.
func tagged(typ string, tags ...string) eventstore.Event {
	ev := eventstore.NewEvent(typ, []byte(`{}`))
	ev.Tags = tags
	return ev
}

// item is a query item.
func item(types []string, tags ...string) eventstore.QueryItem {
	return eventstore.QueryItem{Types: types, Tags: tags}
}

// query is a query of items.
func query(items ...eventstore.QueryItem) eventstore.Query { return eventstore.Query{Items: items} }

// types is a list of event types, for item.
func types(t ...string) []string { return t }

// describeQuery spells q for failure messages.
func describeQuery(q eventstore.Query) string {
	if len(q.Items) == 0 {
		return "(all events)"
	}
	parts := make([]string, len(q.Items))
	for i, it := range q.Items {
		var p []string
		if len(it.Types) > 0 {
			p = append(p, fmt.Sprintf("type in %q", it.Types))
		}
		if len(it.Tags) > 0 {
			p = append(p, fmt.Sprintf("tags ⊇ %q", it.Tags))
		}
		parts[i] = "(" + strings.Join(p, " and ") + ")"
	}
	return strings.Join(parts, " or ")
}

// matches is the suite's own reading of the query rules (an event matches
// an item if its type is one of the item's types, when there are any, and
// its tags include all of the item's), independent of the driver's.
func matches(q eventstore.Query, ev eventstore.RecordedEvent) bool {
	if len(q.Items) == 0 {
		return true
	}
	for _, it := range q.Items {
		if (len(it.Types) == 0 || slices.Contains(it.Types, ev.Type)) &&
			!slices.ContainsFunc(it.Tags, func(t string) bool { return !slices.Contains(ev.Tags, t) }) {
			return true
		}
	}
	return false
}

// readQuery reads every event matching q after after.
func (f *fixture) readQuery(q eventstore.Query, after eventstore.Position) []eventstore.RecordedEvent {
	f.t.Helper()
	return collect(f.t, f.store.ReadQuery(f.ctx, q, eventstore.ReadQueryOptions{After: after}))
}

// lastPosition is the position of the last of evs, zero when there are none.
func lastPosition(evs []eventstore.RecordedEvent) eventstore.Position {
	if len(evs) == 0 {
		return eventstore.Position{}
	}
	return evs[len(evs)-1].Position
}

// checkTags checks that every event of got carries the tags want holds
// for its ID (none when absent), in order.
func checkTags(t testing.TB, doing string, got []eventstore.RecordedEvent, want map[string][]string) {
	t.Helper()
	for _, ev := range got {
		if w := want[ev.ID.String()]; !slices.Equal(ev.Tags, w) {
			t.Errorf("%s: %s has tags %q, want %q (as appended, in order)", doing, describeOne(ev), ev.Tags, w)
		}
	}
}

// testTagsRoundTrip writes tagged and untagged events with Append,
// AppendMulti (when the driver has it) and Import (when it has that) and
// reads their tags back, in the order given, through ReadStream (both
// ways), ReadAll (unfiltered and filtered) and ReadQuery.
func testTagsRoundTrip(t *testing.T, f *fixture) {
	s1, s2 := stream("Tagged"), stream("Tagged")
	x, y, z := tag("x"), tag("y"), tag("z")
	want := map[string][]string{}
	evs := []eventstore.Event{tagged("Tagged", z, x, y), tagged("Untagged"), tagged("Tagged", y)}
	for _, ev := range evs {
		want[ev.ID.String()] = ev.Tags
	}
	f.mustAppend(s1, eventstore.NoStream, evs...)
	if _, ok := f.driver.(driver.MultiAppender); ok {
		more := []eventstore.Event{tagged("Tagged", y, z), tagged("Untagged")}
		for _, ev := range more {
			want[ev.ID.String()] = ev.Tags
		}
		if _, err := f.store.AppendMulti(f.ctx, eventstore.MultiAppend{Records: []eventstore.Record{rec(s2, more[0]), rec(s1, more[1])}}); err != nil {
			t.Fatalf("AppendMulti of tagged events: %v", err)
		}
	}
	checkReads := func(t *testing.T, f *fixture, via string) {
		t.Helper()
		all := f.readAll()
		if len(all) != len(want) {
			t.Fatalf("%s: read all returned %d events, want %d", via, len(all), len(want))
		}
		checkTags(t, via+", read all", all, want)
		for _, s := range []string{s1, s2} {
			checkTags(t, via+", read stream "+s, f.readStream(s), want)
			checkTags(t, via+", read stream "+s+" backwards", collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true})), want)
		}
		checkTags(t, via+", read all filtered by type", collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{EventTypes: []string{"Tagged"}}})), want)
		got := f.readQuery(query(item(nil, y)), eventstore.Position{})
		checkTags(t, via+", read by query tags ⊇ ["+y+"]", got, want)
		n := 0
		for _, w := range want {
			if slices.Contains(w, y) {
				n++
			}
		}
		if len(got) != n {
			t.Errorf("%s: read by query tags ⊇ [%s] returned %d events, want %d", via, y, len(got), n)
		}
		checkTags(t, via+", subscription", subscribed(t, f, len(all)), want)
	}
	checkReads(t, f, "appended")
	t.Run("Import", func(t *testing.T) {
		if !f.canImport() {
			t.Skip("the driver does not implement driver.Importer (ImportNotSupported checks that Import says so)")
		}
		g := f.sub(t)
		g.store = f.newStore()
		if err := g.store.Import(g.ctx, f.readAll()); err != nil {
			t.Fatalf("Import of tagged events: %v", err)
		}
		checkReads(t, g, "imported")
	})
}

// subscribed returns the first n events a subscription from the start of
// the log delivers.
func subscribed(t *testing.T, f *fixture, n int) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	got := make(chan eventstore.RecordedEvent, n)
	stopped := make(chan error, 1)
	go func() {
		stopped <- f.store.Subscribe(ctx, eventstore.SubscribeOptions{}, func(_ context.Context, ev eventstore.RecordedEvent) error {
			select {
			case got <- ev:
			default: // more than n: not asked for
			}
			return nil
		})
	}()
	var evs []eventstore.RecordedEvent
	for range n {
		select {
		case ev := <-got:
			evs = append(evs, ev)
		case err := <-stopped:
			t.Fatalf("subscription from the start stopped after %d of %d events: %v", len(evs), n, err)
		case <-time.After(raceTimeout):
			t.Fatalf("subscription from the start delivered %d of %d events in %s", len(evs), n, raceTimeout)
		}
	}
	cancel()
	<-stopped
	return evs
}

// testReadQuerySelects reads by a range of queries, after several
// positions and in pages, and compares each read with the global log
// filtered by the query rules.
func testReadQuerySelects(t *testing.T, f *fixture) {
	x, y, z := tag("x"), tag("y"), tag("z")
	type spec struct {
		typ  string
		tags []string
	}
	specs := []spec{
		{"A", []string{x}}, {"B", []string{x, y}}, {"C", nil}, {"A", []string{y, z}}, {"A", []string{x, y, z}},
		{"B", []string{z}}, {"C", []string{x, z}}, {"A", nil}, {"B", []string{y, x}}, {"C", []string{y}},
	}
	streams := []string{stream("Query"), stream("Query"), stream("Query")}
	for i, sp := range specs {
		ev := tagged(sp.typ, sp.tags...)
		if _, err := f.store.Append(f.ctx, streams[i%len(streams)], eventstore.Any, ev); err != nil {
			t.Fatalf("append %s tagged %q: %v", sp.typ, sp.tags, err)
		}
	}
	log := f.readAll()
	afters := []eventstore.Position{{}, log[2].Position, log[6].Position, log[len(log)-1].Position}
	for _, q := range []eventstore.Query{
		{},
		query(item(types("A"))),
		query(item(types("A", "C"))),
		query(item(nil, x)),
		query(item(nil, x, y)),
		query(item(types("A"), y, z)),
		query(item(types("B"), x), item(types("C"), z)),
		query(item(types("A"), x), item(nil, z)),
		query(item(types("C"), x, y)),
		query(item(nil, tag("w"))),
		query(item(types("D"))),
	} {
		for _, after := range afters {
			var want []eventstore.RecordedEvent
			for _, ev := range log {
				if after.Less(ev.Position) && matches(q, ev) {
					want = append(want, ev)
				}
			}
			doing := fmt.Sprintf("read by query %s after %s", describeQuery(q), after)
			sameEvents(t, doing, f.readQuery(q, after), want)
			doing += " with limit 2"
			sameEvents(t, doing, collect(t, f.store.ReadQuery(f.ctx, q, eventstore.ReadQueryOptions{After: after, Limit: 2})), want[:min(2, len(want))])
		}
	}
}

// testConditionAfter appends with conditions that a stored event matches
// or not, before or after their After position: a condition fails (with
// ErrAppendConditionFailed and nothing written) exactly when a matching
// event follows After; an event at After, of another type or missing one
// of an item's tags, never makes it fail.
func testConditionAfter(t *testing.T, f *fixture) {
	course, other, s1, s2 := tag("course"), tag("course"), tag("student"), tag("student")
	src := stream("Course")
	seed := []eventstore.Event{
		tagged("Noted"),                // 0
		tagged("Enrolled", course, s1), // 1
		tagged("Enrolled", other),      // 2
		tagged("Cancelled", course),    // 3
		tagged("Enrolled", s2),         // 4
		tagged("Noted", tag("n")),      // 5
	}
	f.mustAppend(src, eventstore.NoStream, seed...)
	log := f.readAll()
	p := func(i int) eventstore.Position { return log[i].Position }
	enrolled := query(item(types("Enrolled"), course))
	for _, tc := range []struct {
		name  string
		q     eventstore.Query
		after eventstore.Position
		fails bool
	}{
		{"match after zero", enrolled, eventstore.Position{}, true},
		{"match after a position before it", enrolled, p(0), true},
		{"match at After", enrolled, p(1), false},
		{"match before After", enrolled, p(3), false},
		{"types only, match after", query(item(types("Cancelled"))), p(2), true},
		{"types only, match at After", query(item(types("Cancelled"))), p(3), false},
		{"tags only, match after", query(item(nil, s2)), p(3), true},
		{"other type, same tag", query(item(types("Enrolled"), course)), p(2), false},
		{"missing one of the tags", query(item(nil, course, s2)), eventstore.Position{}, false},
		{"type list", query(item(types("Noted", "Cancelled"), course)), p(1), true},
		{"second item matches", query(item(types("Noted"), course), item(nil, other)), p(1), true},
		{"no item matches", query(item(types("Noted"), course), item(types("Cancelled"), other)), eventstore.Position{}, false},
		{"all events", query(), p(4), true},
		{"all events, at the end", query(), eventstore.Position{}, false}, // After: the log's end when it runs
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			target := stream("Decision")
			ma := eventstore.MultiAppend{
				Records:   []eventstore.Record{rec(target, tagged("Decided", tag("decision")))},
				Condition: &eventstore.AppendCondition{FailIfEventsMatch: tc.q, After: tc.after},
			}
			if len(tc.q.Items) == 0 && !tc.fails {
				ma.Condition.After = lastPosition(f.readAll())
			}
			doing := describeMulti(ma) + fmt.Sprintf(" over the log %s", describe(log))
			before := f.multiStateOf(target)
			_, err := f.store.AppendMulti(f.ctx, ma)
			if tc.fails {
				checkConflict(t, doing, err, nil, true)
				f.checkNothingWrittenMulti(doing, before)
				return
			}
			if err != nil {
				t.Errorf("%s: want success (no matching event follows %s), got %v", doing, tc.after, err)
			}
			f.checkStreamIDs(doing, target, []string{ma.Records[0].Event.ID.String()})
		})
	}
	t.Run("with a failed expectation", func(t *testing.T) {
		f := f.sub(t)
		target := stream("Decision")
		for _, tc := range []struct {
			q         eventstore.Query
			condition bool
		}{{enrolled, true}, {query(item(types("Missing"))), false}} {
			ma := eventstore.MultiAppend{
				Records:   []eventstore.Record{rec(target, tagged("Decided"))},
				Expect:    []eventstore.StreamExpectation{expect(target, eventstore.StreamExists), expect(src, eventstore.Exact(2))},
				Condition: &eventstore.AppendCondition{FailIfEventsMatch: tc.q},
			}
			doing := describeMulti(ma)
			before := f.multiStateOf(target, src)
			_, err := f.store.AppendMulti(f.ctx, ma)
			checkConflict(t, doing, err, sortedViolations([]eventstore.WrongExpectedVersionError{
				violation(target, eventstore.StreamExists, 0), violation(src, eventstore.Exact(2), uint64(len(seed))),
			}), tc.condition)
			f.checkNothingWrittenMulti(doing, before)
		}
	})
}

// testConditionUnique is the unique-username rule: registering a name
// with a condition over the whole log (zero After) succeeds once and
// fails after; another name is free.
func testConditionUnique(t *testing.T, f *fixture) {
	ada, bob := tag("username"), tag("username")
	register := func(name string) (eventstore.MultiAppend, error) {
		ma := eventstore.MultiAppend{
			Records:   []eventstore.Record{rec(stream("User"), tagged("UserRegistered", name))},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: query(item(types("UserRegistered"), name))},
		}
		_, err := f.store.AppendMulti(f.ctx, ma)
		return ma, err
	}
	if ma, err := register(ada); err != nil {
		t.Fatalf("first %s: %v", describeMulti(ma), err)
	}
	ma, err := register(ada)
	checkConflict(t, "second "+describeMulti(ma), err, nil, true)
	if ma, err := register(bob); err != nil {
		t.Errorf("%s after another name was taken: %v", describeMulti(ma), err)
	}
	if got := f.readQuery(query(item(types("UserRegistered"), ada)), eventstore.Position{}); len(got) != 1 {
		t.Errorf("after registering %q twice: %d registrations stored, want 1", ada, len(got))
	}
}

// testConditionRace races multiRacers conditional appends, multiRounds
// times: each round they read the same query once, take the position of
// the last event it returned, and each append an event the query matches
// under that condition. Exactly one wins each round.
func testConditionRace(t *testing.T, f *fixture) {
	course := tag("course")
	q := query(item(types("Enrolled"), course))
	var want []string
	for round := range multiRounds {
		after := lastPosition(f.readQuery(q, eventstore.Position{}))
		mas := make([]eventstore.MultiAppend, multiRacers)
		outs := race(t, multiRacers, func(i int) appendOutcome {
			mas[i] = eventstore.MultiAppend{
				Records:   []eventstore.Record{rec(stream("Student"), tagged("Enrolled", course, fmt.Sprintf("student:%d-%d", round, i)))},
				Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
			}
			_, err := f.store.AppendMulti(f.ctx, mas[i])
			return appendOutcome{appender: i, err: err}
		})
		winner := -1
		for _, o := range outs {
			if o.err != nil {
				continue
			}
			if winner >= 0 {
				t.Fatalf("round %d: %d racers each %s: racers %d and %d both succeeded: want exactly one winner",
					round, multiRacers, describeMulti(mas[o.appender]), winner, o.appender)
			}
			winner = o.appender
		}
		if winner < 0 {
			t.Fatalf("round %d: %d racers each %s: none succeeded, want one (error of racer 0: %v)", round, multiRacers, describeMulti(mas[0]), outs[0].err)
		}
		for _, o := range outs {
			if o.appender != winner {
				checkConflict(t, fmt.Sprintf("round %d: racer %d lost to racer %d; %s", round, o.appender, winner, describeMulti(mas[o.appender])), o.err, nil, true)
			}
		}
		if t.Failed() {
			return
		}
		want = append(want, mas[winner].Records[0].Event.ID.String())
	}
	if got := idsOf(f.readQuery(q, eventstore.Position{})); !sameIDs(got, want) {
		t.Errorf("after %d rounds of %d conditional racers: read by query returned %d events, want exactly the %d winners in order", multiRounds, multiRacers, len(got), len(want))
	}
}

// testConditionDisjoint races multiRacers conditional appends whose
// queries share the event type but not the tag, several rounds, each
// reading its own query first: every one succeeds.
func testConditionDisjoint(t *testing.T, f *fixture) {
	const rounds = 5
	courses := make([]string, multiRacers)
	for i := range courses {
		courses[i] = tag("course")
	}
	for round := range rounds {
		race(t, multiRacers, func(i int) appendOutcome {
			q := query(item(types("Enrolled"), courses[i]))
			after := eventstore.Position{}
			for ev, err := range f.store.ReadQuery(f.ctx, q, eventstore.ReadQueryOptions{}) {
				if err != nil {
					t.Errorf("racer %d: read by query %s: %v", i, describeQuery(q), err)
					return appendOutcome{appender: i, err: err}
				}
				after = ev.Position
			}
			ma := eventstore.MultiAppend{
				Records:   []eventstore.Record{rec(stream("Student"), tagged("Enrolled", courses[i]))},
				Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
			}
			_, err := f.store.AppendMulti(f.ctx, ma)
			if err != nil {
				t.Errorf("round %d: %d racers with disjoint queries; racer %d %s: want success, got %v", round, multiRacers, i, describeMulti(ma), err)
			}
			return appendOutcome{appender: i, err: err}
		})
		if t.Failed() {
			return
		}
	}
	for _, c := range courses {
		if got := f.readQuery(query(item(types("Enrolled"), c)), eventstore.Position{}); len(got) != rounds {
			t.Errorf("after %d rounds of disjoint conditional racers: %d events tagged %q, want %d", rounds, len(got), c, rounds)
		}
	}
}

// heldPatience is how long the gap rule lets a read run while a writer is
// held before it commits the writer anyway (a read may wait for it).
const heldPatience = 2 * time.Second

// testConditionGapSafe holds open an append of a matching event after it
// took its position, commits another matching event above it, and reads by
// query. Whatever the read returned, it skipped no event below the last it
// returned, and a conditional append with that position as After, made once
// the held append committed, fails exactly when a matching event follows it.
func testConditionGapSafe(t *testing.T, f *fixture) {
	h, ok := f.harness.(WriterHolder)
	if !ok {
		t.Skip("the harness does not implement conformance.WriterHolder: its driver's appends take positions in commit order, so no writer can hold a lower position open (a driver whose appends take positions before they commit must implement it)")
	}
	course := tag("course")
	q := query(item(types("Enrolled"), course))
	f.mustAppend(stream("Student"), eventstore.NoStream, tagged("Enrolled", course, tag("student")))
	held := eventstore.NewEvent("Enrolled", []byte(`{}`))
	heldStream := stream("Student")
	commit := h.HoldAppend(t, f.driver, driver.AppendRequest{Stream: heldStream, Expected: driver.Expect(driver.ExpectExact, 0),
		Events: []driver.Event{{ID: held.ID, Type: held.Type, ContentType: driver.ContentType(held.ContentType), Data: held.Data, Tags: []string{course}}}, RecordedAt: driver.Now()})
	committed := false
	t.Cleanup(func() {
		if !committed {
			commit()
		}
	})
	f.mustAppend(stream("Student"), eventstore.NoStream, tagged("Enrolled", course, tag("student")))

	type readResult struct {
		evs []eventstore.RecordedEvent
		err error
	}
	done := make(chan readResult, 1)
	go func() {
		var r readResult
		for ev, err := range f.store.ReadQuery(f.ctx, q, eventstore.ReadQueryOptions{}) {
			if err != nil {
				r.err = err
				break
			}
			r.evs = append(r.evs, ev)
		}
		done <- r
	}()
	var r readResult
	got := false
	select {
	case r = <-done:
		got = true
	case <-time.After(heldPatience):
	}
	committed = true
	if err := commit(); err != nil {
		t.Fatalf("committing the held append to %q: %v", heldStream, err)
	}
	if !got {
		r = waitFor(t, done, raceTimeout, "the read by query that waited for the held append")
	}
	if r.err != nil {
		t.Fatalf("read by query %s while an append was held: %v", describeQuery(q), r.err)
	}
	after := lastPosition(r.evs)
	final := f.readQuery(q, eventstore.Position{})
	for _, ev := range final {
		if !after.Less(ev.Position) && !slices.ContainsFunc(r.evs, func(e eventstore.RecordedEvent) bool { return e.ID == ev.ID }) {
			t.Errorf("read by query %s while an append was held returned %s, up to %s, but skipped %s below that position: a condition with After %s would miss it",
				describeQuery(q), describe(r.evs), after, describeOne(ev), after)
		}
	}
	ma := eventstore.MultiAppend{
		Records:   []eventstore.Record{rec(stream("Student"), tagged("Enrolled", course))},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
	}
	doing := describeMulti(ma) + fmt.Sprintf(" after the held append committed (the read returned %s; the log now holds %s)", describe(r.evs), describe(final))
	_, err := f.store.AppendMulti(f.ctx, ma)
	if later := slices.ContainsFunc(final, func(ev eventstore.RecordedEvent) bool { return after.Less(ev.Position) }); later {
		checkConflict(t, doing, err, nil, true)
	} else if err != nil {
		t.Errorf("%s: want success, got %v", doing, err)
	}
}

// testConditionRetry retries a conditional append that succeeded, whose own
// event now matches its condition: the retry returns the original result.
func testConditionRetry(t *testing.T, f *fixture) {
	name := tag("username")
	ma := eventstore.MultiAppend{
		Records:   []eventstore.Record{rec(stream("User"), tagged("UserRegistered", name))},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: query(item(types("UserRegistered"), name))},
	}
	doing := describeMulti(ma)
	orig, err := f.store.AppendMulti(f.ctx, ma)
	if err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
	before := f.multiStateOf(ma.Records[0].Stream)
	res, err := f.store.AppendMulti(f.ctx, ma)
	if err != nil {
		t.Fatalf("retry of %s: want the original result, got %v", doing, err)
	}
	if res.Position != orig.Position || res.Versions[ma.Records[0].Stream] != 1 {
		t.Errorf("retry of %s: got result %+v, want the original %+v", doing, res, orig)
	}
	f.checkNothingWrittenMulti("retry of "+doing, before)
}

// testQueryNotSupported checks that a store over a driver without
// driver.QueryReader rejects tagged events (Append, AppendMulti, Import),
// reads by query and append conditions with ErrNotSupported and writes
// nothing.
func testQueryNotSupported(t *testing.T, f *fixture) {
	if _, ok := f.driver.(driver.QueryReader); ok {
		t.Skip("the driver implements driver.QueryReader: the other tag and query rules apply")
	}
	s := stream("Tagged")
	wantNotSupported := func(doing string, err error) {
		t.Helper()
		if !errors.Is(err, eventstore.ErrNotSupported) {
			t.Errorf("%s on a driver without driver.QueryReader: want ErrNotSupported, got %v", doing, err)
		}
	}
	before := f.multiStateOf(s)
	_, err := f.store.Append(f.ctx, s, eventstore.Any, tagged("Tagged", tag("x")))
	wantNotSupported("append a tagged event", err)
	f.checkNothingWrittenMulti("append a tagged event", before)

	ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(s, tagged("Tagged", tag("x")))}}
	_, err = f.store.AppendMulti(f.ctx, ma)
	wantNotSupported(describeMulti(ma), err)
	ma = eventstore.MultiAppend{Records: []eventstore.Record{rec(s, tagged("Untagged"))},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: query(item(types("Untagged")))}}
	_, err = f.store.AppendMulti(f.ctx, ma)
	wantNotSupported(describeMulti(ma), err)
	f.checkNothingWrittenMulti("multi-stream appends with tags or a condition", before)

	reads := 0
	for _, err := range f.store.ReadQuery(f.ctx, query(item(types("Tagged"))), eventstore.ReadQueryOptions{}) {
		wantNotSupported("read by query", err)
		reads++
		break
	}
	if reads == 0 {
		t.Errorf("read by query on a driver without driver.QueryReader: want ErrNotSupported, got an empty result")
	}
	if f.canImport() {
		ev := tagged("Tagged", tag("x"))
		err := f.store.Import(f.ctx, []eventstore.RecordedEvent{{StreamID: s, Version: 1, ID: ev.ID, Type: ev.Type,
			ContentType: ev.ContentType, Data: ev.Data, RecordedAt: time.Now().UTC().Truncate(time.Microsecond), Tags: ev.Tags}})
		wantNotSupported("import a tagged event", err)
		f.checkNothingWrittenMulti("import a tagged event", before)
	}
}
