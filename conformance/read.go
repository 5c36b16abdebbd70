package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Reads" for one stream, and StreamVersion.

func init() { ruleSets = append(ruleSets, readStreamRules) }

func readStreamRules() []rule {
	return []rule{
		{name: "ReadStreamForwards", run: testReadStreamForwards},
		{name: "ReadStreamFrom", run: testReadStreamFrom},
		{name: "ReadStreamLimit", run: testReadStreamLimit},
		{name: "ReadStreamBackwards", run: testReadStreamBackwards},
		{name: "ReadStreamFromBeyondEnd", run: testReadStreamFromBeyondEnd},
		{name: "ReadStreamMissing", run: testReadStreamMissing},
		{name: "ReadStreamPaging", run: testReadStreamPaging},
		{name: "ReadStreamBreakThenRangeAgain", run: testReadStreamBreak},
		{name: "StreamVersion", run: testStreamVersion},
		{name: "ReadInvalidArguments", run: testReadInvalidArguments},
		{name: "ReadWithDoneContext", run: testReadWithDoneContext},
		{name: "ReadCancelledMidwayNeverEndsEarly", run: testReadCancelledMidway},
	}
}

// pagedEvents is how many events the paging rules write: more than two of the
// Store's internal pages of 512.
const pagedEvents = 1150

// seedStream appends n events to a fresh stream in batches of 3, 4, 3, …,
// interleaved with appends to a second stream, and returns the stream and
// its events as read back (checked against what was appended).
func (f *fixture) seedStream(n int) (string, []eventstore.RecordedEvent) {
	f.t.Helper()
	s, other := stream("Read"), stream("Other")
	var want []eventstore.Event
	for i := 0; len(want) < n; i++ {
		evs := events(min(3+i%2, n-len(want)), fmt.Sprintf("Type%d", i%3))
		f.mustAppend(s, eventstore.Exact(uint64(len(want))), evs...)
		want = append(want, evs...)
		f.mustAppend(other, eventstore.Any, events(1, "Noise")...)
	}
	got := f.readStream(s)
	checkStreamEvents(f.t, fmt.Sprintf("read a stream of %d events forwards", n), s, got, want)
	return s, got
}

// checkStreamEvents checks got is exactly want, the whole stream s, at
// versions 1, 2, 3… in increasing positions.
func checkStreamEvents(t testing.TB, doing, s string, got []eventstore.RecordedEvent, want []eventstore.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: want %d events, got %d: %s", doing, len(want), len(got), describe(got))
	}
	for i, ev := range got {
		w := want[i]
		if ev.StreamID != s || ev.Version != uint64(i+1) || ev.ID != w.ID || ev.Type != w.Type || !bytes.Equal(ev.Data, w.Data) {
			t.Fatalf("%s: event %d: want %q version %d id %s type %q data %s, got %q version %d id %s type %q data %s",
				doing, i, s, i+1, w.ID, w.Type, w.Data, ev.StreamID, ev.Version, ev.ID, ev.Type, ev.Data)
		}
		if i > 0 && !got[i-1].Position.Less(ev.Position) {
			t.Fatalf("%s: version %d at position %s is not after version %d at %s", doing, i+1, ev.Position, i, got[i-1].Position)
		}
	}
}

// sameEvents checks got equals want event for event (stream, version,
// position, ID, type, content type, data, metadata, recorded time), and
// reports the first difference.
func sameEvents(t testing.TB, doing string, got, want []eventstore.RecordedEvent) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		switch {
		case i == len(got):
			t.Errorf("%s: want %d events, got %d: the first missing is %s (want %s)", doing, len(want), len(got), describeOne(want[i]), describe(want))
		case i == len(want):
			t.Errorf("%s: want %d events, got %d: the first extra is %s (want %s)", doing, len(want), len(got), describeOne(got[i]), describe(want))
		case !equalEvents(got[i], want[i]):
			t.Errorf("%s: event %d: want %s, got %s: %s differs (want %d events %s, got %d)", doing, i, describeOne(want[i]), describeOne(got[i]), differingField(got[i], want[i]), len(want), describe(want), len(got))
		default:
			continue
		}
		return
	}
}

