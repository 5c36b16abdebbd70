package conformance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Reads" for the global log, and the filters.

func init() { ruleSets = append(ruleSets, readAllRules) }

func readAllRules() []rule {
	return []rule{
		{name: "ReadAllForwards", run: testReadAllForwards},
		{name: "ReadAllAfterBefore", run: testReadAllAfterBefore},
		{name: "ReadAllLimit", run: testReadAllLimit},
		{name: "ReadAllFilter", run: testReadAllFilter},
		{name: "ReadAllPaging", run: testReadAllPaging},
		{name: "ReadAllFilterWithManyValues", run: testReadAllFilterManyValues},
		{name: "ReadAllBreakThenRangeAgain", run: testReadAllBreak},
		{name: "ReadAllBackwards", requires: ReadAllBackwards, run: testReadAllBackwards},
		{name: "ReadAllBackwardsFilter", requires: ReadAllBackwards, run: testReadAllBackwardsFilter},
		{name: "ReadAllBackwardsPaging", requires: ReadAllBackwards, run: testReadAllBackwardsPaging},
		{name: "ReadAllBackwardsUnsupportedFails", run: testReadAllBackwardsUnsupported},
	}
}

// randomWord returns n random lower-case hex digits, to make names unique.
func randomWord(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// logModel is a global log written by seedLog, with the streams and event
// types chosen to catch filters that match by prefix, by pattern or without
// regard to case.
type logModel struct {
	cat     string // a category with streams "cat-…", "cat-…-part" and "cat" itself
	streams struct {
		dash, twoDashes, bare  string // category cat
		plural, suffixed       string // categories cat+"s" and cat+"2"
		lower                  string // category strings.ToLower(cat)
		noDash                 string // its own category
		underscore, underTrap  string // categories "U_…" and "UX…"
		percent, percentTrap   string // categories "P%…" and "PQ…"
		underCat, percentCat   string // the categories of underscore and percent
		twoDashesWrongCategory string // cat+"-"+the first part of twoDashes: no stream has it
	}
	// written lists the appended events in append order, which is log order:
	// the rule appends one batch at a time.
	written []eventstore.Event
	stream  []string // stream of written[i]
	// log is the whole log as read forwards, checked against written.
	log []eventstore.RecordedEvent
}

// seedLog appends about 40 events in batches of 1 to 3 to streams of several
// categories, with the types Placed, PlacedV2, Shipped and Cancelled, and
// reads the whole log back.
func (f *fixture) seedLog() *logModel {
	f.t.Helper()
	m := &logModel{cat: "Ord" + randomWord(8)}
	w := randomWord(8)
	st := &m.streams
	st.dash = m.cat + "-" + randomWord(6)
	first := randomWord(6)
	st.twoDashes = m.cat + "-" + first + "-part"
	st.twoDashesWrongCategory = m.cat + "-" + first
	st.bare = m.cat
	st.plural = m.cat + "s-" + randomWord(6)
	st.suffixed = m.cat + "2-" + randomWord(6)
	st.lower = strings.ToLower(m.cat) + "-" + randomWord(6)
	st.noDash = "Ledger" + randomWord(8)
	st.underCat = "U_" + w
	st.underscore = st.underCat + "-1"
	st.underTrap = "UX" + w + "-1"
	st.percentCat = "P%" + w
	st.percent = st.percentCat + "-1"
	st.percentTrap = "PQ" + w + "-1"

	types := []string{"Placed", "PlacedV2", "Shipped", "Cancelled", "placed"}
	streams := []string{st.dash, st.plural, st.twoDashes, st.noDash, st.bare, st.suffixed, st.lower,
		st.underscore, st.underTrap, st.percent, st.percentTrap}
	versions := map[string]uint64{}
	for i := range 24 {
		s := streams[(i*7)%len(streams)]
		n := 1 + i%3
		evs := make([]eventstore.Event, n)
		for j := range evs {
			evs[j] = eventstore.NewEvent(types[(i+j)%len(types)], []byte(fmt.Sprintf(`{"batch":%d,"n":%d}`, i, j)))
		}
		f.mustAppend(s, eventstore.Exact(versions[s]), evs...)
		versions[s] += uint64(n)
		for range evs {
			m.stream = append(m.stream, s)
		}
		m.written = append(m.written, evs...)
	}
	m.log = f.readAll()
	return m
}

// pick returns the events of the log in streams and (when types is not
// empty) of one of types, in log order.
func (m *logModel) pick(streams []string, types []string) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, ev := range m.log {
		if slices.Contains(streams, ev.StreamID) && (len(types) == 0 || slices.Contains(types, ev.Type)) {
			out = append(out, ev)
		}
	}
	return out
}

