package conformance

import (
	"fmt"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Subscriptions": checkpoint names.

func init() { ruleSets = append(ruleSets, checkpointRules) }

func checkpointRules() []rule {
	return []rule{
		{name: "SubscribeCheckpointsNeverShared", run: testCheckpointsNeverShared},
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
