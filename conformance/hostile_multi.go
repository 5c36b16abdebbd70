package conformance

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Hostile input to multi-stream appends (docs/semantics.md "Multi-stream
// append"): bad stream IDs and unknown expectations, in records or in
// expectations only, are rejected before the driver is asked; expected
// versions far past a stream's fail as conflicts naming the actual
// version; a stream written twice, streams with hostile IDs and streams
// that are only checked round-trip; a huge request is written whole or
// refused with ErrBatchTooLarge, never split; a done context writes
// nothing.

func init() { ruleSets = append(ruleSets, hostileMultiRules) }

func hostileMultiRules() []rule {
	return []rule{
		{name: "HostileMultiAppendRejected", run: testHostileMultiRejected},
		{name: "HostileMultiAppendFarExpectations", run: multiAppender(testHostileMultiFar)},
		{name: "HostileMultiAppendOddShapes", run: multiAppender(testHostileMultiShapes)},
		{name: "HostileMultiAppendHugeRequests", run: multiAppender(testHostileMultiHuge)},
		{name: "HostileMultiAppendDoneContext", run: testHostileMultiDone},
	}
}

// unknownExpectation is an ExpectedVersion of a kind the Store does not know.
var unknownExpectation = eventstore.ExpectedVersion(driver.Expect(driver.ExpectStreamExists+7, 3))

// testHostileMultiRejected sends requests that break the rules; each fails
// with the specific error and writes nothing, on every driver.
func testHostileMultiRejected(t *testing.T, f *fixture) {
	a := stream("Multi")
	f.mustAppend(a, eventstore.NoStream, events(1, "Existing")...)
	ev := func() eventstore.Event { return eventstore.NewEvent("Moved", []byte(`{}`)) }
	type multiCase struct {
		name string
		ma   eventstore.MultiAppend
		want error
	}
	var cases []multiCase
	for _, bad := range badNames() {
		cases = append(cases,
			multiCase{"RecordStream" + bad.name, eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev()), rec(bad.value, ev())}}, eventstore.ErrInvalidStreamID},
			multiCase{"CheckedStream" + bad.name, eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev())},
				Expect: []eventstore.StreamExpectation{expect(bad.value, eventstore.NoStream)}}, eventstore.ErrInvalidStreamID})
	}
	dup := ev()
	other := ev()
	other.ID = dup.ID
	cases = append(cases,
		multiCase{"EmptyRecordsWithCondition", eventstore.MultiAppend{Records: []eventstore.Record{},
			Condition: &eventstore.AppendCondition{}}, eventstore.ErrInvalidArgument},
		multiCase{"UnknownExpectationOfWrittenStream", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev())},
			Expect: []eventstore.StreamExpectation{expect(a, unknownExpectation)}}, eventstore.ErrInvalidVersion},
		multiCase{"UnknownExpectationOfCheckedStream", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev())},
			Expect: []eventstore.StreamExpectation{expect(stream("Multi"), unknownExpectation)}}, eventstore.ErrInvalidVersion},
		multiCase{"CheckOnlyAnyBesideGoodOnes", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev())},
			Expect: []eventstore.StreamExpectation{expect(a, eventstore.Exact(1)), expect(stream("Multi"), eventstore.NoStream), expect(stream("Multi"), eventstore.Any)}}, eventstore.ErrInvalidVersion},
		multiCase{"SameIDInTwoStreams", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, dup), rec(stream("Multi"), other)}}, eventstore.ErrInvalidArgument},
		multiCase{"EventOverTheSizeLimit", eventstore.MultiAppend{Records: []eventstore.Record{rec(a, ev()),
			rec(a, eventstore.Event{Type: "Big", ContentType: eventstore.Binary, Data: make([]byte, f.store.Limits().MaxEventSize+1)})}}, eventstore.ErrEventTooLarge},
	)
	if lim := f.store.Limits(); lim.MaxAppendEvents > 0 {
		recs := make([]eventstore.Record, lim.MaxAppendEvents+1)
		for i := range recs {
			recs[i] = rec(a, ev())
		}
		cases = append(cases, multiCase{"OverMaxAppendEvents", eventstore.MultiAppend{Records: recs}, eventstore.ErrBatchTooLarge})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			doing := fmt.Sprintf("%s: %.200s", tc.name, describeMulti(tc.ma))
			before := f.state(a)
			_, err := f.store.AppendMulti(f.ctx, tc.ma)
			checkInvalid(t, doing, err, tc.want)
			f.checkNothingWritten(doing, before)
		})
	}
}