// expectAll is what ReadAll(opts) must return from log, computed naively.
func expectAll(log []eventstore.RecordedEvent, opts eventstore.ReadAllOptions) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, ev := range log {
		if ev.Position.Compare(opts.After) <= 0 {
			continue
		}
		if !opts.Before.IsZero() && ev.Position.Compare(opts.Before) >= 0 {
			continue
		}
		if opts.Filter.Matches(ev) {
			out = append(out, ev)
		}
	}
	if opts.Backwards {
		slices.Reverse(out)
	}
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out
}

// checkReadAll reads with opts and compares with expectAll over log.
func (f *fixture) checkReadAll(doing string, log []eventstore.RecordedEvent, opts eventstore.ReadAllOptions) {
	f.t.Helper()
	got := collect(f.t, f.store.ReadAll(f.ctx, opts))
	sameEvents(f.t, fmt.Sprintf("%s: ReadAll(%s)", doing, describeOpts(opts)), got, expectAll(log, opts))
}

// describeOpts prints read-all options for failure messages.
func describeOpts(o eventstore.ReadAllOptions) string {
	var parts []string
	if !o.After.IsZero() {
		parts = append(parts, "After: "+o.After.String())
	}
	if !o.Before.IsZero() {
		parts = append(parts, "Before: "+o.Before.String())
	}
	if o.Backwards {
		parts = append(parts, "Backwards")
	}
	if o.Limit != 0 {
		parts = append(parts, fmt.Sprintf("Limit: %d", o.Limit))
	}
	if len(o.Filter.Categories) > 0 {
		parts = append(parts, fmt.Sprintf("Categories: %q", o.Filter.Categories))
	}
	if len(o.Filter.EventTypes) > 0 {
		parts = append(parts, fmt.Sprintf("EventTypes: %q", o.Filter.EventTypes))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func testReadAllForwards(t *testing.T, f *fixture) {
	m := f.seedLog()
	doing := fmt.Sprintf("%d events appended one batch at a time to %d streams: read all", len(m.written), 11)
	if len(m.log) != len(m.written) {
		t.Fatalf("%s: want %d events, got %d: %s", doing, len(m.written), len(m.log), describe(m.log))
	}
	for i, ev := range m.log {
		w := m.written[i]
		if ev.ID != w.ID || ev.StreamID != m.stream[i] || ev.Type != w.Type || string(ev.Data) != string(w.Data) {
			t.Fatalf("%s: event %d: want id %s in %q type %q data %s (append order), got %s id %s data %s",
				doing, i, w.ID, m.stream[i], w.Type, w.Data, describeOne(ev), ev.ID, ev.Data)
		}
		if ev.Position.IsZero() {
			t.Errorf("%s: event %d (%s) has the zero position, which is before every event", doing, i, describeOne(ev))
		}
		if i > 0 && !m.log[i-1].Position.Less(ev.Position) {
			t.Errorf("%s: event %d at %s is not after event %d at %s", doing, i, ev.Position, i-1, m.log[i-1].Position)
		}
	}
	// Each stream's events are in version order in the log, and carry the
	// same positions (and everything else) as when the stream is read.
	byStream := map[string][]eventstore.RecordedEvent{}
	for _, ev := range m.log {
		byStream[ev.StreamID] = append(byStream[ev.StreamID], ev)
	}
	for s, inLog := range byStream {
		sameEvents(t, fmt.Sprintf("%s, keep the events of %q; compare with reading that stream", doing, s), inLog, f.readStream(s))
	}
	sameEvents(t, "read all twice", f.readAll(), m.log)
}

func testReadAllAfterBefore(t *testing.T, f *fixture) {
	m := f.seedLog()
	log := m.log
	n := len(log)
	pos := func(i int) eventstore.Position { return log[i].Position }
	cat := eventstore.Filter{Categories: []string{m.cat}}
	for _, opts := range []eventstore.ReadAllOptions{
		{After: pos(0)},
		{After: pos(4)},
		{After: pos(n - 2)},
		{After: pos(n - 1)},
		{Before: pos(0)},
		{Before: pos(1)},
		{Before: pos(9)},
		{Before: pos(n - 1)},
		{After: pos(4), Before: pos(9)},
		{After: pos(4), Before: pos(5)},
		{After: pos(4), Before: pos(6)},
		{After: pos(0), Before: pos(n - 1)},
		{After: pos(4), Before: pos(20), Filter: cat},
		{After: pos(4), Before: pos(20), Filter: eventstore.Filter{EventTypes: []string{"Shipped"}}},
	} {
		f.checkReadAll("exclusive bounds", log, opts)
	}
	// The bounds are positions, not indexes: After the last event is empty,
	// and the zero Position means no bound.
	if got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: pos(n - 1)})); len(got) != 0 {
		t.Errorf("ReadAll After the last event's position %s: want no events, got %s", pos(n-1), describe(got))
	}
	if got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Before: pos(0)})); len(got) != 0 {
		t.Errorf("ReadAll Before the first event's position %s: want no events, got %s", pos(0), describe(got))
	}
}

