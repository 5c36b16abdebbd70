package conformance

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Events": data and metadata round-trip byte for
// byte, the content type is kept, the size limit is exact, and RecordedAt is
// UTC at microsecond precision.

func init() { ruleSets = append(ruleSets, payloadRules) }

func payloadRules() []rule {
	return []rule{
		{name: "DataRoundTripsByteForByte", run: testDataRoundTrips},
		{name: "MetadataRoundTripsByteForByte", run: testMetadataRoundTrips},
		{name: "EventAtMaxSizeRoundTrips", run: testEventAtMaxSize},
		{name: "EventOverMaxSizeRejected", run: testEventOverMaxSize},
		{name: "LargeEventsReadWhole", run: testLargeEventsReadWhole},
		{name: "RecordedAtIsUTCMicroseconds", run: testRecordedAt},
		{name: "ReadEventsAreCopies", run: testReadEventsAreCopies},
		{name: "ReadEventsOutliveLaterReads", run: testReadEventsOutliveLaterReads},
		{name: "AppendCopiesCallerPayloads", run: testAppendCopiesPayloads},
	}
}

// payloadCase is an event whose payloads must come back unchanged.
type payloadCase struct {
	name  string
	event eventstore.Event
}

func jsonData(name, data string) payloadCase {
	return payloadCase{name, eventstore.Event{Type: "Payload", Data: []byte(data)}}
}

func binaryData(name, data string) payloadCase {
	return payloadCase{name, eventstore.Event{Type: "Payload", ContentType: eventstore.Binary, Data: []byte(data)}}
}

func withMetadata(name, metadata string) payloadCase {
	return payloadCase{name, eventstore.Event{Type: "Payload", Data: []byte(`{}`), Metadata: []byte(metadata)}}
}

func dataCases() []payloadCase {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return []payloadCase{
		jsonData("OddSpacing", " \t{ \"b\" : 1 ,\n\"a\":[ 1 , 2 ]\r\n}  \n"),
		jsonData("KeyOrder", `{"z":1,"a":2,"m":{"y":true,"b":null}}`),
		jsonData("DuplicateKeys", `{"a":1,"a":2}`),
		jsonData("Escapes", `{"s":"quote \" backslash \\ slash \/ \b\f\n\r\t","u":"\u00e9\u4e2d\ud83d\ude00"}`),
		jsonData("NulEscape", `{"nul":"a\u0000b","also":"\u0000"}`),
		jsonData("RawUnicode", `{"ü":"日本語 🎉","é":"e`+"\u0301"+`"}`),
		jsonData("Numbers", `{"big":123456789012345678901234567890,"f":1.0e+10,"neg":-0.0,"small":1E-7,"int":10}`),
		jsonData("String", `"just a string"`),
		jsonData("Number", `42`),
		jsonData("Null", `null`),
		jsonData("True", `true`),
		jsonData("Array", `[1,"two",{"3":[]}]`),
		jsonData("EmptyObject", `{}`),
		jsonData("DeepNesting", strings.Repeat("[", 100)+strings.Repeat("]", 100)),
		{"NilJSON", eventstore.Event{Type: "Payload"}},
		{"EmptyJSON", eventstore.Event{Type: "Payload", Data: []byte{}}},
		binaryData("NulBytes", "\x00\x00a\x00"),
		binaryData("OneNul", "\x00"),
		binaryData("InvalidUTF8", "\xff\xfe\xfd\x80\xc0\xaf"),
		binaryData("AllByteValues", string(all)),
		binaryData("LooksLikeJSON", `{"a":1}`),
		binaryData("TrailingWhitespace", "text \r\n\n  "),
		{"NilBinary", eventstore.Event{Type: "Payload", ContentType: eventstore.Binary}},
		{"EmptyBinary", eventstore.Event{Type: "Payload", ContentType: eventstore.Binary, Data: []byte{}}},
		{"BinaryWithMetadata", eventstore.Event{Type: "Payload", ContentType: eventstore.Binary, Data: []byte("\x00\xff"), Metadata: []byte(`{"k":"v"}`)}},
	}
}

func metadataCases() []payloadCase {
	return []payloadCase{
		{"Nil", eventstore.Event{Type: "Payload", Data: []byte(`{}`)}},
		{"Empty", eventstore.Event{Type: "Payload", Data: []byte(`{}`), Metadata: []byte{}}},
		withMetadata("EmptyObject", `{}`),
		withMetadata("OddSpacing", "  {  \"a\" :1 ,\n\t\"b\":  \"x\"}  "),
		withMetadata("KeyOrder", `{"z":1,"a":2,"m":3}`),
		withMetadata("WellKnownKeysAndNesting", `{"$correlationId":"c-1","$causationId":"e-2","nested":{"deep":[1,2,{"x":null}]}}`),
		withMetadata("NulEscape", `{"n":"\u0000"}`),
		withMetadata("RawUnicode", `{"ключ":"значение 🎉"}`),
		withMetadata("DuplicateKeys", `{"a":1,"a":2}`),
		withMetadata("Escapes", `{"s":"\"\\\/\b\f\n\r\t\u00e9"}`),
	}
}

