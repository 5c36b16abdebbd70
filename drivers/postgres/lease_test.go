package postgres_test

import (
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Leases expire by the server's clock: a lease's expiry is the server's
// clock_timestamp() at the grant plus the TTL, Leases reports the server's
// clock, and a lease whose stored expiry the server's clock has passed is
// granted to another member at once, whatever the process's clock says.
func TestLeaseServerClock(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	d := newDriver(t, pool, postgres.Options{})
	serverNow := func() time.Time {
		var now time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now))
		return now
	}
	before := serverNow()
	l, granted, err := d.AcquireLease(ctx, "g", "k", "a", time.Hour)
	require.NoError(t, err)
	require.True(t, granted)
	after := serverNow()
	assert.False(t, l.Expires.Before(before.Add(time.Hour)), "expiry %v: before the server's clock %v + 1h", l.Expires, before)
	assert.False(t, l.Expires.After(after.Add(time.Hour)), "expiry %v: after the server's clock %v + 1h", l.Expires, after)
	_, now, err := d.Leases(ctx, "g")
	require.NoError(t, err)
	assert.False(t, now.Before(after) || now.After(serverNow()), "Leases' clock %v is not the server's", now)

	// An hour passes on the server (the expiry moves back by an hour and
	// a second): b is granted a's lease, fenced by generation 2.
	q := pgx.Identifier{d.Schema()}.Sanitize()
	_, err = pool.Exec(ctx, `UPDATE `+q+`.leases SET expires = expires - interval '1 hour 1 second'`)
	require.NoError(t, err)
	l, granted, err = d.AcquireLease(ctx, "g", "k", "b", time.Minute)
	require.NoError(t, err)
	assert.True(t, granted, "the lease expired on the server: want it granted, got %+v", l)
	assert.Equal(t, uint64(2), l.Generation)
	require.ErrorIs(t, d.SaveLeasePosition(ctx, "g", "k", "a", 1, driver.Position{Commit: 1}), eventstore.ErrLeaseLost)

}

// Leases lists a group's leases in byte order by key (strings.Compare)
// even in a database whose collation orders them otherwise, and only that
// group's: not those of a group whose name extends it.
func TestLeasesInByteOrder(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	d, err := postgres.Open(ctx, icuDatabase(t, pool), postgres.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	for _, key := range []string{"é", "a", "z", "Z-1", "f", "B", "member/1"} {
		_, granted, err := d.AcquireLease(ctx, "g", key, "m", time.Minute)
		require.NoError(t, err)
		require.True(t, granted, key)
	}
	_, _, err = d.AcquireLease(ctx, "g2", "0", "m", time.Minute)
	require.NoError(t, err)
	leases, _, err := d.Leases(ctx, "g")
	require.NoError(t, err)
	var keys []string
	for _, l := range leases {
		keys = append(keys, l.Key)
		assert.Equal(t, "g", l.Group)
	}
	assert.Equal(t, []string{"B", "Z-1", "a", "f", "member/1", "z", "é"}, keys)
}
