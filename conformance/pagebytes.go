package conformance

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Reads": pages are bounded in bytes as well as
// events, so large events never multiply into gigabytes.

func init() { ruleSets = append(ruleSets, pageBytesRules) }

func pageBytesRules() []rule {
	return []rule{
		{name: "DriverPagesStopAtMaxBytes", run: testDriverPagesStopAtMaxBytes},
		{name: "ReadsPageThroughLargeEvents", run: testReadsPageThroughLargeEvents},
	}
}

// largeEvents returns n binary events of size bytes each.
func largeEvents(n, size int) []eventstore.Event {
	evs := events(n, "Large")
	for i := range evs {
		evs[i].ContentType = eventstore.Binary
		evs[i].Data = make([]byte, size)
		evs[i].Data[0] = byte(i)
	}
	return evs
}

// testDriverPagesStopAtMaxBytes asks the driver itself for pages with a
// MaxBytes of two and a half events: every read returns exactly three
// events (it stops once it holds MaxBytes or more), and a page with room
// for all returns all.
func testDriverPagesStopAtMaxBytes(t *testing.T, f *fixture) {
	const size, n = 40_000, 8
	d := f.harness.NewDriver(t)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	st := stream("Bytes")
	if _, err := s.Append(f.ctx, st, eventstore.NoStream, largeEvents(n, size)...); err != nil {
		t.Fatalf("append %d events of %d bytes: %v", n, size, err)
	}
	maxBytes := size*2 + size/2
	filter := driver.Filter{Categories: []string{eventstore.Category(st)}}
	for _, tc := range []struct {
		name string
		read func() ([]driver.RecordedEvent, error)
		want int
	}{
		{"ReadStream forwards, MaxBytes of 2.5 events", func() ([]driver.RecordedEvent, error) {
			return d.ReadStream(f.ctx, driver.StreamQuery{Stream: st, From: 1, Limit: 100, MaxBytes: maxBytes})
		}, 3},
		{"ReadStream backwards, MaxBytes of 2.5 events", func() ([]driver.RecordedEvent, error) {
			return d.ReadStream(f.ctx, driver.StreamQuery{Stream: st, Limit: 100, Backwards: true, MaxBytes: maxBytes})
		}, 3},
		{"ReadAll forwards, MaxBytes of 2.5 events", func() ([]driver.RecordedEvent, error) {
			return d.ReadAll(f.ctx, driver.AllQuery{Limit: 100, MaxBytes: maxBytes})
		}, 3},
		{"ReadAll filtered, MaxBytes of 2.5 events", func() ([]driver.RecordedEvent, error) {
			return d.ReadAll(f.ctx, driver.AllQuery{Limit: 100, MaxBytes: maxBytes, Filter: filter})
		}, 3},
		{"ReadAll with room for all", func() ([]driver.RecordedEvent, error) {
			return d.ReadAll(f.ctx, driver.AllQuery{Limit: 100, MaxBytes: size * 100})
		}, n},
		{"ReadAll with a MaxBytes below one event", func() ([]driver.RecordedEvent, error) {
			return d.ReadAll(f.ctx, driver.AllQuery{Limit: 100, MaxBytes: 1})
		}, 1},
	} {
		page, err := tc.read()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(page) != tc.want {
			t.Errorf("%s, over events of %d bytes: want %d events (a page stops once it holds MaxBytes or more), got %d",
				tc.name, size, tc.want, len(page))
		}
	}
}

// testReadsPageThroughLargeEvents reads and subscribes through a Store
// whose pages hold about two events: every event comes back, in order.
func testReadsPageThroughLargeEvents(t *testing.T, f *fixture) {
	const size, n = 40_000, 9
	s := eventstore.New(f.harness.NewDriver(t), eventstore.Options{MaxPageBytes: size*2 - 1})
	t.Cleanup(func() { s.Close() })
	st := stream("Bytes")
	if _, err := s.Append(f.ctx, st, eventstore.NoStream, largeEvents(n, size)...); err != nil {
		t.Fatalf("append: %v", err)
	}
	var fromStream, fromLog []eventstore.RecordedEvent
	for ev, err := range s.ReadStream(f.ctx, st, eventstore.ReadStreamOptions{}) {
		if err != nil {
			t.Fatalf("ReadStream: %v", err)
		}
		fromStream = append(fromStream, ev)
	}
	for ev, err := range s.ReadAll(f.ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		fromLog = append(fromLog, ev)
	}
	if len(fromStream) != n || len(fromLog) != n {
		t.Fatalf("reads with pages of two events: want %d events each, got %d from ReadStream and %d from ReadAll", n, len(fromStream), len(fromLog))
	}
	for i := range n {
		if fromStream[i].Version != uint64(i+1) || fromLog[i].Data[0] != byte(i) {
			t.Fatalf("reads with pages of two events: event %d out of order", i)
		}
	}
}