func testReadAllLimit(t *testing.T, f *fixture) {
	m := f.seedLog()
	log := m.log
	n := len(log)
	for _, opts := range []eventstore.ReadAllOptions{
		{Limit: 1},
		{Limit: 5},
		{Limit: n},
		{Limit: n + 10},
		{After: log[2].Position, Limit: 4},
		{After: log[n-3].Position, Limit: 5},
		{Before: log[10].Position, Limit: 4},
		{Limit: 3, Filter: eventstore.Filter{Categories: []string{m.cat}}},
		{Limit: 2, Filter: eventstore.Filter{EventTypes: []string{"Cancelled"}}},
		{After: log[3].Position, Limit: 2, Filter: eventstore.Filter{Categories: []string{m.cat}, EventTypes: []string{"Placed"}}},
	} {
		f.checkReadAll("limit", log, opts)
	}
}

// filterCase is a filter and the streams and types it must select.
type filterCase struct {
	name    string
	filter  eventstore.Filter
	streams []string
	types   []string // empty: every type
}

func (m *logModel) filterCases() []filterCase {
	st := m.streams
	all := []string{st.dash, st.plural, st.twoDashes, st.noDash, st.bare, st.suffixed, st.lower,
		st.underscore, st.underTrap, st.percent, st.percentTrap}
	ourCat := []string{st.dash, st.twoDashes, st.bare}
	cats := func(c ...string) eventstore.Filter { return eventstore.Filter{Categories: c} }
	typs := func(t ...string) eventstore.Filter { return eventstore.Filter{EventTypes: t} }
	return []filterCase{
		{"NoFilter", eventstore.Filter{}, all, nil},
		{"EmptyLists", eventstore.Filter{Categories: []string{}, EventTypes: []string{}}, all, nil},
		{"Category", cats(m.cat), ourCat, nil},
		{"CategoryIsTextBeforeFirstDash", cats(st.twoDashesWrongCategory), nil, nil},
		{"CategoryOfStreamWithoutDash", cats(st.noDash), []string{st.noDash}, nil},
		{"CategoryPlural", cats(m.cat + "s"), []string{st.plural}, nil},
		{"CategoryWithDigitSuffix", cats(m.cat + "2"), []string{st.suffixed}, nil},
		{"CategoryIsCaseSensitive", cats(strings.ToLower(m.cat)), []string{st.lower}, nil},
		{"CategoryPrefixIsNotACategory", cats(m.cat[:len(m.cat)-1]), nil, nil},
		{"CategoryUnderscoreIsNotAWildcard", cats(st.underCat), []string{st.underscore}, nil},
		{"CategoryPercentIsNotAWildcard", cats(st.percentCat), []string{st.percent}, nil},
		{"CategoryUnknown", cats("Nothing" + randomWord(6)), nil, nil},
		{"CategoryList", cats(m.cat, st.noDash), append(slices.Clone(ourCat), st.noDash), nil},
		{"CategoryListWithUnknown", cats("Nothing"+randomWord(6), m.cat+"s"), []string{st.plural}, nil},
		{"EventType", typs("Placed"), all, []string{"Placed"}},
		{"EventTypeIsCaseSensitive", typs("placed"), all, []string{"placed"}},
		{"EventTypeList", typs("Placed", "Cancelled"), all, []string{"Placed", "Cancelled"}},
		{"EventTypeUnknown", typs("Nothing"), nil, nil},
		{"CategoryAndEventType", eventstore.Filter{Categories: []string{m.cat}, EventTypes: []string{"Shipped"}}, ourCat, []string{"Shipped"}},
		{"CategoryListAndEventTypeList", eventstore.Filter{
			Categories: []string{m.cat, m.cat + "s"}, EventTypes: []string{"PlacedV2", "Cancelled"},
		}, append(slices.Clone(ourCat), st.plural), []string{"PlacedV2", "Cancelled"}},
	}
}

