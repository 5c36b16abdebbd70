package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Hostile input to imports' metadata content types, and features used
// together: imported metadata of every content type comes back through
// ReadQuery as through the other reads; events removed by DeleteStream,
// TruncateStream or a retention no longer make a condition fail, exactly
// as they no longer come back from ReadQuery (docs/semantics.md "Deleting
// and truncating streams": removed events leave every read path).

func init() { ruleSets = append(ruleSets, hostileCrossRules) }

func hostileCrossRules() []rule {
	return []rule{
		{name: "HostileImportMetadataRejected", run: testHostileImportMetadata},
		{name: "HostileImportMetadataReadByQuery", run: queryReader(importer(testHostileImportByQuery))},
		{name: "HostileConditionIgnoresRemovedEvents", run: conditional(testHostileConditionRemoved)},
	}
}

// testHostileImportMetadata imports metadata that breaks its content
// type's rule, or of an unknown content type: ErrInvalidPayload, nothing
// written, on every driver (validation comes before the capability).
func testHostileImportMetadata(t *testing.T, f *fixture) {
	s := stream("ImpMeta")
	f.mustAppend(s, eventstore.NoStream, events(1, "Appended")...)
	for _, tc := range []struct {
		name string
		ct   eventstore.ContentType
		md   string
	}{
		{"WhitespaceUnderJSON", eventstore.JSON, " \n\t"},
		{"BOMUnderJSON", eventstore.JSON, "\xef\xbb\xbf{}"},
		{"RawNULUnderJSON", eventstore.JSON, "\"a\x00b\""},
		{"NULOnlyUnderJSON", eventstore.JSON, "\x00"},
		{"TwoValuesUnderJSON", eventstore.JSON, "{} {}"},
		{"TruncatedUnderJSON", eventstore.JSON, "[1,"},
		{"SingleQuotesUnderJSON", eventstore.JSON, "{'a':1}"},
		{"InvalidUTF8InStringUnderJSON", eventstore.JSON, "[\"\xc3\x28\"]"},
		{"ContentType2", 2, "{}"},
		{"ContentType255Empty", 255, ""},
		{"ContentType255Binary", 255, "\x00\xff"},
	} {
		evs := recorded(s, 2, 2, time.Date(2020, 2, 2, 0, 0, 0, 0, time.UTC))
		evs[1].MetadataContentType, evs[1].Metadata = tc.ct, []byte(tc.md)
		doing := fmt.Sprintf("import metadata %q of content type %d (%s)", tc.md, tc.ct, tc.name)
		before := f.state(s)
		err := f.store.Import(f.ctx, evs)
		checkInvalid(t, doing, err, eventstore.ErrInvalidPayload)
		f.checkNothingWritten(doing, before)
	}
}

// testHostileImportByQuery imports tagged events with metadata of each
// content type and reads them by query: metadata and its content type
// come back byte for byte, as from ReadStream.
func testHostileImportByQuery(t *testing.T, f *fixture) {
	s := stream("ImpQuery")
	tg := tag("imp")
	var evs []eventstore.RecordedEvent
	for i, m := range otherMetadata() {
		evs = append(evs, eventstore.RecordedEvent{StreamID: s, Version: uint64(i) + 1, ID: events(1, "x")[0].ID,
			Type: "Meta" + m.name, Data: []byte(`{}`), Metadata: m.md, MetadataContentType: m.ct,
			RecordedAt: time.Date(2019, 6, 7, 8, 9, 10, 0, time.UTC), Tags: []string{tg, "n:" + m.name}})
	}
	f.mustImport(evs)
	want := withoutPositions(evs)
	got := f.readQuery(query(item(nil, tg)), eventstore.Position{})
	sameEvents(t, "read by query after importing metadata of each content type (positions aside)", withoutPositions(got), want)
	for i, m := range otherMetadata() {
		got := f.readQuery(query(item(types("Meta"+m.name), "n:"+m.name)), eventstore.Position{})
		sameEvents(t, "read by the query of one imported event "+m.name, withoutPositions(got), want[i:i+1])
	}
}

// testHostileConditionRemoved removes tagged events by DeleteStream,
// TruncateStream and a retention where the driver has them; a condition
// on their tag then no longer fails, and ReadQuery no longer returns them.
func testHostileConditionRemoved(t *testing.T, f *fixture) {
	_, del := f.driver.(driver.StreamDeleter)
	_, trunc := f.driver.(driver.StreamTruncater)
	_, keep := f.driver.(driver.RetentionKeeper)
	for _, tc := range []struct {
		name   string
		has    bool
		remove func(s string) error
	}{
		{"DeleteStream", del, func(s string) error { return f.store.DeleteStream(f.ctx, s, eventstore.Any) }},
		{"TruncateStream", trunc, func(s string) error { return f.store.TruncateStream(f.ctx, s, 2) }},
		{"SetStreamRetention", keep, func(s string) error { return f.store.SetStreamRetention(f.ctx, s, eventstore.Retention{MaxCount: 1}) }},
	} {
		if !tc.has {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			s, tg := stream("Removed"), tag("user")
			f.mustAppend(s, eventstore.NoStream, tagged("Registered", tg), tagged("Other", tag("x")))
			q := query(item(types("Registered"), tg))
			claim := eventstore.MultiAppend{Records: []eventstore.Record{rec(stream("Claim"), tagged("Registered", tg))},
				Condition: &eventstore.AppendCondition{FailIfEventsMatch: q}}
			before := f.state("")
			_, err := f.store.AppendMulti(f.ctx, claim)
			checkConflict(t, describeMulti(claim)+" while the tagged event is there", err, nil, true)
			f.checkNothingWritten(describeMulti(claim), before)
			if err := tc.remove(s); err != nil {
				t.Fatalf("%s of the stream holding the tagged event: %v", tc.name, err)
			}
			if got := f.readQuery(q, eventstore.Position{}); len(got) != 0 {
				t.Fatalf("read by query %s after %s removed its only match: got %s", describeQuery(q), tc.name, describe(got))
			}
			if _, err := f.store.AppendMulti(f.ctx, claim); err != nil {
				t.Errorf("%s after %s removed the only event matching it: want success, as ReadQuery finds none, got %v", describeMulti(claim), tc.name, err)
			}
		})
	}
}
