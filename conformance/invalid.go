package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Names" and "Events" for input: bad stream IDs,
// event types and payloads are rejected with ErrInvalidArgument (and the
// specific error) and nothing is written; every other name — quotes, SQL,
// LIKE wildcards, unicode — is plain data that round-trips and matches only
// itself. (Negative read limits and bad read arguments are in read.go.)

func init() { ruleSets = append(ruleSets, invalidRules) }

func invalidRules() []rule {
	return []rule{
		{name: "InvalidStreamIDRejected", run: testInvalidStreamID},
		{name: "InvalidEventTypeRejected", run: testInvalidEventType},
		{name: "ZeroEventsRejected", run: testZeroEvents},
		{name: "InvalidPayloadRejected", run: testInvalidPayload},
		{name: "HostileNamesRoundTrip", run: testHostileNames},
		{name: "NamesCompareExactly", run: testNamesCompareExactly},
		{name: "WildcardsInNamesDoNotMatchInFilters", run: testWildcardFilters},
	}
}

// badName is a string that is not a valid stream ID or event type.
type badName struct{ name, value string }

func badNames() []badName {
	return []badName{
		{"Empty", ""},
		{"256Bytes", strings.Repeat("x", 256)},
		{"256BytesOf128Runes", strings.Repeat("é", 128)},
		{"InvalidUTF8", "Order-\xff1"},
		{"TruncatedUTF8", "Order-\xe2\x82"},
		{"NUL", "Order-\x001"},
		{"Newline", "Order-1\n"},
		{"Tab", "Order\t1"},
		{"DEL", "Order-\x7f"},
		{"C1Control", "Order-\u0085"},
		{"C1ControlFirst", "\u0080Order"},
		{"LeadingDollar", "$Order-1"},
		{"DollarOnly", "$"},
	}
}

func testInvalidStreamID(t *testing.T, f *fixture) {
	f.mustAppend(stream(""), eventstore.NoStream, events(1, "Existing")...)
	for _, bad := range badNames() {
		t.Run(bad.name, func(t *testing.T) {
			f := f.sub(t)
			for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
				doing := fmt.Sprintf("append at %s to stream ID %q", expectationName(exp), bad.value)
				before := f.state(bad.value)
				_, err := f.store.Append(f.ctx, bad.value, exp, events(2, "Happened")...)
				checkInvalid(t, doing, err, eventstore.ErrInvalidStreamID)
				f.checkNothingWritten(doing, before)
			}
		})
	}
}

func testInvalidEventType(t *testing.T, f *fixture) {
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(1, "Existing")...)
	for _, bad := range badNames() {
		t.Run(bad.name, func(t *testing.T) {
			f := f.sub(t)
			for at := range 2 {
				batch := events(2, "Good")
				batch[at].Type = bad.value
				doing := fmt.Sprintf("append a batch of 2 whose event %d has type %q", at, bad.value)
				before := f.state(s)
				_, err := f.store.Append(f.ctx, s, eventstore.Exact(1), batch...)
				checkInvalid(t, doing, err, eventstore.ErrInvalidEventType)
				f.checkNothingWritten(doing, before)
			}
		})
	}
}

func testZeroEvents(t *testing.T, f *fixture) {
	existing := stream("")
	f.mustAppend(existing, eventstore.NoStream, events(1, "Existing")...)
	for _, s := range []string{stream(""), existing} {
		for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.StreamExists, eventstore.Exact(1)} {
			before := f.state(s)
			doing := fmt.Sprintf("append no events at %s to a stream at version %d", expectationName(exp), before.version)
			_, err := f.store.Append(f.ctx, s, exp)
			checkInvalid(t, doing, err, eventstore.ErrInvalidArgument)
			_, err = f.store.Append(f.ctx, s, exp, []eventstore.Event{}...)
			checkInvalid(t, doing+" (an empty slice)", err, eventstore.ErrInvalidArgument)
			f.checkNothingWritten(doing, before)
		}
	}
}

