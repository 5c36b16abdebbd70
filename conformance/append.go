package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Versions and expected versions", the append
// result and atomic batches.

func init() { ruleSets = append(ruleSets, appendRules) }

func appendRules() []rule {
	return []rule{
		{name: "AppendThenReadStream", run: testAppendThenReadStream},
		{name: "ExpectedVersionOnNewStream", run: testExpectedVersionOnNewStream},
		{name: "ExpectedVersionOnExistingStream", run: testExpectedVersionOnExistingStream},
		{name: "AppendResultDescribesWrittenEvents", run: testAppendResult},
		{name: "AppendGeneratesIDsOnlyForZeroIDs", run: testAppendGeneratesIDs},
		{name: "AppendBatchIsContiguousInLog", run: testAppendBatchContiguous},
		{name: "AppendBatchWithBadEventWritesNothing", run: testAppendBatchWithBadEvent},
		{name: "AppendLargeBatch", run: testAppendLargeBatch},
	}
}

func testAppendThenReadStream(t *testing.T, f *fixture) {
	s := stream("")
	evs := events(3, "Happened")
	res := f.mustAppend(s, eventstore.NoStream, evs...)
	if res.Version != 3 {
		t.Errorf("append 3 events to a new stream: want result version 3, got %d", res.Version)
	}
	got := f.readStream(s)
	if len(got) != 3 {
		t.Fatalf("read a stream of 3 events: got %d events", len(got))
	}
	for i, ev := range got {
		if ev.Version != uint64(i+1) || ev.ID != evs[i].ID || ev.StreamID != s || ev.Type != "Happened" || !bytes.Equal(ev.Data, evs[i].Data) {
			t.Errorf("event %d: want version %d id %s data %s, got version %d id %s stream %q type %q data %s",
				i, i+1, evs[i].ID, evs[i].Data, ev.Version, ev.ID, ev.StreamID, ev.Type, ev.Data)
		}
	}
	if got[2].Position != res.Position {
		t.Errorf("append result position %s differs from the last event's position %s", res.Position, got[2].Position)
	}
	if v, err := f.store.StreamVersion(f.ctx, s); err != nil || v != 3 {
		t.Errorf("StreamVersion of a stream of 3 events: want 3, got %d (err %v)", v, err)
	}
	if v, err := f.store.StreamVersion(f.ctx, stream("")); err != nil || v != 0 {
		t.Errorf("StreamVersion of a stream never written: want 0, got %d (err %v)", v, err)
	}
}

// expectationCase is one expected version tried against a stream.
type expectationCase struct {
	name     string
	expected eventstore.ExpectedVersion
	ok       bool
}

func testExpectedVersionOnNewStream(t *testing.T, f *fixture) {
	cases := []expectationCase{
		{"Any", eventstore.Any, true},
		{"NoStream", eventstore.NoStream, true},
		{"Exact(0)", eventstore.Exact(0), true},
		{"ZeroValue", eventstore.ExpectedVersion{}, true},
		{"StreamExists", eventstore.StreamExists, false},
		{"Exact(1)", eventstore.Exact(1), false},
		{"Exact(5)", eventstore.Exact(5), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			checkExpectation(f, stream(""), 0, tc)
		})
	}
}

func testExpectedVersionOnExistingStream(t *testing.T, f *fixture) {
	cases := []expectationCase{
		{"Any", eventstore.Any, true},
		{"StreamExists", eventstore.StreamExists, true},
		{"Exact(5)", eventstore.Exact(5), true},
		{"NoStream", eventstore.NoStream, false},
		{"Exact(0)", eventstore.Exact(0), false},
		{"Exact(3)TooLow", eventstore.Exact(3), false},
		{"Exact(4)TooLow", eventstore.Exact(4), false},
		{"Exact(6)TooHigh", eventstore.Exact(6), false},
		{"Exact(100)TooHigh", eventstore.Exact(100), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			s := stream("")
			f.mustAppend(s, eventstore.NoStream, events(5, "Happened")...)
			checkExpectation(f, s, 5, tc)
		})
	}
}

