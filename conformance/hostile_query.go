package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Hostile input to ReadQuery and append conditions (docs/semantics.md
// "Tags, queries and append conditions"): an empty query matches every
// event; After past the head of the log is no error and matches nothing;
// Limit 0 means all and a negative Limit is ErrInvalidArgument; a page
// bound of one byte still pages through every event; long queries (many
// items, many types, more tags than an event can carry, repeated tags)
// are answered exactly; a done context fails the call and writes nothing.

func init() { ruleSets = append(ruleSets, hostileQueryRules) }

func hostileQueryRules() []rule {
	return []rule{
		{name: "HostileReadQueryOptions", run: queryReader(testHostileReadQueryOptions)},
		{name: "HostileReadQueryLongQueries", run: queryReader(testHostileLongQueries)},
		{name: "HostileConditionEmptyQueryAndFarAfter", run: conditional(testHostileConditionBounds)},
		{name: "HostileQueryDoneContext", run: testHostileQueryDoneContext},
	}
}

// farPast is a deadline long gone.
var farPast = time.Unix(0, 0)

// farPosition is a position past the head of any log.
var farPosition = eventstore.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}

// canMultiAppend reports whether the driver appends to several streams.
func (f *fixture) canMultiAppend() bool {
	_, ok := f.driver.(driver.MultiAppender)
	return ok
}

// storeWith opens a Store with opts over a fresh driver, closed at cleanup.
func (f *fixture) storeWith(opts eventstore.Options) *eventstore.Store {
	f.t.Helper()
	s := eventstore.New(f.harness.NewDriver(f.t), opts)
	f.t.Cleanup(func() {
		if err := s.Close(); err != nil {
			f.t.Errorf("Store.Close: %v", err)
		}
	})
	return s
}

// queryLog appends a small log of tagged events to two streams and
// returns it as read back.
func queryLog(f *fixture, s *eventstore.Store) []eventstore.RecordedEvent {
	f.t.Helper()
	a, b := stream("Query"), stream("Query")
	for _, w := range []struct {
		stream string
		evs    []eventstore.Event
	}{
		{a, []eventstore.Event{tagged("Opened", "k:1"), tagged("Moved", "k:1", "k:2"), tagged("Moved")}},
		{b, []eventstore.Event{tagged("Opened", "k:2"), tagged("Closed", "k:1", "k:2", "k:3")}},
		{a, []eventstore.Event{tagged("Closed", "k:3"), tagged("Moved", "k:2")}},
	} {
		if _, err := s.Append(f.ctx, w.stream, eventstore.Any, w.evs...); err != nil {
			f.t.Fatalf("append %d events to %q: %v", len(w.evs), w.stream, err)
		}
	}
	return collect(f.t, s.ReadAll(f.ctx, eventstore.ReadAllOptions{}))
}

// testHostileReadQueryOptions reads by query with edge values of the
// options: nothing past the head, every event without items, limits of 0,
// 1 and -1, and a page bound of one byte.
func testHostileReadQueryOptions(t *testing.T, f *fixture) {
	all := queryLog(f, f.store)
	head := lastPosition(all)
	q := query(item(nil, "k:1"))
	want := filterLog(all, func(ev eventstore.RecordedEvent) bool { return matches(q, ev) })
	for _, tc := range []struct {
		name string
		q    eventstore.Query
		opts eventstore.ReadQueryOptions
		want []eventstore.RecordedEvent
	}{
		{"empty query: every event", eventstore.Query{}, eventstore.ReadQueryOptions{}, all},
		{"empty items: every event", eventstore.Query{Items: []eventstore.QueryItem{}}, eventstore.ReadQueryOptions{}, all},
		{"empty query after the head", eventstore.Query{}, eventstore.ReadQueryOptions{After: head}, nil},
		{"empty query far past the head", eventstore.Query{}, eventstore.ReadQueryOptions{After: farPosition}, nil},
		{"tag query far past the head", q, eventstore.ReadQueryOptions{After: farPosition}, nil},
		{"tag query past the head's commit", q, eventstore.ReadQueryOptions{After: eventstore.Position{Commit: head.Commit + 1}}, nil},
		{"limit 0: all", q, eventstore.ReadQueryOptions{Limit: 0}, want},
		{"limit 1", q, eventstore.ReadQueryOptions{Limit: 1}, want[:1]},
		{"limit past the matches", q, eventstore.ReadQueryOptions{Limit: math.MaxInt32}, want},
		{"empty query limit 2 after the first event", eventstore.Query{}, eventstore.ReadQueryOptions{After: all[0].Position, Limit: 2}, all[1:3]},
	} {
		doing := fmt.Sprintf("read by query %s (%s) with After %s and Limit %d", describeQuery(tc.q), tc.name, tc.opts.After, tc.opts.Limit)
		got := collect(t, f.store.ReadQuery(f.ctx, tc.q, tc.opts))
		if !sameIDs(idsOf(got), idsOf(tc.want)) {
			t.Errorf("%s: want %s, got %s", doing, describe(tc.want), describe(got))
		}
	}
	for _, limit := range []int{-1, math.MinInt} {
		doing := fmt.Sprintf("read by query with Limit %d", limit)
		err := readErr(t, doing, f.store.ReadQuery(f.ctx, q, eventstore.ReadQueryOptions{Limit: limit}))
		checkInvalid(t, doing, err, eventstore.ErrInvalidArgument)
	}

	// A page bound of one byte: every page holds one event, and reads page
	// through all of them.
	tiny := f.storeWith(eventstore.Options{MaxPageBytes: 1})
	all = queryLog(f, tiny)
	for _, q := range []eventstore.Query{{}, q, query(item(types("Moved")), item(nil, "k:3"))} {
		want := filterLog(all, func(ev eventstore.RecordedEvent) bool { return matches(q, ev) })
		for _, limit := range []int{0, 2} {
			doing := fmt.Sprintf("read by query %s with Limit %d on a store whose pages hold 1 byte", describeQuery(q), limit)
			got := collect(t, tiny.ReadQuery(f.ctx, q, eventstore.ReadQueryOptions{Limit: limit}))
			w := want
			if limit > 0 {
				w = want[:min(limit, len(want))]
			}
			if !sameIDs(idsOf(got), idsOf(w)) {
				t.Errorf("%s: want %s, got %s", doing, describe(w), describe(got))
			}
		}
	}
}