func equalEvents(g, w eventstore.RecordedEvent) bool {
	return g.StreamID == w.StreamID && g.Version == w.Version && g.Position == w.Position && g.ID == w.ID &&
		g.Type == w.Type && g.ContentType == w.ContentType && bytes.Equal(g.Data, w.Data) &&
		bytes.Equal(g.Metadata, w.Metadata) && g.MetadataContentType == w.MetadataContentType && g.RecordedAt.Equal(w.RecordedAt) && slices.Equal(g.Tags, w.Tags)
}

// differingField names the first field in which g and w differ, for
// failure messages.
func differingField(g, w eventstore.RecordedEvent) string {
	switch {
	case g.StreamID != w.StreamID || g.Version != w.Version || g.Position != w.Position:
		return "stream, version or position"
	case g.ID != w.ID:
		return "event id"
	case g.Type != w.Type:
		return "type"
	case g.ContentType != w.ContentType:
		return fmt.Sprintf("content type (want %s, got %s)", w.ContentType, g.ContentType)
	case !bytes.Equal(g.Data, w.Data):
		return "data"
	case !bytes.Equal(g.Metadata, w.Metadata):
		return fmt.Sprintf("metadata (want %q, got %q)", w.Metadata, g.Metadata)
	case g.MetadataContentType != w.MetadataContentType:
		return fmt.Sprintf("metadata content type (want %s, got %s)", w.MetadataContentType, g.MetadataContentType)
	case !g.RecordedAt.Equal(w.RecordedAt):
		return fmt.Sprintf("recorded time (want %s, got %s)", w.RecordedAt, g.RecordedAt)
	}
	return "tags"
}

// describeOne names an event in failure messages.
func describeOne(ev eventstore.RecordedEvent) string {
	return fmt.Sprintf("%q v%d @%s %s", ev.StreamID, ev.Version, ev.Position, ev.Type)
}

// describe lists events briefly for failure messages.
func describe(evs []eventstore.RecordedEvent) string {
	const most = 8
	var b strings.Builder
	b.WriteString("[")
	for i, ev := range evs {
		if i == most {
			fmt.Fprintf(&b, " … %d more", len(evs)-most)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(describeOne(ev))
	}
	b.WriteString("]")
	return b.String()
}

// reversed returns a reversed copy of evs.
func reversed(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
	r := slices.Clone(evs)
	slices.Reverse(r)
	return r
}

// appendMany appends n events of type typ to stream s in as few batches of
// at most 100 events as the driver's limits allow, and returns them.
func (f *fixture) appendMany(s string, n int, typ string) []eventstore.Event {
	f.t.Helper()
	batch := 100
	if lim := f.store.Limits(); lim.MaxAppendEvents > 0 {
		batch = min(batch, lim.MaxAppendEvents)
	}
	var all []eventstore.Event
	for len(all) < n {
		evs := events(min(batch, n-len(all)), typ)
		f.mustAppend(s, eventstore.Exact(uint64(len(all))), evs...)
		all = append(all, evs...)
	}
	return all
}

func testReadStreamForwards(t *testing.T, f *fixture) {
	// seedStream checks the whole read against what was appended.
	s, got := f.seedStream(10)
	again := f.readStream(s)
	sameEvents(t, "read the same stream of 10 events twice", again, got)
}

func testReadStreamFrom(t *testing.T, f *fixture) {
	s, all := f.seedStream(10)
	for _, from := range []uint64{1, 2, 4, 9, 10} {
		got := collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{From: from}))
		sameEvents(t, fmt.Sprintf("read a stream of 10 events From %d", from), got, all[from-1:])
	}
}

func testReadStreamLimit(t *testing.T, f *fixture) {
	s, all := f.seedStream(10)
	cases := []struct {
		from      uint64
		limit     int
		backwards bool
		want      []eventstore.RecordedEvent
	}{
		{0, 1, false, all[:1]},
		{0, 3, false, all[:3]},
		{5, 3, false, all[4:7]},
		{8, 5, false, all[7:]},
		{0, 10, false, all},
		{0, 11, false, all},
		{0, 1, true, reversed(all[9:])},
		{0, 3, true, reversed(all[7:])},
		{6, 2, true, reversed(all[4:6])},
		{2, 5, true, reversed(all[:2])},
	}
	for _, tc := range cases {
		opts := eventstore.ReadStreamOptions{From: tc.from, Limit: tc.limit, Backwards: tc.backwards}
		got := collect(t, f.store.ReadStream(f.ctx, s, opts))
		sameEvents(t, fmt.Sprintf("read a stream of 10 events with %+v", opts), got, tc.want)
	}
}

