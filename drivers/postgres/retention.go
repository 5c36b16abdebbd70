package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

var (
	_ driver.StreamDeleter    = (*Driver)(nil)
	_ driver.StreamTruncater  = (*Driver)(nil)
	_ driver.RetentionKeeper  = (*Driver)(nil)
	_ driver.RetentionApplier = (*Driver)(nil)
)

// lockEventsSQL starts every removal: SHARE ROW EXCLUSIVE waits for the
// appends in flight and holds new ones back until the removal commits.
// Without it an append whose snapshot predates the removal could insert a
// version the removal just deleted (the unique index no longer holds it)
// and so give a version twice. An append takes its snapshot after its lock
// on the table, so once the removal commits it sees the removal. Removals
// are rare; appends to every stream wait for one, a few milliseconds.
const lockEventsSQL = `LOCK TABLE {{schema}}.events IN SHARE ROW EXCLUSIVE MODE`

// headSQL locks a stream's stream_marks row, creating it if need be, so
// that removals of one stream queue behind each other, and returns the
// stream's highest stored version and its marks.
const headSQL = `WITH m AS (
	INSERT INTO {{schema}}.stream_marks (stream_id) VALUES ($1)
	ON CONFLICT (stream_id) DO UPDATE SET last = {{schema}}.stream_marks.last
	RETURNING last, deleted, max_count, max_age_us
)
SELECT coalesce((SELECT max(version) FROM {{schema}}.events WHERE stream_id = $1), 0), m.last, m.deleted, m.max_count, m.max_age_us FROM m`

// removeSQL deletes the events of stream $1 below version $2 with their
// tags, and records the stream's version $3 in stream_marks.
const removeSQL = `WITH del AS (
	DELETE FROM {{schema}}.events WHERE stream_id = $1 AND version < $2 RETURNING tx_id, seq, tags
), tdel AS (
	DELETE FROM {{schema}}.event_tags t USING del
	WHERE del.tags IS NOT NULL AND t.tag = ANY (del.tags) AND t.tx_id = del.tx_id AND t.seq = del.seq
	RETURNING 1
)
UPDATE {{schema}}.stream_marks SET last = greatest(last, $3), deleted = false WHERE stream_id = $1`

// streamVersionSQL is a stream's version: its highest stored version, or
// the version stream_marks keeps when higher, or 0 while it is deleted.
const streamVersionSQL = `SELECT CASE WHEN m.deleted AND b.v <= m.last THEN 0 ELSE greatest(b.v, coalesce(m.last, 0)) END
FROM (SELECT coalesce(max(version), 0) AS v FROM {{schema}}.events WHERE stream_id = $1) b
	LEFT JOIN {{schema}}.stream_marks m ON m.stream_id = $1`

// firstYoungSQL returns the first version of stream $1 recorded at or after
// $2, if any.
const firstYoungSQL = `SELECT min(version) FROM {{schema}}.events WHERE stream_id = $1 AND recorded_at >= $2`

// retentionStatements are the statements of retention.go with the schema
// filled in.
type retentionStatements struct {
	lockEvents, head, remove, removeCount, firstYoung, markDeleted, dropSnapshot, setRetention, getRetention, enable, retained string
}

func newRetentionStatements(r *strings.Replacer) retentionStatements {
	return retentionStatements{
		lockEvents:  r.Replace(lockEventsSQL),
		head:        r.Replace(headSQL),
		remove:      r.Replace(removeSQL),
		removeCount: r.Replace(removeSQL + ` RETURNING (SELECT count(*) FROM del)`),
		retained: r.Replace(`SELECT stream_id FROM {{schema}}.stream_marks
			WHERE stream_id > $1 AND (max_count > 0 OR max_age_us > 0) ORDER BY stream_id LIMIT $2`),
		firstYoung:   r.Replace(firstYoungSQL),
		markDeleted:  r.Replace(`UPDATE {{schema}}.stream_marks SET last = $2, deleted = true, max_count = 0, max_age_us = 0 WHERE stream_id = $1`),
		dropSnapshot: r.Replace(`DELETE FROM {{schema}}.snapshots WHERE stream_id = $1`),
		setRetention: r.Replace(`UPDATE {{schema}}.stream_marks SET max_count = $2, max_age_us = $3 WHERE stream_id = $1`),
		enable:       r.Replace(`SELECT {{schema}}.enable_retention()`),
		getRetention: r.Replace(`SELECT max_count, max_age_us FROM {{schema}}.stream_marks WHERE stream_id = $1`),
	}
}

// marks is a stream's stream_marks row.
type marks struct {
	stored    uint64 // the highest version stored
	last      uint64
	deleted   bool
	retention driver.Retention
}

// versions returns the version the stream's next event follows (base) and
// its version as readers and expectations see it (actual: 0 while it is
// deleted).
func (m marks) versions() (base, actual uint64) {
	base = max(m.stored, m.last)
	if m.deleted && m.stored <= m.last {
		return base, 0
	}
	return base, base
}

// head locks the events table against writers (see lockEventsSQL) and the
// stream's marks in tx, and reads them.
func (d *Driver) head(ctx context.Context, tx pgx.Tx, stream string) (marks, error) {
	var (
		m                          marks
		stored, last, count, ageUS int64
	)
	if _, err := tx.Exec(ctx, d.sql.retention.lockEvents); err != nil {
		return marks{}, err
	}
	if err := tx.QueryRow(ctx, d.sql.retention.head, stream).Scan(&stored, &last, &m.deleted, &count, &ageUS); err != nil {
		return marks{}, err
	}
	m.stored, m.last = uint64(stored), uint64(last)
	m.retention = driver.Retention{MaxCount: uint64(count), MaxAge: time.Duration(ageUS) * time.Microsecond}
	return m, nil
}

