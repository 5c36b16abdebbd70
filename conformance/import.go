package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Importing events": a driver that implements
// driver.Importer writes events recorded elsewhere with their versions,
// IDs and recorded times, all or none, in the order given. A driver without
// it must report ErrNotSupported and write nothing.

func init() { ruleSets = append(ruleSets, importRules) }

func importRules() []rule {
	return []rule{
		{name: "ImportKeepsEverything", run: importer(testImportKeepsEverything)},
		{name: "ImportContinuesStream", run: importer(testImportContinuesStream)},
		{name: "ImportWrongVersionWritesNothing", run: importer(testImportWrongVersion)},
		{name: "ImportInvalidWritesNothing", run: importer(testImportInvalid)},
		{name: "ImportKeepsMetadataThatIsNotAnObject", run: importer(testImportOtherMetadata)},
		{name: "AppendRefusesMetadataThatIsNotAnObject", run: testAppendOtherMetadata},
		{name: "ImportWakesSubscribers", run: importer(testImportWakes)},
		{name: "ImportRacesAppend", run: importer(testImportRacesAppend)},
		{name: "ImportLargeEvents", run: importer(testImportLargeEvents)},
		{name: "ImportOverOwnIDsWithOtherContentConflicts", run: importer(testImportOtherContent)},
		{name: "CancelledImportWritesAllOrNothing", run: importer(testCancelledImportAllOrNothing)},
		{name: "ImportNotSupported", run: testImportNotSupported},
	}
}

// importer runs a rule only for drivers that implement driver.Importer.
func importer(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		if !f.canImport() {
			t.Skip("the driver does not implement driver.Importer (ImportNotSupported checks that Import says so)")
		}
		run(t, f)
	}
}

// canImport reports whether the harness's drivers implement Importer.
func (f *fixture) canImport() bool {
	_, ok := f.harness.NewDriver(f.t).(driver.Importer)
	return ok
}

// recorded returns events to import: version from, from+1… of stream s,
// with IDs, payloads and times in the past.
func recorded(s string, from uint64, n int, at time.Time) []eventstore.RecordedEvent {
	evs := make([]eventstore.RecordedEvent, n)
	for i, e := range events(n, "Imported") {
		evs[i] = eventstore.RecordedEvent{StreamID: s, Version: from + uint64(i), ID: e.ID, Type: e.Type,
			ContentType: e.ContentType, Data: e.Data, RecordedAt: at.Add(time.Duration(i) * time.Hour)}
	}
	return evs
}

// mustImport imports and fails the rule on error.
func (f *fixture) mustImport(evs []eventstore.RecordedEvent) {
	f.t.Helper()
	if err := f.store.Import(f.ctx, evs); err != nil {
		f.t.Fatalf("Import of %d events: %v", len(evs), err)
	}
}

// withoutPositions returns evs as a read should return them, positions
// aside: recorded times truncated to microseconds, in UTC.
func withoutPositions(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
	out := make([]eventstore.RecordedEvent, len(evs))
	for i, ev := range evs {
		ev.Position = eventstore.Position{}
		ev.RecordedAt = ev.RecordedAt.UTC().Truncate(time.Microsecond)
		out[i] = ev
	}
	return out
}

func testImportKeepsEverything(t *testing.T, f *fixture) {
	// Stream B's ID is full of quoting and SQL metacharacters: just data.
	a, b := stream("Alpha"), stream(`Be'ta"; DROP TABLE events;--\%_[]{}`)
	// Nanoseconds are dropped (times keep microseconds); a zone is only a
	// way of writing the instant.
	at := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.FixedZone("X", 3600))
	evs := []eventstore.RecordedEvent{
		{StreamID: a, Version: 1, Type: "Opened", Data: []byte(` { "b":1,  "a":[1, 2] } `), Metadata: []byte(`{"$correlationId":"c1"}`)},
		{StreamID: b, Version: 1, Type: "Ω-type", ContentType: eventstore.Binary, Data: []byte{0, 0xff, 0xfe, '\n', 0}},
		{StreamID: a, Version: 2, Type: "Empty"},
		{StreamID: b, Version: 2, Type: "Unicode", Data: []byte(`"客户 🙂"`)},
		{StreamID: a, Version: 3, Type: "Closed", Data: []byte(`{}`)},
	}
	for i := range evs {
		evs[i].ID = events(1, "x")[0].ID
		evs[i].RecordedAt = at.Add(time.Duration(i) * 1500 * time.Microsecond)
	}
	f.mustImport(evs)

	all := f.readAll()
	sameEvents(t, "read all after importing 5 interleaved events of 2 streams (positions aside)", withoutPositions(all), withoutPositions(evs))
	for i := 1; i < len(all); i++ {
		if !all[i-1].Position.Less(all[i].Position) {
			t.Errorf("read all after an import: position %s of event %d is not after %s", all[i].Position, i, all[i-1].Position)
		}
	}
	var wantA, wantB []eventstore.RecordedEvent
	for _, ev := range all {
		if ev.StreamID == a {
			wantA = append(wantA, ev)
		} else {
			wantB = append(wantB, ev)
		}
	}
	sameEvents(t, "read stream A after the import", f.readStream(a), wantA)
	sameEvents(t, "read stream B (a hostile ID) after the import", f.readStream(b), wantB)
	if v := f.version(a); v != 3 {
		t.Errorf("StreamVersion of the imported stream A: want 3, got %d", v)
	}
}