func testInvalidPayload(t *testing.T, f *fixture) {
	cases := []payloadCase{
		jsonData("JSONTruncated", `{"a":`),
		jsonData("JSONTrailingGarbage", `{} x`),
		jsonData("JSONTwoValues", `{}{}`),
		jsonData("JSONWhitespaceOnly", "  \n"),
		jsonData("JSONSingleQuotes", `{'a':1}`),
		jsonData("JSONInvalidUTF8", "\"\xff\xfe\""),
		jsonData("JSONRawNUL", "\"a\x00b\""),
		jsonData("JSONNotJSON", "hello"),
		withMetadata("MetadataArray", `[{"a":1}]`),
		withMetadata("MetadataString", `"s"`),
		withMetadata("MetadataNumber", `1`),
		withMetadata("MetadataNull", `null`),
		withMetadata("MetadataTruncated", `{"a":1`),
		withMetadata("MetadataInvalidUTF8", "{\"a\":\"\xff\"}"),
		withMetadata("MetadataWhitespaceOnly", "   "),
		withMetadata("MetadataNULBytes", "\x00{}\x00"),
		withMetadata("MetadataBinary", "\xff\xfe\x00\x01"),
		{"UnknownContentType2", eventstore.Event{Type: "Payload", ContentType: 2, Data: []byte(`{}`)}},
		{"UnknownContentType255", eventstore.Event{Type: "Payload", ContentType: 255}},
	}
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(1, "Existing")...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			for _, single := range []bool{true, false} {
				batch := []eventstore.Event{tc.event}
				doing := fmt.Sprintf("append an event with %s (data %q, metadata %q)", tc.name, tc.event.Data, tc.event.Metadata)
				if !single {
					batch = append(events(1, "Good"), tc.event)
					doing += " after a good event"
				}
				before := f.state(s)
				_, err := f.store.Append(f.ctx, s, eventstore.Any, batch...)
				checkInvalid(t, doing, err, eventstore.ErrInvalidPayload)
				f.checkNothingWritten(doing, before)
			}
		})
	}
}

// hostileNames are valid stream IDs and event types that break code which
// builds queries from strings, pattern-matches, trims, folds case or counts
// characters instead of bytes.
func hostileNames() []badName {
	return []badName{
		{"255Bytes", strings.Repeat("x", 255)},
		{"255BytesOf2ByteRunes", strings.Repeat("é", 127) + "x"},
		{"255BytesOf3ByteRunes", strings.Repeat("€", 85)},
		{"255BytesOf4ByteRunes", strings.Repeat("😀", 63) + "abc"},
		{"SQLInjection", `'; DROP TABLE events;--`},
		{"SingleQuotes", `O'Brien-'1'`},
		{"DoubleQuotes", `"quoted"-"1"`},
		{"Backslashes", `back\slash-\\1\`},
		{"Percent", `100%-%`},
		{"Underscore", `a_b-_`},
		{"Brackets", `[a-z]-{1}`},
		{"DollarInside", `Order$-$1`},
		{"Spaces", ` spaced  out - 1 `},
		{"Emoji", `🎉-🎂`},
		{"OnlyDash", `-`},
		{"TrailingDash", `Order-`},
		{"DashesOnly", `---`},
		{"Slash", `a/b-c/d`},
		{"Colon", `urn:x-1:2`},
		{"Asterisk", `*-*`},
		{"QuestionMark", `?-?`},
		{"Hash", `#-#`},
		{"Ampersand", `a&b=c-1`},
		{"LookalikeUnicode", "Οrder-1"}, // Greek capital omicron
		{"ZeroWidthJoiner", "Order\u200d-1"},
	}
}

func testHostileNames(t *testing.T, f *fixture) {
	names := hostileNames()
	// Each name is a stream ID whose event types are the same name and the
	// name of the next case, so types and streams both get every value.
	for i, n := range names {
		next := names[(i+1)%len(names)].value
		f.mustAppend(n.value, eventstore.NoStream,
			eventstore.NewEvent(n.value, []byte(`{}`)), eventstore.NewEvent(next, []byte(`{}`)))
	}
	all := f.readAll()
	if len(all) != 2*len(names) {
		t.Fatalf("append 2 events to each of %d streams with hostile names: read all returned %d events", len(names), len(all))
	}
	for i, n := range names {
		t.Run(n.name, func(t *testing.T) {
			next := names[(i+1)%len(names)].value
			doing := fmt.Sprintf("stream %q with events of types %q and %q", n.value, n.value, next)
			got := f.readStream(n.value)
			if len(got) != 2 || got[0].StreamID != n.value || got[0].Type != n.value || got[1].StreamID != n.value || got[1].Type != next {
				t.Errorf("%s: read back %s", doing, describeEvents(got))
			}
			if v, err := f.store.StreamVersion(f.ctx, n.value); err != nil || v != 2 {
				t.Errorf("%s: StreamVersion: want 2, got %d (err %v)", doing, v, err)
			}
			if cat := eventstore.Category(n.value); eventstore.ValidateStreamID(cat) == nil {
				want := filterLog(all, func(ev eventstore.RecordedEvent) bool { return ev.Category() == cat })
				opts := eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{cat}}}
				if got := collect(t, f.store.ReadAll(f.ctx, opts)); !sameIDs(idsOf(got), idsOf(want)) {
					t.Errorf("%s: read all in category %q: want %s, got %s", doing, cat, describeEvents(want), describeEvents(got))
				}
			}
			want := filterLog(all, func(ev eventstore.RecordedEvent) bool { return ev.Type == n.value })
			opts := eventstore.ReadAllOptions{Filter: eventstore.Filter{EventTypes: []string{n.value}}}
			if got := collect(t, f.store.ReadAll(f.ctx, opts)); !sameIDs(idsOf(got), idsOf(want)) || len(want) != 2 {
				t.Errorf("%s: read all of type %q: want %s, got %s", doing, n.value, describeEvents(want), describeEvents(got))
			}
		})
	}
}