func testReadAllFilter(t *testing.T, f *fixture) {
	m := f.seedLog()
	for _, tc := range m.filterCases() {
		want := m.pick(tc.streams, tc.types)
		if tc.name == "Category" && len(want) < 6 {
			t.Fatalf("the seeded log has only %d events in category %q", len(want), m.cat)
		}
		got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Filter: tc.filter}))
		sameEvents(t, fmt.Sprintf("%s: ReadAll with Filter{Categories: %q, EventTypes: %q}", tc.name, tc.filter.Categories, tc.filter.EventTypes), got, want)
	}
}

// pagedLog appends pagedEvents events in batches to four streams of two
// categories ("A…" and "B…"), alternating the types "Even" and "Odd", and
// returns the two categories and the whole log.
func (f *fixture) pagedLog() (catA, catB string, log []eventstore.RecordedEvent) {
	f.t.Helper()
	catA, catB = "A"+randomWord(8), "B"+randomWord(8)
	streams := []string{catA + "-1", catB + "-1", catA + "-2", catB + "-2"}
	batch := 50
	if lim := f.store.Limits(); lim.MaxAppendEvents > 0 {
		batch = min(batch, lim.MaxAppendEvents)
	}
	var written []eventstore.Event
	for i := 0; len(written) < pagedEvents; i++ {
		evs := make([]eventstore.Event, min(batch, pagedEvents-len(written)))
		for j := range evs {
			typ := "Even"
			if (len(written)+j)%2 == 1 {
				typ = "Odd"
			}
			evs[j] = eventstore.NewEvent(typ, []byte(fmt.Sprintf("%d", len(written)+j)))
		}
		f.mustAppend(streams[i%len(streams)], eventstore.Any, evs...)
		written = append(written, evs...)
	}
	log = f.readAll()
	if len(log) != len(written) {
		f.t.Fatalf("read all of %d events appended in batches of %d: got %d events", len(written), batch, len(log))
	}
	seen := map[[16]byte]bool{}
	for i, ev := range log {
		if ev.ID != written[i].ID {
			f.t.Fatalf("read all of %d events appended in batches of %d: event %d: want id %s (append order), got %s id %s",
				len(written), batch, i, written[i].ID, describeOne(ev), ev.ID)
		}
		if seen[ev.ID] {
			f.t.Fatalf("read all of %d events: event %d (%s) was read twice", len(written), i, describeOne(ev))
		}
		seen[ev.ID] = true
		if i > 0 && !log[i-1].Position.Less(ev.Position) {
			f.t.Fatalf("read all of %d events: event %d at %s is not after event %d at %s", len(written), i, ev.Position, i-1, log[i-1].Position)
		}
	}
	return catA, catB, log
}

