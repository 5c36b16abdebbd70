package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Subscriptions". Consumer groups are in
// subscribe_group.go.

func init() { ruleSets = append(ruleSets, subscribeRules) }

func subscribeRules() []rule {
	return []rule{
		{name: "SubscribeCatchUpThenLive", run: testSubscribeCatchUpThenLive},
		{name: "SubscribeFilter", run: testSubscribeFilter},
		{name: "SubscribeDurableResume", run: testSubscribeDurableResume},
		{name: "SubscribeHandlerErrorRedelivers", run: testSubscribeRedelivery},
		{name: "SubscribeAfter", run: testSubscribeAfter},
		{name: "SubscribeFromEnd", run: testSubscribeFromEnd},
		{name: "SubscribeInvalidOptions", run: testSubscribeInvalidOptions},
		{name: "SubscribeContextDone", run: testSubscribeContextDone},
		{name: "SubscribeStopsOnClose", run: testSubscribeStopsOnClose},
		{name: "SubscribeLiveWakesWithoutPolling", run: testSubscribeWakes},
		{name: "SubscribeByPolling", run: testSubscribeByPolling},
	}
}

// subPatience bounds every wait on a subscription. Only a failing rule waits
// that long; it is no statement about speed.
const subPatience = 30 * time.Second

// errHandlerFailed is what a handler returns when a rule makes it fail.
var errHandlerFailed = errors.New("conformance: the handler fails on purpose")

// subConfig says how to run one subscription.
type subConfig struct {
	what string // names the subscription in failure messages
	opts eventstore.SubscribeOptions
	// hook, when set, runs first for each event; an error it returns is the
	// handler's error and the event is not recorded as handled.
	hook func(ctx context.Context, ev eventstore.RecordedEvent) error
	// stopAfter, when above zero, cancels the subscription's context once
	// that many events have been handled.
	stopAfter int
}

// subRun is a Subscribe call running in a goroutine the rule owns: the rule
// stops it (or the cleanup does) and waits for it to return.
type subRun struct {
	t      testing.TB
	what   string
	cancel context.CancelFunc
	done   chan struct{} // closed when Subscribe has returned
	err    error         // what Subscribe returned; read it after done is closed

	mu   sync.Mutex // protects got
	got  []eventstore.RecordedEvent
	tick chan struct{} // capacity 1: signalled after each handled event

	active  atomic.Int32 // handler calls in progress
	overlap atomic.Bool  // the handler was called while it was running
}

// subscribe starts Subscribe on f.store in a new goroutine.
func (f *fixture) subscribe(c subConfig) *subRun {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.ctx)
	r := &subRun{t: f.t, what: c.what, cancel: cancel, done: make(chan struct{}), tick: make(chan struct{}, 1)}
	handler := func(ctx context.Context, ev eventstore.RecordedEvent) error {
		if r.active.Add(1) > 1 {
			r.overlap.Store(true)
		}
		defer r.active.Add(-1)
		if c.hook != nil {
			if err := c.hook(ctx, ev); err != nil {
				return err
			}
		}
		r.mu.Lock()
		r.got = append(r.got, ev)
		n := len(r.got)
		r.mu.Unlock()
		select {
		case r.tick <- struct{}{}:
		default:
		}
		if n == c.stopAfter {
			cancel()
		}
		return nil
	}
	go func() {
		defer close(r.done)
		r.err = f.store.Subscribe(ctx, c.opts, handler)
	}()
	f.t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(subPatience):
			f.t.Errorf("%s: Subscribe did not return within %s of its context being cancelled", r.what, subPatience)
		}
		if r.overlap.Load() {
			f.t.Errorf("%s: the handler was called again before it had returned: events must be handled one at a time", r.what)
		}
	})
	return r
}

// events returns a copy of the events handled so far.
func (r *subRun) events() []eventstore.RecordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventstore.RecordedEvent(nil), r.got...)
}