// inTx runs f in a read-committed transaction, again after a
// serialization failure or deadlock, up to maxAttempts times.
func (d *Driver) inTx(ctx context.Context, op string, f func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, f)
		var wev *eventstore.WrongExpectedVersionError
		if err == nil || errors.As(err, &wev) {
			return err
		}
		if classify(err) != classRetry || attempt == maxAttempts {
			return writeError(op, err)
		}
		if err := backoff.Wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// DeleteStream implements [driver.StreamDeleter] in one transaction, which
// holds the stream's stream_marks row locked: the events and their tags are
// deleted, then the snapshot, and the row keeps the stream's version.
func (d *Driver) DeleteStream(ctx context.Context, stream string, expected driver.ExpectedVersion) error {
	return d.inTx(ctx, "delete stream", func(tx pgx.Tx) error {
		m, err := d.head(ctx, tx, stream)
		if err != nil {
			return err
		}
		base, actual := m.versions()
		if !expected.Matches(actual) {
			return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: eventstore.ExpectedVersion(expected), Actual: actual}
		}
		if actual == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, d.sql.retention.remove, stream, int64(base)+1, int64(base)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, d.sql.retention.markDeleted, stream, int64(base)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, d.sql.retention.dropSnapshot, stream)
		return err
	})
}

// TruncateStream implements [driver.StreamTruncater] in one transaction.
func (d *Driver) TruncateStream(ctx context.Context, stream string, before uint64) error {
	return d.inTx(ctx, "truncate stream", func(tx pgx.Tx) error {
		m, err := d.head(ctx, tx, stream)
		if err != nil {
			return err
		}
		base, actual := m.versions()
		if actual == 0 || m.stored == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, d.sql.retention.remove, stream, clamp(min(before, base+1)), int64(base))
		return err
	})
}

// SetStreamRetention implements [driver.RetentionKeeper]: it stores r and
// applies it in the same transaction (appends apply it with the trigger of
// schema/0006_retention.sql).
func (d *Driver) SetStreamRetention(ctx context.Context, stream string, r driver.Retention) error {
	return d.inTx(ctx, "set stream retention", func(tx pgx.Tx) error {
		m, err := d.head(ctx, tx, stream)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, d.sql.retention.setRetention, stream, clamp(r.MaxCount), r.MaxAge.Microseconds()); err != nil {
			return err
		}
		if !r.IsZero() {
			// Appends apply retention through a trigger that stays
			// disabled until a stream has one (schema 6).
			if _, err := tx.Exec(ctx, d.sql.retention.enable); err != nil {
				return err
			}
		}
		_, err = d.applyIn(ctx, tx, stream, m, r)
		return err
	})
}

// applyIn removes the events of stream that r does not keep, in tx, which
// holds the stream's marks m (see head); it returns how many it removed.
// MaxAge counts from the transaction's start on the server's clock, as the
// trigger does.
func (d *Driver) applyIn(ctx context.Context, tx pgx.Tx, stream string, m marks, r driver.Retention) (int64, error) {
	base, actual := m.versions()
	if r.IsZero() || actual == 0 || m.stored == 0 {
		return 0, nil
	}
	before := r.Cutoff(base)
	if r.MaxAge > 0 {
		var young *int64
		var now time.Time
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
			return 0, err
		}
		if err := tx.QueryRow(ctx, d.sql.retention.firstYoung, stream, now.Add(-r.MaxAge)).Scan(&young); err != nil {
			return 0, err
		}
		if young == nil {
			before = base + 1
		} else {
			before = max(before, uint64(*young))
		}
	}
	var n int64
	err := tx.QueryRow(ctx, d.sql.retention.removeCount, stream, clamp(before), int64(base)).Scan(&n)
	return n, err
}

// retainedPage is how many streams with a retention one query of
// ApplyRetention lists.
const retainedPage = 100

// ApplyRetention implements [driver.RetentionApplier]: it lists the
// stream_marks rows that hold a retention in pages, in key order, and
// applies each stream's in a transaction of its own, as SetStreamRetention
// does (so it needs the same privileges, see docs/postgres.md).
func (d *Driver) ApplyRetention(ctx context.Context) (driver.RetentionResult, error) {
	var res driver.RetentionResult
	after := ""
	for {
		rows, err := d.pool.Query(ctx, d.sql.retention.retained, after, retainedPage)
		if err != nil {
			return res, wrapNative(err)
		}
		streams, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return res, wrapNative(err)
		}
		for _, s := range streams {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			var n int64
			err := d.inTx(ctx, "apply retention", func(tx pgx.Tx) error {
				m, err := d.head(ctx, tx, s)
				if err != nil {
					return err
				}
				n, err = d.applyIn(ctx, tx, s, m, m.retention)
				return err
			})
			if err != nil {
				return res, err
			}
			res.Streams++
			res.Events += uint64(n)
		}
		if len(streams) < retainedPage {
			return res, nil
		}
		after = streams[len(streams)-1]
	}
}

// StreamRetention implements [driver.RetentionKeeper].
func (d *Driver) StreamRetention(ctx context.Context, stream string) (driver.Retention, error) {
	var count, ageUS int64
	err := d.pool.QueryRow(ctx, d.sql.retention.getRetention, stream).Scan(&count, &ageUS)
	if errors.Is(err, pgx.ErrNoRows) {
		return driver.Retention{}, nil
	}
	if err != nil {
		return driver.Retention{}, wrapNative(err)
	}
	return driver.Retention{MaxCount: uint64(count), MaxAge: time.Duration(ageUS) * time.Microsecond}, nil
}