// checkExpectation appends a batch of 3 to s, which is at version at, with
// tc.expected. A match must write the batch; a mismatch must fail with a
// complete *WrongExpectedVersionError, write nothing, and leave the stream
// usable.
func checkExpectation(f *fixture, s string, at uint64, tc expectationCase) {
	t := f.t
	t.Helper()
	doing := fmt.Sprintf("append 3 events at %s to a stream at version %d", expectationName(tc.expected), at)
	before := f.state(s)
	evs := events(3, "Next")
	res, err := f.store.Append(f.ctx, s, tc.expected, evs...)
	if tc.ok {
		if err != nil {
			t.Fatalf("%s: want success, got %v", doing, err)
		}
		if res.Version != at+3 || res.FirstVersion() != at+1 {
			t.Errorf("%s: want result version %d and first version %d, got %d and %d", doing, at+3, at+1, res.Version, res.FirstVersion())
		}
		f.checkStreamIDs(doing, s, append(idsOf(before.events), idsOfEvents(evs)...))
		return
	}
	checkWrongVersion(t, doing, err, s, tc.expected, at)
	f.checkNothingWritten(doing, before)
	// The rejected append must not wedge the stream.
	if _, err := f.store.Append(f.ctx, s, eventstore.Exact(at), events(1, "After")...); err != nil {
		t.Fatalf("%s was rejected; then an append at Exact(%d): want success, got %v", doing, at, err)
	}
	if v := f.version(s); v != at+1 {
		t.Errorf("%s was rejected; then an append of 1 event at Exact(%d): want version %d, got %d", doing, at, at+1, v)
	}
}

// checkWrongVersion checks err is a wrong-expected-version error with the
// stream, expectation and actual version the append saw.
func checkWrongVersion(t testing.TB, doing string, err error, s string, expected eventstore.ExpectedVersion, actual uint64) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: want ErrWrongExpectedVersion, got nil", doing)
	}
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("%s: want an error matching ErrWrongExpectedVersion, got %v", doing, err)
	}
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) {
		t.Fatalf("%s: want a *WrongExpectedVersionError in the chain of %v", doing, err)
	}
	if wev.Stream != s || wev.Expected != expected || wev.Actual != actual {
		t.Errorf("%s: want WrongExpectedVersionError{Stream: %q, Expected: %s, Actual: %d}, got {Stream: %q, Expected: %s, Actual: %d}",
			doing, s, expectationName(expected), actual, wev.Stream, expectationName(wev.Expected), wev.Actual)
	}
}

func testAppendResult(t *testing.T, f *fixture) {
	s := stream("")
	first := f.mustAppend(s, eventstore.NoStream, events(2, "First")...)
	if first.Version != 2 || first.FirstVersion() != 1 || len(first.EventIDs) != 2 {
		t.Errorf("append 2 events to a new stream: want version 2, first version 1 and 2 event IDs, got %d, %d and %d",
			first.Version, first.FirstVersion(), len(first.EventIDs))
	}
	evs := events(3, "Second")
	res := f.mustAppend(s, eventstore.Exact(2), evs...)
	doing := "append 3 events to a stream at version 2"
	if res.Version != 5 || res.FirstVersion() != 3 {
		t.Errorf("%s: want result version 5 and first version 3, got %d and %d", doing, res.Version, res.FirstVersion())
	}
	if !first.Position.Less(res.Position) {
		t.Errorf("%s: want its position after the first append's %s, got %s", doing, first.Position, res.Position)
	}
	got := f.readStream(s)
	if len(got) != 5 {
		t.Fatalf("%s: read back %d events, want 5", doing, len(got))
	}
	if got[4].Position != res.Position {
		t.Errorf("%s: result position %s differs from the last event's position %s", doing, res.Position, got[4].Position)
	}
	if got[1].Position != first.Position {
		t.Errorf("append 2 events to a new stream: result position %s differs from the last event's position %s", first.Position, got[1].Position)
	}
	if len(res.EventIDs) != 3 {
		t.Fatalf("%s: want 3 event IDs in the result, got %d", doing, len(res.EventIDs))
	}
	for i, id := range res.EventIDs {
		if id != evs[i].ID || got[2+i].ID != id {
			t.Errorf("%s: event %d: want ID %s in the result and read back, got %s and %s", doing, i, evs[i].ID, id, got[2+i].ID)
		}
	}
	all := f.readAll()
	if len(all) != 5 || all[4].Position != res.Position {
		t.Errorf("%s: want 5 events in the global log ending at %s, got %d", doing, res.Position, len(all))
	}
}