// wait waits until at least n events have been handled and returns all
// handled so far.
func (r *subRun) wait(n int) []eventstore.RecordedEvent {
	r.t.Helper()
	deadline := time.NewTimer(subPatience)
	defer deadline.Stop()
	for {
		if got := r.events(); len(got) >= n {
			return got
		}
		select {
		case <-r.tick:
		case <-r.done:
			if got := r.events(); len(got) >= n {
				return got
			}
			r.t.Fatalf("%s: Subscribe returned after %d of %d events: %v", r.what, len(r.events()), n, r.err)
		case <-deadline.C:
			r.t.Fatalf("%s: only %d of %d events delivered after %s", r.what, len(r.events()), n, subPatience)
		}
	}
}

// result waits for Subscribe to return by itself and returns its error.
func (r *subRun) result() error {
	r.t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(subPatience):
		r.t.Fatalf("%s: Subscribe did not return within %s (handled %d events)", r.what, subPatience, len(r.events()))
		return nil
	}
}

// stop cancels the subscription's context and checks that Subscribe returns
// an error matching context.Canceled.
func (r *subRun) stop() {
	r.t.Helper()
	r.cancel()
	r.checkCanceled(r.result())
}

func (r *subRun) checkCanceled(err error) {
	r.t.Helper()
	if !errors.Is(err, context.Canceled) || errors.As(err, new(*eventstore.HandlerError)) {
		r.t.Errorf("%s: cancel its context: want Subscribe to return an error matching context.Canceled, got %v", r.what, err)
	}
}

// subName returns a fresh subscription name.
func subName(prefix string) string { return prefix + "-" + randomWord(12) }

func testSubscribeCatchUpThenLive(t *testing.T, f *fixture) {
	a, b := stream("Sub"), stream("Sub")
	f.mustAppend(a, eventstore.NoStream, events(3, "Placed")...)
	f.mustAppend(b, eventstore.NoStream, events(2, "Shipped")...)
	f.mustAppend(a, eventstore.Exact(3), events(2, "Shipped")...)

	var runs []*subRun
	for _, size := range []int{0, 1, 2, 1000} {
		opts := eventstore.SubscribeOptions{BatchSize: size}
		if size == 2 {
			opts.Name = subName("CatchUp")
		}
		runs = append(runs, f.subscribe(subConfig{what: fmt.Sprintf("subscription %+v", opts), opts: opts}))
	}
	log := f.readAll()
	for _, r := range runs {
		sameEvents(t, r.what+": catch up on 7 stored events", r.wait(len(log)), log)
	}
	// Live: the subscriptions have caught up; later appends reach them.
	f.mustAppend(b, eventstore.Exact(2), events(1, "Placed")...)
	f.mustAppend(a, eventstore.Exact(5), events(3, "Cancelled")...)
	log = f.readAll()
	for _, r := range runs {
		sameEvents(t, r.what+": 7 events caught up, then 4 appended live", r.wait(len(log)), log)
	}
	f.mustAppend(stream("Sub"), eventstore.NoStream, events(1, "Placed")...)
	log = f.readAll()
	for _, r := range runs {
		sameEvents(t, r.what+": 11 events delivered, then 1 more appended to a new stream", r.wait(len(log)), log)
		r.stop()
	}
}