// testHostileLongQueries reads by queries far longer than usual: hundreds
// of items, an item with hundreds of types, an item with more distinct
// tags than an event may carry (it matches nothing), an item that repeats
// a tag (as if it were there once), and the same item many times.
func testHostileLongQueries(t *testing.T, f *fixture) {
	all := queryLog(f, f.store)
	manyItems := make([]eventstore.QueryItem, 0, 600)
	for i := range 600 {
		manyItems = append(manyItems, item(nil, fmt.Sprintf("k:%d", i+3)))
	}
	manyTypes := make([]string, 0, 500)
	for i := range 500 {
		manyTypes = append(manyTypes, fmt.Sprintf("Type%d", i))
	}
	manyTypes = append(manyTypes, "Closed")
	tooManyTags := make([]string, 0, 40)
	for i := range 40 {
		tooManyTags = append(tooManyTags, fmt.Sprintf("k:%d", i+1))
	}
	sameItem := make([]eventstore.QueryItem, 300)
	for i := range sameItem {
		sameItem[i] = item(types("Moved"), "k:2")
	}
	queries := map[string]eventstore.Query{
		"600 items of one tag each":              {Items: manyItems},
		"one item of 501 types":                  query(item(manyTypes)),
		"one item of 501 types and a tag":        query(item(manyTypes, "k:1")),
		"an item with 40 distinct tags":          query(item(nil, tooManyTags...)),
		"40 distinct tags or a type":             query(item(nil, tooManyTags...), item(types("Opened"))),
		"a repeated tag":                         query(item(nil, "k:2", "k:2", "k:2")),
		"a repeated tag beside another":          query(item(types("Closed", "Closed"), "k:3", "k:1", "k:3")),
		"300 copies of one item":                 {Items: sameItem},
		"600 items and 501 types and 40 tags":    {Items: append(append([]eventstore.QueryItem{}, manyItems...), item(manyTypes), item(nil, tooManyTags...))},
		"40 tags of which every event's repeats": query(item(nil, append(slices40("k:2"), "k:1")...)),
	}
	for name, q := range queries {
		want := filterLog(all, func(ev eventstore.RecordedEvent) bool { return matches(q, ev) })
		for _, limit := range []int{0, 1} {
			doing := fmt.Sprintf("read by a query of %s with Limit %d", name, limit)
			got := collect(t, f.store.ReadQuery(f.ctx, q, eventstore.ReadQueryOptions{Limit: limit}))
			w := want
			if limit > 0 {
				w = want[:min(limit, len(want))]
			}
			if !sameIDs(idsOf(got), idsOf(w)) {
				t.Errorf("%s: want %s, got %s", doing, describe(w), describe(got))
			}
		}
		if !f.canMultiAppend() {
			continue
		}
		ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(stream("Long"), tagged("Unrelated"))},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: q}}
		doing := "append with the condition of " + name
		before := f.state("")
		_, err := f.store.AppendMulti(f.ctx, ma)
		if len(want) > 0 {
			checkConflict(t, doing, err, nil, true)
			f.checkNothingWritten(doing, before)
		} else if err != nil {
			t.Errorf("%s (no event matches it): want success, got %v", doing, err)
		}
		all = f.readAll()
	}
}