func testAppendGeneratesIDs(t *testing.T, f *fixture) {
	s := stream("")
	evs := events(4, "Mixed")
	evs[0].ID = noID
	evs[2].ID = noID
	res := f.mustAppend(s, eventstore.NoStream, evs...)
	doing := "append 4 events, the 1st and 3rd with zero IDs"
	if len(res.EventIDs) != 4 {
		t.Fatalf("%s: want 4 event IDs in the result, got %d", doing, len(res.EventIDs))
	}
	seen := map[any]bool{}
	for i, id := range res.EventIDs {
		switch {
		case id == noID:
			t.Errorf("%s: event %d: result ID is zero", doing, i)
		case evs[i].ID != noID && id != evs[i].ID:
			t.Errorf("%s: event %d: want the given ID %s kept, got %s", doing, i, evs[i].ID, id)
		case seen[id]:
			t.Errorf("%s: event %d: result ID %s repeats", doing, i, id)
		}
		seen[id] = true
	}
	if evs[0].ID != noID || evs[2].ID != noID {
		t.Errorf("%s: the caller's events were modified: IDs %s and %s, want zero", doing, evs[0].ID, evs[2].ID)
	}
	f.checkStreamIDs(doing, s, idStrings(res.EventIDs))
	all := f.readAll()
	for i, ev := range all {
		if i < len(res.EventIDs) && ev.ID != res.EventIDs[i] {
			t.Errorf("%s: read all event %d: want ID %s, got %s", doing, i, res.EventIDs[i], ev.ID)
		}
	}
}

func testAppendBatchContiguous(t *testing.T, f *fixture) {
	a, b := stream("A"), stream("B")
	type step struct {
		stream string
		n      int
	}
	steps := []step{{a, 3}, {b, 2}, {a, 4}, {b, 1}, {a, 1}}
	var want []eventstore.Event
	for _, st := range steps {
		evs := events(st.n, "Batch")
		f.mustAppend(st.stream, eventstore.Any, evs...)
		want = append(want, evs...)
	}
	all := f.readAll()
	if len(all) != len(want) {
		t.Fatalf("5 appends of 11 events in all to two streams: read all returned %d events", len(all))
	}
	for i, ev := range all {
		if ev.ID != want[i].ID {
			t.Errorf("5 appends to two streams: read all event %d: want ID %s (appends in order, each batch contiguous), got %s in %q version %d",
				i, want[i].ID, ev.ID, ev.StreamID, ev.Version)
		}
		if i > 0 && !all[i-1].Position.Less(ev.Position) {
			t.Errorf("read all: event %d at %s is not after event %d at %s", i, ev.Position, i-1, all[i-1].Position)
		}
	}
	for _, s := range []string{a, b} {
		for i, ev := range f.readStream(s) {
			if ev.Version != uint64(i+1) {
				t.Errorf("stream %q: event %d has version %d, want %d", s, i, ev.Version, i+1)
			}
		}
	}
}

