package conformance

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/subscriptions.md "Exactly-once projections": the
// checkpoint transaction a driver gives ([driver.CheckpointTxer]), and
// Store.Project over it.

func init() { ruleSets = append(ruleSets, projectionRules) }

func projectionRules() []rule {
	return []rule{
		{name: "CheckpointTxComparesAndSets", run: withCapability[driver.CheckpointTxer]("ProjectOptionsValidated", testCheckpointTxCAS)},
		{name: "CheckpointTxRollsBackOnHandlerError", run: withCapability[driver.CheckpointTxer]("ProjectOptionsValidated", testCheckpointTxHandlerError)},
		{name: "CheckpointTxOneOfManyRacers", run: withCapability[driver.CheckpointTxer]("ProjectOptionsValidated", testCheckpointTxRace)},
		{name: "ProjectDeliversBatchesOnce", run: withCapability[driver.CheckpointTxer]("ProjectOptionsValidated", testProjectBatches)},
		{name: "ProjectHandlerErrorRedelivers", run: withCapability[driver.CheckpointTxer]("ProjectOptionsValidated", testProjectHandlerError)},
		{name: "ProjectFollowsMovedCheckpoint", run: withCapability[driver.CheckpointTxer]("ProjectOptionsValidated", testProjectFollowsMoved)},
		{name: "ProjectOptionsValidated", run: testProjectValidated},
	}
}

func (f *fixture) checkpoint(name string) (eventstore.Position, bool) {
	f.t.Helper()
	pos, ok, err := f.store.Checkpoint(f.ctx, name)
	if err != nil {
		f.t.Fatalf("Checkpoint(%q): %v", name, err)
	}
	return pos, ok
}

// testCheckpointTxCAS: a checkpoint transaction saves only from the
// checkpoint it names (none, then the one it saved); from any other it
// returns ErrCheckpointMoved and leaves the checkpoint as it was.
func testCheckpointTxCAS(t *testing.T, f *fixture) {
	x := f.driver.(driver.CheckpointTxer)
	p1, p2 := driver.Position{Commit: 5, Prepare: 1}, driver.Position{Commit: 9, Prepare: 2}
	called := 0
	fn := func(tx driver.Tx) error { called++; return nil }
	if err := x.CheckpointTx(f.ctx, "proj", driver.Position{}, false, p1, fn); err != nil {
		t.Fatalf("CheckpointTx from no checkpoint: %v", err)
	}
	if pos, ok := f.checkpoint("proj"); !ok || pos != eventstore.Position(p1) || called != 1 {
		t.Fatalf("after CheckpointTx: want checkpoint %s and fn called once, got %s %v, %d calls", p1, pos, ok, called)
	}
	for _, c := range []struct {
		name    string
		prev    driver.Position
		hasPrev bool
	}{{"from none", driver.Position{}, false}, {"from another position", p2, true}, {"from zero", driver.Position{}, true}} {
		err := x.CheckpointTx(f.ctx, "proj", c.prev, c.hasPrev, p2, fn)
		if !errors.Is(err, eventstore.ErrCheckpointMoved) {
			t.Errorf("CheckpointTx %s while it is at %s: want ErrCheckpointMoved, got %v", c.name, p1, err)
		}
		if pos, _ := f.checkpoint("proj"); pos != eventstore.Position(p1) {
			t.Fatalf("CheckpointTx %s failed but moved the checkpoint to %s", c.name, pos)
		}
	}
	if err := x.CheckpointTx(f.ctx, "proj", p1, true, p2, nil); err != nil {
		t.Fatalf("CheckpointTx from the saved checkpoint with a nil fn: %v", err)
	}
	if pos, _ := f.checkpoint("proj"); pos != eventstore.Position(p2) {
		t.Fatalf("want checkpoint %s, got %s", p2, pos)
	}
}

// testCheckpointTxHandlerError: fn's error comes back as is and the
// checkpoint does not move.
func testCheckpointTxHandlerError(t *testing.T, f *fixture) {
	x := f.driver.(driver.CheckpointTxer)
	boom := errors.New("read model rejected the batch")
	err := x.CheckpointTx(f.ctx, "proj", driver.Position{}, false, driver.Position{Commit: 3}, func(driver.Tx) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("CheckpointTx with a failing fn: want its error, got %v", err)
	}
	if pos, ok := f.checkpoint("proj"); ok {
		t.Fatalf("a failed CheckpointTx saved checkpoint %s", pos)
	}
}

