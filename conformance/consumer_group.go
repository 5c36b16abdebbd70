package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/subscriptions.md "Consumer groups": Store.SubscribeGroup
// over the driver's leases.

func init() { ruleSets = append(ruleSets, consumerGroupRules) }

func consumerGroupRules() []rule {
	return []rule{
		{name: "GroupMembersSplitStreams", run: withCapability[driver.Leaser]("GroupOptionsValidated", testGroupSplit)},
		{name: "GroupMemberLeavesOthersTakeOver", run: withCapability[driver.Leaser]("GroupOptionsValidated", testGroupLeave)},
		{name: "GroupMemberCutOffIsFenced", run: withCapability[driver.Leaser]("GroupOptionsValidated", testGroupCutOff)},
		{name: "GroupResizeKeepsProgress", run: withCapability[driver.Leaser]("GroupOptionsValidated", testGroupResize)},
		{name: "GroupLeasesListedAndDeleted", run: withCapability[driver.Leaser]("GroupOptionsValidated", testGroupLeasesListed)},
		{name: "GroupOptionsValidated", run: testGroupValidated},
	}
}

// groupLease is the lease duration of the rules' members: short, so that
// take-overs happen within the rules' patience, and long enough that a busy
// machine's pauses (a third of it is the margin before another member may
// take a lease) do not pass partitions on.
const groupLease = time.Second

// handling is one handler call of a group member.
type handling struct {
	member string
	ev     eventstore.RecordedEvent
	at     time.Time // when the call began
}

// groupRun records what the members of one group handle, and fails the
// rule when two handle one stream at the same time.
type groupRun struct {
	t        *testing.T
	mu       sync.Mutex
	log      []handling
	inStream map[string]*atomic.Int32
	members  map[string]*memberRun
}

type memberRun struct {
	name   string
	cancel context.CancelFunc
	done   chan error
	store  *eventstore.Store
}

func newGroupRun(t *testing.T) *groupRun {
	g := &groupRun{t: t, inStream: map[string]*atomic.Int32{}, members: map[string]*memberRun{}}
	t.Cleanup(func() {
		for _, m := range g.members {
			m.cancel()
		}
		for name, m := range g.members {
			select {
			case <-m.done:
			case <-time.After(subPatience):
				t.Errorf("member %s: SubscribeGroup did not return within %s of its context being cancelled", name, subPatience)
			}
		}
	})
	return g
}

// start runs member name of group on s.
func (g *groupRun) start(s *eventstore.Store, group, name string, opts eventstore.GroupOptions) *memberRun {
	ctx, cancel := context.WithCancel(g.t.Context())
	m := &memberRun{name: name, cancel: cancel, done: make(chan error, 1), store: s}
	opts.Name, opts.Member = group, name
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = groupLease
	}
	opts.PollInterval = 50 * time.Millisecond
	g.mu.Lock()
	g.members[name] = m
	g.mu.Unlock()
	go func() {
		m.done <- s.SubscribeGroup(ctx, opts, func(ctx context.Context, ev eventstore.RecordedEvent) error {
			g.mu.Lock()
			n := g.inStream[ev.StreamID]
			if n == nil {
				n = new(atomic.Int32)
				g.inStream[ev.StreamID] = n
			}
			g.log = append(g.log, handling{member: name, ev: ev, at: time.Now()})
			g.mu.Unlock()
			if n.Add(1) > 1 {
				g.t.Errorf("member %s handles %s of %s while another member handles that stream", name, ev.ID, ev.StreamID)
			}
			time.Sleep(time.Millisecond) // widen the window in which an overlap would show
			n.Add(-1)
			return nil
		})
	}()
	return m
}

// stop cancels a member and checks it returns context.Canceled.
func (g *groupRun) stop(m *memberRun) {
	g.t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		if !errors.Is(err, context.Canceled) {
			g.t.Errorf("member %s: cancel its context: want context.Canceled, got %v", m.name, err)
		}
	case <-time.After(subPatience):
		g.t.Fatalf("member %s: SubscribeGroup did not return within %s of its context being cancelled", m.name, subPatience)
	}
	m.done <- nil // for the cleanup
}

