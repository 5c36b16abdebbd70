package conformance

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Reopener is the Harness ability the [Persistence] rules use: opening the
// same storage again, as a restarted process would. Every harness for a
// driver that keeps its data implements it. A harness without it fails those
// rules, unless it declares Persistence unsupported because its driver keeps
// nothing once closed.
type Reopener interface {
	// NewStorage prepares one fresh, isolated storage and returns a function
	// that opens a new driver over it each time it is called (a new file
	// handle, connection pool or client: nothing the previous driver's Close
	// released). Teardown of the storage goes in t.Cleanup; the suite closes
	// each driver through its Store.
	NewStorage(t testing.TB) (open func() driver.Driver)
}

func init() { ruleSets = append(ruleSets, reopenRules) }

func reopenRules() []rule {
	return []rule{
		{name: "ReopenKeepsEventsSnapshotsAndIdempotency", requires: Persistence, run: testReopenKeeps},
		{name: "ReopenResumesSubscriptionAfterClose", requires: Persistence, run: testReopenResumes},
	}
}

// reopenable returns a function opening Stores over one storage. It skips
// when the harness declares Persistence unsupported and fails when the
// harness lacks Reopener without that declaration: a persistent driver may
// not opt out of these rules by leaving Reopener out.
func (f *fixture) reopenable() func() *eventstore.Store {
	f.t.Helper()
	r, ok := f.harness.(Reopener)
	if !ok {
		if why, declared := f.harness.Unsupported()[Persistence]; declared {
			f.t.Skipf("%s: not supported by this driver: %s", Persistence, why)
		}
		f.t.Fatalf("%s: the harness does not implement conformance.Reopener, so this rule cannot open the same storage "+
			"again; implement NewStorage, or, if the driver keeps nothing once closed, declare %q unsupported with the reason",
			Persistence, Persistence)
	}
	open := r.NewStorage(f.t)
	return func() *eventstore.Store {
		s := eventstore.New(open(), eventstore.Options{})
		f.t.Cleanup(func() { s.Close() })
		return s
	}
}

func testReopenKeeps(t *testing.T, f *fixture) {
	open := f.reopenable()
	ctx := f.ctx
	s1 := open()
	a, b := stream("Reopen"), stream("Other")
	first := events(3, "Happened")
	res, err := s1.Append(ctx, a, eventstore.NoStream, first...)
	if err != nil {
		t.Fatalf("append to a fresh storage: %v", err)
	}
	if _, err := s1.Append(ctx, b, eventstore.NoStream, events(2, "Happened")...); err != nil {
		t.Fatalf("append: %v", err)
	}
	snap := eventstore.Snapshot{Version: 3, Data: []byte{0, 1, 2, 0xff}}
	if err := s1.SaveSnapshot(ctx, a, snap); err != nil {
		t.Fatalf("save snapshot: %v", err)
	}
	before := collect(t, s1.ReadAll(ctx, eventstore.ReadAllOptions{}))
	if err := s1.Close(); err != nil {
		t.Fatalf("close the first store: %v", err)
	}

	s2 := open()
	after := collect(t, s2.ReadAll(ctx, eventstore.ReadAllOptions{}))
	if len(after) != len(before) {
		t.Fatalf("read all after a reopen: want the %d events written before, got %d", len(before), len(after))
	}
	for i := range before {
		x, y := before[i], after[i]
		if x.ID != y.ID || x.Position != y.Position || x.Version != y.Version || x.StreamID != y.StreamID ||
			!bytes.Equal(x.Data, y.Data) || !x.RecordedAt.Equal(y.RecordedAt) {
			t.Errorf("read all after a reopen: event %d changed: before %q v%d @%s %s, after %q v%d @%s %s",
				i, x.StreamID, x.Version, x.Position, x.RecordedAt, y.StreamID, y.Version, y.Position, y.RecordedAt)
		}
	}
	got, ok, err := s2.LoadSnapshot(ctx, a)
	if err != nil || !ok || got.Version != snap.Version || !bytes.Equal(got.Data, snap.Data) {
		t.Errorf("load a snapshot after a reopen: want version 3 %x, got %+v ok=%v err=%v", snap.Data, got, ok, err)
	}
	retry, err := s2.Append(ctx, a, eventstore.NoStream, first...)
	if err != nil || retry.Version != res.Version || retry.Position != res.Position {
		t.Errorf("retry an append after a reopen: want the original result (version %d @%s), got %+v err=%v", res.Version, res.Position, retry, err)
	}
	next, err := s2.Append(ctx, a, eventstore.Exact(3), events(1, "Later")...)
	if err != nil {
		t.Fatalf("append at Exact(3) after a reopen: %v", err)
	}
	if next.Version != 4 || !res.Position.Less(next.Position) || !before[len(before)-1].Position.Less(next.Position) {
		t.Errorf("append after a reopen: want version 4 after every earlier position, got version %d @%s", next.Version, next.Position)
	}
}

func testReopenResumes(t *testing.T, f *fixture) {
	open := f.reopenable()
	ctx := f.ctx
	s1 := open()
	name := "reopen-" + stream("Sub")
	st := stream("Resume")
	if _, err := s1.Append(ctx, st, eventstore.NoStream, events(3, "Before")...); err != nil {
		t.Fatalf("append: %v", err)
	}
	handled := make(chan eventstore.RecordedEvent, 10)
	done := make(chan error, 1)
	go func() {
		done <- s1.Subscribe(ctx, eventstore.SubscribeOptions{Name: name}, func(_ context.Context, ev eventstore.RecordedEvent) error {
			handled <- ev
			return nil
		})
	}()
	for range 3 {
		waitFor(t, handled, subPatience, "the first store's subscription to handle 3 events")
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("close the first store: %v", err)
	}
	if err := waitFor(t, done, subPatience, "Subscribe to return after Close"); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Subscribe when its store closes: want ErrClosed, got %v", err)
	}

	s2 := open()
	if _, err := s2.Append(ctx, st, eventstore.Exact(3), events(2, "After")...); err != nil {
		t.Fatalf("append after a reopen: %v", err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan eventstore.RecordedEvent, 10)
	done2 := make(chan error, 1)
	go func() {
		done2 <- s2.Subscribe(ctx2, eventstore.SubscribeOptions{Name: name}, func(_ context.Context, ev eventstore.RecordedEvent) error {
			got <- ev
			return nil
		})
	}()
	for want := uint64(4); want <= 5; want++ {
		ev := waitFor(t, got, subPatience, "the resumed subscription to deliver the new events")
		if ev.Version != want {
			t.Errorf("a subscription closed with its store resumes after its checkpoint: want version %d next, got %q v%d (the checkpoint was not saved on Close?)", want, ev.StreamID, ev.Version)
		}
	}
	cancel()
	waitFor(t, done2, subPatience, "Subscribe to return after cancel")
}
