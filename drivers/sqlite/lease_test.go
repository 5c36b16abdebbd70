package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leaseRacer prefixes the role of a helper process that races for a lease
// (leaseRace) instead of running the append workload.
const leaseRacer = "lease-racer-"

// raceGroup and raceKey name the lease the processes of
// TestLeaseMultiProcess race for.
const raceGroup, raceKey = "billing", "partition/1/0"

// leaseResult is what a racer reports.
type leaseResult struct {
	Role       string
	Granted    bool
	Owner      string
	Generation uint64
}

// leaseRace asks for the lease as role and writes the result to w as a
// line of JSON.
func leaseRace(ctx context.Context, d *sqlite.Driver, role string, w io.Writer) error {
	l, granted, err := d.AcquireLease(ctx, raceGroup, raceKey, role, time.Minute)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(leaseResult{Role: role, Granted: granted, Owner: l.Owner, Generation: l.Generation})
}

// checkOneWinner asserts that exactly one of results was granted the lease
// at generation gen, and that every racer was told so.
func checkOneWinner(t *testing.T, results []leaseResult, gen uint64) {
	t.Helper()
	var winners []string
	for _, r := range results {
		if r.Granted {
			winners = append(winners, r.Role)
		}
	}
	require.Len(t, winners, 1, "racers granted the lease: %v", results)
	for _, r := range results {
		assert.Equal(t, winners[0], r.Owner, "%s was told another holder", r.Role)
		assert.Equal(t, gen, r.Generation, "%s was told another generation", r.Role)
	}
}

// TestLeaseMultiProcess has three processes (two copies of the test binary
// and this one) ask for one lease at once: exactly one is granted it, and
// all are told the winner.
func TestLeaseMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: skipped in -short mode")
	}
	t.Parallel()
	ctx := t.Context()
	d, path := openDriver(t, sqlite.Options{})
	roles := []string{leaseRacer + "parent", leaseRacer + "child1", leaseRacer + "child2"}
	helpers := []*helper{startHelper(t, roles[1], path), startHelper(t, roles[2], path)}
	for _, h := range helpers {
		_, err := h.stdin.WriteString("go\n")
		require.NoError(t, err)
	}
	r, w := io.Pipe()
	go func() { w.CloseWithError(leaseRace(ctx, d, roles[0], w)) }()
	var results []leaseResult
	var own leaseResult
	require.NoError(t, json.NewDecoder(r).Decode(&own))
	results = append(results, own)
	for _, h := range helpers {
		select {
		case err := <-h.done:
			require.NoError(t, err, "helper %s failed; stderr:\n%s", h.role, &h.stderr)
		case <-time.After(time.Minute):
			t.Fatalf("helper %s did not finish within a minute", h.role)
		}
		var res leaseResult
		require.NoError(t, json.Unmarshal(h.stdout, &res), "helper %s wrote %q", h.role, h.stdout)
		results = append(results, res)
	}
	checkOneWinner(t, results, 1)

	leases, _, err := d.Leases(ctx, raceGroup)
	require.NoError(t, err)
	require.Len(t, leases, 1)
	assert.Equal(t, results[0].Owner, leases[0].Owner)
}

// TestLeaseRaceAcrossDrivers has drivers with connections of their own on
// one file, as separate processes would, race for many leases: for each,
// exactly one racer is granted it and all are told the winner; when the
// winner releases it the others race again and one gets it at generation 2.
func TestLeaseRaceAcrossDrivers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const (
		drivers = 4
		perDrv  = 2 // racers per driver
		keys    = 10
	)
	path := filepath.Join(t.TempDir(), "events.db")
	var ds []*sqlite.Driver
	for range drivers {
		d, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		ds = append(ds, d)
	}
	// race has every racer not in skip ask for key at once.
	race := func(key string, skip string) []leaseResult {
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			results []leaseResult
		)
		gate := make(chan struct{})
		for i, d := range ds {
			for j := range perDrv {
				role := fmt.Sprintf("member-%d-%d", i, j)
				if role == skip {
					continue
				}
				wg.Go(func() {
					<-gate
					l, granted, err := d.AcquireLease(ctx, "g", key, role, time.Minute)
					if !assert.NoError(t, err, role) {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					results = append(results, leaseResult{Role: role, Granted: granted, Owner: l.Owner, Generation: l.Generation})
				})
			}
		}
		close(gate)
		wg.Wait()
		return results
	}
	for k := range keys {
		key := fmt.Sprintf("partition/%d/%d", keys, k)
		first := race(key, "")
		checkOneWinner(t, first, 1)
		holder := first[0].Owner
		d := ds[0] // any driver: the file is shared
		require.NoError(t, d.ReleaseLease(ctx, "g", key, holder, 1))
		checkOneWinner(t, race(key, holder), 2)
	}
	leases, _, err := ds[1].Leases(ctx, "g")
	require.NoError(t, err)
	assert.Len(t, leases, keys)
}

// TestLeaseClock: the driver judges leases by the process clock, in
// microseconds: a lease expires ttl after the call, a released one at the
// release, and Leases returns the process clock.
func TestLeaseClock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, _ := openDriver(t, sqlite.Options{})
	before := time.Now()
	l, granted, err := d.AcquireLease(ctx, "g", "k", "a", 90*time.Second)
	after := time.Now()
	require.NoError(t, err)
	require.True(t, granted)
	assert.False(t, l.Expires.Before(before.Add(90*time.Second).Truncate(time.Microsecond)), "expires %v, called at %v", l.Expires, before)
	assert.False(t, l.Expires.After(after.Add(90*time.Second)), "expires %v, returned at %v", l.Expires, after)

	require.NoError(t, d.ReleaseLease(ctx, "g", "k", "a", 1))
	leases, now, err := d.Leases(ctx, "g")
	require.NoError(t, err)
	require.Len(t, leases, 1)
	assert.Equal(t, driver.Lease{Group: "g", Key: "k", Generation: 1, Expires: leases[0].Expires}, leases[0])
	assert.False(t, leases[0].Expires.After(now), "a released lease expires at the release (%v), before Leases' now %v", leases[0].Expires, now)
	assert.False(t, leases[0].Expires.Before(after.Truncate(time.Microsecond)), "released at %v, before the grant returned at %v", leases[0].Expires, after)
	assert.False(t, now.Before(leases[0].Expires))
}