// testHostileMultiFar expects versions far past the streams': each such
// expectation, on a written or a checked stream, is a conflict naming the
// stream's actual version; nothing is written, and the right expectation
// then succeeds.
func testHostileMultiFar(t *testing.T, f *fixture) {
	a, b := stream("Far"), stream("Far")
	f.mustAppend(a, eventstore.NoStream, events(2, "Existing")...)
	for _, far := range []uint64{3, 1 << 32, 1 << 53, 1<<63 - 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64} {
		exp := eventstore.Exact(far)
		for _, ma := range []eventstore.MultiAppend{
			{Records: []eventstore.Record{rec(a, events(1, "Moved")[0])}, Expect: []eventstore.StreamExpectation{expect(a, exp)}},
			{Records: []eventstore.Record{rec(b, events(1, "Moved")[0])}, Expect: []eventstore.StreamExpectation{expect(a, exp)}},
			{Records: []eventstore.Record{rec(b, events(1, "Moved")[0])}, Expect: []eventstore.StreamExpectation{expect(b, exp)}},
		} {
			doing := describeMulti(ma)
			before := f.multiStateOf(a, b)
			_, err := f.store.AppendMulti(f.ctx, ma)
			want := []eventstore.WrongExpectedVersionError{violation(ma.Expect[0].Stream, exp, before.streams[ma.Expect[0].Stream].version)}
			checkConflict(t, doing, err, want, false)
			f.checkNothingWrittenMulti(doing, before)
		}
		doing := fmt.Sprintf("append at Exact(%d) to a stream at version 2", far)
		before := f.state(a)
		_, err := f.store.Append(f.ctx, a, exp, events(1, "Moved")...)
		checkWrongVersion(t, doing, err, a, exp, 2)
		f.checkNothingWritten(doing, before)
	}
	ma := eventstore.MultiAppend{Records: []eventstore.Record{rec(a, events(1, "Moved")[0]), rec(b, events(1, "Moved")[0])},
		Expect: []eventstore.StreamExpectation{expect(a, eventstore.Exact(2)), expect(b, eventstore.NoStream)}}
	if _, err := f.store.AppendMulti(f.ctx, ma); err != nil {
		t.Fatalf("after the conflicts, %s: %v", describeMulti(ma), err)
	}
}

