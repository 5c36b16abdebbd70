package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

var (
	_ driver.StreamDeleter    = (*Driver)(nil)
	_ driver.StreamTruncater  = (*Driver)(nil)
	_ driver.RetentionKeeper  = (*Driver)(nil)
	_ driver.RetentionApplier = (*Driver)(nil)
)

// marksColumn is the stream_marks row of the stream ?1 as one JSON array
// (NULL when there is none): one key lookup, in the head queries of
// appends and imports.
const marksColumn = `(SELECT json_array(last, deleted, max_count, max_age) FROM stream_marks WHERE stream = %s)`

// The statements of removals, run on the write connection inside a write
// transaction. They are rare, so they are not prepared ahead.
const (
	queryMinVersion = `SELECT COALESCE(MIN(version), 0) FROM events WHERE stream = ?`
	// queryDropPlaceholders deletes placeholders below the highest
	// position (see schema/005_retention.sql).
	queryDropPlaceholders = `DELETE FROM events WHERE stream = '' AND position < (SELECT MAX(position) FROM events)`
	queryRemoveTags       = `DELETE FROM event_tags WHERE position IN
		(SELECT position FROM events WHERE stream = ?1 AND version < ?2 AND tags IS NOT NULL)`
	queryRemoveEvents  = `DELETE FROM events WHERE stream = ? AND version < ?`
	queryPlaceholder   = `INSERT INTO events (position, stream, version, category, event_id, type, content_type, data, metadata, recorded_at) VALUES (?1, '', -?1, '', x'', '', 0, x'', x'', 0)`
	queryMarkRemoved   = `INSERT INTO stream_marks (stream, last) VALUES (?1, ?2) ON CONFLICT (stream) DO UPDATE SET last = MAX(last, excluded.last), deleted = 0`
	queryMarkDeleted   = `INSERT INTO stream_marks (stream, last, deleted) VALUES (?1, ?2, 1) ON CONFLICT (stream) DO UPDATE SET last = excluded.last, deleted = 1, max_count = 0, max_age = 0`
	querySetRetention  = `INSERT INTO stream_marks (stream, max_count, max_age) VALUES (?1, ?2, ?3) ON CONFLICT (stream) DO UPDATE SET max_count = excluded.max_count, max_age = excluded.max_age`
	queryGetRetention  = `SELECT max_count, max_age FROM stream_marks WHERE stream = ?`
	queryFirstYoung    = `SELECT version FROM events WHERE stream = ? AND recorded_at >= ? ORDER BY version LIMIT 1`
	queryDropSnapshot  = `DELETE FROM snapshots WHERE stream = ?`
	queryForgetAppends = `DELETE FROM appends WHERE stream = ?`
	queryMaxPosition2  = `SELECT COALESCE(MAX(position), 0) FROM events`
	// queryRetained lists the streams with a retention after ?1, in key
	// order, ?2 at a time.
	queryRetained = `SELECT stream FROM stream_marks WHERE stream > ?1 AND (max_count > 0 OR max_age > 0) ORDER BY stream LIMIT ?2`
)

// retainedPage is how many streams one write transaction of ApplyRetention
// applies the retention of.
const retainedPage = 64

// marks is a stream's stream_marks row; the zero value for none.
type marks struct {
	last      uint64
	deleted   bool
	retention driver.Retention
}

// parseMarks reads a marksColumn.
func parseMarks(col sql.NullString) (marks, error) {
	if !col.Valid {
		return marks{}, nil
	}
	var v [4]int64
	if err := json.Unmarshal([]byte(col.String), &v); err != nil {
		return marks{}, fmt.Errorf("stream_marks %q: %w", col.String, err)
	}
	return marks{last: uint64(v[0]), deleted: v[1] != 0,
		retention: driver.Retention{MaxCount: uint64(v[2]), MaxAge: time.Duration(v[3]) * time.Microsecond}}, nil
}

// versions returns, for a stream whose highest stored version is stored,
// the version its next event follows (base) and its version as readers
// and expectations see it (actual: 0 while deleted).
func (m marks) versions(stored uint64) (base, actual uint64) {
	base = max(stored, m.last)
	if m.deleted && stored <= m.last {
		return base, 0
	}
	return base, base
}

// head reads a stream's highest stored version and marks in the write
// transaction.
func head(ctx context.Context, w *writer, stream string) (stored uint64, m marks, err error) {
	var (
		v   int64
		col sql.NullString
	)
	q := `SELECT (SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1), ` + fmt.Sprintf(marksColumn, "?1")
	if err := w.conn.QueryRowContext(ctx, q, stream).Scan(&v, &col); err != nil {
		return 0, marks{}, err
	}
	m, err = parseMarks(col)
	return uint64(v), m, err
}