func testReadStreamBackwards(t *testing.T, f *fixture) {
	s, all := f.seedStream(10)
	got := collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true}))
	sameEvents(t, "read a stream of 10 events Backwards from the end (From 0)", got, reversed(all))
	for _, from := range []uint64{1, 6, 10} {
		got := collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{From: from, Backwards: true}))
		sameEvents(t, fmt.Sprintf("read a stream of 10 events Backwards From %d", from), got, reversed(all[:from]))
	}
}

func testReadStreamFromBeyondEnd(t *testing.T, f *fixture) {
	s, _ := f.seedStream(10)
	for _, from := range []uint64{11, 12, 1000, 1 << 62} {
		got := collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{From: from}))
		if len(got) != 0 {
			t.Errorf("read a stream of 10 events From %d: want no events, got %s", from, describe(got))
		}
	}
}

func testReadStreamMissing(t *testing.T, f *fixture) {
	f.seedStream(3) // the store is not empty
	missing := stream("Missing")
	for _, opts := range []eventstore.ReadStreamOptions{{}, {From: 1}, {From: 5, Limit: 2}, {Backwards: true}, {From: 3, Backwards: true}} {
		for ev, err := range f.store.ReadStream(f.ctx, missing, opts) {
			if err != nil {
				t.Errorf("read a stream that was never written with %+v: want no events and no error, got %v", opts, err)
				break
			}
			t.Errorf("read a stream that was never written with %+v: want no events, got %s", opts, describeOne(ev))
		}
	}
	if v, err := f.store.StreamVersion(f.ctx, missing); err != nil || v != 0 {
		t.Errorf("StreamVersion of a stream that was never written: want 0 and no error, got %d and %v", v, err)
	}
}

func testReadStreamPaging(t *testing.T, f *fixture) {
	s := stream("Paged")
	want := f.appendMany(s, pagedEvents, "Paged")
	f.mustAppend(stream("Other"), eventstore.NoStream, events(2, "Noise")...)
	all := f.readStream(s)
	checkStreamEvents(t, fmt.Sprintf("read a stream of %d events forwards", pagedEvents), s, all, want)
	n := len(all)

	cases := []struct {
		opts eventstore.ReadStreamOptions
		want []eventstore.RecordedEvent
	}{
		{eventstore.ReadStreamOptions{Backwards: true}, reversed(all)},
		{eventstore.ReadStreamOptions{From: 2}, all[1:]},
		{eventstore.ReadStreamOptions{From: 500, Limit: 600}, all[499:1099]},
		{eventstore.ReadStreamOptions{Limit: 512}, all[:512]},
		{eventstore.ReadStreamOptions{Limit: 513}, all[:513]},
		{eventstore.ReadStreamOptions{Limit: 1024}, all[:1024]},
		{eventstore.ReadStreamOptions{From: 1100, Backwards: true}, reversed(all[:1100])},
		{eventstore.ReadStreamOptions{From: 1100, Limit: 600, Backwards: true}, reversed(all[500:1100])},
		{eventstore.ReadStreamOptions{Limit: 1024, Backwards: true}, reversed(all[n-1024:])},
	}
	for _, tc := range cases {
		got := collect(t, f.store.ReadStream(f.ctx, s, tc.opts))
		sameEvents(t, fmt.Sprintf("read a stream of %d events with %+v", n, tc.opts), got, tc.want)
	}

	// Break in the second page, then range the same sequence again.
	seq := f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{})
	got := takeN(t, seq, 700)
	sameEvents(t, fmt.Sprintf("read the first 700 events of a stream of %d, then break", n), got, all[:700])
	got = collect(t, seq)
	sameEvents(t, fmt.Sprintf("range again over a read of a stream of %d events after breaking at 700", n), got, all)
}

// takeN ranges over seq until it has n events, then breaks; it fails the
// rule on an error.
func takeN(t testing.TB, seq iter.Seq2[eventstore.RecordedEvent, error], n int) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range seq {
		if err != nil {
			t.Fatalf("read failed after %d events: %v", len(out), err)
		}
		out = append(out, ev)
		if len(out) == n {
			break
		}
	}
	return out
}