// testHostileMultiShapes writes requests of unusual shape: one stream
// several times between others, streams with hostile IDs, and several
// streams that are only checked, at every kind of expectation.
func testHostileMultiShapes(t *testing.T, f *fixture) {
	a, b, c := stream("Shape"), stream("Shape"), stream("Shape")
	f.mustAppend(c, eventstore.NoStream, events(2, "Existing")...)
	recs := []eventstore.Record{
		rec(a, events(1, "One")[0]), rec(b, events(1, "Two")[0]), rec(a, events(1, "Three")[0]),
		rec(a, events(1, "Four")[0]), rec(b, events(1, "Five")[0]), rec(a, events(1, "Six")[0]),
	}
	missing := stream("Shape")
	ma := eventstore.MultiAppend{Records: recs, Expect: []eventstore.StreamExpectation{
		expect(a, eventstore.NoStream), expect(c, eventstore.Exact(2)), expect(missing, eventstore.NoStream),
	}}
	res, err := f.store.AppendMulti(f.ctx, ma)
	if err != nil {
		t.Fatalf("%s: %v", describeMulti(ma), err)
	}
	if len(res.Versions) != 2 || res.Versions[a] != 4 || res.Versions[b] != 2 {
		t.Errorf("%s: result versions %v, want %q at 4 and %q at 2 (check-only streams absent)", describeMulti(ma), res.Versions, a, b)
	}
	f.checkStreamIDs("stream written 4 times between another", a, []string{recs[0].Event.ID.String(), recs[2].Event.ID.String(), recs[3].Event.ID.String(), recs[5].Event.ID.String()})
	f.checkStreamIDs("stream written twice between another", b, []string{recs[1].Event.ID.String(), recs[4].Event.ID.String()})
	if v := f.version(missing); v != 0 {
		t.Errorf("a stream only checked at NoStream went to version %d", v)
	}
	tail := f.readAll()
	tail = tail[max(0, len(tail)-len(recs)):]
	for i, ev := range tail {
		if ev.ID != recs[i].Event.ID {
			t.Errorf("%s: the global log ends with %s, want the records in order", describeMulti(ma), describe(tail))
			break
		}
	}

	// Every check-only kind at once, all holding, beside one write.
	ma = eventstore.MultiAppend{Records: []eventstore.Record{rec(stream("Shape"), events(1, "Checked")[0])}, Expect: []eventstore.StreamExpectation{
		expect(a, eventstore.Exact(4)), expect(b, eventstore.StreamExists), expect(c, eventstore.Exact(2)), expect(missing, eventstore.NoStream),
	}}
	if res, err := f.store.AppendMulti(f.ctx, ma); err != nil || len(res.Versions) != 1 {
		t.Errorf("%s: want success with one written stream, got %v (versions %v)", describeMulti(ma), err, res.Versions)
	}
	// All failing at once: every one is named.
	ma = eventstore.MultiAppend{Records: []eventstore.Record{rec(stream("Shape"), events(1, "Checked")[0])}, Expect: []eventstore.StreamExpectation{
		expect(a, eventstore.Exact(3)), expect(b, eventstore.NoStream), expect(c, eventstore.Exact(math.MaxUint64)), expect(missing, eventstore.StreamExists),
	}}
	before := f.multiStateOf(a, b, c, missing)
	_, err = f.store.AppendMulti(f.ctx, ma)
	checkConflict(t, describeMulti(ma), err, sortedViolations([]eventstore.WrongExpectedVersionError{
		violation(a, eventstore.Exact(3), 4), violation(b, eventstore.NoStream, 2),
		violation(c, eventstore.Exact(math.MaxUint64), 2), violation(missing, eventstore.StreamExists, 0),
	}), false)
	f.checkNothingWrittenMulti(describeMulti(ma), before)

	// Hostile stream IDs, written and checked in one request; streams whose
	// IDs differ only in case are distinct (KurrentDB's driver refuses them
	// in one request with ErrNotSupported, docs/kurrentdb.md).
	names := hostileNames()
	recs = recs[:0]
	var expects []eventstore.StreamExpectation
	for i, n := range names {
		if i%3 == 2 {
			expects = append(expects, expect(n.value, eventstore.NoStream))
			continue
		}
		recs = append(recs, rec(n.value, events(1, "Hostile")[0]))
	}
	ma = eventstore.MultiAppend{Records: recs, Expect: expects}
	if _, err := f.store.AppendMulti(f.ctx, ma); err != nil {
		t.Fatalf("%.300s: %v", describeMulti(ma), err)
	}
	for _, r := range recs {
		f.checkStreamIDs("multi-stream append to hostile stream IDs", r.Stream, []string{r.Event.ID.String()})
	}
	for _, e := range expects {
		if v := f.version(e.Stream); v != 0 {
			t.Errorf("the hostile stream %q, only checked, went to version %d", e.Stream, v)
		}
	}
	lower, upper := stream("case"), ""
	upper = strings.ToUpper(lower[:1]) + lower[1:]
	ma = eventstore.MultiAppend{Records: []eventstore.Record{rec(lower, events(1, "Cased")[0]), rec(upper, events(1, "Cased")[0])}}
	before = f.multiStateOf(lower, upper)
	_, err = f.store.AppendMulti(f.ctx, ma)
	switch {
	case errors.Is(err, eventstore.ErrNotSupported):
		f.checkNothingWrittenMulti(describeMulti(ma), before)
	case err != nil:
		t.Errorf("%s: %v", describeMulti(ma), err)
	default:
		f.checkStreamIDs("streams whose IDs differ in case", lower, []string{ma.Records[0].Event.ID.String()})
		f.checkStreamIDs("streams whose IDs differ in case", upper, []string{ma.Records[1].Event.ID.String()})
	}
}

