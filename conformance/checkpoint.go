package conformance

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Subscriptions": checkpoint names, and
// managing checkpoints (list, read, set, delete).

func init() { ruleSets = append(ruleSets, checkpointRules) }

func checkpointRules() []rule {
	return []rule{
		{name: "SubscribeCheckpointsNeverShared", run: testCheckpointsNeverShared},
		{name: "CheckpointsListedSetAndDeleted", run: withCapability[driver.CheckpointManager]("CheckpointManagementNotSupported", testCheckpointsListed)},
		{name: "SetCheckpointRewindsAndSkipsAhead", run: testSetCheckpointMoves},
		{name: "DeleteCheckpointRestartsSubscription", run: withCapability[driver.CheckpointManager]("CheckpointManagementNotSupported", testDeleteCheckpointRestarts)},
		{name: "CheckpointNamesValidated", run: testCheckpointNamesValidated},
		{name: "CheckpointManagementNotSupported", run: testCheckpointManagementNotSupported},
	}
}

// testCheckpointsListed sets checkpoints under several names (one of a
// group member) and checks Checkpoints lists them sorted by name, with both
// parts of each position, and that Checkpoint, a second SetCheckpoint and
// DeleteCheckpoint behave.
func testCheckpointsListed(t *testing.T, f *fixture) {
	if cps, err := f.store.Checkpoints(f.ctx); err != nil || len(cps) != 0 {
		t.Fatalf("Checkpoints on a new store: want none, got %v, %v", cps, err)
	}
	log := appendLog(f, 3)
	member := eventstore.CheckpointName("cp-group", eventstore.Group{Member: 1, Size: 3})
	set := map[string]eventstore.Position{"cp-b": log[1].Position, "cp-a": log[0].Position, member: log[2].Position}
	for name, pos := range set {
		if err := f.store.SetCheckpoint(f.ctx, name, pos); err != nil {
			t.Fatalf("SetCheckpoint(%q, %s): %v", name, pos, err)
		}
	}
	want := []eventstore.Checkpoint{{Name: member, Position: log[2].Position}, {Name: "cp-a", Position: log[0].Position}, {Name: "cp-b", Position: log[1].Position}}
	checkListed(t, f, "after three SetCheckpoint calls", want)
	if pos, ok, err := f.store.Checkpoint(f.ctx, "cp-a"); err != nil || !ok || pos != log[0].Position {
		t.Errorf("Checkpoint(cp-a): want %s, true, nil, got %s, %v, %v", log[0].Position, pos, ok, err)
	}
	if _, ok, err := f.store.Checkpoint(f.ctx, "cp-missing"); err != nil || ok {
		t.Errorf("Checkpoint of a name never set: want ok false and no error, got %v, %v", ok, err)
	}
	if err := f.store.SetCheckpoint(f.ctx, "cp-a", log[2].Position); err != nil {
		t.Fatalf("SetCheckpoint over an existing checkpoint: %v", err)
	}
	want[1].Position = log[2].Position
	checkListed(t, f, "after SetCheckpoint moved cp-a", want)
	for _, name := range []string{"cp-a", "cp-a", "cp-never-set"} {
		if err := f.store.DeleteCheckpoint(f.ctx, name); err != nil {
			t.Fatalf("DeleteCheckpoint(%q): want nil (also for one that does not exist), got %v", name, err)
		}
	}
	if _, ok, err := f.store.Checkpoint(f.ctx, "cp-a"); err != nil || ok {
		t.Errorf("Checkpoint after DeleteCheckpoint: want ok false, got %v, %v", ok, err)
	}
	checkListed(t, f, "after DeleteCheckpoint(cp-a)", []eventstore.Checkpoint{want[0], want[2]})
	if err := f.store.SetCheckpoint(f.ctx, "cp-a", log[0].Position); err != nil {
		t.Fatalf("SetCheckpoint after DeleteCheckpoint: %v", err)
	}
	want[1].Position = log[0].Position
	checkListed(t, f, "after cp-a was set again", want)
}