func testDataRoundTrips(t *testing.T, f *fixture) { checkRoundTrips(t, f, "data", dataCases()) }

func testMetadataRoundTrips(t *testing.T, f *fixture) {
	checkRoundTrips(t, f, "metadata", metadataCases())
}

// checkRoundTrips appends the cases as one batch to one stream and one by one
// to another (drivers often treat single events apart), then checks each
// reads back unchanged from ReadStream and ReadAll.
func checkRoundTrips(t *testing.T, f *fixture, what string, cases []payloadCase) {
	// Each stream gets its own event IDs: the rule is not about IDs.
	withIDs := func() []eventstore.Event {
		evs := make([]eventstore.Event, len(cases))
		for i, tc := range cases {
			evs[i] = tc.event
			evs[i].ID = eventstore.NewEvent("", nil).ID
		}
		return evs
	}
	batch, single := stream("Batch"), stream("Single")
	appended := map[string][]eventstore.Event{batch: withIDs(), single: withIDs()}
	f.mustAppend(batch, eventstore.NoStream, appended[batch]...)
	for _, ev := range appended[single] {
		f.mustAppend(single, eventstore.Any, ev)
	}
	byID := map[string]eventstore.RecordedEvent{}
	for _, ev := range f.readAll() {
		byID[ev.StreamID+" "+ev.ID.String()] = ev
	}
	for _, s := range []string{batch, single} {
		got := f.readStream(s)
		if len(got) != len(cases) {
			t.Fatalf("append %d %s cases to %q: read back %d events", len(cases), what, s, len(got))
		}
		evs := appended[s]
		for i, tc := range cases {
			ev := got[i]
			checkPayload(t, fmt.Sprintf("%s case %s appended to %q, read from the stream", what, tc.name, s), evs[i], ev)
			fromAll, ok := byID[s+" "+evs[i].ID.String()]
			if !ok {
				t.Errorf("%s case %s appended to %q: not found by read all", what, tc.name, s)
				continue
			}
			checkPayload(t, fmt.Sprintf("%s case %s appended to %q, read from the global log", what, tc.name, s), evs[i], fromAll)
		}
	}
}

// checkPayload checks ev read back has want's ID, type, content type, data and metadata.
func checkPayload(t testing.TB, doing string, want eventstore.Event, ev eventstore.RecordedEvent) {
	t.Helper()
	if ev.ID != want.ID || ev.Type != want.Type {
		t.Errorf("%s: want ID %s type %q, got ID %s type %q", doing, want.ID, want.Type, ev.ID, ev.Type)
	}
	if ev.ContentType != want.ContentType {
		t.Errorf("%s: want content type %s, got %s", doing, want.ContentType, ev.ContentType)
	}
	if d := bytesDiff(want.Data, ev.Data); d != "" {
		t.Errorf("%s: data changed: %s", doing, d)
	}
	if d := bytesDiff(want.Metadata, ev.Metadata); d != "" {
		t.Errorf("%s: metadata changed: %s", doing, d)
	}
}

// bytesDiff describes where got differs from want, or returns "" when they
// are equal (nil and empty are equal). Long payloads are cut around the
// first difference.
func bytesDiff(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	const ctx = 32
	cut := func(b []byte) string {
		lo, hi := max(0, i-ctx), min(len(b), i+ctx)
		s := fmt.Sprintf("%q", b[lo:hi])
		if lo > 0 {
			s = "…" + s
		}
		if hi < len(b) {
			s += "…"
		}
		return s
	}
	return fmt.Sprintf("first difference at byte %d; want %d bytes %s, got %d bytes %s", i, len(want), cut(want), len(got), cut(got))
}

// sizedCase builds an event whose data plus metadata is size bytes.
type sizedCase struct {
	name  string
	build func(size int) eventstore.Event
}

func sizedCases() []sizedCase {
	return []sizedCase{
		{"BinaryData", func(size int) eventstore.Event {
			return eventstore.Event{Type: "Big", ContentType: eventstore.Binary, Data: randomBytes(size)}
		}},
		{"JSONData", func(size int) eventstore.Event {
			return eventstore.Event{Type: "Big", Data: jsonObjectOfSize(size)}
		}},
		{"HalfMetadata", func(size int) eventstore.Event {
			meta := jsonObjectOfSize(size / 2)
			return eventstore.Event{Type: "Big", ContentType: eventstore.Binary, Data: randomBytes(size - len(meta)), Metadata: meta}
		}},
	}
}