// testHostileMultiHuge sends a request of 1,000 records and one of 1,000
// check-only streams: each is written whole, or refused with
// ErrBatchTooLarge (a driver's own limit) and nothing written.
func testHostileMultiHuge(t *testing.T, f *fixture) {
	streams := []string{stream("Huge"), stream("Huge"), stream("Huge")}
	n := 1000
	if lim := f.store.Limits().MaxAppendEvents; lim > 0 {
		n = min(n, lim)
	}
	recs := make([]eventstore.Record, n)
	for i := range recs {
		recs[i] = rec(streams[i%len(streams)], eventstore.NewEvent("Bulk", []byte(fmt.Sprintf(`{"i":%d}`, i))))
	}
	checked := make([]eventstore.StreamExpectation, 1000)
	for i := range checked {
		checked[i] = expect(stream("Checked"), eventstore.NoStream)
	}
	for _, tc := range []struct {
		name string
		ma   eventstore.MultiAppend
	}{
		{fmt.Sprintf("%d records to 3 streams", n), eventstore.MultiAppend{Records: recs}},
		{"1 record and 1000 check-only streams", eventstore.MultiAppend{Records: []eventstore.Record{rec(streams[0], events(1, "One")[0])}, Expect: checked}},
	} {
		before := f.multiStateOf(streams...)
		res, err := f.store.AppendMulti(f.ctx, tc.ma)
		if errors.Is(err, eventstore.ErrBatchTooLarge) {
			checkInvalid(t, tc.name, err, eventstore.ErrBatchTooLarge)
			f.checkNothingWrittenMulti(tc.name, before)
			continue
		}
		if err != nil {
			t.Fatalf("%s: want success or ErrBatchTooLarge, got %v", tc.name, err)
		}
		got := f.readAll()
		got = got[max(0, len(got)-len(tc.ma.Records)):]
		var want []string
		for _, r := range tc.ma.Records {
			want = append(want, r.Event.ID.String())
		}
		if !sameIDs(idsOf(got), want) {
			t.Errorf("%s: the global log does not end with the records in order", tc.name)
		}
		for s, rv := range res.Versions {
			if v := f.version(s); rv != v {
				t.Errorf("%s: result version of %q is %d, StreamVersion %d", tc.name, s, rv, v)
			}
		}
	}
}

// testHostileMultiDone appends to several streams with done contexts:
// the context's error (ErrNotSupported without the capability), nothing
// written.
func testHostileMultiDone(t *testing.T, f *fixture) {
	a, b := stream("Done"), stream("Done")
	f.mustAppend(a, eventstore.NoStream, events(2, "Before")...)
	for _, c := range doneContexts(f) {
		for _, ma := range []eventstore.MultiAppend{
			{Records: []eventstore.Record{rec(a, events(1, "After")[0]), rec(b, events(1, "After")[0])}},
			{Records: []eventstore.Record{rec(b, events(1, "After")[0])}, Expect: []eventstore.StreamExpectation{expect(a, eventstore.Exact(2))}},
		} {
			doing := fmt.Sprintf("%s with a %s context", describeMulti(ma), c.name)
			before := f.multiStateOf(a, b)
			_, err := f.store.AppendMulti(c.ctx, ma)
			checkDone(t, doing, err, c.want, f.canMultiAppend())
			f.checkNothingWrittenMulti(doing, before)
		}
	}
}