// slices40 returns tag 40 times.
func slices40(tag string) []string {
	out := make([]string, 40)
	for i := range out {
		out[i] = tag
	}
	return out
}

// testHostileConditionBounds appends with conditions whose query is empty
// (every event matches) or whose After is at or past the head of the log.
func testHostileConditionBounds(t *testing.T, f *fixture) {
	all := queryLog(f, f.store)
	s := stream("Cond")
	for _, tc := range []struct {
		name  string
		cond  func(head eventstore.Position) eventstore.AppendCondition
		fails bool
	}{
		{"empty query anywhere in the log", func(eventstore.Position) eventstore.AppendCondition { return eventstore.AppendCondition{} }, true},
		{"empty query after the first event", func(eventstore.Position) eventstore.AppendCondition {
			return eventstore.AppendCondition{After: all[0].Position}
		}, true},
		{"matching query far past the head", func(eventstore.Position) eventstore.AppendCondition {
			return eventstore.AppendCondition{FailIfEventsMatch: query(item(nil, "k:1")), After: farPosition}
		}, false},
		{"empty query far past the head", func(eventstore.Position) eventstore.AppendCondition {
			return eventstore.AppendCondition{After: farPosition}
		}, false},
		{"empty query past the head's commit", func(head eventstore.Position) eventstore.AppendCondition {
			return eventstore.AppendCondition{After: eventstore.Position{Commit: head.Commit + 1}}
		}, false},
		{"empty query at the head", func(head eventstore.Position) eventstore.AppendCondition {
			return eventstore.AppendCondition{After: head}
		}, false},
	} {
		cond := tc.cond(lastPosition(f.readAll()))
		ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(s, tagged("Checked", "k:9"))}, Condition: &cond}
		doing := fmt.Sprintf("%s (%s)", describeMulti(ma), tc.name)
		before := f.state(s)
		res, err := f.store.AppendMulti(f.ctx, ma)
		if tc.fails {
			checkConflict(t, doing, err, nil, true)
			f.checkNothingWritten(doing, before)
			continue
		}
		if err != nil {
			t.Errorf("%s: want success (no event follows After), got %v", doing, err)
			continue
		}
		if got := f.readStream(s); len(got) != int(before.version)+1 || got[len(got)-1].ID != res.EventIDs[0] {
			t.Errorf("%s: succeeded, but stream %q holds %s", doing, s, describe(got))
		}
	}
}

// testHostileQueryDoneContext reads by query and appends with a condition
// under a cancelled and an expired context: each fails with the context's
// error (ErrNotSupported where the driver lacks the capability) and writes
// nothing.
func testHostileQueryDoneContext(t *testing.T, f *fixture) {
	_, reads := f.driver.(driver.QueryReader)
	s := stream("Done")
	f.mustAppend(s, eventstore.NoStream, events(2, "Before")...)
	for _, c := range doneContexts(f) {
		doing := fmt.Sprintf("read by query with a %s context", c.name)
		err := readErr(t, doing, f.store.ReadQuery(c.ctx, query(item(types("Before"))), eventstore.ReadQueryOptions{}))
		checkDone(t, doing, err, c.want, reads)

		ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(s, tagged("After", "k:1")), rec(stream("Done"), tagged("After"))},
			Expect:    []eventstore.StreamExpectation{expect(s, eventstore.Exact(2))},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: query(item(types("Nothing")))}}
		doing = fmt.Sprintf("%s with a %s context", describeMulti(ma), c.name)
		before := f.state(s)
		_, err = f.store.AppendMulti(c.ctx, ma)
		checkDone(t, doing, err, c.want, reads && f.canMultiAppend())
		f.checkNothingWritten(doing, before)
	}
}

// doneContext is a context that is done before the call.
type doneContext struct {
	name string
	ctx  context.Context
	want error
}

// doneContexts returns a cancelled and an expired context.
func doneContexts(f *fixture) []doneContext {
	cancelled, cancel := context.WithCancel(f.ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(f.ctx, farPast)
	f.t.Cleanup(cancel2)
	return []doneContext{{"cancelled", cancelled, context.Canceled}, {"expired", expired, context.DeadlineExceeded}}
}

// checkDone checks err matches want, or ErrNotSupported when the driver
// lacks the capability the call needs (has is false).
func checkDone(t testing.TB, doing string, err, want error, has bool) {
	t.Helper()
	if errors.Is(err, want) || (!has && errors.Is(err, eventstore.ErrNotSupported)) {
		return
	}
	t.Errorf("%s: want an error matching %v, got %v", doing, want, err)
}
