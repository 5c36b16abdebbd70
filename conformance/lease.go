package conformance

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/subscriptions.md "Consumer groups": the leases a driver
// keeps for them ([driver.Leaser]), tested on the driver itself.

func init() { ruleSets = append(ruleSets, leaseRules) }

func leaseRules() []rule {
	return []rule{
		{name: "LeaseGrantedRenewedAndRefused", run: withCapability[driver.Leaser]("GroupOptionsValidated", testLeaseGranted)},
		{name: "LeaseExpiresAndPassesOnFenced", run: withCapability[driver.Leaser]("GroupOptionsValidated", testLeaseExpires)},
		{name: "LeaseReleased", run: withCapability[driver.Leaser]("GroupOptionsValidated", testLeaseReleased)},
		{name: "LeaseGrantedToOneOfManyRacers", run: withCapability[driver.Leaser]("GroupOptionsValidated", testLeaseRace)},
		{name: "LeasesKeptPerGroup", run: withCapability[driver.Leaser]("GroupOptionsValidated", testLeasesPerGroup)},
	}
}

// lease is a lease's holder and generation, as the rules compare them.
type lease struct {
	owner string
	gen   uint64
}

func (f *fixture) acquire(l driver.Leaser, group, key, owner string, ttl time.Duration) (driver.Lease, bool) {
	f.t.Helper()
	got, granted, err := l.AcquireLease(f.ctx, group, key, owner, ttl)
	if err != nil {
		f.t.Fatalf("AcquireLease(%q, %q, %q): %v", group, key, owner, err)
	}
	if got.Group != group || got.Key != key {
		f.t.Fatalf("AcquireLease(%q, %q, %q) returned the lease %q %q", group, key, owner, got.Group, got.Key)
	}
	return got, granted
}

// testLeaseGranted: a free lease is granted at generation 1; another member
// is refused while it runs and told who holds it; the holder renews it at
// the same generation with a later expiry; Leases lists it.
func testLeaseGranted(t *testing.T, f *fixture) {
	l := f.driver.(driver.Leaser)
	got, granted := f.acquire(l, "g", "partition/4/0", "a", time.Minute)
	if !granted || got.Owner != "a" || got.Generation != 1 || got.HasPosition {
		t.Fatalf("first AcquireLease: want granted to a at generation 1 without position, got %+v granted=%v", got, granted)
	}
	got2, granted := f.acquire(l, "g", "partition/4/0", "b", time.Minute)
	if granted || got2.Owner != "a" || got2.Generation != 1 {
		t.Fatalf("AcquireLease by b of a's lease: want refused, held by a at 1, got %+v granted=%v", got2, granted)
	}
	time.Sleep(5 * time.Millisecond)
	got3, granted := f.acquire(l, "g", "partition/4/0", "a", time.Minute)
	if !granted || got3.Owner != "a" || got3.Generation != 1 || !got3.Expires.After(got.Expires) {
		t.Fatalf("renewal by a: want granted at generation 1 with a later expiry than %v, got %+v granted=%v", got.Expires, got3, granted)
	}
	if err := l.SaveLeasePosition(f.ctx, "g", "partition/4/0", "a", 1, driver.Position{Commit: 7, Prepare: 3}); err != nil {
		t.Fatalf("SaveLeasePosition by the holder: %v", err)
	}
	leases, now, err := l.Leases(f.ctx, "g")
	if err != nil {
		t.Fatalf("Leases: %v", err)
	}
	if len(leases) != 1 {
		t.Fatalf("Leases: want one, got %+v", leases)
	}
	ls := leases[0]
	if ls.Key != "partition/4/0" || ls.Owner != "a" || ls.Generation != 1 || !ls.HasPosition || ls.Position != (driver.Position{Commit: 7, Prepare: 3}) {
		t.Errorf("Leases: want a's lease at 1 with position 7/3, got %+v", ls)
	}
	if d := ls.Expires.Sub(now); d < 50*time.Second || d > 70*time.Second {
		t.Errorf("Leases: a one-minute lease expires %s after the backend's now (%v, %v)", d, ls.Expires, now)
	}
}

// testLeaseExpires: once a lease expires another member is granted it at
// the next generation, with the position saved; the old holder can no
// longer save a position (ErrLeaseLost) nor renew.
func testLeaseExpires(t *testing.T, f *fixture) {
	l := f.driver.(driver.Leaser)
	const ttl = 300 * time.Millisecond
	f.acquire(l, "g", "k", "a", ttl)
	pos := driver.Position{Commit: 11, Prepare: 1}
	if err := l.SaveLeasePosition(f.ctx, "g", "k", "a", 1, pos); err != nil {
		t.Fatalf("SaveLeasePosition: %v", err)
	}
	deadline := time.Now().Add(20 * ttl)
	var got driver.Lease
	for granted := false; !granted; {
		if time.Now().After(deadline) {
			t.Fatalf("b was not granted a's lease %s after it expired", 20*ttl)
		}
		time.Sleep(ttl / 4)
		got, granted = f.acquire(l, "g", "k", "b", time.Minute)
	}
	if got.Owner != "b" || got.Generation != 2 || !got.HasPosition || got.Position != pos {
		t.Fatalf("expired lease granted to b: want b at generation 2 keeping position %s, got %+v", pos, got)
	}
	err := l.SaveLeasePosition(f.ctx, "g", "k", "a", 1, driver.Position{Commit: 99})
	if !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("SaveLeasePosition by the old holder: want ErrLeaseLost, got %v", err)
	}
	if got, granted := f.acquire(l, "g", "k", "a", time.Minute); granted || got.Owner != "b" {
		t.Fatalf("renewal by the old holder: want refused (b holds it), got %+v granted=%v", got, granted)
	}
	leases, _, err := l.Leases(f.ctx, "g")
	if err != nil || len(leases) != 1 || leases[0].Position != pos {
		t.Fatalf("Leases after the refused save: want position %s kept, got %+v, %v", pos, leases, err)
	}
}