func testImportContinuesStream(t *testing.T, f *fixture) {
	s := stream("")
	appended := events(2, "Appended")
	f.mustAppend(s, eventstore.NoStream, appended...)
	imported := recorded(s, 3, 2, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	f.mustImport(imported)
	after := events(1, "After")
	res := f.mustAppend(s, eventstore.Exact(4), after...)
	if res.Version != 5 {
		t.Errorf("append at Exact(4) after importing versions 3 and 4: want version 5, got %d", res.Version)
	}
	f.checkStreamIDs("append 2, import versions 3-4, append 1", s,
		append(append(idsOfEvents(appended), idsOf(imported)...), idsOfEvents(after)...))
}

func testImportWrongVersion(t *testing.T, f *fixture) {
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(2, "Appended")...)
	at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, first := range []uint64{1, 2, 4} {
		other := stream("Other")
		// The other stream comes first in the request: it must not be
		// written either.
		req := append(recorded(other, 1, 2, at), recorded(s, first, 2, at)...)
		before := f.state(s)
		err := f.store.Import(f.ctx, req)
		doing := fmt.Sprintf("import of a new stream and of a stream at version 2 from version %d", first)
		var wrong *eventstore.WrongExpectedVersionError
		switch {
		case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
			t.Fatalf("%s: want an error matching ErrWrongExpectedVersion, got %v", doing, err)
		case !errors.As(err, &wrong):
			t.Fatalf("%s: want a *WrongExpectedVersionError, got %T", doing, err)
		case wrong.Stream != s || wrong.Actual != 2 || wrong.Expected != eventstore.Exact(first-1):
			t.Errorf("%s: want stream %q, expected %s, actual 2 in the error, got %q, %s, %d", doing, s, eventstore.Exact(first-1), wrong.Stream, wrong.Expected, wrong.Actual)
		}
		f.checkNothingWritten(doing, before)
		if v := f.version(other); v != 0 {
			t.Errorf("%s: the other stream of the request went to version %d: want nothing written", doing, v)
		}
	}
}

func testImportLargeEvents(t *testing.T, f *fixture) {
	// Megabytes in one import, within the limits: more than one page of
	// what a backend reads back (DynamoDB's 1 MB). Imported again, it meets
	// its own events: a version conflict, or success where the driver
	// recognises them as its own, and nothing written either way.
	const n = 8
	size := f.largeEventSize(n)
	a, b := stream("Large"), stream("Large")
	var req []eventstore.RecordedEvent
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		ev := recorded(s, uint64(i/2+1), 1, time.Now())[0]
		ev.ContentType, ev.Data = eventstore.Binary, randomBytes(size)
		req = append(req, ev)
	}
	f.mustImport(req)
	doing := fmt.Sprintf("import %d events of %d bytes into two streams", n, size)
	for _, s := range []string{a, b} {
		var want []eventstore.RecordedEvent
		for _, ev := range req {
			if ev.StreamID == s {
				want = append(want, ev)
			}
		}
		got := f.readStream(s)
		if len(got) != len(want) {
			t.Fatalf("%s: stream %q holds %d events, want %d", doing, s, len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Errorf("%s: stream %q version %d is not the imported event, byte for byte", doing, s, want[i].Version)
			}
		}
	}
	before := f.state(a)
	if err := f.store.Import(f.ctx, req); err != nil && !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Errorf("%s, then the same import again: want success or an error matching ErrWrongExpectedVersion, got %v", doing, err)
	}
	f.checkNothingWritten(doing+", then the same import again", before)
}

