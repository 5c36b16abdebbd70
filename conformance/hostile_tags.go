package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// Hostile input to tags (docs/semantics.md "Events" and "Tags, queries and
// append conditions"): a tag has the rules of a stream ID, an event holds
// at most MaxEventTags distinct ones, and every bad tag is ErrInvalidTag on
// every write path (ErrInvalidQuery and ErrInvalidTag in a query) before
// anything is written, whether or not the driver reads by query: the Store
// validates first. Valid tags and types full of quotes, LIKE wildcards,
// backslashes and unicode are plain data that a query matches exactly,
// never as a pattern.

func init() { ruleSets = append(ruleSets, hostileTagRules) }

func hostileTagRules() []rule {
	return []rule{
		{name: "HostileTagsRejectedOnEveryWritePath", run: testHostileTagsRejected},
		{name: "HostileTagsRejectedInQueries", run: testHostileQueryTagsRejected},
		{name: "HostileTagsAndTypesMatchExactly", run: queryReader(testHostileTagsMatchExactly)},
		{name: "HostileTagsMostPerEventRoundTrip", run: queryReader(testHostileTagsMost)},
	}
}

// badTags are tag lists an event may not carry, each with what is wrong.
func badTags() []struct {
	name string
	tags []string
} {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("t:%d", i)
		}
		return out
	}
	out := []struct {
		name string
		tags []string
	}{
		{"33Tags", many(eventstore.MaxEventTags + 1)},
		{"5000Tags", many(5000)},
		{"DuplicateTag", []string{"a", "b", "a"}},
		{"DuplicateHostileTag", []string{"100%", "a_b", "100%"}},
	}
	for _, bad := range badNames() {
		out = append(out, struct {
			name string
			tags []string
		}{"Tag" + bad.name, []string{"good:1", bad.value}})
	}
	return out
}

// testHostileTagsRejected appends, multi-appends and imports events whose
// tags break the rules: each fails with ErrInvalidTag and writes nothing,
// on every driver (the Store validates before it asks the driver, so a
// driver without multi-stream appends or imports gives the same answer).
func testHostileTagsRejected(t *testing.T, f *fixture) {
	s := stream("BadTag")
	f.mustAppend(s, eventstore.NoStream, events(1, "Existing")...)
	for _, bad := range badTags() {
		t.Run(bad.name, func(t *testing.T) {
			f := f.sub(t)
			ev := tagged("Tagged", bad.tags...)
			good := tagged("Tagged", "good:2")
			doing := fmt.Sprintf("append an event with %d tags %.80q", len(bad.tags), bad.tags)
			before := f.state(s)
			_, err := f.store.Append(f.ctx, s, eventstore.Exact(1), good, ev)
			checkInvalid(t, doing, err, eventstore.ErrInvalidTag)
			f.checkNothingWritten(doing, before)

			ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(s, good), rec(stream("BadTag"), ev)}}
			_, err = f.store.AppendMulti(f.ctx, ma)
			checkInvalid(t, "multi-stream "+doing, err, eventstore.ErrInvalidTag)
			f.checkNothingWritten("multi-stream "+doing, before)

			imp := recorded(s, 2, 2, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
			imp[1].Tags = bad.tags
			err = f.store.Import(f.ctx, imp)
			checkInvalid(t, "import "+doing, err, eventstore.ErrInvalidTag)
			f.checkNothingWritten("import "+doing, before)
		})
	}
}