func testReadStreamBreak(t *testing.T, f *fixture) {
	s, all := f.seedStream(10)
	seq := f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{})
	sameEvents(t, "read 2 events of a stream of 10, then break", takeN(t, seq, 2), all[:2])
	sameEvents(t, "range again over the read after breaking", collect(t, seq), all)

	// Ranging again reads again: it sees events appended since.
	more := f.mustAppend(s, eventstore.Exact(10), events(2, "Later")...)
	got := collect(t, seq)
	if len(got) != 12 || got[11].Position != more.Position {
		t.Errorf("append 2 events, then range again over the same read of a stream of 10: want 12 events ending at %s, got %d: %s",
			more.Position, len(got), describe(got))
	}

	back := f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true})
	if got := takeN(t, back, 1); len(got) != 1 || got[0].Version != 12 {
		t.Errorf("read 1 event of a stream of 12 backwards, then break: want version 12, got %s", describe(got))
	}
}

func testStreamVersion(t *testing.T, f *fixture) {
	s := stream("")
	check := func(doing string, want uint64) {
		t.Helper()
		v, err := f.store.StreamVersion(f.ctx, s)
		if err != nil || v != want {
			t.Errorf("StreamVersion %s: want %d and no error, got %d and %v", doing, want, v, err)
		}
	}
	check("of a stream never written", 0)
	f.mustAppend(s, eventstore.NoStream, events(1, "One")...)
	check("after appending 1 event", 1)
	f.mustAppend(stream(""), eventstore.NoStream, events(4, "Elsewhere")...)
	check("after appending to another stream", 1)
	res := f.mustAppend(s, eventstore.Exact(1), events(4, "More")...)
	check("after appending 1 then 4 events", 5)
	if res.Version != 5 {
		t.Errorf("append 4 events to a stream at version 1: want result version 5, got %d", res.Version)
	}
	last := collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true, Limit: 1}))
	if len(last) != 1 || last[0].Version != 5 {
		t.Errorf("StreamVersion is 5: want the last event read backwards to be version 5, got %s", describe(last))
	}
}

// checkReadFails ranges over seq and checks it yields exactly one error,
// matching every one of want, and nothing else.
func checkReadFails(t testing.TB, doing string, seq iter.Seq2[eventstore.RecordedEvent, error], want ...error) {
	t.Helper()
	var errs []error
	for ev, err := range seq {
		if err == nil {
			t.Errorf("%s: want one error and no events, got %s", doing, describeOne(ev))
			return
		}
		errs = append(errs, err)
	}
	if len(errs) != 1 {
		t.Errorf("%s: want exactly one error, got %d: %v", doing, len(errs), errs)
		return
	}
	for _, w := range want {
		if !errors.Is(errs[0], w) {
			t.Errorf("%s: want an error matching %q, got %v", doing, w, errs[0])
		}
	}
}

func testReadInvalidArguments(t *testing.T, f *fixture) {
	s, all := f.seedStream(3)
	inv := eventstore.ErrInvalidArgument
	for _, bad := range []string{"", "$system", "a\x00b", "bad\xffutf8", strings.Repeat("x", 256)} {
		checkReadFails(t, fmt.Sprintf("ReadStream of stream ID %q", bad),
			f.store.ReadStream(f.ctx, bad, eventstore.ReadStreamOptions{}), eventstore.ErrInvalidStreamID, inv)
		if _, err := f.store.StreamVersion(f.ctx, bad); !errors.Is(err, eventstore.ErrInvalidStreamID) || !errors.Is(err, inv) {
			t.Errorf("StreamVersion of stream ID %q: want an error matching ErrInvalidStreamID and ErrInvalidArgument, got %v", bad, err)
		}
	}
	checkReadFails(t, "ReadStream with Limit -1", f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Limit: -1}), inv)
	checkReadFails(t, "ReadAll with Limit -1", f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Limit: -1}), inv)
	p1, p2 := all[0].Position, all[1].Position
	checkReadFails(t, "ReadAll with Before equal to After", f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: p2, Before: p2}),
		eventstore.ErrInvalidPosition, inv)
	checkReadFails(t, "ReadAll with Before before After", f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: p2, Before: p1}),
		eventstore.ErrInvalidPosition, inv)
	for _, filter := range []eventstore.Filter{
		{Categories: []string{""}},
		{Categories: []string{"Test", "$ce"}},
		{EventTypes: []string{"$type"}},
		{EventTypes: []string{"a\nb"}},
	} {
		checkReadFails(t, fmt.Sprintf("ReadAll with Filter %q", filter), f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Filter: filter}), inv)
	}
}

