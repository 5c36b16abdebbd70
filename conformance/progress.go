package conformance

import (
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Subscriptions", knowing where one is: the
// head of the log, the lag after a position, and the state a running
// subscription reports.

func init() { ruleSets = append(ruleSets, progressRules) }

func progressRules() []rule {
	return []rule{
		{name: "HeadIsTheLastEvent", run: testHead},
		{name: "LagCountsEventsNotPositions", run: testLag},
		{name: "SubscriptionReportsItsState", run: testSubscriptionState},
	}
}

func testHead(t *testing.T, f *fixture) {
	if head, err := f.store.Head(f.ctx); err != nil || !head.IsZero() {
		t.Fatalf("Head of an empty store: want the zero position, got %s, %v", head, err)
	}
	f.mustAppend(stream("Head"), eventstore.NoStream, events(3, "Placed")...)
	res := f.mustAppend(stream("Head"), eventstore.NoStream, events(2, "Placed")...)
	head, err := f.store.Head(f.ctx)
	if err != nil || head != res.Position {
		t.Fatalf("Head after two appends: want the last append's position %s, got %s, %v", res.Position, head, err)
	}
	log := f.readAll()
	if last := log[len(log)-1].Position; head != last {
		t.Errorf("Head: want the position of the last event ReadAll returns, %s, got %s", last, head)
	}
}

// testLag appends to two categories in separate appends, so positions on
// backends with gaps are not dense, and checks Lag counts events.
func testLag(t *testing.T, f *fixture) {
	a, b := stream("LagA"), stream("LagB")
	for i := range 6 {
		s := a
		if i%3 == 2 {
			s = b
		}
		f.mustAppend(s, eventstore.Any, events(1, "Placed")...)
	}
	log := f.readAll()
	for _, tc := range []struct {
		doing  string
		after  eventstore.Position
		filter eventstore.Filter
		want   int
	}{
		{"from the start", eventstore.Position{}, eventstore.Filter{}, 6},
		{"after the second event", log[1].Position, eventstore.Filter{}, 4},
		{"after the last event", log[5].Position, eventstore.Filter{}, 0},
		{"from the start, one category", eventstore.Position{}, eventstore.Filter{Categories: []string{eventstore.Category(b)}}, 2},
		{"after the third event, one category", log[2].Position, eventstore.Filter{Categories: []string{eventstore.Category(b)}}, 1},
	} {
		lag, err := f.store.Lag(f.ctx, tc.after, tc.filter)
		if err != nil {
			t.Errorf("Lag %s: %v", tc.doing, err)
			continue
		}
		if lag.Events != tc.want || lag.AtLeast || lag.Head != log[5].Position {
			t.Errorf("Lag %s: want %d events, not capped, head %s; got %+v", tc.doing, tc.want, log[5].Position, lag)
		}
		if wantOldest := oldestAfter(log, tc.after, tc.filter); !lag.Oldest.Equal(wantOldest) {
			t.Errorf("Lag %s: Oldest %s: want %s, the recorded time of the oldest event behind (zero for none)", tc.doing, lag.Oldest, wantOldest)
		}
	}
}

// testSubscriptionState runs a durable subscription over stored events and
// checks OnCaughtUp, Store.Subscriptions while it runs and after it stops.
func testSubscriptionState(t *testing.T, f *fixture) {
	s := stream("State")
	f.mustAppend(s, eventstore.NoStream, events(4, "Placed")...)
	log := f.readAll()
	name := subName("State")
	var mu sync.Mutex
	var caught []eventstore.SubscriptionState
	opts := eventstore.SubscribeOptions{Name: name, BatchSize: 3, OnCaughtUp: func(st eventstore.SubscriptionState) {
		mu.Lock()
		defer mu.Unlock()
		caught = append(caught, st)
	}}
	r := f.subscribe(subConfig{what: "subscription " + name, opts: opts})
	r.wait(4)
	more := f.mustAppend(s, eventstore.Exact(4), events(2, "Placed")...)
	r.wait(6)
	var st eventstore.SubscriptionState
	deadline := time.Now().Add(subPatience)
	for {
		var found bool
		for _, x := range f.store.Subscriptions() {
			if x.Name == name {
				st, found = x, true
			}
		}
		if found && st.Position == more.Position && st.Live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Subscriptions: want %q live at %s, got %+v (found %v)", name, more.Position, st, found)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.Handled != 6 || !st.CaughtUp || st.Started.IsZero() || st.Retries != 0 || st.LastError != nil {
		t.Errorf("Subscriptions: want 6 handled, caught up, started, no retries; got %+v", st)
	}
	r.stop()
	for _, x := range f.store.Subscriptions() {
		if x.Name == name {
			t.Errorf("Subscriptions after the subscription stopped: want it gone, got %+v", x)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(caught) != 1 {
		t.Fatalf("OnCaughtUp: want one call, got %d", len(caught))
	}
	if c := caught[0]; c.Position != log[len(log)-1].Position || c.Handled != 4 || !c.CaughtUp || !c.Live || c.Name != name {
		t.Errorf("OnCaughtUp: want the state after the 4 stored events (position %s), got %+v", log[len(log)-1].Position, c)
	}
}

// oldestAfter returns the recorded time of the first event of log after pos
// that filter keeps, zero when there is none.
func oldestAfter(log []eventstore.RecordedEvent, pos eventstore.Position, filter eventstore.Filter) time.Time {
	for _, ev := range log {
		if pos.Less(ev.Position) && filter.Matches(ev) {
			return ev.RecordedAt
		}
	}
	return time.Time{}
}