// testHostileQueryTagsRejected reads by query and appends with conditions
// whose items hold a bad tag or type, or neither: ErrInvalidQuery (and the
// name's own error), nothing written, on every driver (validation comes
// before the driver's capabilities).
func testHostileQueryTagsRejected(t *testing.T, f *fixture) {
	s := stream("BadQuery")
	f.mustAppend(s, eventstore.NoStream, events(1, "Existing")...)
	type queryCase struct {
		name string
		q    eventstore.Query
		also error // the more specific error, or nil
	}
	cases := []queryCase{
		{"ItemWithNeither", query(eventstore.QueryItem{}), nil},
		{"SecondItemWithNeither", query(item(types("Existing")), eventstore.QueryItem{Types: []string{}, Tags: []string{}}), nil},
	}
	for _, bad := range badNames() {
		cases = append(cases,
			queryCase{"Tag" + bad.name, query(item(nil, "good:1", bad.value)), eventstore.ErrInvalidTag},
			queryCase{"Type" + bad.name, query(item(types("Existing", bad.value))), eventstore.ErrInvalidEventType})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			doing := fmt.Sprintf("read by query %.120s", describeQuery(tc.q))
			err := readErr(t, doing, f.store.ReadQuery(f.ctx, tc.q, eventstore.ReadQueryOptions{}))
			checkInvalid(t, doing, err, eventstore.ErrInvalidQuery)
			if tc.also != nil {
				checkInvalid(t, doing, err, tc.also)
			}
			ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(s, tagged("Tagged"))},
				Condition: &eventstore.AppendCondition{FailIfEventsMatch: tc.q}}
			doing = fmt.Sprintf("append with the condition %.120s", describeQuery(tc.q))
			before := f.state(s)
			_, err = f.store.AppendMulti(f.ctx, ma)
			checkInvalid(t, doing, err, eventstore.ErrInvalidQuery)
			if tc.also != nil {
				checkInvalid(t, doing, err, tc.also)
			}
			f.checkNothingWritten(doing, before)
		})
	}
}

// hostileTags are valid tags that differ from each other only where a
// LIKE or GLOB pattern, a regular expression, case folding, trimming or a
// careless escape would see them as equal; each must match only itself.
func hostileTags() []string {
	return []string{
		"a%b", "axb", "a_b", "a%", "a", "%", "_", "a\\b", "a\\%b", "a\\\\b",
		"a'b", "a''b", `a"b`, "a;b", "a*b", "a.b", "a?b", "[a]b", "a^b", "a$b",
		"A%B", "a%b ", " a%b", "a%b\u00e9", "a%be\u0301", "🎉%", "a b",
		"'; DROP TABLE event_tags;--", "username:ada", "username:ada%", "username:Ada",
		strings.Repeat("t", 255), strings.Repeat("€", 85), strings.Repeat("%", 255), strings.Repeat("_", 255),
	}
}