// jsonObjectOfSize returns a JSON object of exactly n bytes (n ≥ 10).
func jsonObjectOfSize(n int) []byte {
	const head, tail = `{"pad":"`, `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func testEventAtMaxSize(t *testing.T, f *fixture) {
	maxSize := f.store.Limits().MaxEventSize
	for _, tc := range sizedCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			ev := tc.build(maxSize)
			ev.ID = eventstore.NewEvent("", nil).ID
			s := stream("")
			doing := fmt.Sprintf("append an event of exactly MaxEventSize (%d bytes) as %s", maxSize, tc.name)
			if _, err := f.store.Append(f.ctx, s, eventstore.NoStream, ev); err != nil {
				t.Fatalf("%s: want success, got %v", doing, err)
			}
			got := f.readStream(s)
			if len(got) != 1 {
				t.Fatalf("%s: read back %d events, want 1", doing, len(got))
			}
			checkPayload(t, doing, ev, got[0])
			all := f.readAll()
			for _, r := range all {
				if r.ID == ev.ID {
					checkPayload(t, doing+", read from the global log", ev, r)
				}
			}
		})
	}
}

func testEventOverMaxSize(t *testing.T, f *fixture) {
	maxSize := f.store.Limits().MaxEventSize
	for _, tc := range sizedCases() {
		for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
			t.Run(tc.name+"/"+expectationName(exp), func(t *testing.T) {
				f := f.sub(t)
				s := stream("")
				doing := fmt.Sprintf("append at %s an event one byte over MaxEventSize (%d bytes) as %s", expectationName(exp), maxSize, tc.name)
				before := f.state(s)
				_, err := f.store.Append(f.ctx, s, exp, tc.build(maxSize+1))
				checkInvalid(t, doing, err, eventstore.ErrEventTooLarge)
				f.checkNothingWritten(doing, before)
			})
		}
	}
}

// clockSkew is how far a server's clock may be from the test's.
const clockSkew = 5 * time.Second

func testRecordedAt(t *testing.T, f *fixture) {
	s := stream("")
	t0 := time.Now()
	f.mustAppend(s, eventstore.NoStream, events(3, "Timed")...)
	t1 := time.Now()
	f.mustAppend(s, eventstore.Exact(3), events(1, "Timed")...)
	fromStream := f.readStream(s)
	again := f.readStream(s)
	fromAll := map[string]time.Time{}
	for _, ev := range f.readAll() {
		fromAll[ev.ID.String()] = ev.RecordedAt
	}
	for i, ev := range fromStream[:3] {
		at := ev.RecordedAt
		doing := fmt.Sprintf("event %d appended between %s and %s recorded at %s", i, t0.UTC().Format(time.RFC3339Nano), t1.UTC().Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
		if at.Location() != time.UTC {
			t.Errorf("%s: want location UTC, got %s", doing, at.Location())
		}
		if at.Nanosecond()%1000 != 0 {
			t.Errorf("%s: want microsecond precision, got %d ns past the microsecond", doing, at.Nanosecond()%1000)
		}
		if at.Before(t0.Add(-clockSkew)) || at.After(t1.Add(clockSkew)) {
			t.Errorf("%s: want a time within %s of the append", doing, clockSkew)
		}
	}
	for i, ev := range fromStream {
		if !ev.RecordedAt.Equal(again[i].RecordedAt) || ev.RecordedAt.Location() != again[i].RecordedAt.Location() {
			t.Errorf("version %d: read twice from the stream, recorded at %s then %s", ev.Version, ev.RecordedAt, again[i].RecordedAt)
		}
		if at, ok := fromAll[ev.ID.String()]; !ok || !at.Equal(ev.RecordedAt) || at.Location() != ev.RecordedAt.Location() {
			t.Errorf("version %d: recorded at %s read from the stream, %s read from the global log", ev.Version, ev.RecordedAt, at)
		}
		if i > 0 && ev.RecordedAt.Before(fromStream[i-1].RecordedAt.Add(-clockSkew)) {
			t.Errorf("version %d recorded at %s, long before version %d at %s", ev.Version, ev.RecordedAt, i, fromStream[i-1].RecordedAt)
		}
	}
}

func testReadEventsAreCopies(t *testing.T, f *fixture) {
	s := stream("")
	ev := eventstore.NewEvent("Kept", []byte(`{"a":1}`))
	ev.Metadata = []byte(`{"m":1}`)
	f.mustAppend(s, eventstore.NoStream, ev)
	scribble := func(evs []eventstore.RecordedEvent) {
		for _, e := range evs {
			for i := range e.Data {
				e.Data[i] = 'X'
			}
			for i := range e.Metadata {
				e.Metadata[i] = 'X'
			}
		}
	}
	scribble(f.readStream(s))
	scribble(f.readAll())
	scribble(collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true})))
	got := f.readStream(s)
	if len(got) != 1 {
		t.Fatalf("read back %d events, want 1", len(got))
	}
	checkPayload(t, "overwrite the data and metadata of events a read returned, then read again", ev, got[0])
	checkPayload(t, "overwrite the data and metadata of events a read returned, then read all", ev, f.readAll()[0])
}

// testReadEventsOutliveLaterReads keeps the events of reads while more
// reads run: a driver that reuses its pages (driver.PageRecycler) or
// buffers must not change an event a caller holds.
func testReadEventsOutliveLaterReads(t *testing.T, f *fixture) {
	s := stream("")
	var want []eventstore.Event
	for i := range 40 {
		ev := eventstore.NewEvent(fmt.Sprintf("Kept%d", i%3), fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", i)))
		ev.Metadata = fmt.Appendf(nil, `{"m":%d}`, i)
		want = append(want, ev)
	}
	f.mustAppend(s, eventstore.NoStream, want...)
	kept := [][]eventstore.RecordedEvent{f.readStream(s), f.readStream(s)}
	for range 3 {
		f.readStream(s)
		f.readAll()
		collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true}))
	}
	for _, evs := range kept {
		if len(evs) != len(want) {
			t.Fatalf("read %d events, want %d", len(evs), len(want))
		}
		for i, ev := range evs {
			if ev.StreamID != s || ev.Version != uint64(i+1) {
				t.Errorf("event %d: read as %s@%d, after more reads %s@%d", i, s, i+1, ev.StreamID, ev.Version)
			}
			checkPayload(t, "read, then read again several times", want[i], ev)
		}
	}
}

func testAppendCopiesPayloads(t *testing.T, f *fixture) {
	s := stream("")
	data, meta := []byte(`{"a":1}`), []byte(`{"m":1}`)
	ev := eventstore.Event{ID: eventstore.NewEvent("", nil).ID, Type: "Kept", Data: data, Metadata: meta}
	want := ev
	want.Data, want.Metadata = bytes.Clone(data), bytes.Clone(meta)
	f.mustAppend(s, eventstore.NoStream, ev)
	copy(data, `{"b":2}`)
	copy(meta, `{"n":2}`)
	got := f.readStream(s)
	if len(got) != 1 {
		t.Fatalf("read back %d events, want 1", len(got))
	}
	checkPayload(t, "overwrite the caller's data and metadata after Append, then read", want, got[0])
	checkPayload(t, "overwrite the caller's data and metadata after Append, then read all", want, f.readAll()[0])
}

func testLargeEventsReadWhole(t *testing.T, f *fixture) {
	// Six events of the largest size an append takes, several megabytes in
	// all: more than a backend's read page may hold (DynamoDB's is 1 MB).
	// A short page from the driver means the end of the read, so a driver
	// must keep reading until its page is full or the data ends.
	const n = 6
	lim := f.store.Limits()
	size := lim.MaxEventSize
	if lim.MaxAppendSize > 0 {
		size = min(size, lim.MaxAppendSize)
	}
	s, other := stream("Large"), stream("Large")
	var want []eventstore.RecordedEvent
	for i := range n {
		ev := eventstore.Event{ID: eventstore.NewEvent("", nil).ID, Type: "Large", ContentType: eventstore.Binary, Data: randomBytes(size)}
		f.mustAppend(s, eventstore.Exact(uint64(i)), ev)
		f.mustAppend(other, eventstore.Any, events(1, "Small")...)
		want = append(want, eventstore.RecordedEvent{StreamID: s, Version: uint64(i + 1), ID: ev.ID, Type: ev.Type, ContentType: ev.ContentType, Data: ev.Data})
	}
	check := func(doing string, got, want []eventstore.RecordedEvent) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: got %d events, want %d", doing, len(got), len(want))
			return
		}
		for i := range want {
			if got[i].ID != want[i].ID || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Errorf("%s: event %d is not the one appended as version %d, byte for byte", doing, i, want[i].Version)
			}
		}
	}
	doing := fmt.Sprintf("%d events of %d bytes", n, size)
	check("read the stream of "+doing, f.readStream(s), want)
	check("read the stream of "+doing+" backwards", collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true})), reversed(want))
	check("read the stream of "+doing+" with limit 4", collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Limit: 4})), want[:4])
	var large []eventstore.RecordedEvent
	for _, ev := range f.readAll() {
		if ev.StreamID == s {
			large = append(large, ev)
		}
	}
	check("read all, with "+doing, large, want)
	byType := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{EventTypes: []string{"Large"}}}))
	check("read all of type Large, "+doing, byType, want)
}