// checkListed compares Checkpoints with want.
func checkListed(t *testing.T, f *fixture, doing string, want []eventstore.Checkpoint) {
	t.Helper()
	got, err := f.store.Checkpoints(f.ctx)
	if err != nil {
		t.Fatalf("%s: Checkpoints: %v", doing, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: Checkpoints: want %v (sorted by name), got %v", doing, want, got)
	}
}

// appendLog appends n events to one new stream and returns them as read
// from the log.
func appendLog(f *fixture, n int) []eventstore.RecordedEvent {
	f.t.Helper()
	s := stream("Checkpoint")
	f.mustAppend(s, eventstore.NoStream, events(n, "Placed")...)
	log := f.readAll()
	return log[len(log)-n:]
}

// testSetCheckpointMoves runs a durable subscription over five events,
// then moves its checkpoint back (it delivers the events after the new
// checkpoint again) and ahead (it delivers only what follows).
func testSetCheckpointMoves(t *testing.T, f *fixture) {
	log := appendLog(f, 5)
	name := subName("Moved")
	opts := eventstore.SubscribeOptions{Name: name, After: log[0].Position}
	run := func(doing string, want []eventstore.RecordedEvent) {
		t.Helper()
		r := f.subscribe(subConfig{what: doing, opts: opts, stopAfter: len(want)})
		sameEvents(t, doing, r.wait(len(want)), want)
		r.checkCanceled(r.result())
	}
	run("first run: the events after After", log[1:])
	if err := f.store.SetCheckpoint(f.ctx, name, log[1].Position); err != nil {
		t.Fatalf("SetCheckpoint back to event 2: %v", err)
	}
	if pos, _, err := f.store.Checkpoint(f.ctx, name); err != nil || pos != log[1].Position {
		t.Fatalf("Checkpoint after SetCheckpoint: want %s, got %s, %v", log[1].Position, pos, err)
	}
	run("after SetCheckpoint rewound it to event 2: events 3 to 5 again", log[2:])
	if err := f.store.SetCheckpoint(f.ctx, name, log[4].Position); err != nil {
		t.Fatalf("SetCheckpoint ahead to the last event: %v", err)
	}
	more := appendLog(f, 1)
	run("after SetCheckpoint skipped to the last event: only the event appended since", more)
}

// testDeleteCheckpointRestarts deletes a durable subscription's checkpoint:
// it starts again from its After, as if new.
func testDeleteCheckpointRestarts(t *testing.T, f *fixture) {
	log := appendLog(f, 3)
	name := subName("Deleted")
	opts := eventstore.SubscribeOptions{Name: name, After: log[0].Position}
	r := f.subscribe(subConfig{what: "first run", opts: opts, stopAfter: 2})
	sameEvents(t, "first run", r.wait(2), log[1:])
	r.checkCanceled(r.result())
	found := false
	cps, err := f.store.Checkpoints(f.ctx)
	for _, c := range cps {
		found = found || (c.Name == name && c.Position == log[2].Position)
	}
	if err != nil || !found {
		t.Fatalf("Checkpoints after a durable subscription ran: want %q at %s among them, got %v, %v", name, log[2].Position, cps, err)
	}
	if err := f.store.DeleteCheckpoint(f.ctx, name); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	r = f.subscribe(subConfig{what: "after DeleteCheckpoint", opts: opts, stopAfter: 2})
	sameEvents(t, "after DeleteCheckpoint: want the events after After again", r.wait(2), log[1:])
	r.checkCanceled(r.result())
}

// testCheckpointNamesValidated checks that a name no subscription could
// save under is rejected with ErrInvalidArgument by every checkpoint call,
// and nothing is written.
func testCheckpointNamesValidated(t *testing.T, f *fixture) {
	log := appendLog(f, 1)
	for _, name := range []string{"", "$x", "$x[2/2]", "$x[0/1]", "$x[01/2]", "x[0/2]\x00", "a\x00b", "$$x[0/2]", strings.Repeat("n", eventstore.MaxNameLength+1)} {
		if err := f.store.SetCheckpoint(f.ctx, name, log[0].Position); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("SetCheckpoint(%q): want ErrInvalidArgument, got %v", name, err)
		}
		if _, _, err := f.store.Checkpoint(f.ctx, name); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Checkpoint(%q): want ErrInvalidArgument, got %v", name, err)
		}
		if err := f.store.DeleteCheckpoint(f.ctx, name); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("DeleteCheckpoint(%q): want ErrInvalidArgument, got %v", name, err)
		}
	}
	if cps, err := f.store.Checkpoints(f.ctx); err == nil && len(cps) != 0 {
		t.Errorf("Checkpoints after rejected calls: want none, got %v", cps)
	}
}