// testHostileTagsMatchExactly tags one event with each hostile tag (and
// one with all of them), types events with hostile names, and checks that
// a query for a tag, a type, or both returns exactly the events carrying
// it, byte for byte; then that a condition on each tag fails only for
// its own events.
func testHostileTagsMatchExactly(t *testing.T, f *fixture) {
	tags := hostileTags()
	typeNames := hostileNames()
	s := stream(`Tag'%_\`)
	var batch []eventstore.Event
	for i, tg := range tags {
		batch = append(batch, tagged(typeNames[i%len(typeNames)].value, tg))
	}
	// One event carries 32 of them, so multi-tag items meet hostile
	// neighbours in one event.
	batch = append(batch, tagged("AllTags", tags[:eventstore.MaxEventTags]...))
	f.mustAppend(s, eventstore.NoStream, batch...)
	all := f.readAll()
	for _, ev := range all {
		if i := slices.IndexFunc(batch, func(b eventstore.Event) bool { return b.ID == ev.ID }); i < 0 || !slices.Equal(ev.Tags, batch[i].Tags) {
			t.Errorf("append events with hostile tags: %s read back with tags %q", describeOne(ev), ev.Tags)
		}
	}
	check := func(q eventstore.Query) {
		t.Helper()
		want := filterLog(all, func(ev eventstore.RecordedEvent) bool { return matches(q, ev) })
		got := f.readQuery(q, eventstore.Position{})
		if !sameIDs(idsOf(got), idsOf(want)) {
			t.Errorf("read by query %s: want %s, got %s", describeQuery(q), describe(want), describe(got))
		}
	}
	for i, tg := range tags {
		check(query(item(nil, tg)))
		check(query(item(nil, tg, tags[(i+1)%len(tags)])))
		check(query(item(types(typeNames[i%len(typeNames)].value), tg)))
		check(query(item(types("AllTags"), tg)))
	}
	for _, n := range typeNames {
		check(query(item(types(n.value))))
	}
	// Tags that appear nowhere but look like patterns of those that do.
	for _, tg := range []string{"a%%b", "a_", "_b", "%b", "a\\", "username:%", "username:_da", "ax%"} {
		check(query(item(nil, tg)))
	}
	if !f.canMultiAppend() {
		return
	}
	for _, tg := range []string{"a%", "a_b", "%", "username:ada%", "a\\%b"} {
		q := query(item(types("Claimed"), tg))
		ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(stream("Claim"), tagged("Claimed", tg))},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: q}}
		if _, err := f.store.AppendMulti(f.ctx, ma); err != nil {
			t.Fatalf("%s: the first claim of %q: %v", describeMulti(ma), tg, err)
		}
	}
	// Each tag is claimed once: a second claim of the same tag fails, a
	// claim of a tag that only a pattern would confuse with it succeeds.
	for _, tc := range []struct {
		tag  string
		fail bool
	}{{"a%", true}, {"a_b", true}, {"%", true}, {"a%b", false}, {"axb", false}, {"a", false}, {"_", false}, {"username:ada", false}, {"a\\b", false}} {
		q := query(item(types("Claimed"), tc.tag))
		ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(stream("Claim"), tagged("Claimed", tc.tag))},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: q}}
		doing := describeMulti(ma)
		_, err := f.store.AppendMulti(f.ctx, ma)
		if tc.fail {
			checkConflict(t, doing+" (the tag is claimed already)", err, nil, true)
		} else if err != nil {
			t.Errorf("%s: the first claim of %q: want success, got %v (only an exact tag may match)", doing, tc.tag, err)
		}
	}
}

// testHostileTagsMost writes events with the most tags an event may carry,
// each as long as a tag may be, on every write path, and reads them back
// in order and by query.
func testHostileTagsMost(t *testing.T, f *fixture) {
	long := func(i int) []string {
		out := make([]string, eventstore.MaxEventTags)
		for j := range out {
			prefix := fmt.Sprintf("%d:%d:", i, j)
			out[j] = prefix + strings.Repeat("é", (eventstore.MaxNameLength-len(prefix))/2)
		}
		return out
	}
	s := stream("MostTags")
	want := map[string][]string{}
	ev := tagged("Most", long(0)...)
	want[ev.ID.String()] = ev.Tags
	f.mustAppend(s, eventstore.NoStream, ev)
	if f.canMultiAppend() {
		ev := tagged("Most", long(1)...)
		want[ev.ID.String()] = ev.Tags
		ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(s, ev)}}
		if _, err := f.store.AppendMulti(f.ctx, ma); err != nil {
			t.Fatalf("%s: %v", describeMulti(ma), err)
		}
	}
	if f.canImport() {
		other := stream("MostTags")
		imp := recorded(other, 1, 1, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
		imp[0].Type, imp[0].Tags = "Most", long(2)
		want[imp[0].ID.String()] = imp[0].Tags
		f.mustImport(imp)
	}
	all := f.readAll()
	if len(all) != len(want) {
		t.Fatalf("events with %d tags of up to %d bytes: wrote %d, read all returned %s", eventstore.MaxEventTags, eventstore.MaxNameLength, len(want), describe(all))
	}
	checkTags(t, "read all of events with the most and longest tags", all, want)
	for _, ev := range all {
		for _, tg := range []string{ev.Tags[0], ev.Tags[len(ev.Tags)-1]} {
			got := f.readQuery(query(item(nil, tg)), eventstore.Position{})
			if len(got) != 1 || got[0].ID != ev.ID {
				t.Errorf("read by the tag %q of %s: want that event alone, got %s", tg, describeOne(ev), describe(got))
			}
		}
		got := f.readQuery(query(item(types("Most"), ev.Tags...)), eventstore.Position{})
		if len(got) != 1 || got[0].ID != ev.ID {
			t.Errorf("read by all %d tags of %s: want that event alone, got %s", len(ev.Tags), describeOne(ev), describe(got))
		}
		checkTags(t, "read by query", got, want)
	}
}
