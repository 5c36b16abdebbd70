package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

// The leases of consumer groups are rows of the leases table (schema
// version 4), one per (group, key). Expiry is judged by the server's
// clock_timestamp(), so the members' clocks do not matter.

// acquireLeaseSQL grants lease ($1, $2) to $3 for $4 in one statement: a new
// row at generation 1, or an update of the row if it is free (released,
// expired) or already $3's. At READ COMMITTED racing acquirers queue on the
// row lock, and each re-checks the WHERE clause against the row as the one
// before it left it, so exactly one is granted a free lease. RETURNING gives
// no row when the lease was not granted.
const acquireLeaseSQL = `INSERT INTO {{schema}}.leases AS l (group_name, key, owner, generation, expires)
VALUES ($1, $2, $3, 1, clock_timestamp() + $4::interval)
ON CONFLICT (group_name, key) DO UPDATE SET
	owner = excluded.owner,
	generation = CASE WHEN l.owner = excluded.owner THEN l.generation ELSE l.generation + 1 END,
	expires = clock_timestamp() + $4::interval
WHERE l.owner = excluded.owner OR l.owner = '' OR l.expires <= clock_timestamp()
RETURNING l.owner, l.generation, l.expires, l.tx_id, l.seq`

// leaseSQL reads one lease, after acquireLeaseSQL refused it: a statement
// of its own, so its snapshot shows the holder that won.
const leaseSQL = `SELECT owner, generation, expires, tx_id, seq FROM {{schema}}.leases WHERE group_name = $1 AND key = $2`

const releaseLeaseSQL = `UPDATE {{schema}}.leases SET owner = '', expires = clock_timestamp()
WHERE group_name = $1 AND key = $2 AND owner = $3 AND generation = $4`

const saveLeasePositionSQL = `UPDATE {{schema}}.leases SET tx_id = $5, seq = $6
WHERE group_name = $1 AND key = $2 AND owner = $3 AND generation = $4`

// leasesSQL lists a group's leases in key order (the primary key's, in byte
// order: the column is COLLATE "C"), with the server's clock: one row of
// NULLs when the group has none.
const leasesSQL = `SELECT n.now, l.key, l.owner, l.generation, l.expires, l.tx_id, l.seq
FROM (SELECT clock_timestamp() AS now) n
LEFT JOIN {{schema}}.leases l ON l.group_name = $1
ORDER BY l.key`

const deleteLeasesSQL = `DELETE FROM {{schema}}.leases WHERE group_name = $1`

// AcquireLease implements [driver.Leaser]: one statement when the lease is
// granted, a second one (reading the lease as its holder left it) when it
// is not. ttl is rounded down to whole microseconds.
func (d *Driver) AcquireLease(ctx context.Context, group, key, owner string, ttl time.Duration) (driver.Lease, bool, error) {
	l := driver.Lease{Group: group, Key: key}
	err := scanLease(d.pool.QueryRow(ctx, d.sql.acquireLease, group, key, owner, ttl), &l)
	if err == nil {
		return l, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return driver.Lease{}, false, fmt.Errorf("postgres: acquire lease %q %q: %w", group, key, native(err))
	}
	// Refused: someone else holds it. The row exists (it is never deleted
	// but by DeleteLeases, which a racing one may run).
	if err := scanLease(d.pool.QueryRow(ctx, d.sql.lease, group, key), &l); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return driver.Lease{}, false, fmt.Errorf("postgres: acquire lease %q %q: read the holder: %w", group, key, native(err))
	}
	return l, false, nil
}

// scanLease reads owner, generation, expires, tx_id and seq into l.
func scanLease(row pgx.Row, l *driver.Lease) error {
	var gen int64
	var txID, seq *int64
	if err := row.Scan(&l.Owner, &gen, &l.Expires, &txID, &seq); err != nil {
		return err
	}
	l.Generation = uint64(gen)
	if txID != nil && seq != nil {
		l.Position, l.HasPosition = driver.Position{Commit: uint64(*txID), Prepare: uint64(*seq)}, true
	}
	return nil
}

// ReleaseLease implements [driver.Leaser]: one UPDATE, which sets the
// owner to "" and the expiry to the server's clock.
func (d *Driver) ReleaseLease(ctx context.Context, group, key, owner string, generation uint64) error {
	if _, err := d.pool.Exec(ctx, d.sql.releaseLease, group, key, owner, clamp(generation)); err != nil {
		return fmt.Errorf("postgres: release lease %q %q: %w", group, key, native(err))
	}
	return nil
}

// SaveLeasePosition implements [driver.Leaser]: one UPDATE, conditional on
// the owner and generation; when it updates no row the lease was lost.
func (d *Driver) SaveLeasePosition(ctx context.Context, group, key, owner string, generation uint64, pos driver.Position) error {
	tag, err := d.pool.Exec(ctx, d.sql.saveLeasePosition, group, key, owner, clamp(generation), clamp(pos.Commit), clamp(pos.Prepare))
	if err != nil {
		return fmt.Errorf("postgres: save lease position %q %q: %w", group, key, native(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: lease %q %q of %q at generation %d: %w", group, key, owner, generation, eventstore.ErrLeaseLost)
	}
	return nil
}

// Leases implements [driver.Leaser]: one SELECT, which also reads the
// server's clock.
func (d *Driver) Leases(ctx context.Context, group string) ([]driver.Lease, time.Time, error) {
	rows, err := d.pool.Query(ctx, d.sql.leases, group)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("postgres: leases %q: %w", group, native(err))
	}
	var (
		out        []driver.Lease
		now        time.Time
		key, owner *string // NULL: the group has no lease
		gen        *int64
		expires    *time.Time
		txID, seq  *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&now, &key, &owner, &gen, &expires, &txID, &seq}, func() error {
		if key == nil {
			return nil
		}
		l := driver.Lease{Group: group, Key: *key, Owner: *owner, Generation: uint64(*gen), Expires: *expires}
		if txID != nil && seq != nil {
			l.Position, l.HasPosition = driver.Position{Commit: uint64(*txID), Prepare: uint64(*seq)}, true
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("postgres: leases %q: %w", group, native(err))
	}
	return out, now, nil
}

// DeleteLeases implements [driver.Leaser]: one DELETE.
func (d *Driver) DeleteLeases(ctx context.Context, group string) error {
	if _, err := d.pool.Exec(ctx, d.sql.deleteLeases, group); err != nil {
		return fmt.Errorf("postgres: delete leases %q: %w", group, native(err))
	}
	return nil
}