func testReadAllPaging(t *testing.T, f *fixture) {
	catA, catB, log := f.pagedLog()
	n := len(log)
	for _, opts := range []eventstore.ReadAllOptions{
		{After: log[99].Position},
		{After: log[99].Position, Limit: 700},
		{Before: log[1100].Position},
		{After: log[10].Position, Before: log[1100].Position},
		{Limit: 512},
		{Limit: 513},
		{Limit: 1024},
		{Filter: eventstore.Filter{EventTypes: []string{"Even"}}},
		{Filter: eventstore.Filter{Categories: []string{catA}}},
		{Filter: eventstore.Filter{Categories: []string{catB}, EventTypes: []string{"Odd"}}},
		{After: log[200].Position, Limit: 550, Filter: eventstore.Filter{EventTypes: []string{"Odd"}}},
	} {
		f.checkReadAll(fmt.Sprintf("%d events in the log", n), log, opts)
	}
}

func testReadAllBreak(t *testing.T, f *fixture) {
	_, _, log := f.pagedLog()
	seq := f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{})
	sameEvents(t, "read the first 3 events of the log, then break", takeN(t, seq, 3), log[:3])
	sameEvents(t, "read the first 700 events of the log, then break", takeN(t, seq, 700), log[:700])
	sameEvents(t, "range again over the same read after breaking", collect(t, seq), log)
	res := f.mustAppend(stream(""), eventstore.NoStream, events(2, "Later")...)
	got := collect(t, seq)
	if len(got) != len(log)+2 || got[len(got)-1].Position != res.Position {
		t.Errorf("append 2 events, then range again over a read of all %d events: want %d events ending at %s, got %d: %s",
			len(log), len(log)+2, res.Position, len(got), describe(got[max(0, len(got)-3):]))
	}
}

func testReadAllBackwards(t *testing.T, f *fixture) {
	m := f.seedLog()
	log := m.log
	n := len(log)
	got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Backwards: true}))
	sameEvents(t, "read all Backwards: want read all forwards reversed", got, reversed(log))
	pos := func(i int) eventstore.Position { return log[i].Position }
	for _, opts := range []eventstore.ReadAllOptions{
		{Backwards: true, Limit: 1},
		{Backwards: true, Limit: 5},
		{Backwards: true, Limit: n + 1},
		{Backwards: true, Before: pos(9)},
		{Backwards: true, Before: pos(0)},
		{Backwards: true, Before: pos(n - 1)},
		{Backwards: true, After: pos(4)},
		{Backwards: true, After: pos(n - 1)},
		{Backwards: true, After: pos(4), Before: pos(9)},
		{Backwards: true, After: pos(4), Before: pos(5)},
		{Backwards: true, After: pos(2), Before: pos(20), Limit: 6},
	} {
		f.checkReadAll("backwards", log, opts)
	}
}