func testAppendBatchWithBadEvent(t *testing.T, f *fixture) {
	big := make([]byte, f.store.Limits().MaxEventSize+1)
	cases := []struct {
		name string
		bad  eventstore.Event
		want error
	}{
		{"EmptyType", eventstore.Event{Type: "", Data: []byte(`{}`)}, eventstore.ErrInvalidEventType},
		{"InvalidJSON", eventstore.Event{Type: "Bad", Data: []byte(`{"a":`)}, eventstore.ErrInvalidPayload},
		{"MetadataNotObject", eventstore.Event{Type: "Bad", Metadata: []byte(`[1]`)}, eventstore.ErrInvalidPayload},
		{"TooLarge", eventstore.Event{Type: "Bad", ContentType: eventstore.Binary, Data: big}, eventstore.ErrEventTooLarge},
	}
	for _, tc := range cases {
		for _, exp := range []eventstore.ExpectedVersion{eventstore.Exact(2), eventstore.Any} {
			t.Run(tc.name+"/"+expectationName(exp), func(t *testing.T) {
				f := f.sub(t)
				s := stream("")
				f.mustAppend(s, eventstore.NoStream, events(2, "Before")...)
				batch := events(3, "Good")
				batch = append(batch[:1], append([]eventstore.Event{tc.bad}, batch[1:]...)...)
				doing := fmt.Sprintf("append 4 events at %s, the 2nd bad (%s)", expectationName(exp), tc.name)
				before := f.state(s)
				_, err := f.store.Append(f.ctx, s, exp, batch...)
				checkInvalid(t, doing, err, tc.want)
				f.checkNothingWritten(doing, before)
			})
		}
	}
}

// largeBatch is how many events AppendLargeBatch writes in one call when the
// driver states no lower limit.
const largeBatch = 1000

func testAppendLargeBatch(t *testing.T, f *fixture) {
	lim := f.store.Limits()
	n := largeBatch
	if lim.MaxAppendEvents > 0 {
		n = min(n, lim.MaxAppendEvents)
	}
	if lim.MaxAppendSize > 0 {
		n = min(n, lim.MaxAppendSize/len(`{"n":1000}`))
	}
	s := stream("")
	evs := events(n, "Bulk")
	doing := fmt.Sprintf("append %d events in one call", n)
	res, err := f.store.Append(f.ctx, s, eventstore.NoStream, evs...)
	if err != nil {
		t.Fatalf("%s (limits %+v): %v", doing, lim, err)
	}
	if res.Version != uint64(n) {
		t.Errorf("%s: want version %d, got %d", doing, n, res.Version)
	}
	f.checkStreamIDs(doing, s, idsOfEvents(evs))

	if lim.MaxAppendEvents > 0 {
		t.Run("OverMaxAppendEvents", func(t *testing.T) {
			f := f.sub(t)
			s := stream("")
			doing := fmt.Sprintf("append %d events, over MaxAppendEvents %d", lim.MaxAppendEvents+1, lim.MaxAppendEvents)
			before := f.state(s)
			_, err := f.store.Append(f.ctx, s, eventstore.Any, events(lim.MaxAppendEvents+1, "Bulk")...)
			checkInvalid(t, doing, err, eventstore.ErrBatchTooLarge)
			f.checkNothingWritten(doing, before)
		})
	}
	if lim.MaxAppendSize > 0 {
		t.Run("OverMaxAppendSize", func(t *testing.T) {
			f := f.sub(t)
			s := stream("")
			size := min(lim.MaxEventSize, lim.MaxAppendSize)
			count := lim.MaxAppendSize/size + 1
			batch := make([]eventstore.Event, count)
			for i := range batch {
				batch[i] = eventstore.Event{Type: "Bulk", ContentType: eventstore.Binary, Data: make([]byte, size)}
			}
			doing := fmt.Sprintf("append %d events of %d bytes, over MaxAppendSize %d", count, size, lim.MaxAppendSize)
			before := f.state(s)
			_, err := f.store.Append(f.ctx, s, eventstore.Any, batch...)
			checkInvalid(t, doing, err, eventstore.ErrBatchTooLarge)
			f.checkNothingWritten(doing, before)
		})
	}
}

// Helpers shared by the write-side rules.

// noID is the zero event ID, which the store replaces with a random one.
var noID = eventstore.Event{}.ID

// sub returns a fixture for subtest t that shares f's store.
func (f *fixture) sub(t *testing.T) *fixture {
	g := *f
	g.t = t
	return &g
}