func testImportOtherContent(t *testing.T, f *fixture) {
	// An import that meets events with its IDs but other content has not
	// met its own events: it is a version conflict, never a success.
	for _, prior := range []int{0, 2} {
		for _, ch := range contentChanges() {
			t.Run(fmt.Sprintf("Prior%d/%s", prior, ch.field), func(t *testing.T) {
				f := f.sub(t)
				a, b := stream("Import"), stream("Import")
				if prior > 0 {
					f.mustAppend(a, eventstore.NoStream, events(prior, "Prior")...)
				}
				req := append(recorded(a, uint64(prior)+1, 2, time.Now()), recorded(b, 1, 1, time.Now())...)
				f.mustImport(req)
				again := slices.Clone(req)
				e := eventstore.Event{Type: again[1].Type, ContentType: again[1].ContentType, Data: again[1].Data, Metadata: again[1].Metadata}
				ch.change(&e)
				again[1].Type, again[1].ContentType, again[1].Data, again[1].Metadata = e.Type, e.ContentType, e.Data, e.Metadata
				doing := fmt.Sprintf("import 3 events into two streams, then again with the %s of the 2nd changed", ch.field)
				before, beforeB := f.state(a), f.readStream(b)
				err := f.store.Import(f.ctx, again)
				checkWrongVersion(t, doing, err, a, eventstore.Exact(uint64(prior)), uint64(prior)+2)
				sameEvents(t, doing+": the stream afterwards", f.readStream(a), before.events)
				sameEvents(t, doing+": the other stream afterwards", f.readStream(b), beforeB)
				f.checkNothingWritten(doing, before)
			})
		}
	}
}

func testImportInvalid(t *testing.T, f *fixture) {
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(1, "Appended")...)
	at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	valid := func() []eventstore.RecordedEvent { return recorded(s, 2, 3, at) }
	tests := []struct {
		name   string
		change func([]eventstore.RecordedEvent) []eventstore.RecordedEvent
		want   error
	}{
		{"no events", func([]eventstore.RecordedEvent) []eventstore.RecordedEvent { return nil }, eventstore.ErrInvalidArgument},
		{"zero event id", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[1].ID = [16]byte{}; return e }, eventstore.ErrInvalidArgument},
		{"repeated event id", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[2].ID = e[0].ID; return e }, eventstore.ErrInvalidArgument},
		{"version 0", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[0].Version = 0; return e }, eventstore.ErrInvalidVersion},
		{"versions skip", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[2].Version = 5; return e }, eventstore.ErrInvalidVersion},
		{"versions repeat", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[2].Version = 3; return e }, eventstore.ErrInvalidVersion},
		{"stream id with $", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[1].StreamID = "$system"; return e }, eventstore.ErrInvalidStreamID},
		{"stream id with NUL", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[2].StreamID = "a\x00b"; return e }, eventstore.ErrInvalidStreamID},
		{"empty type", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[1].Type = ""; return e }, eventstore.ErrInvalidEventType},
		{"JSON data that is not JSON", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[2].Data = []byte(`{"a":`); return e }, eventstore.ErrInvalidPayload},
		{"JSON metadata that is not JSON", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[0].Metadata = []byte(`{"a":`)
			return e
		}, eventstore.ErrInvalidPayload},
		{"invalid UTF-8 in JSON metadata", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[1].Metadata = []byte("\"\xff\"")
			return e
		}, eventstore.ErrInvalidPayload},
		{"unknown metadata content type", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[2].MetadataContentType, e[2].Metadata = 2, []byte(`{}`)
			return e
		}, eventstore.ErrInvalidPayload},
		{"invalid UTF-8 in JSON data", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[0].Data = []byte("\"\xff\"")
			return e
		}, eventstore.ErrInvalidPayload},
		{"event over the size limit", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[1].ContentType, e[1].Data = eventstore.Binary, make([]byte, f.store.Limits().MaxEventSize+1)
			return e
		}, eventstore.ErrEventTooLarge},
	}
	for _, tc := range tests {
		before := f.state(s)
		err := f.store.Import(f.ctx, tc.change(valid()))
		doing := "import with " + tc.name
		checkInvalid(t, doing, err, tc.want)
		f.checkNothingWritten(doing, before)
	}
}