func testSubscribeFilter(t *testing.T, f *fixture) {
	m := f.seedLog()
	filters := []eventstore.Filter{
		{Categories: []string{m.cat}},
		{Categories: []string{m.cat, m.streams.noDash}},
		{EventTypes: []string{"Shipped"}},
		{Categories: []string{m.cat}, EventTypes: []string{"Shipped", "Cancelled"}},
	}
	var runs []*subRun
	for i, filter := range filters {
		opts := eventstore.SubscribeOptions{Filter: filter, BatchSize: 3}
		if i%2 == 1 {
			opts.Name = subName("Filtered")
		}
		runs = append(runs, f.subscribe(subConfig{what: fmt.Sprintf("subscription with Filter{Categories: %q, EventTypes: %q}", filter.Categories, filter.EventTypes), opts: opts}))
	}
	for i, r := range runs {
		want := expectAll(m.log, eventstore.ReadAllOptions{Filter: filters[i]})
		sameEvents(t, r.what+": catch up", r.wait(len(want)), want)
	}
	// Live: events each filter rejects, then one every filter keeps. As
	// delivery is in log order, the last one arriving means the others
	// were considered.
	f.mustAppend(m.streams.plural, eventstore.Any, eventstore.NewEvent("Placed", nil))
	f.mustAppend(m.streams.dash, eventstore.Any, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("PlacedV2", nil))
	f.mustAppend(m.streams.plural, eventstore.Any, eventstore.NewEvent("Shipped", nil))
	f.mustAppend(m.streams.noDash, eventstore.Any, eventstore.NewEvent("Cancelled", nil))
	f.mustAppend(m.streams.bare, eventstore.Any, eventstore.NewEvent("Shipped", nil))
	log := f.readAll()
	for i, r := range runs {
		want := expectAll(log, eventstore.ReadAllOptions{Filter: filters[i]})
		sameEvents(t, r.what+": caught up, then 6 events appended live", r.wait(len(want)), want)
		r.stop()
	}
}

func testSubscribeDurableResume(t *testing.T, f *fixture) {
	a, b := stream("Durable"), stream("Durable")
	f.mustAppend(a, eventstore.NoStream, events(4, "Placed")...)
	f.mustAppend(b, eventstore.NoStream, events(6, "Shipped")...)
	name := subName("Durable")
	opts := eventstore.SubscribeOptions{Name: name, BatchSize: 3}

	// The first run stops itself in the middle of its third batch.
	r1 := f.subscribe(subConfig{what: fmt.Sprintf("subscription %q, first run", name), opts: opts, stopAfter: 7})
	r1.checkCanceled(r1.result())
	log := f.readAll()
	sameEvents(t, fmt.Sprintf("subscription %q: first run, stopped after handling 7 of 10 events", name), r1.events(), log[:7])

	f.mustAppend(a, eventstore.Exact(4), events(5, "Cancelled")...)
	log = f.readAll()
	r2 := f.subscribe(subConfig{what: fmt.Sprintf("subscription %q, second run", name), opts: opts})
	got := r2.wait(len(log) - 7)
	sameEvents(t, fmt.Sprintf("subscription %q: second run after a first run stopped after 7 events: want exactly the events after the 7th", name), got, log[7:])
	r2.stop()

	// A third run has nothing left to catch up on: the first event it
	// gets is one appended after it started.
	r3 := f.subscribe(subConfig{what: fmt.Sprintf("subscription %q, third run", name), opts: opts})
	res := f.mustAppend(b, eventstore.Exact(6), events(1, "Placed")...)
	got = r3.wait(1)
	if len(got) != 1 || got[0].Position != res.Position {
		t.Errorf("subscription %q: third run after a second run handled everything, then 1 event appended: want only that event at %s, got %s",
			name, res.Position, describe(got))
	}
	r3.stop()
}

