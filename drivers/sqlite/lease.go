package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// leaseStmts are the lease statements, prepared on the write connection.
type leaseStmts struct {
	acquireLease, getLease, releaseLease, saveLeasePosition *sql.Stmt
}

// The lease statements. Times are microseconds since the Unix epoch by the
// process clock, passed in by the caller (?4 is now): SQLite has no server
// whose clock every process would share, and the processes that share a
// file share the machine it is on.
const (
	// queryAcquireLease grants the lease (?1, ?2) to ?3 until ?5 if it is
	// free or ?3's already, in one statement: the conflict update runs
	// only where the row allows it, and RETURNING yields a row only when
	// the lease was granted. SET reads the old row, so generation compares
	// the old owner.
	queryAcquireLease = `INSERT INTO leases (group_name, key, owner, generation, expires_at) VALUES (?1, ?2, ?3, 1, ?5)
		ON CONFLICT (group_name, key) DO UPDATE SET
			generation = CASE WHEN leases.owner = excluded.owner THEN leases.generation ELSE leases.generation + 1 END,
			owner = excluded.owner,
			expires_at = excluded.expires_at
		WHERE leases.owner = excluded.owner OR leases.owner = '' OR leases.expires_at <= ?4
		RETURNING ` + leaseColumns
	queryGetLease     = "SELECT " + leaseColumns + " FROM leases WHERE group_name = ? AND key = ?"
	queryReleaseLease = `UPDATE leases SET owner = '', expires_at = ?5
		WHERE group_name = ?1 AND key = ?2 AND owner = ?3 AND generation = ?4`
	querySaveLeasePosition = `UPDATE leases SET position_commit = ?5, position_prepare = ?6
		WHERE group_name = ?1 AND key = ?2 AND owner = ?3 AND generation = ?4`
	queryLeases = "SELECT " + leaseColumns + ", key FROM leases WHERE group_name = ? ORDER BY key"

	leaseColumns = "owner, generation, expires_at, position_commit, position_prepare"
)

// scanLease scans leaseColumns into l, and the columns after them into
// more.
func scanLease(row interface{ Scan(...any) error }, l *driver.Lease, more ...any) error {
	var (
		gen, expires    int64
		commit, prepare sql.NullInt64
	)
	if err := row.Scan(append([]any{&l.Owner, &gen, &expires, &commit, &prepare}, more...)...); err != nil {
		return err
	}
	l.Generation = uint64(gen)
	l.Expires = time.UnixMicro(expires)
	l.HasPosition = commit.Valid
	l.Position = driver.Position{Commit: uint64(commit.Int64), Prepare: uint64(prepare.Int64)}
	return nil
}

// AcquireLease implements [driver.Leaser]: one write transaction holding
// one INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING, and a SELECT
// when the lease was not granted. Expiry is judged by the clock of the
// process, read once the transaction holds the file's write lock, so
// processes that race for a lease take their turns in clock order.
func (d *Driver) AcquireLease(ctx context.Context, group, key, owner string, ttl time.Duration) (driver.Lease, bool, error) {
	l := driver.Lease{Group: group, Key: key}
	var granted bool
	err := d.write(ctx, func(w *writer) error {
		now := time.Now()
		err := scanLease(w.acquireLease.QueryRowContext(ctx, group, key, owner, now.UnixMicro(), now.Add(ttl).UnixMicro()), &l)
		if !errors.Is(err, sql.ErrNoRows) {
			granted = err == nil
			return err
		}
		return scanLease(w.getLease.QueryRowContext(ctx, group, key), &l)
	})
	if err != nil {
		return driver.Lease{}, false, mapError(err, nil)
	}
	return l, granted, nil
}

// ReleaseLease implements [driver.Leaser]: one UPDATE in a write
// transaction, which sets the owner to "" and the expiry to now.
func (d *Driver) ReleaseLease(ctx context.Context, group, key, owner string, generation uint64) error {
	err := d.write(ctx, func(w *writer) error {
		_, err := w.releaseLease.ExecContext(ctx, group, key, owner, int64(generation), time.Now().UnixMicro())
		return err
	})
	return mapError(err, nil)
}

// SaveLeasePosition implements [driver.Leaser]: one UPDATE in a write
// transaction; when it matches no row (another owner or generation, or no
// lease) it returns an error matching [eventstore.ErrLeaseLost].
func (d *Driver) SaveLeasePosition(ctx context.Context, group, key, owner string, generation uint64, pos driver.Position) error {
	err := d.write(ctx, func(w *writer) error {
		res, err := w.saveLeasePosition.ExecContext(ctx, group, key, owner, int64(generation), int64(pos.Commit), int64(pos.Prepare))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlite: lease %q %q of %q at generation %d: %w", group, key, owner, generation, eventstore.ErrLeaseLost)
		}
		return nil
	})
	return mapError(err, nil)
}

// Leases implements [driver.Leaser]: one SELECT on a read connection, in
// key order (SQLite compares TEXT bytewise), and the process clock.
func (d *Driver) Leases(ctx context.Context, group string) ([]driver.Lease, time.Time, error) {
	rows, err := d.db.QueryContext(ctx, queryLeases, group)
	if err != nil {
		return nil, time.Time{}, mapError(err, nil)
	}
	defer rows.Close()
	var out []driver.Lease
	for rows.Next() {
		l := driver.Lease{Group: group}
		if err := scanLease(rows, &l, &l.Key); err != nil {
			return nil, time.Time{}, mapError(err, nil)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, mapError(err, nil)
	}
	return out, time.Now(), nil
}

// DeleteLeases implements [driver.Leaser]: one DELETE in a write
// transaction.
func (d *Driver) DeleteLeases(ctx context.Context, group string) error {
	err := d.write(ctx, func(w *writer) error {
		_, err := w.conn.ExecContext(ctx, "DELETE FROM leases WHERE group_name = ?", group)
		return err
	})
	return mapError(err, nil)
}