func testImportWakes(t *testing.T, f *fixture) {
	s := stream("Live")
	f.mustAppend(s, eventstore.NoStream, events(2, "Before")...)
	opts := eventstore.SubscribeOptions{}
	if _, ok := f.harness.NewDriver(t).(driver.Watcher); ok {
		// Only the driver's signal can then deliver the import in time.
		opts.PollInterval = time.Hour
	}
	r := f.subscribe(subConfig{what: "subscription from the start", opts: opts})
	sameEvents(t, "catch up", r.wait(2), f.readAll())
	f.mustImport(append(recorded(s, 3, 2, time.Now()), recorded(stream("Live"), 1, 1, time.Now())...))
	log := f.readAll()
	sameEvents(t, "caught up, then an import of 3 events", r.wait(len(log)), log)
	r.stop()
}

func testImportRacesAppend(t *testing.T, f *fixture) {
	const rounds = 3
	s := stream("")
	var version uint64
	for round := range rounds {
		outs := race(t, appenders, func(i int) appendOutcome {
			if i%2 == 0 {
				batch := events(1+i%3, "Appended")
				res, err := f.store.Append(f.ctx, s, eventstore.Exact(version), batch...)
				return appendOutcome{appender: i, batch: batch, res: res, err: err}
			}
			imp := recorded(s, version+1, 1+i%3, time.Now())
			return appendOutcome{appender: i, err: f.store.Import(f.ctx, imp)}
		})
		winners := 0
		for _, o := range outs {
			switch {
			case o.err == nil:
				winners++
			case !errors.Is(o.err, eventstore.ErrWrongExpectedVersion):
				t.Fatalf("round %d: appends and imports race at version %d; %d failed with %v, want ErrWrongExpectedVersion", round, version, o.appender, o.err)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: appends and imports race at version %d: %d won, want exactly one", round, version, winners)
		}
		evs := f.readStream(s)
		for i, ev := range evs {
			if ev.Version != uint64(i+1) {
				t.Fatalf("round %d: event %d of the stream has version %d: versions must be 1, 2, 3…", round, i, ev.Version)
			}
		}
		version = uint64(len(evs))
	}
}

func testCancelledImportAllOrNothing(t *testing.T, f *fixture) {
	// Each import continues two existing streams, interleaved, with a context
	// cancelled at a random moment (see cancelSoon). It succeeds, or fails
	// with the context's error, never another (say a version conflict made
	// up from a cut-off read), and both streams then hold all of it or none.
	// A server may still apply an import whose caller gave up: it can show up
	// after the call returned, but whole.
	const attempts, perStream = 40, 3
	var written, cancelled int
	for i := range attempts {
		a, b := stream("CancelImport"), stream("CancelImport")
		f.mustAppend(a, eventstore.NoStream, events(1, "Before")...)
		f.mustAppend(b, eventstore.NoStream, events(1, "Before")...)
		ra, rb := recorded(a, 2, perStream, time.Now()), recorded(b, 2, perStream, time.Now())
		var imp []eventstore.RecordedEvent
		for j := range perStream {
			imp = append(imp, ra[j], rb[j])
		}
		ctx, cancel := cancelSoon(f.ctx, i)
		err := f.store.Import(ctx, imp)
		cancel()
		doing := fmt.Sprintf("attempt %d: import %d events of 2 streams with a context cancelled at a random moment", i, len(imp))
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: want success or an error matching context.Canceled, got %v", doing, err)
		}
		if err != nil {
			cancelled++
		}
		n, ok := f.importedWhole(a, b, perStream)
		switch {
		case !ok:
			t.Errorf("%s: failed with %v and left part of it: want all or none", doing, err)
			continue
		case err == nil && n == 0:
			t.Errorf("%s: the import succeeded, but wrote nothing", doing)
			continue
		case n == 0:
			// Not written (or not yet): the caller imports again. Should the
			// first import land meanwhile, one of the two wins.
			if err := f.store.Import(f.ctx, imp); err != nil && !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Errorf("%s wrote nothing, then the same import: want success, got %v", doing, err)
				continue
			}
		default:
			written++
		}
		if n, ok := f.importedWhole(a, b, perStream); !ok || n != perStream {
			t.Errorf("%s, then again if it wrote nothing: want all %d events of each stream, got %d", doing, perStream, n)
			continue
		}
		f.checkStreamIDs(doing, a, append(idsOf(f.readStream(a)[:1]), idsOf(ra)...))
		f.checkStreamIDs(doing, b, append(idsOf(f.readStream(b)[:1]), idsOf(rb)...))
	}
	t.Logf("%d imports with a cancelled context: %d failed, %d were written before a retry", attempts, cancelled, written)
}