func testReadAllBackwardsFilter(t *testing.T, f *fixture) {
	m := f.seedLog()
	for _, tc := range m.filterCases() {
		want := reversed(m.pick(tc.streams, tc.types))
		got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Backwards: true, Filter: tc.filter}))
		sameEvents(t, fmt.Sprintf("%s: ReadAll Backwards with Filter{Categories: %q, EventTypes: %q}", tc.name, tc.filter.Categories, tc.filter.EventTypes), got, want)
	}
	cat := eventstore.Filter{Categories: []string{m.cat}}
	f.checkReadAll("backwards", m.log, eventstore.ReadAllOptions{Backwards: true, Limit: 2, Filter: cat})
	f.checkReadAll("backwards", m.log, eventstore.ReadAllOptions{Backwards: true, Before: m.log[30].Position, After: m.log[3].Position, Filter: cat})
}

func testReadAllBackwardsPaging(t *testing.T, f *fixture) {
	catA, _, log := f.pagedLog()
	for _, opts := range []eventstore.ReadAllOptions{
		{Backwards: true},
		{Backwards: true, Limit: 512},
		{Backwards: true, Limit: 1024},
		{Backwards: true, Before: log[1100].Position, Limit: 700},
		{Backwards: true, After: log[50].Position},
		{Backwards: true, Filter: eventstore.Filter{EventTypes: []string{"Odd"}}},
		{Backwards: true, Before: log[1000].Position, Filter: eventstore.Filter{Categories: []string{catA}}},
	} {
		f.checkReadAll(fmt.Sprintf("%d events in the log", len(log)), log, opts)
	}
	seq := f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Backwards: true})
	sameEvents(t, "read the newest 600 events backwards, then break", takeN(t, seq, 600), reversed(log)[:600])
}

func testReadAllBackwardsUnsupported(t *testing.T, f *fixture) {
	if _, unsupported := f.harness.Unsupported()[ReadAllBackwards]; !unsupported {
		t.Skipf("%s: supported by this driver, so the rules that read backwards run instead", ReadAllBackwards)
	}
	f.mustAppend(stream(""), eventstore.NoStream, events(3, "Happened")...)
	checkReadFails(t, "ReadAll Backwards on a driver that declares read-all-backwards unsupported",
		f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Backwards: true}), eventstore.ErrNotSupported, errors.ErrUnsupported)
}

func testReadAllFilterManyValues(t *testing.T, f *fixture) {
	// A filter is the application's data: thousands of categories or types
	// (a subscription per tenant, say) must work like a few, whatever a
	// backend's limits on terms or parameters of one query.
	const n = 40_000
	m := f.seedLog()
	st := m.streams
	ourCat := []string{st.dash, st.twoDashes, st.bare}
	many := func(prefix string, keep ...string) []string {
		out := make([]string, 0, n+len(keep))
		for i := range n {
			out = append(out, fmt.Sprintf("%s%d", prefix, i))
		}
		return append(out, keep...)
	}
	cases := []struct {
		name    string
		filter  eventstore.Filter
		streams []string
		types   []string
	}{
		{"Categories", eventstore.Filter{Categories: many("Nothing", m.cat)}, ourCat, nil},
		{"EventTypes", eventstore.Filter{EventTypes: many("Nothing", "Shipped")}, nil, []string{"Shipped"}},
		{"Both", eventstore.Filter{Categories: many("Nothing", m.cat), EventTypes: many("Nothing", "Shipped")}, ourCat, []string{"Shipped"}},
	}
	for _, tc := range cases {
		streams := tc.streams
		if streams == nil {
			streams = []string{st.dash, st.plural, st.twoDashes, st.noDash, st.bare, st.suffixed, st.lower,
				st.underscore, st.underTrap, st.percent, st.percentTrap}
		}
		want := m.pick(streams, tc.types)
		got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Filter: tc.filter}))
		sameEvents(t, fmt.Sprintf("ReadAll with a filter of %d categories and %d event types (%s)", len(tc.filter.Categories), len(tc.filter.EventTypes), tc.name), got, want)
	}
}