// handled returns what was handled so far.
func (g *groupRun) handled() []handling {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.log)
}

// waitAll waits until every event of want was handled by some member.
func (g *groupRun) waitAll(what string, want []eventstore.RecordedEvent) {
	g.t.Helper()
	eventually(g.t, subPatience, what, func() bool {
		seen := map[string]bool{}
		for _, h := range g.handled() {
			seen[h.ev.ID.String()] = true
		}
		for _, ev := range want {
			if !seen[ev.ID.String()] {
				return false
			}
		}
		return true
	})
}

// checkOrder checks that each member handled each stream's events in
// version order, each delivery after the first from a restart point at or
// before what it had handled (at least once, nothing skipped).
func (g *groupRun) checkOrder(log []eventstore.RecordedEvent) {
	g.t.Helper()
	type key struct{ member, stream string }
	last := map[key]uint64{}
	versions := map[string]map[uint64]bool{}
	for _, h := range g.handled() {
		k := key{h.member, h.ev.StreamID}
		if v, ok := last[k]; ok && h.ev.Version <= v {
			g.t.Errorf("member %s handled %s version %d after version %d", h.member, h.ev.StreamID, h.ev.Version, v)
		}
		last[k] = h.ev.Version
		if versions[h.ev.StreamID] == nil {
			versions[h.ev.StreamID] = map[uint64]bool{}
		}
		versions[h.ev.StreamID][h.ev.Version] = true
	}
	for _, ev := range log {
		if !versions[ev.StreamID][ev.Version] {
			g.t.Errorf("%s version %d was never handled", ev.StreamID, ev.Version)
		}
	}
}

// waitSplit waits until the members of group on s hold partitions that
// are disjoint and cover all n.
func waitSplit(t *testing.T, stores []*eventstore.Store, group string, members, n int) {
	t.Helper()
	eventually(t, subPatience, fmt.Sprintf("%d members of %s to split %d partitions", members, group, n), func() bool {
		seen := map[int]int{}
		holders := 0
		for _, s := range stores {
			for _, st := range s.Subscriptions() {
				if st.Name != group || st.Member == "" {
					continue
				}
				if len(st.Partitions) > 0 {
					holders++
				}
				for _, p := range st.Partitions {
					seen[p]++
				}
			}
		}
		if holders != members || len(seen) != n {
			return false
		}
		for _, c := range seen {
			if c != 1 {
				return false
			}
		}
		return true
	})
}

// heldBy returns the partitions each member of group on s holds.
func heldBy(s *eventstore.Store, group string) map[string][]int {
	held := map[string][]int{}
	for _, st := range s.Subscriptions() {
		if st.Name == group && st.Member != "" {
			held[st.Member] = st.Partitions
		}
	}
	return held
}

// groupLog appends n events to each of k new streams, interleaved, and
// returns them in log order.
func groupLog(f *fixture, k, n int) []eventstore.RecordedEvent {
	f.t.Helper()
	streams := make([]string, k)
	for i := range streams {
		streams[i] = stream("Group")
	}
	for v := range n {
		for _, s := range streams {
			f.mustAppend(s, eventstore.Exact(uint64(v)), events(1, "Placed")...)
		}
	}
	log := f.readAll()
	return log[len(log)-k*n:]
}

