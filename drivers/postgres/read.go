package postgres

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

const eventColumns = `tx_id, seq, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at`

const readStreamFwdSQL = `SELECT ` + eventColumns + ` FROM {{schema}}.events
WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`

const readStreamBwdSQL = `SELECT ` + eventColumns + ` FROM {{schema}}.events
WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`

// fenceSQL is the visibility fence: every transaction with an ID below it
// has ended, so no event below it can still appear. Readers only return
// events below it, so once a reader has seen a position every event that
// becomes visible later comes after it (docs/postgres.md has the argument).
const fenceSQL = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + (SELECT xid_offset FROM {{schema}}.meta LIMIT 1)`

// snapshotSQL is the start of the select list of readAllQuery's CTE: the
// fence and the horizon of the statement's snapshot c (m is the meta row).
// pg_snapshot_xmax is the next transaction ID, so every event committed
// before the snapshot has a tx_id below the horizon.
const snapshotSQL = `SELECT pg_snapshot_xmin(c)::text::bigint + m.xid_offset AS fence,
	pg_snapshot_xmax(c)::text::bigint + m.xid_offset AS horizon`

const saveSnapshotSQL = `INSERT INTO {{schema}}.snapshots (stream_id, version, data) VALUES ($1, $2, $3)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, data = excluded.data
WHERE snapshots.version <= excluded.version`

const saveCheckpointSQL = `INSERT INTO {{schema}}.checkpoints (name, tx_id, seq) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, seq = excluded.seq`

// ReadStream implements [eventstore.Driver].
func (d *Driver) ReadStream(ctx context.Context, q eventstore.StreamQuery) ([]eventstore.RecordedEvent, error) {
	var rows pgx.Rows
	var err error
	if q.Backwards {
		from := int64(math.MaxInt64)
		if q.From != 0 {
			from = clamp(q.From)
		}
		rows, err = d.pool.Query(ctx, d.sql.readStreamBwd, q.Stream, from, q.Limit)
	} else {
		rows, err = d.pool.Query(ctx, d.sql.readStreamFwd, q.Stream, clamp(q.From), q.Limit)
	}
	if err != nil {
		return nil, wrapNative(err)
	}
	return scanEvents(rows, q.Limit)
}

// ReadAll implements [eventstore.Driver]. It returns only events below the
// visibility fence (see fenceSQL), in (tx_id, seq) order, walking the primary
// key from the given position, so a page costs an index range scan and never
// a sort of the table.
//
// The fence alone would hide events that committed before the read started
// while an older transaction was still open anywhere in the cluster. So the
// statement also reports the snapshot's horizon (the next transaction ID) and
// whether committed events in range sit at or above the fence; when they do
// and the page is not full, ReadAll waits (up to Options.ReadWait) until every
// transaction open when it started has ended, and reads again. A read thus
// returns every event committed before it started, unless a transaction
// stays open longer than ReadWait; then it returns what is safe to return,
// and the rest comes with a later read. It never skips.
func (d *Driver) ReadAll(ctx context.Context, q eventstore.AllQuery) ([]eventstore.RecordedEvent, error) {
	query, args := d.readAllQuery(q)
	page, horizon, blocked, err := d.readAllOnce(ctx, query, args, q.Limit)
	if err != nil || !blocked || len(page) == q.Limit {
		return page, err
	}
	if d.readWait < 0 {
		return page, nil
	}
	if err := d.waitFence(ctx, horizon); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return page, nil // still held back: return what is safe
	}
	page, _, _, err = d.readAllOnce(ctx, query, args, q.Limit)
	return page, err
}

// readAllQuery builds the statement for q. The events come with the
// horizon and whether a committed event is held back, computed once from the
// statement's snapshot; a LEFT JOIN keeps that row when no event matches.
//
// Every parameter enters through the materialized CTE s, so the planner
// estimates the statement the same way whatever their values, and the
// prepared statement settles on a generic plan after its first five runs.
// With the parameters in the page's WHERE and LIMIT, a custom plan (for the
// LIMIT it can see) always looked cheaper than the generic one (which
// assumes 10% of the table), so every page was planned afresh: 0.15–0.25 ms,
// as long as running it.
func (d *Driver) readAllQuery(q eventstore.AllQuery) (string, []any) {
	var cond, params strings.Builder
	args := make([]any, 0, 8)
	arg := func(v any, typ string) string {
		args = append(args, v)
		n := strconv.Itoa(len(args))
		params.WriteString(`, $` + n + `::` + typ + ` AS p` + n)
		return "s.p" + n
	}
	if !q.After.IsZero() {
		cond.WriteString(` AND (tx_id, seq) > (` + arg(clamp(q.After.Commit), "bigint") + `, ` + arg(clamp(q.After.Prepare), "bigint") + `)`)
	}
	if !q.Before.IsZero() {
		cond.WriteString(` AND (tx_id, seq) < (` + arg(clamp(q.Before.Commit), "bigint") + `, ` + arg(clamp(q.Before.Prepare), "bigint") + `)`)
	}
	if len(q.Filter.Categories) > 0 {
		cond.WriteString(` AND split_part(stream_id, '-', 1) = ANY(` + arg(q.Filter.Categories, "text[]") + `)`)
	}
	if len(q.Filter.EventTypes) > 0 {
		cond.WriteString(` AND event_type = ANY(` + arg(q.Filter.EventTypes, "text[]") + `)`)
	}
	order := ` ORDER BY tx_id, seq`
	if q.Backwards {
		order = ` ORDER BY tx_id DESC, seq DESC`
	}
	limit := arg(q.Limit, "integer")
	events := quoteIdent(d.schema) + `.events`
	// blocked is true when some committed event is at or above the fence.
	// It ignores the range and the filter, so it may make a read wait for
	// nothing, but it is one probe of the primary key; a filtered probe
	// could scan far when the filter is selective.
	query := `WITH s AS MATERIALIZED (` + d.sql.snapshot + params.String() + `
FROM pg_current_snapshot() c, ` + quoteIdent(d.schema) + `.meta m)
SELECT s.horizon, coalesce((SELECT max(tx_id) FROM ` + events + `) >= s.fence, false), e.* FROM s LEFT JOIN LATERAL (
	SELECT ` + eventColumns + ` FROM ` + events + ` WHERE tx_id < s.fence` + cond.String() + order + ` LIMIT ` + limit + `
) e ON true`
	return query, args
}

func (d *Driver) readAllOnce(ctx context.Context, query string, args []any, limit int) (page []eventstore.RecordedEvent, horizon int64, blocked bool, err error) {
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, 0, false, wrapNative(err)
	}
	page = make([]eventstore.RecordedEvent, 0, min(limit, 512))
	fds := rows.FieldDescriptions()
	if len(fds) > 2 && binaryColumns(fds[:2], pgtype.Int8OID, pgtype.BoolOID) && binaryColumns(fds[2:], eventOIDs[:]...) {
		var dec eventDecoder
		first := true
		for rows.Next() {
			v := rows.RawValues()
			if first {
				first = false
				if len(v[0]) != 8 || len(v[1]) != 1 {
					rows.Close()
					return nil, 0, false, errBadValue
				}
				horizon, blocked = int64(binary.BigEndian.Uint64(v[0])), v[1][0] != 0
			}
			if v[2] == nil {
				continue // no event matched: only the snapshot's row
			}
			var ev eventstore.RecordedEvent
			if err := dec.decode(v[2:], &ev); err != nil {
				rows.Close()
				return nil, 0, false, err
			}
			page = append(page, ev)
		}
		if err := rows.Err(); err != nil {
			return nil, 0, false, wrapNative(err)
		}
		return page, horizon, blocked, nil
	}
	var (
		txID, seq, ver pgtype.Int8
		stream, typ    pgtype.Text
		id             pgtype.UUID
		ct             pgtype.Int2
		data, meta     []byte
		at             pgtype.Timestamptz
	)
	_, err = pgx.ForEachRow(rows, []any{&horizon, &blocked, &txID, &seq, &stream, &ver, &id, &typ, &ct, &data, &meta, &at}, func() error {
		if !txID.Valid {
			return nil // no event matched: only the snapshot's row
		}
		page = append(page, eventstore.RecordedEvent{
			StreamID:    stream.String,
			Version:     uint64(ver.Int64),
			Position:    eventstore.Position{Commit: uint64(txID.Int64), Prepare: uint64(seq.Int64)},
			ID:          uuid.UUID(id.Bytes),
			Type:        typ.String,
			ContentType: eventstore.ContentType(ct.Int16),
			Data:        data,
			Metadata:    meta,
			RecordedAt:  at.Time.UTC(),
		})
		data, meta = nil, nil
		return nil
	})
	if err != nil {
		return nil, 0, false, wrapNative(err)
	}
	return page, horizon, blocked, nil
}

// waitFence waits until the fence reaches horizon, that is until every
// transaction that was open at the snapshot that reported horizon has ended,
// polling with back-off for at most the driver's ReadWait.
func (d *Driver) waitFence(ctx context.Context, horizon int64) error {
	ctx, cancel := context.WithTimeout(ctx, d.readWait)
	defer cancel()
	wait := 100 * time.Microsecond
	for {
		var fence int64
		if err := d.pool.QueryRow(ctx, d.sql.fence).Scan(&fence); err != nil {
			return err
		}
		if fence >= horizon {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 5*time.Millisecond)
	}
}

// scanEvents reads rows of eventColumns.
func scanEvents(rows pgx.Rows, limit int) ([]eventstore.RecordedEvent, error) {
	out := make([]eventstore.RecordedEvent, 0, min(limit, 512))
	if binaryColumns(rows.FieldDescriptions(), eventOIDs[:]...) {
		var dec eventDecoder
		for rows.Next() {
			var ev eventstore.RecordedEvent
			if err := dec.decode(rows.RawValues(), &ev); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, ev)
		}
		if err := rows.Err(); err != nil {
			return nil, wrapNative(err)
		}
		return out, nil
	}
	var (
		ev             eventstore.RecordedEvent
		txID, seq, ver int64
		id             [16]byte
		ct             int16
	)
	_, err := pgx.ForEachRow(rows, []any{&txID, &seq, &ev.StreamID, &ver, &id, &ev.Type, &ct, &ev.Data, &ev.Metadata, &ev.RecordedAt}, func() error {
		ev.Position = eventstore.Position{Commit: uint64(txID), Prepare: uint64(seq)}
		ev.Version = uint64(ver)
		ev.ID = uuid.UUID(id)
		ev.ContentType = eventstore.ContentType(ct)
		ev.RecordedAt = ev.RecordedAt.UTC()
		out = append(out, ev)
		ev.Data, ev.Metadata = nil, nil
		return nil
	})
	if err != nil {
		return nil, wrapNative(err)
	}
	return out, nil
}

// clamp converts a version or position part to a bigint parameter. Stored
// values are below MaxInt64, so clamping larger ones keeps comparisons exact.
func clamp(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// StreamVersion implements [eventstore.Driver].
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	var v int64
	if err := d.pool.QueryRow(ctx, d.sql.streamVersion, stream).Scan(&v); err != nil {
		return 0, wrapNative(err)
	}
	return uint64(v), nil
}

// SaveSnapshot implements [eventstore.Driver].
func (d *Driver) SaveSnapshot(ctx context.Context, stream string, snap eventstore.Snapshot) error {
	if _, err := d.pool.Exec(ctx, d.sql.saveSnapshot, stream, clamp(snap.Version), nonNil(snap.Data)); err != nil {
		return wrapNative(err)
	}
	return nil
}

// LoadSnapshot implements [eventstore.Driver].
func (d *Driver) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, bool, error) {
	var snap eventstore.Snapshot
	var v int64
	err := d.pool.QueryRow(ctx, d.sql.loadSnapshot, stream).Scan(&v, &snap.Data)
	if err == pgx.ErrNoRows {
		return eventstore.Snapshot{}, false, nil
	}
	if err != nil {
		return eventstore.Snapshot{}, false, wrapNative(err)
	}
	snap.Version = uint64(v)
	return snap, true, nil
}

// SaveCheckpoint implements [eventstore.Driver]. Both parts of the position
// are stored: the transaction ID alone would lose events (DESIGN.md).
func (d *Driver) SaveCheckpoint(ctx context.Context, name string, pos eventstore.Position) error {
	if _, err := d.pool.Exec(ctx, d.sql.saveCheckpoint, name, clamp(pos.Commit), clamp(pos.Prepare)); err != nil {
		return wrapNative(err)
	}
	return nil
}

// LoadCheckpoint implements [eventstore.Driver].
func (d *Driver) LoadCheckpoint(ctx context.Context, name string) (eventstore.Position, bool, error) {
	var txID, seq int64
	err := d.pool.QueryRow(ctx, d.sql.loadCheckpt, name).Scan(&txID, &seq)
	if err == pgx.ErrNoRows {
		return eventstore.Position{}, false, nil
	}
	if err != nil {
		return eventstore.Position{}, false, wrapNative(err)
	}
	return eventstore.Position{Commit: uint64(txID), Prepare: uint64(seq)}, true, nil
}
