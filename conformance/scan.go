package conformance

import (
	"slices"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Subscriptions": filtered reads through a
// driver.ScanReader say how far they scanned, never past an event a reader
// could still miss, so a filtered subscription's checkpoint moves past the
// events it does not want.

func init() { ruleSets = append(ruleSets, scanRules) }

func scanRules() []rule {
	return []rule{
		{name: "ScanPagesFindEveryMatch", run: scanner(testScanPagesFindEveryMatch)},
		{name: "FilteredCheckpointAdvancesPastOtherEvents", run: scanner(testFilteredCheckpointAdvances)},
	}
}

// scanner runs a rule only for drivers that implement driver.ScanReader.
func scanner(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		if _, ok := f.harness.NewDriver(t).(driver.ScanReader); !ok {
			t.Skip("the driver does not implement driver.ScanReader: filtered reads page with ReadAll")
		}
		run(t, f)
	}
}

// testScanPagesFindEveryMatch follows ReadAllScan page by page (after the
// last scanned position each time) with small limits over a log where one
// category is rare, and checks it finds exactly the matching events, that
// Scanned never goes backwards and is at or after the events returned, and
// that the last page says End.
func testScanPagesFindEveryMatch(t *testing.T, f *fixture) {
	d := f.harness.NewDriver(t)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	rare, common := stream("ScanRare"), stream("ScanCommon")
	for i := range 60 {
		st := common
		if i%13 == 5 {
			st = rare
		}
		if _, err := s.Append(f.ctx, st, eventstore.Any, events(1+i%2, "Placed")...); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	var want []driver.Position
	for ev, err := range s.ReadAll(f.ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if ev.StreamID == rare {
			want = append(want, driver.Position(ev.Position))
		}
	}
	sr := d.(driver.ScanReader)
	filter := driver.Filter{Categories: []string{eventstore.Category(rare)}}
	for _, limit := range []int{1, 2, 100} {
		var got []driver.Position
		var after driver.Position
		for pages := 0; ; pages++ {
			if pages > 1000 {
				t.Fatalf("limit %d: ReadAllScan never reached End (scanned %s)", limit, after)
			}
			p, err := sr.ReadAllScan(f.ctx, driver.AllQuery{After: after, Limit: limit, Filter: filter})
			if err != nil {
				t.Fatalf("limit %d: ReadAllScan after %s: %v", limit, after, err)
			}
			if len(p.Events) > limit {
				t.Fatalf("limit %d: ReadAllScan returned %d events", limit, len(p.Events))
			}
			for _, ev := range p.Events {
				if ev.StreamID != rare {
					t.Fatalf("limit %d: ReadAllScan returned an event of %q, which the filter does not keep", limit, ev.StreamID)
				}
				got = append(got, ev.Position)
			}
			if n := len(p.Events); n > 0 && p.Scanned.Less(p.Events[n-1].Position) {
				t.Fatalf("limit %d: Scanned %s is before the last event returned, %s", limit, p.Scanned, p.Events[n-1].Position)
			}
			if !p.Scanned.IsZero() && p.Scanned.Compare(after) < 0 {
				t.Fatalf("limit %d: Scanned %s went back before the page's After %s", limit, p.Scanned, after)
			}
			if p.End {
				break
			}
			if p.Scanned.Compare(after) <= 0 {
				t.Fatalf("limit %d: a page that is not the End scanned nothing after %s", limit, after)
			}
			after = p.Scanned
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: following Scanned found %v, want every event of %q: %v", limit, got, rare, want)
		}
	}
}

// testFilteredCheckpointAdvances runs a durable subscription to one
// category while only another is appended: its checkpoint moves past those
// events; then an event of its category is delivered, none skipped.
func testFilteredCheckpointAdvances(t *testing.T, f *fixture) {
	mine, other := stream("ScanMine"), stream("ScanOther")
	f.mustAppend(mine, eventstore.NoStream, events(1, "Placed")...)
	name := subName("Scan")
	opts := eventstore.SubscribeOptions{Name: name, Filter: eventstore.Filter{Categories: []string{eventstore.Category(mine)}}, PollInterval: 20 * time.Millisecond}
	r := f.subscribe(subConfig{what: "filtered subscription " + name, opts: opts})
	r.wait(1)
	for range 5 {
		f.mustAppend(other, eventstore.Any, events(3, "Placed")...)
	}
	log := f.readAll()
	last := log[len(log)-1].Position
	deadline := time.Now().Add(subPatience)
	for {
		pos, ok, err := f.store.Checkpoint(f.ctx, name)
		if err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
		if ok && pos.Compare(last) >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the checkpoint of %q is %s (saved: %v) after %s of appends to other categories only: want it at or after %s", name, pos, ok, subPatience, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res := f.mustAppend(mine, eventstore.Exact(1), events(1, "Shipped")...)
	got := r.wait(2)
	if got[1].Position != res.Position {
		t.Errorf("after the checkpoint moved: want the new event of %q at %s delivered, got %s", mine, res.Position, got[1].Position)
	}
	r.stop()
}