// testGroupSplit: three members split the partitions between them, each
// handles only the streams of its own, one stream is never handled by two
// at once, and every event is handled in stream order.
func testGroupSplit(t *testing.T, f *fixture) {
	g := newGroupRun(t)
	group := subName("split")
	for _, m := range []string{"a", "b", "c"} {
		g.start(f.store, group, m, eventstore.GroupOptions{Partitions: 6})
	}
	log := groupLog(f, 12, 3)
	g.waitAll("three members to handle the log", log)
	waitSplit(t, []*eventstore.Store{f.store}, group, 3, 6)
	held := heldBy(f.store, group)
	before := len(g.handled())
	more := groupLog(f, 12, 2)
	g.waitAll("the members to handle what was appended after they split the partitions", more)
	if now := heldBy(f.store, group); !maps.EqualFunc(held, now, slices.Equal) {
		// A lease renewed late on a busy machine deals the partitions
		// again; the handler's overlap check still ran.
		t.Logf("the partitions moved while the members handled the second round (%v, then %v): who handled what is not checked", held, now)
	} else {
		for _, h := range g.handled()[before:] {
			if p := eventstore.GroupMember(h.ev.StreamID, 6); !slices.Contains(held[h.member], p) {
				t.Errorf("member %s (partitions %v) handled %s of partition %d", h.member, held[h.member], h.ev.StreamID, p)
			}
		}
	}
	g.checkOrder(append(log, more...))
}

// testGroupLeave: a member that stops gives its partitions back; the
// others take them at once, and nothing it handled is handled again.
func testGroupLeave(t *testing.T, f *fixture) {
	g := newGroupRun(t)
	group := subName("leave")
	// Leases that outlast a slow machine's pauses: a take-over only by release.
	opts := eventstore.GroupOptions{Partitions: 4, LeaseDuration: 3 * time.Second}
	a := g.start(f.store, group, "a", opts)
	g.start(f.store, group, "b", opts)
	waitSplit(t, []*eventstore.Store{f.store}, group, 2, 4)
	log := groupLog(f, 8, 2)
	g.waitAll("two members to handle the log", log)
	g.stop(a)
	waitSplit(t, []*eventstore.Store{f.store}, group, 1, 4)
	more := groupLog(f, 8, 2)
	g.waitAll("the remaining member to handle what followed", more)
	seen := map[string]string{}
	for _, h := range g.handled() {
		if m, ok := seen[h.ev.ID.String()]; ok {
			t.Errorf("%s was handled by %s and again by %s: a member that leaves saves its checkpoints", h.ev.ID, m, h.member)
		}
		seen[h.ev.ID.String()] = h.member
	}
	g.checkOrder(append(log, more...))
}

// cutDriver passes every call on to a shared driver until cut, then fails
// the calls that renew leases (AcquireLease, Leases) with a transient
// error: a member that cannot renew, though it still reads and saves, as
// one stalled between renewals would. Closing it leaves the shared driver
// open.
type cutDriver struct {
	driver.Driver
	leaser driver.Leaser
	cut    atomic.Bool
}

var errCut = fmt.Errorf("conformance: connection cut: %w", eventstore.ErrTransient)

func (d *cutDriver) Close() error { return nil }

func (d *cutDriver) AcquireLease(ctx context.Context, group, key, owner string, ttl time.Duration) (driver.Lease, bool, error) {
	if d.cut.Load() {
		return driver.Lease{}, false, errCut
	}
	return d.leaser.AcquireLease(ctx, group, key, owner, ttl)
}

func (d *cutDriver) ReleaseLease(ctx context.Context, group, key, owner string, generation uint64) error {
	return d.leaser.ReleaseLease(ctx, group, key, owner, generation)
}

func (d *cutDriver) SaveLeasePosition(ctx context.Context, group, key, owner string, generation uint64, pos driver.Position) error {
	return d.leaser.SaveLeasePosition(ctx, group, key, owner, generation, pos)
}

func (d *cutDriver) Leases(ctx context.Context, group string) ([]driver.Lease, time.Time, error) {
	if d.cut.Load() {
		return nil, time.Time{}, errCut
	}
	return d.leaser.Leases(ctx, group)
}

func (d *cutDriver) DeleteLeases(ctx context.Context, group string) error {
	return d.leaser.DeleteLeases(ctx, group)
}