func testSubscribeRedelivery(t *testing.T, f *fixture) {
	s := stream("Redeliver")
	for range 3 {
		f.mustAppend(s, eventstore.Any, events(2, "Happened")...)
	}
	log := f.readAll()
	for _, k := range []int{1, 3, 4, 6} { // with batches of 2: the first, the first and second of a middle batch, the last
		name := subName(fmt.Sprintf("Fail%d", k))
		opts := eventstore.SubscribeOptions{Name: name, BatchSize: 2}
		failing := log[k-1]
		doing := fmt.Sprintf("subscription %q with a handler that fails on event %d of %d", name, k, len(log))
		r1 := f.subscribe(subConfig{what: doing, opts: opts, hook: func(_ context.Context, ev eventstore.RecordedEvent) error {
			if ev.ID == failing.ID {
				return errHandlerFailed
			}
			return nil
		}})
		err := r1.result()
		var he *eventstore.HandlerError
		switch {
		case !errors.As(err, &he):
			t.Errorf("%s: want Subscribe to return a *HandlerError, got %v", doing, err)
		case !errors.Is(err, errHandlerFailed):
			t.Errorf("%s: want the error to wrap the handler's error, got %v", doing, err)
		case errors.Is(err, context.Canceled) || errors.Is(err, eventstore.ErrClosed):
			t.Errorf("%s: want the handler's error, not a stop, got %v", doing, err)
		default:
			if he.Event.ID != failing.ID || he.Event.StreamID != failing.StreamID || he.Event.Version != failing.Version || he.Event.Position != failing.Position {
				t.Errorf("%s: HandlerError.Event: want %s, got %s", doing, describeOne(failing), describeOne(he.Event))
			}
			if he.Subscription != name {
				t.Errorf("%s: HandlerError.Subscription: want %q, got %q", doing, name, he.Subscription)
			}
		}
		sameEvents(t, doing+": events handled before it failed", r1.events(), log[:k-1])

		r2 := f.subscribe(subConfig{what: doing + ", restarted", opts: opts})
		sameEvents(t, doing+", restarted: want the failed event first, then the rest", r2.wait(len(log)-k+1), log[k-1:])
		r2.stop()
	}
}

func testSubscribeAfter(t *testing.T, f *fixture) {
	s := stream("After")
	for range 3 {
		f.mustAppend(s, eventstore.Any, events(2, "Happened")...)
	}
	log := f.readAll()

	what := fmt.Sprintf("subscription without a name, After %s (event 3 of 6)", log[2].Position)
	r := f.subscribe(subConfig{what: what, opts: eventstore.SubscribeOptions{After: log[2].Position}})
	sameEvents(t, what+": catch up", r.wait(3), log[3:])
	f.mustAppend(s, eventstore.Exact(6), events(2, "Later")...)
	log = f.readAll()
	sameEvents(t, what+": then 2 events appended live", r.wait(5), log[3:])
	r.stop()

	// Without a name nothing is stored: the same subscription again starts
	// after After again.
	r = f.subscribe(subConfig{what: what + ", run again", opts: eventstore.SubscribeOptions{After: log[2].Position}})
	sameEvents(t, what+", run again: want the same events again", r.wait(5), log[3:])
	r.stop()

	// With a name, After applies only while there is no checkpoint.
	name := subName("After")
	what = fmt.Sprintf("subscription %q without a checkpoint, After %s (event 5 of 8)", name, log[4].Position)
	r = f.subscribe(subConfig{what: what, opts: eventstore.SubscribeOptions{Name: name, After: log[4].Position}})
	sameEvents(t, what, r.wait(3), log[5:])
	r.stop()
	what = fmt.Sprintf("subscription %q restarted with After zero after handling every event", name)
	r = f.subscribe(subConfig{what: what, opts: eventstore.SubscribeOptions{Name: name}})
	res := f.mustAppend(s, eventstore.Exact(8), events(1, "Last")...)
	if got := r.wait(1); len(got) != 1 || got[0].Position != res.Position {
		t.Errorf("%s, then 1 event appended: want only that event at %s (the checkpoint wins over After), got %s", what, res.Position, describe(got))
	}
	r.stop()
}

// fromEndMarkers bounds how many events testSubscribeFromEnd appends while it
// waits for a FromEnd subscription to start.
const fromEndMarkers = 10000