// testLeaseReleased: a release at a wrong generation or by another member
// does nothing; the holder's release lets another member take the lease at
// once, at the next generation.
func testLeaseReleased(t *testing.T, f *fixture) {
	l := f.driver.(driver.Leaser)
	f.acquire(l, "g", "k", "a", time.Minute)
	for _, bad := range []lease{{"a", 2}, {"b", 1}} {
		if err := l.ReleaseLease(f.ctx, "g", "k", bad.owner, bad.gen); err != nil {
			t.Fatalf("ReleaseLease(%s at %d): %v", bad.owner, bad.gen, err)
		}
		if got, granted := f.acquire(l, "g", "k", "c", time.Minute); granted {
			t.Fatalf("ReleaseLease(%s at %d) of a's lease at 1 released it: c was granted %+v", bad.owner, bad.gen, got)
		}
	}
	if err := l.ReleaseLease(f.ctx, "g", "k", "a", 1); err != nil {
		t.Fatalf("ReleaseLease by the holder: %v", err)
	}
	got, granted := f.acquire(l, "g", "k", "b", time.Minute)
	if !granted || got.Owner != "b" || got.Generation != 2 {
		t.Fatalf("after the release: want b granted at generation 2, got %+v granted=%v", got, granted)
	}
	if err := l.SaveLeasePosition(f.ctx, "g", "k", "a", 1, driver.Position{Commit: 1}); !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("SaveLeasePosition by the member that released: want ErrLeaseLost, got %v", err)
	}
}

// testLeaseRace: eight members ask for one free lease at once; exactly one
// is granted it, and everyone is told the same holder.
func testLeaseRace(t *testing.T, f *fixture) {
	l := f.driver.(driver.Leaser)
	const members = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	holders := map[lease]int{}
	for i := range members {
		owner := string(rune('a' + i))
		wg.Go(func() {
			got, granted, err := l.AcquireLease(f.ctx, "g", "k", owner, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("AcquireLease by %s: %v", owner, err)
				return
			}
			if granted {
				winners = append(winners, owner)
			}
			holders[lease{got.Owner, got.Generation}]++
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d members raced for a free lease: want exactly one granted, got %v", members, winners)
	}
	if len(holders) != 1 || holders[lease{winners[0], 1}] != members {
		t.Fatalf("every racer must be told the winner %s at generation 1, got %v", winners[0], holders)
	}
}

// testLeasesPerGroup: leases of two groups, one a prefix of the other, are
// listed apart and sorted by key; DeleteLeases removes one group's only.
func testLeasesPerGroup(t *testing.T, f *fixture) {
	l := f.driver.(driver.Leaser)
	for _, k := range []string{"partition/2/1", "member/x", "partition/2/0"} {
		f.acquire(l, "orders", k, "x", time.Minute)
	}
	f.acquire(l, "orders-v2", "member/x", "x", time.Minute)
	keys := func(group string) []string {
		leases, _, err := l.Leases(f.ctx, group)
		if err != nil {
			t.Fatalf("Leases(%q): %v", group, err)
		}
		var out []string
		for _, ls := range leases {
			if ls.Group != group {
				t.Errorf("Leases(%q) returned a lease of group %q", group, ls.Group)
			}
			out = append(out, ls.Key)
		}
		return out
	}
	if got := keys("orders"); !slices.Equal(got, []string{"member/x", "partition/2/0", "partition/2/1"}) {
		t.Fatalf("Leases(orders): want 3 keys sorted, got %v", got)
	}
	if got := keys("order"); len(got) != 0 {
		t.Fatalf("Leases(order): a prefix of a group's name is another group, got %v", got)
	}
	if err := l.DeleteLeases(f.ctx, "orders"); err != nil {
		t.Fatalf("DeleteLeases: %v", err)
	}
	if got := keys("orders"); len(got) != 0 {
		t.Fatalf("Leases(orders) after DeleteLeases: want none, got %v", got)
	}
	if got := keys("orders-v2"); !slices.Equal(got, []string{"member/x"}) {
		t.Fatalf("DeleteLeases(orders) touched orders-v2: %v", got)
	}
	if got, granted := f.acquire(l, "orders", "partition/2/0", "y", time.Minute); !granted || got.Generation != 1 || got.HasPosition {
		t.Fatalf("a deleted lease is new again: want granted at 1 without position, got %+v granted=%v", got, granted)
	}
}