func testNamesCompareExactly(t *testing.T, f *fixture) {
	// Stream IDs and types are compared byte for byte: no case folding,
	// trimming, or unicode normalisation.
	names := []string{
		"Order-1", "order-1", "ORDER-1", "Order-1 ", " Order-1", "Order -1",
		"Order-1\u00e9", "Order-1e\u0301", "Order-１", "Order-l", "Order-I",
	}
	for _, n := range names {
		f.mustAppend(n, eventstore.NoStream, eventstore.NewEvent(n, []byte(`{}`)))
	}
	all := f.readAll()
	for _, n := range names {
		doing := fmt.Sprintf("one event of type %q in each of %d streams whose IDs differ only in case, spaces or normalisation; stream %q", n, len(names), n)
		got := f.readStream(n)
		if len(got) != 1 || got[0].StreamID != n || got[0].Type != n {
			t.Errorf("%s: read back %s", doing, describeEvents(got))
		}
		if v, err := f.store.StreamVersion(f.ctx, n); err != nil || v != 1 {
			t.Errorf("%s: StreamVersion: want 1, got %d (err %v)", doing, v, err)
		}
		cat := eventstore.Category(n)
		want := filterLog(all, func(ev eventstore.RecordedEvent) bool { return ev.Category() == cat })
		opts := eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{cat}}}
		if got := collect(t, f.store.ReadAll(f.ctx, opts)); !sameIDs(idsOf(got), idsOf(want)) {
			t.Errorf("%s: read all in category %q: want %s, got %s", doing, cat, describeEvents(want), describeEvents(got))
		}
		opts = eventstore.ReadAllOptions{Filter: eventstore.Filter{EventTypes: []string{n}}}
		if got := collect(t, f.store.ReadAll(f.ctx, opts)); len(got) != 1 || got[0].Type != n {
			t.Errorf("%s: read all of type %q: want 1 event, got %s", doing, n, describeEvents(got))
		}
	}
}

func testWildcardFilters(t *testing.T, f *fixture) {
	// Categories and types that a LIKE, GLOB or regular expression would
	// confuse with each other, and streams without "-" (their own category).
	streams := []string{
		"Cat-1", "Cat", "Cat-x-y", "Ca-1", "Cats-1", "cat-1",
		"Ca_-1", "Ca%-1", `Ca\-1`, "C%-1", "Ca't-1", `Ca"t-1`, "Ca*-1", "Ca.-1", "[Ca]-1",
	}
	types := []string{"Type", "Typ_", "Typ%", "Type%", `Typ\`, "Typ.", "T*", "type", "Types"}
	for i, s := range streams {
		batch := make([]eventstore.Event, 0, 2)
		batch = append(batch, eventstore.NewEvent(types[i%len(types)], []byte(`{}`)))
		batch = append(batch, eventstore.NewEvent(types[(i+1)%len(types)], []byte(`{}`)))
		f.mustAppend(s, eventstore.NoStream, batch...)
	}
	all := f.readAll()
	check := func(filter eventstore.Filter) {
		t.Helper()
		want := filterLog(all, filter.Matches)
		got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Filter: filter}))
		if !sameIDs(idsOf(got), idsOf(want)) {
			t.Errorf("read all with categories %q and types %q: want %s, got %s", filter.Categories, filter.EventTypes, describeEvents(want), describeEvents(got))
		}
	}
	cats := []string{}
	for _, s := range streams {
		if c := eventstore.Category(s); !slices.Contains(cats, c) {
			cats = append(cats, c)
		}
	}
	cats = append(cats, "Ca", "C", "Ca%", "Ca_", "%", "_", "*", ".*", "ca") // some match no stream
	for _, c := range cats {
		check(eventstore.Filter{Categories: []string{c}})
	}
	for _, ty := range append(types, "Typ", "T%", "%", "_", ".*") {
		check(eventstore.Filter{EventTypes: []string{ty}})
	}
	check(eventstore.Filter{Categories: []string{"Ca_", "C%"}, EventTypes: []string{"Typ_", "Typ%"}})
	if want := filterLog(all, eventstore.Filter{Categories: []string{"Cat"}}.Matches); len(want) != 6 {
		t.Errorf("the rule's own model: want 6 events in category Cat (streams Cat-1, Cat and Cat-x-y), got %d", len(want))
	}
}

// filterLog returns the events of log that keep says to keep.
func filterLog(log []eventstore.RecordedEvent, keep func(eventstore.RecordedEvent) bool) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, ev := range log {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// describeEvents lists events as stream/version/type for failure messages.
func describeEvents(evs []eventstore.RecordedEvent) string {
	if len(evs) == 0 {
		return "no events"
	}
	parts := make([]string, len(evs))
	for i, ev := range evs {
		parts[i] = fmt.Sprintf("%q v%d type %q", ev.StreamID, ev.Version, ev.Type)
	}
	return fmt.Sprintf("%d events [%s]", len(evs), strings.Join(parts, ", "))
}