// awaitFromEnd appends events of type "Marker", one at a time, to a fresh
// stream until r (subscribed FromEnd) receives one: only then is it known to
// be past its start. It returns the position of the first event r received,
// which must be a marker.
func (f *fixture) awaitFromEnd(r *subRun) eventstore.Position {
	f.t.Helper()
	markers := stream("Marker")
	for i := range fromEndMarkers {
		if got := r.events(); len(got) > 0 {
			if got[0].Type != "Marker" {
				f.t.Fatalf("%s: the first event delivered is %s, which was stored before the subscription started", r.what, describeOne(got[0]))
			}
			return got[0].Position
		}
		select {
		case <-r.done:
			f.t.Fatalf("%s: Subscribe returned before it received an event: %v", r.what, r.err)
		default:
		}
		f.mustAppend(markers, eventstore.Exact(uint64(i)), eventstore.NewEvent("Marker", nil))
	}
	f.t.Fatalf("%s: appended %d events one at a time and the subscription received none", r.what, fromEndMarkers)
	return eventstore.Position{}
}

func testSubscribeFromEnd(t *testing.T, f *fixture) {
	old := stream("Old")
	f.mustAppend(old, eventstore.NoStream, events(5, "Old")...)
	name := subName("FromEnd")
	runs := []*subRun{
		f.subscribe(subConfig{what: "subscription FromEnd", opts: eventstore.SubscribeOptions{FromEnd: true}}),
		f.subscribe(subConfig{what: fmt.Sprintf("subscription %q FromEnd", name), opts: eventstore.SubscribeOptions{Name: name, FromEnd: true, After: eventstore.Position{Commit: 1}}}),
	}
	firsts := make([]eventstore.Position, len(runs))
	for i, r := range runs {
		firsts[i] = f.awaitFromEnd(r)
	}
	f.mustAppend(stream("New"), eventstore.NoStream, events(3, "New")...)
	log := f.readAll()
	for i, r := range runs {
		var want []eventstore.RecordedEvent
		for _, ev := range log {
			if ev.Position.Compare(firsts[i]) >= 0 {
				want = append(want, ev)
			}
		}
		sameEvents(t, r.what+": want only events appended after it started, all of them", r.wait(len(want)), want)
		r.stop()
	}

	// A checkpoint wins over FromEnd.
	res := f.mustAppend(old, eventstore.Exact(5), events(2, "WhileStopped")...)
	what := fmt.Sprintf("subscription %q FromEnd, restarted after 2 events were appended while it was stopped", name)
	r := f.subscribe(subConfig{what: what, opts: eventstore.SubscribeOptions{Name: name, FromEnd: true}})
	got := r.wait(2)
	if len(got) != 2 || got[1].Position != res.Position {
		t.Errorf("%s: want those 2 events (the checkpoint wins over FromEnd), ending at %s, got %s", what, res.Position, describe(got))
	}
	r.stop()
}