// importedWhole reports how many events an import added to each of streams
// a and b beyond their first, once both show the same number, 0 or all n.
// Reading one stream after the other can straddle the import's commit, so
// it reads again until they agree; a partial import never does, and after a
// while it reports false.
func (f *fixture) importedWhole(a, b string, n int) (int, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		na, nb := len(f.readStream(a))-1, len(f.readStream(b))-1
		if na == nb && (na == 0 || na == n) {
			return na, true
		}
		if time.Now().After(deadline) {
			f.t.Logf("streams %q and %q: %d and %d of %d imported events", a, b, na, nb, n)
			return na, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testImportNotSupported(t *testing.T, f *fixture) {
	if f.canImport() {
		t.Skip("the driver implements driver.Importer: the other Import rules apply")
	}
	s := stream("")
	before := f.state(s)
	err := f.store.Import(f.ctx, recorded(s, 1, 2, time.Now()))
	if !errors.Is(err, eventstore.ErrNotSupported) {
		t.Fatalf("Import on a driver without driver.Importer: want an error matching ErrNotSupported, got %v", err)
	}
	f.checkNothingWritten("an Import that is not supported", before)
}

// otherMetadata is metadata that history written elsewhere (KurrentDB,
// other libraries) holds and an append refuses: each with the content type
// an import records it under.
func otherMetadata() []struct {
	name string
	ct   eventstore.ContentType
	md   []byte
} {
	return []struct {
		name string
		ct   eventstore.ContentType
		md   []byte
	}{
		{"NULBytes", eventstore.Binary, []byte("\x00{\"a\":1}\x00")},
		{"InvalidUTF8", eventstore.Binary, []byte{0xff, 0xfe, 'x', 0xc0}},
		{"JSONNull", eventstore.JSON, []byte(`null`)},
		{"JSONArray", eventstore.JSON, []byte(` [1, "two", {"three":3}] `)},
		{"JSONString", eventstore.JSON, []byte(`"trace: 42"`)},
		{"NullAsBinary", eventstore.Binary, []byte(`null`)},
		{"ObjectAsBinary", eventstore.Binary, []byte(`{"a":1}`)},
		{"Empty", eventstore.Binary, nil},
	}
}

func testImportOtherMetadata(t *testing.T, f *fixture) {
	s := stream("Elsewhere")
	at := time.Date(2019, 6, 7, 8, 9, 10, 0, time.UTC)
	var evs []eventstore.RecordedEvent
	for i, m := range otherMetadata() {
		evs = append(evs, eventstore.RecordedEvent{StreamID: s, Version: uint64(i) + 1, ID: events(1, "x")[0].ID,
			Type: "Meta" + m.name, Data: []byte(`{}`), Metadata: m.md, MetadataContentType: m.ct, RecordedAt: at})
	}
	if _, ok := f.harness.NewDriver(t).(driver.QueryReader); ok {
		// A tagged import may take another path in the driver.
		evs[0].Tags = []string{"origin:elsewhere"}
	}
	// An ordinary event after them: the type is per event.
	evs = append(evs, eventstore.RecordedEvent{StreamID: s, Version: uint64(len(evs)) + 1, ID: events(1, "x")[0].ID,
		Type: "MetaObject", Metadata: []byte(`{"b":2}`), RecordedAt: at})
	f.mustImport(evs)
	want := withoutPositions(evs)
	// Empty metadata reads back as empty, whether nil or not.
	sameEvents(t, "read stream after importing metadata that is not a JSON object (positions aside)", withoutPositions(f.readStream(s)), want)
	all := f.readAll()
	sameEvents(t, "read all after importing metadata that is not a JSON object (positions aside)", withoutPositions(all), want)
	sameEvents(t, "read stream backwards after the import", reversed(collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true}))), all)
	r := f.subscribe(subConfig{what: "subscription from the start"})
	sameEvents(t, "subscription over the imported events", r.wait(len(all)), all)
	r.stop()
}

func testAppendOtherMetadata(t *testing.T, f *fixture) {
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(1, "Existing")...)
	for _, m := range otherMetadata() {
		if len(m.md) == 0 || m.md[0] == '{' {
			continue // an append takes these (as JSON)
		}
		before := f.state(s)
		_, err := f.store.Append(f.ctx, s, eventstore.Any, eventstore.Event{Type: "Meta", Data: []byte(`{}`), Metadata: m.md})
		doing := fmt.Sprintf("append with metadata %q (%s), which an import takes", m.md, m.name)
		checkInvalid(t, doing, err, eventstore.ErrInvalidPayload)
		f.checkNothingWritten(doing, before)
	}
}