// testCheckpointTxRace: eight transactions move one checkpoint from the
// same place at once; exactly one commits.
func testCheckpointTxRace(t *testing.T, f *fixture) {
	x := f.driver.(driver.CheckpointTxer)
	const racers = 8
	start := driver.Position{Commit: 1}
	if err := x.CheckpointTx(f.ctx, "proj", driver.Position{}, false, start, nil); err != nil {
		t.Fatalf("CheckpointTx: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []int
	for i := range racers {
		wg.Go(func() {
			err := x.CheckpointTx(f.ctx, "proj", start, true, driver.Position{Commit: uint64(10 + i)}, func(driver.Tx) error { return nil })
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, i)
			case !errors.Is(err, eventstore.ErrCheckpointMoved):
				t.Errorf("racer %d: want nil or ErrCheckpointMoved, got %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d racers moved one checkpoint from the same place: want one to win, got %v", racers, won)
	}
	if pos, _ := f.checkpoint("proj"); pos.Commit != uint64(10+won[0]) {
		t.Fatalf("the winner %d saved %d, the checkpoint is %s", won[0], 10+won[0], pos)
	}
}

// project runs Project until it has caught up with what is stored, then
// stops it, and returns the batches it delivered.
func (f *fixture) project(opts eventstore.SubscribeOptions, h eventstore.ProjectionHandler) ([][]eventstore.RecordedEvent, error) {
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	var batches [][]eventstore.RecordedEvent
	opts.OnCaughtUp = func(eventstore.SubscriptionState) { cancel() }
	err := f.store.Project(ctx, opts, func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
		if h != nil {
			if err := h(ctx, tx, events); err != nil {
				return err
			}
		}
		batches = append(batches, events)
		return nil
	})
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return batches, err
}

// testProjectBatches: a projection gets the log in order, in batches of at
// most BatchSize, each event once; its checkpoint is the last event; run
// again it gets only what was appended since.
func testProjectBatches(t *testing.T, f *fixture) {
	log := appendLog(f, 25)
	opts := eventstore.SubscribeOptions{Name: "proj", BatchSize: 10}
	batches, err := f.project(opts, nil)
	if err != nil {
		t.Fatalf("Project: %v", err)
	}
	var got []eventstore.RecordedEvent
	for _, b := range batches {
		if len(b) == 0 || len(b) > 10 {
			t.Errorf("a batch of %d events with BatchSize 10", len(b))
		}
		got = append(got, b...)
	}
	sameEvents(t, "Project", got, log)
	if pos, ok := f.checkpoint("proj"); !ok || pos != log[len(log)-1].Position {
		t.Fatalf("checkpoint after the projection: want %s, got %s %v", log[len(log)-1].Position, pos, ok)
	}
	more := appendLog(f, 3)
	batches, err = f.project(opts, nil)
	if err != nil {
		t.Fatalf("Project again: %v", err)
	}
	got = nil
	for _, b := range batches {
		got = append(got, b...)
	}
	sameEvents(t, "Project after a restart", got, more)
}

// testProjectHandlerError: a failing batch is rolled back, Project returns
// a *HandlerError, and the next run starts with that batch again.
func testProjectHandlerError(t *testing.T, f *fixture) {
	log := appendLog(f, 6)
	boom := errors.New("read model rejected the batch")
	opts := eventstore.SubscribeOptions{Name: "proj", BatchSize: 3}
	n := 0
	_, err := f.project(opts, func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
		if n++; n == 2 {
			return boom
		}
		return nil
	})
	var he *eventstore.HandlerError
	if !errors.As(err, &he) || !errors.Is(err, boom) || he.Event.ID != log[3].ID {
		t.Fatalf("Project with a failing second batch: want a *HandlerError for event 4 wrapping the handler's error, got %v", err)
	}
	if pos, _ := f.checkpoint("proj"); pos != log[2].Position {
		t.Fatalf("checkpoint after the failed batch: want the first batch's end %s, got %s", log[2].Position, pos)
	}
	batches, err := f.project(opts, nil)
	if err != nil {
		t.Fatalf("Project again: %v", err)
	}
	var got []eventstore.RecordedEvent
	for _, b := range batches {
		got = append(got, b...)
	}
	sameEvents(t, "Project after a failed batch", got, log[3:])
}

// testProjectFollowsMovedCheckpoint: SetCheckpoint under a running
// projection makes its next commit fail the compare-and-set; it reloads
// the checkpoint and delivers from there, and the batch it had read is not
// committed.
func testProjectFollowsMoved(t *testing.T, f *fixture) {
	log := appendLog(f, 4)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	caughtUp := make(chan struct{})
	var mu sync.Mutex
	var got []eventstore.RecordedEvent
	done := make(chan error, 1)
	go func() {
		done <- f.store.Project(ctx, eventstore.SubscribeOptions{Name: "proj", BatchSize: 100,
			OnCaughtUp: func(eventstore.SubscriptionState) { close(caughtUp) }},
			func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, events...)
				return nil
			})
	}()
	select {
	case <-caughtUp:
	case err := <-done:
		t.Fatalf("Project: %v", err)
	}
	// Rewind to the second event: the projection's next batch (the new
	// event) fails the compare-and-set, and it goes on after event 2.
	if err := f.store.SetCheckpoint(f.ctx, "proj", log[1].Position); err != nil {
		t.Fatalf("SetCheckpoint: %v", err)
	}
	more := appendLog(f, 1)
	// Delivered: the 4 events; the new one if the driver ran the handler
	// before it found the checkpoint moved (its batch rolled back); then
	// 3, 4 and the new one again.
	again := append(append([]eventstore.RecordedEvent{}, log[2:]...), more...)
	ids := func(evs []eventstore.RecordedEvent) (out []string) {
		for _, ev := range evs {
			out = append(out, ev.ID.String())
		}
		return out
	}
	eventually(t, 10*time.Second, "the projection to deliver events 3 on again after the rewind", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 4+len(again) && slices.Equal(ids(got[len(got)-len(again):]), ids(again))
	})
	// The handler returned; the commit may still be on its way.
	eventually(t, 10*time.Second, "the checkpoint to reach the new event", func() bool {
		pos, _ := f.checkpoint("proj")
		return pos == more[0].Position
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Project: want context.Canceled, got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	sameEvents(t, "Project before SetCheckpoint", got[:4], log)
	if mid := got[4 : len(got)-len(again)]; len(mid) > 1 || len(mid) == 1 && mid[0].ID != more[0].ID {
		t.Fatalf("between the first run and the rewind, want at most the rolled-back new event, got %v", ids(mid))
	}
	if pos, _ := f.checkpoint("proj"); pos != more[0].Position {
		t.Fatalf("checkpoint: want %s, got %s", more[0].Position, pos)
	}
}

// testProjectValidated: Project needs a name and no group member, and a
// driver without driver.CheckpointTxer makes it return ErrNotSupported.
func testProjectValidated(t *testing.T, f *fixture) {
	h := func(context.Context, *eventstore.Tx, []eventstore.RecordedEvent) error { return nil }
	for _, c := range []struct {
		name string
		opts eventstore.SubscribeOptions
		h    eventstore.ProjectionHandler
	}{
		{"no name", eventstore.SubscribeOptions{}, h},
		{"a group member", eventstore.SubscribeOptions{Name: "p", Group: eventstore.Group{Member: 1, Size: 2}}, h},
		{"a nil handler", eventstore.SubscribeOptions{Name: "p"}, nil},
		{"a $ name", eventstore.SubscribeOptions{Name: "$p"}, h},
	} {
		if err := f.store.Project(f.ctx, c.opts, c.h); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Project with %s: want ErrInvalidArgument, got %v", c.name, err)
		}
	}
	if _, ok := f.driver.(driver.CheckpointTxer); ok {
		return
	}
	if err := f.store.Project(f.ctx, eventstore.SubscribeOptions{Name: "p"}, h); !errors.Is(err, eventstore.ErrNotSupported) {
		t.Errorf("Project on a driver without driver.CheckpointTxer: want ErrNotSupported, got %v", err)
	}
}

// eventually polls cond until it holds, failing with what after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