// DeleteStream implements [driver.StreamDeleter] in one write transaction:
// the stream's events, their tags, its snapshot and the records of its
// appends are deleted, and its stream_marks row remembers its version.
func (d *Driver) DeleteStream(ctx context.Context, stream string, expected driver.ExpectedVersion) error {
	err := d.write(ctx, func(w *writer) error {
		stored, m, err := head(ctx, w, stream)
		if err != nil {
			return err
		}
		base, actual := m.versions(stored)
		if !expected.Matches(actual) {
			return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: eventstore.ExpectedVersion(expected), Actual: actual}
		}
		if actual == 0 {
			return nil
		}
		if err := remove(ctx, w, stream, base+1, base); err != nil {
			return err
		}
		for _, q := range []string{queryMarkDeleted, queryDropSnapshot, queryForgetAppends} {
			args := []any{stream}
			if q == queryMarkDeleted {
				args = append(args, int64(base))
			}
			if _, err := w.conn.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
	return mapError(err, nil)
}

// TruncateStream implements [driver.StreamTruncater] in one write
// transaction.
func (d *Driver) TruncateStream(ctx context.Context, stream string, before uint64) error {
	err := d.write(ctx, func(w *writer) error {
		stored, m, err := head(ctx, w, stream)
		if err != nil {
			return err
		}
		base, actual := m.versions(stored)
		if actual == 0 {
			return nil
		}
		return remove(ctx, w, stream, min(before, base+1), base)
	})
	return mapError(err, nil)
}

// SetStreamRetention implements [driver.RetentionKeeper]: it stores r and
// applies it in the same write transaction.
func (d *Driver) SetStreamRetention(ctx context.Context, stream string, r driver.Retention) error {
	err := d.write(ctx, func(w *writer) error {
		if _, err := w.conn.ExecContext(ctx, querySetRetention, stream, int64(r.MaxCount), r.MaxAge.Microseconds()); err != nil {
			return err
		}
		stored, m, err := head(ctx, w, stream)
		if err != nil {
			return err
		}
		return applyRetention(ctx, w, stream, stored, m, time.Now())
	})
	return mapError(err, nil)
}

// StreamRetention implements [driver.RetentionKeeper].
func (d *Driver) StreamRetention(ctx context.Context, stream string) (driver.Retention, error) {
	var count, age int64
	err := d.db.QueryRowContext(ctx, queryGetRetention, stream).Scan(&count, &age)
	if err == sql.ErrNoRows {
		return driver.Retention{}, nil
	}
	if err != nil {
		return driver.Retention{}, mapError(err, nil)
	}
	return driver.Retention{MaxCount: uint64(count), MaxAge: time.Duration(age) * time.Microsecond}, nil
}

// ApplyRetention implements [driver.RetentionApplier]: it pages through
// the stream_marks rows that hold a retention, in key order, and applies
// each page's in one write transaction (so appends wait for at most one
// page).
func (d *Driver) ApplyRetention(ctx context.Context) (driver.RetentionResult, error) {
	var res driver.RetentionResult
	after := ""
	for {
		var streams []string
		err := d.write(ctx, func(w *writer) error {
			streams = streams[:0]
			rows, err := w.conn.QueryContext(ctx, queryRetained, after, retainedPage)
			if err != nil {
				return err
			}
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					rows.Close()
					return err
				}
				streams = append(streams, s)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			now := time.Now()
			for _, s := range streams {
				stored, m, err := head(ctx, w, s)
				if err != nil {
					return err
				}
				n, err := applyRetentionN(ctx, w, s, stored, m, now)
				if err != nil {
					return err
				}
				res.Events += uint64(n)
			}
			return nil
		})
		if err != nil {
			return res, mapError(err, nil)
		}
		res.Streams += uint64(len(streams))
		if len(streams) < retainedPage {
			return res, nil
		}
		after = streams[len(streams)-1]
	}
}

// applyRetention removes the events of stream that m's retention no longer
// keeps at time now; stored is the stream's highest stored version. It
// costs nothing for a stream without retention.
func applyRetention(ctx context.Context, w *writer, stream string, stored uint64, m marks, now time.Time) error {
	_, err := applyRetentionN(ctx, w, stream, stored, m, now)
	return err
}

// applyRetentionN is applyRetention returning how many events it removed.
func applyRetentionN(ctx context.Context, w *writer, stream string, stored uint64, m marks, now time.Time) (int64, error) {
	r := m.retention
	base, actual := m.versions(stored)
	if r.IsZero() || actual == 0 {
		return 0, nil
	}
	before := r.Cutoff(base)
	if r.MaxAge > 0 {
		var young int64
		err := w.conn.QueryRowContext(ctx, queryFirstYoung, stream, now.Add(-r.MaxAge).UnixMicro()).Scan(&young)
		switch {
		case err == sql.ErrNoRows:
			before = base + 1
		case err != nil:
			return 0, err
		default:
			before = max(before, uint64(young))
		}
	}
	return removeN(ctx, w, stream, before, base)
}

// remove deletes the events of stream below version before, with their
// tags, inside the write transaction; base is the stream's version, which
// its stream_marks row keeps. If a removed event had the highest position,
// a placeholder keeps its position from being given again.
func remove(ctx context.Context, w *writer, stream string, before, base uint64) error {
	_, err := removeN(ctx, w, stream, before, base)
	return err
}

// removeN is remove returning how many events it deleted.
func removeN(ctx context.Context, w *writer, stream string, before, base uint64) (int64, error) {
	var lowest int64
	if err := w.conn.QueryRowContext(ctx, queryMinVersion, stream).Scan(&lowest); err != nil {
		return 0, err
	}
	if lowest == 0 || uint64(lowest) >= before {
		return 0, nil
	}
	if _, err := w.conn.ExecContext(ctx, queryDropPlaceholders); err != nil {
		return 0, err
	}
	var top, after int64
	if err := w.conn.QueryRowContext(ctx, queryMaxPosition2).Scan(&top); err != nil {
		return 0, err
	}
	if _, err := w.conn.ExecContext(ctx, queryRemoveTags, stream, int64(before)); err != nil {
		return 0, err
	}
	res, err := w.conn.ExecContext(ctx, queryRemoveEvents, stream, int64(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if err := w.conn.QueryRowContext(ctx, queryMaxPosition2).Scan(&after); err != nil {
		return 0, err
	}
	if after < top {
		if _, err := w.conn.ExecContext(ctx, queryPlaceholder, top); err != nil {
			return 0, err
		}
	}
	_, err = w.conn.ExecContext(ctx, queryMarkRemoved, stream, int64(base))
	return n, err
}