// expectationName spells e as the Go expression that builds it.
func expectationName(e eventstore.ExpectedVersion) string {
	switch e {
	case eventstore.Any:
		return "Any"
	case eventstore.StreamExists:
		return "StreamExists"
	case eventstore.NoStream:
		return "NoStream"
	}
	return "Exact(" + e.String() + ")"
}

// isExact reports whether e expects an exact version (NoStream included).
func isExact(e eventstore.ExpectedVersion) bool {
	return e != eventstore.Any && e != eventstore.StreamExists
}

// writeState is what a rejected write must leave as it was.
type writeState struct {
	stream  string // "" when the stream ID is not valid
	version uint64
	events  []eventstore.RecordedEvent
	all     []eventstore.RecordedEvent
}

// state records stream's version and events and the whole global log.
func (f *fixture) state(stream string) writeState {
	f.t.Helper()
	st := writeState{all: f.readAll()}
	if eventstore.ValidateStreamID(stream) == nil {
		st.stream = stream
		st.version = f.version(stream)
		st.events = f.readStream(stream)
	}
	return st
}

// checkNothingWritten fails the rule when the stream or the global log
// differ from before: doing was rejected and must not have written anything.
func (f *fixture) checkNothingWritten(doing string, before writeState) {
	t := f.t
	t.Helper()
	after := f.state(before.stream)
	if before.stream != "" {
		if after.version != before.version {
			t.Errorf("%s: want nothing written, but stream %q went from version %d to %d", doing, before.stream, before.version, after.version)
		}
		if !sameIDs(idsOf(before.events), idsOf(after.events)) {
			t.Errorf("%s: want nothing written, but reading stream %q returned %d events instead of %d", doing, before.stream, len(after.events), len(before.events))
		}
	}
	if !sameIDs(idsOf(before.all), idsOf(after.all)) {
		t.Errorf("%s: want nothing written, but read all returned %d events instead of %d", doing, len(after.all), len(before.all))
	}
}

// checkInvalid checks err matches ErrInvalidArgument and the more specific want.
func checkInvalid(t testing.TB, doing string, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: want %v, got nil", doing, want)
	}
	if !errors.Is(err, eventstore.ErrInvalidArgument) || !errors.Is(err, want) {
		t.Fatalf("%s: want an error matching ErrInvalidArgument and %q, got %v", doing, want, err)
	}
}

// checkStreamIDs reads stream s and checks it holds exactly the events ids,
// at versions 1, 2, 3...
func (f *fixture) checkStreamIDs(doing, s string, ids []string) {
	t := f.t
	t.Helper()
	got := f.readStream(s)
	if !sameIDs(idsOf(got), ids) {
		t.Errorf("%s: stream %q holds %d events %v, want %d events %v", doing, s, len(got), idsOf(got), len(ids), ids)
		return
	}
	for i, ev := range got {
		if ev.Version != uint64(i+1) || ev.StreamID != s {
			t.Errorf("%s: event %d of stream %q read back as version %d of %q", doing, i, s, ev.Version, ev.StreamID)
		}
	}
	if v := f.version(s); v != uint64(len(ids)) {
		t.Errorf("%s: StreamVersion of %q: want %d, got %d", doing, s, len(ids), v)
	}
}

// version returns the version of stream s, failing the rule on error.
func (f *fixture) version(s string) uint64 {
	f.t.Helper()
	v, err := f.store.StreamVersion(f.ctx, s)
	if err != nil {
		f.t.Fatalf("StreamVersion(%q): %v", s, err)
	}
	return v
}

// idStrings returns the string forms of event IDs, which the rules compare
// and print (the suite does not import the UUID package).
func idStrings[ID fmt.Stringer](ids []ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func idsOf(evs []eventstore.RecordedEvent) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID.String()
	}
	return ids
}

func idsOfEvents(evs []eventstore.Event) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID.String()
	}
	return ids
}

func sameIDs(a, b []string) bool { return slices.Equal(a, b) }