// testGroupCutOff: a member that cannot renew its leases (it still reads
// the log and saves) stops handling its partitions before they expire; the
// other member takes them over, no stream is handled by both after that,
// and its saves are refused once they passed on; able to renew again, it
// rejoins.
func testGroupCutOff(t *testing.T, f *fixture) {
	g := newGroupRun(t)
	group := subName("cut")
	cut := &cutDriver{Driver: f.driver, leaser: f.driver.(driver.Leaser)}
	other := f.storeOver(cut)
	// A wider margin: b must not begin a handler call after a took over.
	opts := eventstore.GroupOptions{Partitions: 4, LeaseDuration: 1500 * time.Millisecond}
	g.start(f.store, group, "a", opts)
	g.start(other, group, "b", opts)
	stores := []*eventstore.Store{f.store, other}
	waitSplit(t, stores, group, 2, 4)
	log := groupLog(f, 8, 1)
	g.waitAll("two members to handle the log", log)
	cut.cut.Store(true)
	cutAt := time.Now()
	var more []eventstore.RecordedEvent
	// Events keep coming while b is cut off and a takes over.
	for range 4 {
		more = append(more, groupLog(f, 8, 1)...)
		time.Sleep(groupLease / 2)
	}
	g.waitAll("a to take over b's partitions and handle everything", more)
	// Per stream: once a handled it after the cut, b must not handle it.
	takenAt := map[string]time.Time{}
	for _, h := range g.handled() {
		if h.member == "a" && h.at.After(cutAt) {
			if _, ok := takenAt[h.ev.StreamID]; !ok {
				takenAt[h.ev.StreamID] = h.at
			}
		}
	}
	for _, h := range g.handled() {
		if at, ok := takenAt[h.ev.StreamID]; ok && h.member == "b" && !h.at.Before(at) {
			t.Errorf("b, cut off, handled %s of %s after a had taken that stream over", h.ev.ID, h.ev.StreamID)
		}
	}
	cut.cut.Store(false)
	waitSplit(t, stores, group, 2, 4)
	last := groupLog(f, 8, 1)
	g.waitAll("both members again after b reconnected", last)
	g.checkOrder(append(append(log, more...), last...))
}

// testGroupResize: a group stopped at 4 partitions and started again at 8
// goes on where it was: nothing handled before is handled again.
func testGroupResize(t *testing.T, f *fixture) {
	g := newGroupRun(t)
	group := subName("resize")
	a := g.start(f.store, group, "a", eventstore.GroupOptions{Partitions: 4})
	log := groupLog(f, 8, 2)
	g.waitAll("the member to handle the log", log)
	g.stop(a)
	before := len(g.handled())
	g.start(f.store, group, "a2", eventstore.GroupOptions{Partitions: 8})
	more := groupLog(f, 8, 1)
	g.waitAll("the resized group to handle what followed", more)
	after := g.handled()[before:]
	if len(after) != len(more) {
		ids := make([]string, len(after))
		for i, h := range after {
			ids[i] = h.ev.StreamID + "@" + fmt.Sprint(h.ev.Version)
		}
		t.Errorf("after resizing from 4 to 8 partitions: want only the %d new events handled, got %d: %v", len(more), len(after), ids)
	}
}

// testGroupLeasesListed: GroupLeases shows the member and the partitions
// it holds with their checkpoints; after the member left, none is held;
// DeleteGroup removes them all, and the group starts again as new.
func testGroupLeasesListed(t *testing.T, f *fixture) {
	g := newGroupRun(t)
	group := subName("listed")
	a := g.start(f.store, group, "a", eventstore.GroupOptions{Partitions: 2})
	log := groupLog(f, 4, 1)
	g.waitAll("the member to handle the log", log)
	waitSplit(t, []*eventstore.Store{f.store}, group, 1, 2)
	last := log[len(log)-1].Position
	eventually(t, subPatience, "both partitions' checkpoints to reach the end of the log", func() bool {
		leases, err := f.store.GroupLeases(f.ctx, group)
		if err != nil {
			t.Fatalf("GroupLeases: %v", err)
		}
		var keys []string
		for _, l := range leases {
			keys = append(keys, l.Key)
			if !l.Held || l.Owner != "a" || l.Generation != 1 {
				return false
			}
			if l.Key != "member/a" && (!l.HasCheckpoint || l.Checkpoint != last) {
				return false
			}
		}
		return slices.Equal(keys, []string{"member/a", "partition/2/0", "partition/2/1"})
	})
	g.stop(a)
	leases, err := f.store.GroupLeases(f.ctx, group)
	if err != nil {
		t.Fatalf("GroupLeases: %v", err)
	}
	for _, l := range leases {
		if l.Held {
			t.Errorf("after the member left, %s is still held: %+v", l.Key, l)
		}
	}
	if err := f.store.DeleteGroup(f.ctx, group); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	if leases, err := f.store.GroupLeases(f.ctx, group); err != nil || len(leases) != 0 {
		t.Fatalf("GroupLeases after DeleteGroup: want none, got %+v, %v", leases, err)
	}
	before := len(g.handled())
	g.start(f.store, group, "b", eventstore.GroupOptions{Partitions: 2})
	eventually(t, subPatience, "the deleted group to start again from the beginning", func() bool { return len(g.handled()) >= before+len(log) })
}