func testSubscribeInvalidOptions(t *testing.T, f *fixture) {
	f.mustAppend(stream(""), eventstore.NoStream, events(1, "Happened")...)
	ok := func(context.Context, eventstore.RecordedEvent) error { return nil }
	cases := []struct {
		name    string
		opts    eventstore.SubscribeOptions
		handler eventstore.Handler
	}{
		{"NilHandler", eventstore.SubscribeOptions{}, nil},
		{"MemberEqualsSize", eventstore.SubscribeOptions{Name: "g", Group: eventstore.Group{Member: 3, Size: 3}}, ok},
		{"MemberAboveSize", eventstore.SubscribeOptions{Name: "g", Group: eventstore.Group{Member: 5, Size: 3}}, ok},
		{"NegativeMember", eventstore.SubscribeOptions{Name: "g", Group: eventstore.Group{Member: -1, Size: 3}}, ok},
		{"NegativeSize", eventstore.SubscribeOptions{Name: "g", Group: eventstore.Group{Size: -2}}, ok},
		{"MemberWithoutSize", eventstore.SubscribeOptions{Name: "g", Group: eventstore.Group{Member: 1}}, ok},
		{"MemberOfGroupOfOne", eventstore.SubscribeOptions{Name: "g", Group: eventstore.Group{Member: 1, Size: 1}}, ok},
		{"NegativeBatchSize", eventstore.SubscribeOptions{BatchSize: -1}, ok},
		{"NegativePollInterval", eventstore.SubscribeOptions{PollInterval: -time.Second}, ok},
		{"NameStartsWithDollar", eventstore.SubscribeOptions{Name: "$system"}, ok},
		{"NameWithNUL", eventstore.SubscribeOptions{Name: "a\x00b"}, ok},
		{"NameWithNewline", eventstore.SubscribeOptions{Name: "a\nb"}, ok},
		{"NameNotUTF8", eventstore.SubscribeOptions{Name: "bad\xff"}, ok},
		{"NameTooLong", eventstore.SubscribeOptions{Name: strings.Repeat("n", 256)}, ok},
		{"EmptyFilterCategory", eventstore.SubscribeOptions{Filter: eventstore.Filter{Categories: []string{""}}}, ok},
		{"BadFilterCategory", eventstore.SubscribeOptions{Filter: eventstore.Filter{Categories: []string{"$ce"}}}, ok},
		{"BadFilterEventType", eventstore.SubscribeOptions{Filter: eventstore.Filter{EventTypes: []string{"a\x7fb"}}}, ok},
	}
	for _, tc := range cases {
		// A valid subscription would run until the context ends, so an
		// invalid one that is accepted fails at the deadline.
		ctx, cancel := context.WithTimeout(f.ctx, subPatience)
		called := false
		h := tc.handler
		if h != nil {
			h = func(context.Context, eventstore.RecordedEvent) error { called = true; return nil }
		}
		err := f.store.Subscribe(ctx, tc.opts, h)
		cancel()
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("%s: Subscribe with %+v: want an error matching ErrInvalidArgument, got %v", tc.name, tc.opts, err)
		}
		if called {
			t.Errorf("%s: Subscribe with %+v: the handler was called", tc.name, tc.opts)
		}
	}
}

func testSubscribeContextDone(t *testing.T, f *fixture) {
	f.mustAppend(stream(""), eventstore.NoStream, events(3, "Happened")...)
	cancelled, cancel := context.WithCancel(f.ctx)
	cancel()
	expired, cancel := context.WithDeadline(f.ctx, time.Now().Add(-time.Second))
	defer cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"expired", expired, context.DeadlineExceeded}} {
		for _, opts := range []eventstore.SubscribeOptions{{}, {Name: subName("Done")}, {FromEnd: true}} {
			var handled atomic.Int32
			done := make(chan error, 1)
			go func() {
				done <- f.store.Subscribe(c.ctx, opts, func(context.Context, eventstore.RecordedEvent) error {
					handled.Add(1)
					return nil
				})
			}()
			doing := fmt.Sprintf("Subscribe with %+v and a %s context", opts, c.name)
			err := waitFor(t, done, subPatience, doing+" to return")
			if !errors.Is(err, c.want) {
				t.Errorf("%s: want an error matching %v, got %v", doing, c.want, err)
			}
			if n := handled.Load(); n != 0 {
				t.Errorf("%s: want the handler never called, got %d calls", doing, n)
			}
		}
	}

	// A subscription waiting for new events stops when its context is cancelled.
	r := f.subscribe(subConfig{what: "subscription that caught up", opts: eventstore.SubscribeOptions{Name: subName("Live")}})
	r.wait(3)
	r.stop()
}