// testCheckpointManagementNotSupported checks that a driver without
// driver.CheckpointManager makes Checkpoints and DeleteCheckpoint fail
// with ErrNotSupported, while Checkpoint and SetCheckpoint still work.
func testCheckpointManagementNotSupported(t *testing.T, f *fixture) {
	if _, ok := f.harness.NewDriver(t).(driver.CheckpointManager); ok {
		t.Skip("the driver implements driver.CheckpointManager: the other checkpoint rules apply")
	}
	if _, err := f.store.Checkpoints(f.ctx); !errors.Is(err, eventstore.ErrNotSupported) {
		t.Errorf("Checkpoints without driver.CheckpointManager: want ErrNotSupported, got %v", err)
	}
	if err := f.store.DeleteCheckpoint(f.ctx, "cp"); !errors.Is(err, eventstore.ErrNotSupported) {
		t.Errorf("DeleteCheckpoint without driver.CheckpointManager: want ErrNotSupported, got %v", err)
	}
	log := appendLog(f, 1)
	if err := f.store.SetCheckpoint(f.ctx, "cp", log[0].Position); err != nil {
		t.Fatalf("SetCheckpoint: %v", err)
	}
	if pos, ok, err := f.store.Checkpoint(f.ctx, "cp"); err != nil || !ok || pos != log[0].Position {
		t.Errorf("Checkpoint after SetCheckpoint: want %s, got %s, %v, %v", log[0].Position, pos, ok, err)
	}
}

// testCheckpointsNeverShared runs a consumer group member and an ungrouped
// subscription named like the member's checkpoint once was ("name[0/2]",
// before CheckpointName added a "$"): each keeps its own checkpoint, so
// neither resumes after the other's events. The driver stores both names
// apart, "$" included.
func testCheckpointsNeverShared(t *testing.T, f *fixture) {
	g := eventstore.Group{Member: 0, Size: 2}
	var streams []string
	for len(streams) < 12 || len(streamShare(streams, g)) == 0 {
		streams = append(streams, stream("Checkpoint"))
	}
	round := func(exp eventstore.ExpectedVersion) []eventstore.RecordedEvent {
		t.Helper()
		for _, s := range streams {
			f.mustAppend(s, exp, events(1, "Placed")...)
		}
		log := f.readAll()
		return log[len(log)-len(streams):]
	}
	name := subName("Checkpoint")
	member := eventstore.SubscribeOptions{Name: name, Group: g}
	lookalike := eventstore.SubscribeOptions{Name: fmt.Sprintf("%s[%d/%d]", name, g.Member, g.Size)}
	run := func(doing string, opts eventstore.SubscribeOptions, want []eventstore.RecordedEvent) {
		t.Helper()
		what := fmt.Sprintf("%s: subscription %q", doing, opts.Name)
		if opts.Group.Size > 1 {
			what += fmt.Sprintf(" member %d of %d", opts.Group.Member, opts.Group.Size)
		}
		r := f.subscribe(subConfig{what: what, opts: opts, stopAfter: len(want)})
		sameEvents(t, what+": want exactly the events after its own checkpoint", r.wait(len(want)), want)
		r.checkCanceled(r.result())
	}

	first := round(eventstore.NoStream)
	run("first run", member, groupShare(first, g.Member, g.Size))
	run("first run, after the group member "+name+" saved its checkpoint", lookalike, first)
	second := round(eventstore.Exact(1))
	run("after more appends", lookalike, second)
	run("after more appends, handled by "+lookalike.Name, member, groupShare(second, g.Member, g.Size))
}

// streamShare returns the streams a member of group g receives.
func streamShare(streams []string, g eventstore.Group) []string {
	var out []string
	for _, s := range streams {
		if eventstore.GroupMember(s, g.Size) == g.Member {
			out = append(out, s)
		}
	}
	return out
}