func testReadWithDoneContext(t *testing.T, f *fixture) {
	s, _ := f.seedStream(3)
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	checkReadFails(t, "ReadStream with a cancelled context", f.store.ReadStream(ctx, s, eventstore.ReadStreamOptions{}), context.Canceled)
	checkReadFails(t, "ReadAll with a cancelled context", f.store.ReadAll(ctx, eventstore.ReadAllOptions{}), context.Canceled)
	if _, err := f.store.StreamVersion(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("StreamVersion with a cancelled context: want an error matching context.Canceled, got %v", err)
	}
	if _, _, err := f.store.LoadSnapshot(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadSnapshot with a cancelled context: want an error matching context.Canceled, got %v", err)
	}
}

func testReadCancelledMidway(t *testing.T, f *fixture) {
	// A read whose context is cancelled while it runs (see cancelSoon, and
	// by the reader after a random number of events) yields all of what it
	// would have, or the start of it and then one error matching
	// context.Canceled. It never just ends early: a reader would take a
	// cut-off read for the end of the stream or of the log.
	const attempts = 40
	s := stream("CancelRead")
	for v := 0; v < pagedEvents; v += 50 {
		f.mustAppend(s, eventstore.Exact(uint64(v)), events(50, "Read")...)
		f.mustAppend(stream("Other"), eventstore.Any, events(1, "Noise")...)
	}
	reads := []struct {
		name string
		read func(ctx context.Context) iter.Seq2[eventstore.RecordedEvent, error]
	}{
		{"ReadStream", func(ctx context.Context) iter.Seq2[eventstore.RecordedEvent, error] {
			return f.store.ReadStream(ctx, s, eventstore.ReadStreamOptions{})
		}},
		{"ReadStream backwards", func(ctx context.Context) iter.Seq2[eventstore.RecordedEvent, error] {
			return f.store.ReadStream(ctx, s, eventstore.ReadStreamOptions{Backwards: true})
		}},
		{"ReadAll", func(ctx context.Context) iter.Seq2[eventstore.RecordedEvent, error] {
			return f.store.ReadAll(ctx, eventstore.ReadAllOptions{})
		}},
		{"ReadAll of a category", func(ctx context.Context) iter.Seq2[eventstore.RecordedEvent, error] {
			return f.store.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"CancelRead"}}})
		}},
	}
	for _, r := range reads {
		want := idsOf(collect(t, r.read(f.ctx)))
		var cut int
		for i := range attempts {
			ctx, cancel := context.WithCancel(f.ctx)
			cancelAt := -1 // by the reader, after this many events
			if i%4 == 3 {
				cancelAt = 1 + rand.IntN(len(want)-1)
			} else {
				ctx, cancel = cancelSoon(f.ctx, i)
			}
			var got []string
			var errs []error
			for ev, err := range r.read(ctx) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if len(errs) > 0 {
					t.Errorf("%s cancelled at a random moment: an event after the error %v", r.name, errs[0])
				}
				got = append(got, ev.ID.String())
				if len(got) == cancelAt {
					cancel()
				}
			}
			cancel()
			doing := fmt.Sprintf("attempt %d: %s of %d events, cancelled at a random moment", i, r.name, len(want))
			switch {
			case len(errs) > 1:
				t.Errorf("%s: want at most one error, got %d: %v", doing, len(errs), errs)
			case len(errs) == 1 && !errors.Is(errs[0], context.Canceled):
				t.Errorf("%s: want an error matching context.Canceled, got %v", doing, errs[0])
			case len(errs) == 0 && len(got) != len(want):
				t.Errorf("%s: ended without an error after %d events", doing, len(got))
			case !slices.Equal(got, want[:min(len(got), len(want))]):
				t.Errorf("%s: the %d events read are not the start of the whole read", doing, len(got))
			}
			if len(errs) > 0 && len(got) > 0 {
				cut++
			}
		}
		t.Logf("%s: %d of %d cancelled reads were cut off after some events", r.name, cut, attempts)
	}
	for i := range attempts {
		ctx, cancel := cancelSoon(f.ctx, i)
		v, err := f.store.StreamVersion(ctx, s)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) || err == nil && v != pagedEvents {
			t.Errorf("attempt %d: StreamVersion cancelled at a random moment: want %d or an error matching context.Canceled, got %d, %v", i, pagedEvents, v, err)
		}
	}
}