func testSubscribeStopsOnClose(t *testing.T, f *fixture) {
	s := stream("Close")
	f.mustAppend(s, eventstore.NoStream, events(5, "Happened")...)
	log := f.readAll()

	idle := f.subscribe(subConfig{what: "subscription waiting for new events", opts: eventstore.SubscribeOptions{Name: subName("Idle")}})
	idle.wait(5)

	entered := make(chan struct{})
	release := make(chan struct{})
	var stopSeen atomic.Bool
	busy := f.subscribe(subConfig{
		what: "subscription whose handler is blocked",
		opts: eventstore.SubscribeOptions{Name: subName("Busy"), BatchSize: 2},
		hook: func(ctx context.Context, ev eventstore.RecordedEvent) error {
			if ev.Version == 3 {
				close(entered)
				<-release // ignores ctx: a handler that takes its time
				stopSeen.Store(ctx.Err() != nil)
			}
			return nil
		},
	})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // before the subscription's own cleanup waits for it
	waitFor(t, entered, subPatience, "the handler to receive event 3")

	closed := make(chan error, 1)
	go func() { closed <- f.store.Close() }()
	if err := idle.result(); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("%s: Close the store: want Subscribe to return an error matching ErrClosed, got %v", idle.what, err)
	}
	select {
	case err := <-closed:
		t.Errorf("Close returned (%v) while a subscription's handler was still running: it must wait for handlers", err)
		releaseOnce()
	default:
		releaseOnce()
		if err := waitFor(t, closed, subPatience, "Close to return once the blocked handler returned"); err != nil {
			t.Errorf("Close with running subscriptions: %v", err)
		}
	}
	if !stopSeen.Load() {
		t.Errorf("%s: the handler's context was not done after Close stopped the subscription", busy.what)
	}
	if err := busy.result(); !errors.Is(err, eventstore.ErrClosed) || errors.As(err, new(*eventstore.HandlerError)) {
		t.Errorf("%s: Close the store: want Subscribe to return an error matching ErrClosed, got %v", busy.what, err)
	}
	sameEvents(t, busy.what+": events handled", busy.events(), log[:3])

	done := make(chan error, 1)
	go func() {
		done <- f.store.Subscribe(f.ctx, eventstore.SubscribeOptions{}, func(context.Context, eventstore.RecordedEvent) error { return nil })
	}()
	if err := waitFor(t, done, subPatience, "Subscribe on a closed store to return"); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Subscribe on a closed store: want an error matching ErrClosed, got %v", err)
	}
}

// checkLive subscribes to f.store with opts, checks catch-up, then appends
// twice and checks each append arrives.
func (f *fixture) checkLive(what string, opts eventstore.SubscribeOptions) {
	f.t.Helper()
	s := stream("Live")
	f.mustAppend(s, eventstore.NoStream, events(3, "Before")...)
	r := f.subscribe(subConfig{what: what, opts: opts})
	sameEvents(f.t, what+": catch up", r.wait(3), f.readAll())
	for i := range 2 {
		f.mustAppend(s, eventstore.Exact(uint64(3+i)), events(1, "Live")...)
		log := f.readAll()
		sameEvents(f.t, fmt.Sprintf("%s: caught up, then live append %d", what, i+1), r.wait(len(log)), log)
	}
	r.stop()
}

func testSubscribeWakes(t *testing.T, f *fixture) {
	d := f.harness.NewDriver(t)
	if _, ok := d.(driver.Watcher); !ok {
		t.Skipf("the driver does not implement driver.Watcher: its subscriptions poll (see SubscribeByPolling)")
	}
	g := *f
	g.store = eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() {
		if err := g.store.Close(); err != nil {
			t.Errorf("Store.Close: %v", err)
		}
	})
	// With an hour between polls, only the driver's signal can deliver
	// live events before the rule gives up.
	g.checkLive("subscription with PollInterval 1h on a driver that signals new events", eventstore.SubscribeOptions{PollInterval: time.Hour})
}

// pollOnly hides a driver's optional capabilities (such as Watcher) from
// the Store, which then takes its fallback paths.
type pollOnly struct{ driver.Driver }

func testSubscribeByPolling(t *testing.T, f *fixture) {
	g := *f
	g.store = eventstore.New(pollOnly{f.harness.NewDriver(t)}, eventstore.Options{})
	t.Cleanup(func() {
		if err := g.store.Close(); err != nil {
			t.Errorf("Store.Close: %v", err)
		}
	})
	g.checkLive("subscription polling every 10ms at most (the driver's Watcher hidden)", eventstore.SubscribeOptions{PollInterval: 10 * time.Millisecond})
}