// testGroupValidated: SubscribeGroup needs a name, no fixed Group, a
// handler, valid member name, partitions and lease duration; a driver
// without driver.Leaser makes it return ErrNotSupported.
func testGroupValidated(t *testing.T, f *fixture) {
	h := func(context.Context, eventstore.RecordedEvent) error { return nil }
	for _, c := range []struct {
		name string
		opts eventstore.GroupOptions
		h    eventstore.Handler
	}{
		{"no name", eventstore.GroupOptions{}, h},
		{"a fixed group", eventstore.GroupOptions{SubscribeOptions: eventstore.SubscribeOptions{Name: "g", Group: eventstore.Group{Member: 1, Size: 2}}}, h},
		{"a nil handler", eventstore.GroupOptions{SubscribeOptions: eventstore.SubscribeOptions{Name: "g"}}, nil},
		{"a $ member", eventstore.GroupOptions{SubscribeOptions: eventstore.SubscribeOptions{Name: "g"}, Member: "$m"}, h},
		{"negative partitions", eventstore.GroupOptions{SubscribeOptions: eventstore.SubscribeOptions{Name: "g"}, Partitions: -1}, h},
		{"too many partitions", eventstore.GroupOptions{SubscribeOptions: eventstore.SubscribeOptions{Name: "g"}, Partitions: eventstore.MaxPartitions + 1}, h},
		{"a 1ms lease", eventstore.GroupOptions{SubscribeOptions: eventstore.SubscribeOptions{Name: "g"}, LeaseDuration: time.Millisecond}, h},
	} {
		if err := f.store.SubscribeGroup(f.ctx, c.opts, c.h); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("SubscribeGroup with %s: want ErrInvalidArgument, got %v", c.name, err)
		}
	}
	for _, bad := range []string{"", "$g", "g\x00"} {
		if _, err := f.store.GroupLeases(f.ctx, bad); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("GroupLeases(%q): want ErrInvalidArgument, got %v", bad, err)
		}
		if err := f.store.DeleteGroup(f.ctx, bad); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("DeleteGroup(%q): want ErrInvalidArgument, got %v", bad, err)
		}
	}
	if _, ok := f.driver.(driver.Leaser); ok {
		return
	}
	err := f.store.SubscribeGroup(f.ctx, eventstore.GroupOptions{SubscribeOptions: eventstore.SubscribeOptions{Name: "g"}}, h)
	if !errors.Is(err, eventstore.ErrNotSupported) {
		t.Errorf("SubscribeGroup on a driver without driver.Leaser: want ErrNotSupported, got %v", err)
	}
	if _, err := f.store.GroupLeases(f.ctx, "g"); !errors.Is(err, eventstore.ErrNotSupported) {
		t.Errorf("GroupLeases on a driver without driver.Leaser: want ErrNotSupported, got %v", err)
	}
	if err := f.store.DeleteGroup(f.ctx, "g"); !errors.Is(err, eventstore.ErrNotSupported) {
		t.Errorf("DeleteGroup on a driver without driver.Leaser: want ErrNotSupported, got %v", err)
	}
}
