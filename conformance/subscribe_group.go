package conformance

import (
	"fmt"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Subscriptions", consumer groups.

func init() { ruleSets = append(ruleSets, groupRules) }

func groupRules() []rule {
	return []rule{
		{name: "SubscribeConsumerGroup", run: testSubscribeConsumerGroup},
	}
}

const (
	groupSize    = 3
	groupStreams = 30
)

// groupShare is what member of a group of size members must have received of log.
func groupShare(log []eventstore.RecordedEvent, member, size int) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, ev := range log {
		if eventstore.GroupMember(ev.StreamID, size) == member {
			out = append(out, ev)
		}
	}
	return out
}

func testSubscribeConsumerGroup(t *testing.T, f *fixture) {
	streams := make([]string, groupStreams)
	for i := range streams {
		streams[i] = stream("Group")
	}
	versions := map[string]uint64{}
	round := func(r int) {
		t.Helper()
		for i, s := range streams {
			n := 1 + (i+r)%2
			f.mustAppend(s, eventstore.Exact(versions[s]), events(n, fmt.Sprintf("Round%d", r))...)
			versions[s] += uint64(n)
		}
	}
	for r := range 3 {
		round(r)
	}
	f.mustAppend(stream("Outside"), eventstore.NoStream, events(2, "Round0")...)

	name := subName("Group")
	start := func(member int) *subRun {
		opts := eventstore.SubscribeOptions{Name: name, Group: eventstore.Group{Member: member, Size: groupSize}, BatchSize: 7}
		return f.subscribe(subConfig{what: fmt.Sprintf("subscription %q member %d of %d", name, member, groupSize), opts: opts})
	}
	members := make([]*subRun, groupSize)
	for i := range members {
		members[i] = start(i)
	}
	check := func(doing string, log []eventstore.RecordedEvent, from []int) {
		t.Helper()
		for i, r := range members {
			want := groupShare(log, i, groupSize)[from[i]:]
			sameEvents(t, fmt.Sprintf("%s: %s: want the events of exactly the streams with GroupMember(stream, %d) == %d, in log order",
				doing, r.what, groupSize, i), r.wait(len(want)), want)
		}
	}
	log := f.readAll()
	check("catch up on 3 rounds of appends to 30 streams", log, make([]int, groupSize))
	total := 0
	for i := range members {
		total += len(groupShare(log, i, groupSize))
	}
	if total != len(log) {
		t.Errorf("the %d members of a group share %d events of %d: want every event in exactly one share", groupSize, total, len(log))
	}

	round(3)
	log = f.readAll()
	check("caught up, then a round of appends live", log, make([]int, groupSize))

	// Each member keeps its own checkpoint: a restarted member resumes
	// after what it handled, without the others' events.
	members[1].stop()
	handled := len(members[1].events())
	round(4)
	members[1] = start(1)
	log = f.readAll()
	from := make([]int, groupSize)
	from[1] = handled
	check("member 1 stopped, a round of appends, member 1 restarted", log, from)
	for _, r := range members {
		r.stop()
	}

	// Changing the size of the group starts new checkpoints.
	opts := eventstore.SubscribeOptions{Name: name, Group: eventstore.Group{Member: 0, Size: 2}}
	r := f.subscribe(subConfig{what: fmt.Sprintf("subscription %q member 0 of 2, after a group of %d handled everything", name, groupSize), opts: opts})
	want := groupShare(log, 0, 2)
	sameEvents(t, r.what+": want its whole share from the start", r.wait(len(want)), want)
	r.stop()
}
