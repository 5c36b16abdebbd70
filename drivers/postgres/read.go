package postgres

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

const eventColumns = `tx_id, seq, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, tags, metadata_content_type`

// Reads bound a page in bytes on the server (driver.StreamQuery.MaxBytes):
// the statement returns only the rows the page keeps, so no more than the
// page (at most MaxBytes plus its last event) crosses the wire or sits in
// memory. A cut in the client alone would not do: pgx drains the rows left
// when Rows is closed early, so every row up to the LIMIT would still be
// sent and read, 2 GB for a page of 512 events of 4 MB.
//
// The cut keeps a row while the rows before it hold fewer than maxBytes
// bytes: at least one row, and those up to the first that brings the page
// to maxBytes or more, the rule of driver.Page. octet_length reads a
// value's size from its header (or TOAST pointer) without detoasting it,
// and the rows after the cut are never detoasted nor sent.

// eventBytes is an event's bytes of data and metadata, the n of pageSQL.
const eventBytes = `octet_length(data) + octet_length(metadata) AS n`

// pageSQL returns the statement selecting eventColumns from events (a
// "FROM … WHERE …" clause) in the order of keys (descending when
// backwards), at most limit rows cut at maxBytes (see above).
//
// The LIMIT is computed first (pageRows): limit itself when no event of
// the range is large enough for the page to reach maxBytes (one probe of
// a partial index), otherwise from the sizes of the page's rows: their
// count when they hold fewer than maxBytes, else the count of the rows
// before the cut. A window over
// the page's rows themselves costs more (0.28 ms a page of 512 small
// events, against 0.08 ms for the second scan), but a filtered read takes
// it: repeating a filtered scan costs as much as the scan, which may pass
// many rows to find the page's.
func pageSQL(from, keys string, backwards, filtered bool, limit, maxBytes string) string {
	order := keys
	if backwards {
		order = strings.ReplaceAll(keys, ",", " DESC,") + " DESC"
	}
	if filtered {
		before := `sum(n) OVER (ORDER BY ` + order + ` ROWS UNBOUNDED PRECEDING) - n AS before`
		return `SELECT ` + eventColumns + ` FROM (
	SELECT *, ` + before + ` FROM (
		SELECT ` + eventColumns + `, ` + eventBytes + ` ` + from + ` ORDER BY ` + order + ` LIMIT ` + limit + `
	) e
) e WHERE before < ` + maxBytes
	}
	return `SELECT ` + eventColumns + ` ` + from + ` ORDER BY ` + order + ` LIMIT coalesce(` + pageRows(from, keys, backwards, limit, maxBytes) + `, ` + limit + `)`
}

// largeEvent is the condition that an event holds more than
// largeEventBytes of data and metadata: the predicate of the partial
// indexes events_large_pos_idx and events_large_stream_idx (schema version
// 9), word for word, so that the planner matches them.
const (
	largeEventBytes = 4096
	largeEvent      = `octet_length(data) + octet_length(metadata) > 4096`
)

// pageRows returns an expression of the number of rows of an unfiltered
// page of pageSQL, NULL when the page needs no cut:
//
//   - When limit events of largeEventBytes fit in maxBytes and no event of
//     the range (from, to its end) is larger, a probe of a partial index
//     (empty in a store of small events), no row can reach the cut: the
//     expression is NULL, and the page is read once with LIMIT limit. Before
//     session 11 every page took the count below: it read the page's rows
//     twice, and the second scan was about 60 % of the server's time of a
//     log page (docs/benchmarks.md, "PostgreSQL reads, session 11").
//   - Otherwise, a count of the rows' sizes, read without their values (a
//     second scan of the same rows, in the same snapshot), when they hold
//     fewer than maxBytes; failing that, a window counts the rows before
//     the cut.
//
// The probe looks at the whole range, not only the page's rows, which it
// cannot know before reading them: a large event anywhere after the page
// gives it the count, as every page had before.
func pageRows(from, keys string, backwards bool, limit, maxBytes string) string {
	order := keys
	if backwards {
		order = strings.ReplaceAll(keys, ",", " DESC,") + " DESC"
	}
	sizes := `SELECT ` + keys + `, ` + eventBytes + ` ` + from + ` ORDER BY ` + order + ` LIMIT ` + limit
	before := `sum(n) OVER (ORDER BY ` + order + ` ROWS UNBOUNDED PRECEDING) - n AS before`
	return `(
	SELECT CASE WHEN ` + limit + `::bigint * ` + strconv.Itoa(largeEventBytes) + ` <= ` + maxBytes + `
		AND (SELECT 1 ` + from + ` AND ` + largeEvent + ` ORDER BY ` + order + ` LIMIT 1) IS NULL THEN NULL
	ELSE (
	SELECT CASE WHEN coalesce(sum(n), 0) < ` + maxBytes + ` THEN count(*) ELSE (
		SELECT count(*) FROM (SELECT ` + before + ` FROM (` + sizes + `) w) w WHERE before < ` + maxBytes + `
	) END FROM (` + sizes + `) z) END)`
}

// readStreamFwdSQL and readStreamBwdSQL take the stream ($1), the first
// version ($2), the page's limit ($3) and its bytes (maxBytesArg, $4).
var (
	readStreamFwdSQL = streamPageSQL(`FROM {{schema}}.events WHERE stream_id = $1 AND version >= $2`, false)
	readStreamBwdSQL = streamPageSQL(`FROM {{schema}}.events WHERE stream_id = $1 AND version <= $2`, true)
)

// streamPageSizeSQL returns an upper bound of the rows of a stream page
// (the page's limit, or fewer): a stream's versions are distinct integers,
// so no more of them lie between its first or last version and the page's
// start. Two probes of the stream's index; exact when nothing was deleted
// from the stream.
func streamPageSizeSQL(backwards bool) string {
	last := `coalesce((SELECT max(version) FROM {{schema}}.events WHERE stream_id = $1), 0)`
	if !backwards {
		return `greatest(0, least($3::integer, ` + last + ` - $2 + 1))`
	}
	first := `coalesce((SELECT min(version) FROM {{schema}}.events WHERE stream_id = $1), 1)`
	return `greatest(0, least($3::integer, least($2, ` + last + `) - ` + first + ` + 1))`
}

// streamPageSQL returns a stream read: a head row with the page's row
// count, or a bound of it, and NULL event columns, then the page's events
// (eventColumns) with a NULL count, so scanEvents allocates the page once
// at its size. Started at a guess and grown as rows came, a page of 1,000
// events was allocated three times and copied twice (half the client's
// CPU of a stream read), and a page of a few events took room for 512.
// The count is pageRows' when it counts (for the byte bound), otherwise
// streamPageSizeSQL's bound, which the page's LIMIT can be too: at least
// as many rows as the page has.
func streamPageSQL(from string, backwards bool) string {
	order := `version`
	if backwards {
		order = `version DESC`
	}
	return `WITH p AS MATERIALIZED (SELECT coalesce(` + pageRows(from, `version`, backwards, `$3::integer`, `$4::bigint`) + `, ` + streamPageSizeSQL(backwards) + `) AS n)
SELECT n, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::uuid, NULL::text, NULL::smallint, NULL::bytea, NULL::bytea, NULL::timestamptz, NULL::text[], NULL::smallint FROM p
UNION ALL
SELECT NULL, e.* FROM p, LATERAL (SELECT ` + eventColumns + ` ` + from + ` ORDER BY ` + order + ` LIMIT p.n) e`
}

// belowXminFrom is the range of a forward, unfiltered page of the log
// after ($1, $2) below the statement's pg_snapshot_xmin (plus the offset).
const belowXminFrom = `FROM {{schema}}.events WHERE tx_id < (
	SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + xid_offset FROM {{schema}}.meta)
	AND (tx_id, seq) > ($1::bigint, $2::bigint)`

// readBelowXminSQL is a page of belowXminFrom, at most $3 rows and $4
// bytes, in the shape of streamPageSQL (a head row with the page's row
// count, NULL when not counted, then the events), so scanEvents reads it:
// no snapshot CTE, no scan of pg_locks, no head of fence and horizon.
// pg_snapshot_xmin is a sound fence (see lockFenceSQL: every transaction
// below it had ended at the snapshot), only not always the highest one, so
// a full page of it is a true page of the log; ReadAll reads the rest of a
// page that is not full with the fenced statement (readAllQuery). At pages
// of 4,096 small events it cost the server less CPU per event than the
// fenced statement, whose fixed work (the snapshot CTE, the fence, the head
// row and the LATERAL around the page) comes once a page but is not free
// (docs/benchmarks.md, "Issue 16, where every row stands").
var readBelowXminSQL = `WITH p AS MATERIALIZED (SELECT ` + pageRows(belowXminFrom, `tx_id, seq`, false, `$3::integer`, `$4::bigint`) + ` AS n)
SELECT n, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::uuid, NULL::text, NULL::smallint, NULL::bytea, NULL::bytea, NULL::timestamptz, NULL::text[], NULL::smallint FROM p
UNION ALL
SELECT NULL, e.* FROM p, LATERAL (SELECT ` + eventColumns + ` ` + belowXminFrom + ` ORDER BY tx_id, seq LIMIT coalesce(p.n, $3::integer)) e`

// maxBytesArg is the bytes parameter of a page: MaxBytes, or no bound when
// it is zero.
func maxBytesArg(maxBytes int) int64 {
	if maxBytes <= 0 {
		return math.MaxInt64
	}
	return int64(maxBytes)
}

// The visibility fence. Readers of the global log return only events whose
// tx_id is below the fence of their statement's snapshot, so that once a
// reader has returned a position, every event that becomes visible later
// comes after it. docs/postgres.md ("Positions and why nothing is skipped")
// has the argument in full; in short:
//
// A sound fence is a value F such that every transaction that has an ID
// below F and may still add events to this store had ended when the
// snapshot was taken: its events are then visible to the snapshot, or never
// will be. pg_snapshot_xmin is sound, but it counts every transaction of the
// cluster, so any role that can connect anywhere could stop the log with
// BEGIN; SELECT pg_current_xact_id(). The driver's fence counts only
// transactions that can still write this store's events:
//
//	F = min({x in xip(S) : x still writes, or may have written, events} ∪ {xmax(S)})
//
// where xip(S) are the transactions running at the snapshot S and xmax(S)
// is the lowest ID S treats as not yet started. "May write" is read from one scan of pg_locks,
// taken after S, and a look at the transaction's status after that scan: x
// counts unless the scan shows its ID lock (the granted ExclusiveLock on its
// own transaction ID) held by a virtual transaction that holds no lock on
// the events table in a mode that writes (RowExclusiveLock or stronger;
// readers' AccessShareLock does not count), and pg_xact_status, evaluated
// after the scan (a CASE orders the two), still says x is in progress.
//
// Why that is sound: an append (and an import) is one statement, and
// PostgreSQL takes the statement's RowExclusiveLock on the events table
// before it executes it (at parse, or when binding a prepared statement),
// while the transaction gets its ID only when the statement calls
// pg_current_xact_id(), during execution. The lock is held until the
// transaction ends. So a writer of this store that has an ID holds the lock,
// from before it had its ID until it ends. Take x in xip(S) that does not
// count: x had its ID before S, and x was still in progress after the scan,
// so it had not begun to end (a transaction leaves the process array before
// it releases any lock: the ID lock itself outlives the relation locks, so
// seeing it is not enough). If x were a writer it would have held the lock
// from before S until after the scan, and the scan would show it (pg_locks
// reads every backend's fast-path locks before the main lock table, and a
// lock only ever moves from the former to the latter, so a lock held
// throughout the scan is reported). So x writes no event, now or later. An x
// that may have ended by then counts, whatever it did: it may have committed
// events after S. Every other transaction that had not ended at S (those
// that start later included) has an ID of at least xmax(S), so not below F.
//
// Only roles allowed to write the events table (or LOCK it) can hold the
// fence back; reads wait for them at most ReadWait, and waitFence logs who
// they are. On a standby (pg_is_in_recovery) pg_locks does not show the
// primary's writers, so the fence falls back to pg_snapshot_xmin there.
//
// TestFenceNoSkipUnderChurn provokes these races; without the status check
// it caught readers passing appends that were ending during the scan.

// lockFenceSQL is F above for the snapshot t.c, without the offset.
const lockFenceSQL = `coalesce((WITH l AS MATERIALIZED (
		SELECT locktype, virtualtransaction, transactionid FROM pg_locks
		WHERE granted AND (locktype = 'transactionid' AND mode = 'ExclusiveLock'
			OR locktype = 'relation' AND relation = '{{schema}}.events'::regclass
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND mode NOT IN ('AccessShareLock', 'RowShareLock'))
	) SELECT min(x::text::bigint) FROM pg_snapshot_xip(t.c) x WHERE CASE
		WHEN xid(x) IN (SELECT transactionid FROM l WHERE locktype = 'transactionid'
			AND virtualtransaction NOT IN (SELECT virtualtransaction FROM l WHERE locktype = 'relation'))
		THEN pg_xact_status(x) IS DISTINCT FROM 'in progress'
		ELSE true END
	), pg_snapshot_xmax(t.c)::text::bigint)`

// fenceOf returns the fence of the snapshot t.c plus the offset t.off,
// scanning pg_locks only when pg_snapshot_xmin (t.lo, with the offset), which
// is also sound, is not at least enough: the result is then always at least
// enough when the lock fence is. The lock fence is never below t.lo.
func fenceOf(enough string) string {
	return `CASE WHEN t.lo >= ` + enough + ` OR pg_is_in_recovery() THEN t.lo
		ELSE ` + lockFenceSQL + ` + t.off END`
}

// snapshotCTE is the statement's snapshot (c), the offset (off), the lowest
// possible fence (lo) and the highest committed tx_id (top, NULL when the
// log is empty).
const snapshotCTE = `WITH t AS MATERIALIZED (
	SELECT c, m.xid_offset AS off, pg_snapshot_xmin(c)::text::bigint + m.xid_offset AS lo,
		(SELECT max(tx_id) FROM {{schema}}.events) AS top
	FROM pg_current_snapshot() c, {{schema}}.meta m
)`

// fenceSQL returns the fence of the statement's snapshot, at least $1 when
// the lock fence is (waitFence: every writer open at a snapshot whose
// horizon was $1 has ended).
var fenceSQL = snapshotCTE + `
SELECT ` + fenceOf(`$1::bigint`) + ` FROM t`

// snapshotSQL is the start of readAllQuery's statement, up to the select
// list of its CTE s: the fence, the horizon and the highest committed
// tx_id. pg_snapshot_xmax is the next transaction ID, so every event
// committed before the snapshot has a tx_id below the horizon. When no
// committed event is at or above pg_snapshot_xmin, that is the fence: it
// holds back nothing, and pg_locks is not read.
var snapshotSQL = snapshotCTE + `, s AS MATERIALIZED (
	SELECT ` + fenceOf(`coalesce(t.top, 0) + 1`) + ` AS fence,
		pg_snapshot_xmax(t.c)::text::bigint + t.off AS horizon, t.top`

// blockerSQL finds the backend and the ID of the transaction whose ID, plus
// the offset, is $1: the one holding the fence back. Its PID is NULL for a
// prepared transaction.
const blockerSQL = `SELECT l.pid, l.transactionid::text FROM pg_locks l, {{schema}}.meta m
WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
	AND l.transactionid = xid((($1::bigint - m.xid_offset)::text)::xid8)`

const saveSnapshotSQL = `INSERT INTO {{schema}}.snapshots (stream_id, version, data) VALUES ($1, $2, $3)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, data = excluded.data
WHERE snapshots.version <= excluded.version`

const saveCheckpointSQL = `INSERT INTO {{schema}}.checkpoints (name, tx_id, seq) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, seq = excluded.seq`

// ReadStream implements [driver.Driver].
func (d *Driver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	var rows pgx.Rows
	var err error
	if q.Backwards {
		from := int64(math.MaxInt64)
		if q.From != 0 {
			from = clamp(q.From)
		}
		rows, err = d.pool.Query(ctx, d.sql.readStreamBwd, q.Stream, from, q.Limit, maxBytesArg(q.MaxBytes))
	} else {
		rows, err = d.pool.Query(ctx, d.sql.readStreamFwd, q.Stream, clamp(q.From), q.Limit, maxBytesArg(q.MaxBytes))
	}
	if err != nil {
		return nil, wrapNative(err)
	}
	return scanEvents(rows, &d.pages, q.Limit, q.MaxBytes)
}

// ReadAll implements [driver.Driver]. It returns only events below the
// visibility fence (see lockFenceSQL), in (tx_id, seq) order, walking the
// primary key from the given position, so a page costs an index range scan
// and never a sort of the table. Filtered reads walk an index instead, or
// check each event of the log against the filter by a hash lookup (see
// filterPlan).
//
// The fence alone would hide events that committed before the read started
// while an older append to this store was still open. So the statement also
// reports the snapshot's horizon (the next transaction ID), its fence and
// whether committed events sit at or above the fence; when they do and the
// page is not full (backwards, full or not: those are the newest events),
// ReadAll waits (up to Options.ReadWait) until every writer of the store
// open when it started has ended, and reads again until a read's fence
// reaches that first horizon. A read thus returns
// every event committed before it started, unless a writer stays open longer
// than ReadWait; then it returns what is safe to return, logs the writer's
// backend, and the rest comes with a later read. It never skips.
//
// A forward, unfiltered page is read below pg_snapshot_xmin first, without
// the fence's work (readBelowXminSQL, belowXmin); the fenced statement
// reads what that page does not fill.
func (d *Driver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	var first []driver.RecordedEvent
	if d.belowXmin(q) {
		page, err := d.readBelowXmin(ctx, q)
		if err != nil || driver.PageFull(page, q.Limit, q.MaxBytes) {
			return page, err
		}
		// The log below xmin ends within the page: the fenced statement
		// reads the rest of it.
		if n := len(page); n > 0 {
			first = page
			q.After = page[n-1].Position
			q.Limit -= n
			if q.MaxBytes > 0 {
				q.MaxBytes -= driver.PageBytes(page)
			}
		}
	}
	page, err := d.readFenced(ctx, q)
	if err != nil || first == nil {
		return page, err
	}
	joined := joinPages(first, page)
	d.pages.Put(first)
	d.pages.Put(page)
	return joined, nil
}

// joinPages returns the page below xmin and the fenced statement's rest of
// it as one page, with room as pageBuilder leaves it: its size when the
// first part was counted (or the page ends under a quarter of the room),
// else the first part's room (the limit). Appending would grow a counted
// first part to up to twice the page.
func joinPages(first, rest []driver.RecordedEvent) []driver.RecordedEvent {
	n := len(first) + len(rest)
	room := max(cap(first), n)
	if n < room/4 {
		room = n
	}
	page := make([]driver.RecordedEvent, n, room)
	copy(page, first)
	copy(page[len(first):], rest)
	return page
}

// belowXmin reports whether ReadAll tries q's page below xmin first
// (readBelowXminSQL): a forward, unfiltered read to no Before, which does
// not start at or after the end of the log the last fenced page of such a
// read found (logEnd). A read there, a subscription waiting for new
// events, would find nothing below xmin and send the fenced statement
// after it anyway.
func (d *Driver) belowXmin(q driver.AllQuery) bool {
	if q.Backwards || !q.Filter.IsEmpty() || !q.Before.IsZero() || q.Limit <= 0 {
		return false
	}
	end := d.logEnd.Load()
	return end == nil || q.After.Less(*end)
}

// readBelowXmin runs readBelowXminSQL for q.
func (d *Driver) readBelowXmin(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	rows, err := d.pool.Query(ctx, d.sql.readBelowXmin, clamp(q.After.Commit), clamp(q.After.Prepare), q.Limit, maxBytesArg(q.MaxBytes))
	if err != nil {
		return nil, wrapNative(err)
	}
	return scanEvents(rows, &d.pages, q.Limit, q.MaxBytes)
}

// readFenced is ReadAll with the fenced statement (readAllQuery) alone.
// A forward, unfiltered page that is not full ends at the end of the log
// below its fence: where it ends is kept in logEnd for belowXmin.
func (d *Driver) readFenced(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	query, args := d.readAllQuery(q, false)
	// complete reports that waiting would add nothing to the page: the
	// events held back (at or above the fence) are after Before, or the
	// page is full forwards, a prefix of what follows (the next page goes
	// on after it). Backwards, the events held back are the newest, the
	// first the read should return: it waits whether the page is full or
	// not (Head reads one event backwards).
	complete := func(page []driver.RecordedEvent, head pageHead) bool {
		if !q.Before.IsZero() && q.Before.Commit < uint64(max(head.fence, 0)) {
			return true
		}
		return !q.Backwards && driver.PageFull(page, q.Limit, q.MaxBytes)
	}
	page, err := d.readBehindFence(ctx, query, args, q.Limit, q.MaxBytes, complete)
	if err == nil && !q.Backwards && q.Filter.IsEmpty() && q.Before.IsZero() && !driver.PageFull(page, q.Limit, q.MaxBytes) {
		end := q.After
		if n := len(page); n > 0 {
			end = page[n-1].Position
		}
		d.logEnd.Store(&end)
	}
	return page, err
}

// readBehindFence runs a statement of readAllQuery's shape (or
// ReadQuery's) and, when committed events are held back behind writers of
// the store and the page is not complete, waits (up to Options.ReadWait)
// for the writers open when it started and reads again, until a read's own
// fence has reached the first read's horizon: a read after the wait may
// still stop short, when a transaction that cannot write the store ended
// between its snapshot and its scan of pg_locks (the fence then counts it,
// to be safe).
func (d *Driver) readBehindFence(ctx context.Context, query string, args []any, limit, maxBytes int,
	complete func([]driver.RecordedEvent, pageHead) bool) ([]driver.RecordedEvent, error) {
	page, head, err := d.readAllOnce(ctx, query, args, limit, maxBytes, false)
	if err != nil || !head.blocked || complete(page, head) || d.readWait < 0 {
		return page, err
	}
	horizon, deadline := head.horizon, time.Now().Add(d.readWait)
	for {
		if err := d.waitFence(ctx, horizon, deadline); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return page, nil // still held back: return what is safe
		}
		page, head, err = d.readAllOnce(ctx, query, args, limit, maxBytes, false)
		if err != nil || !head.blocked || head.fence >= horizon || complete(page, head) {
			return page, err
		}
	}
}

// readAllQuery builds the statement for q: ReadAll's, or with scan
// ReadAllScan's (see scanSQL). A head row comes before the events (see
// headRow) with the horizon and whether a committed event is held back,
// computed once from the statement's snapshot, and for an unfiltered read
// the page's row count; it is there when no event matches too.
//
// Every parameter enters through the materialized CTE s, so the planner
// estimates the statement the same way whatever their values, and the
// prepared statement settles on a generic plan after its first five runs.
// With the parameters in the page's WHERE and LIMIT, a custom plan (for the
// LIMIT it can see) always looked cheaper than the generic one (which
// assumes 10% of the table), so every page was planned afresh: 0.15–0.25 ms,
// as long as running it.
func (d *Driver) readAllQuery(q driver.AllQuery, scan bool) (string, []any) {
	var params strings.Builder
	args := make([]any, 0, 10)
	arg := func(v any, typ string) string {
		args = append(args, v)
		n := strconv.Itoa(len(args))
		params.WriteString(`, $` + n + `::` + typ + ` AS p` + n)
		return "p" + n
	}
	var after, before [2]string
	if !q.After.IsZero() {
		after = [2]string{arg(clamp(q.After.Commit), "bigint"), arg(clamp(q.After.Prepare), "bigint")}
	}
	if !q.Before.IsZero() {
		before = [2]string{arg(clamp(q.Before.Commit), "bigint"), arg(clamp(q.Before.Prepare), "bigint")}
	}
	// inRange is the condition that an event is below the fence and in
	// the range of q, with the parameters of the CTE x.
	inRange := func(x string) string {
		c := `tx_id < ` + x + `.fence`
		if after[0] != "" {
			c += ` AND (tx_id, seq) > (` + x + `.` + after[0] + `, ` + x + `.` + after[1] + `)`
		}
		if before[0] != "" {
			c += ` AND (tx_id, seq) < (` + x + `.` + before[0] + `, ` + x + `.` + before[1] + `)`
		}
		return c
	}
	plan := planFilter(q.Filter, arg)
	limit := arg(q.Limit, "integer")
	maxBytes := arg(maxBytesArg(q.MaxBytes), "bigint")
	events := quoteIdent(d.schema) + `.events`
	if scan {
		return d.sql.snapshot + params.String() + `
FROM t)` + scanSQL(events, inRange, plan, limit, maxBytes), args
	}
	// blocked is true when some committed event is at or above the fence.
	// It ignores the range and the filter, so it may make a read wait for
	// nothing, but it is one probe of the primary key; a filtered probe
	// could scan far when the filter is selective.
	if plan.filtered() {
		return d.sql.snapshot + params.String() + `
FROM t)` + headRow(`s`, `NULL::bigint`, ``) + `
	` + pageSQL(plan.from(events, "s", inRange("s"), q.Backwards, "s."+limit), `tx_id, seq`, q.Backwards, true, "s."+limit, "s."+maxBytes) + `
) e`, args
	}
	// Unfiltered, the CTE g counts the page's rows first (pageRows), from
	// their sizes: the page is then read with that LIMIT, and the client
	// allocates it at its size.
	from := plan.from(events, "s", inRange("s"), q.Backwards, "")
	order := `tx_id, seq`
	if q.Backwards {
		order = `tx_id DESC, seq DESC`
	}
	return d.sql.snapshot + params.String() + `
FROM t), g AS MATERIALIZED (
	SELECT ` + pageRows(from, `tx_id, seq`, q.Backwards, "s."+limit, "s."+maxBytes) + ` AS n FROM s
)` + headRow(`s, g`, `g.n`, ``) + `
	SELECT ` + eventColumns + ` ` + from + ` ORDER BY ` + order + ` LIMIT coalesce(g.n, s.` + limit + `)
) e`, args
}

// headRow returns the rest of a statement of readAllQuery after its CTEs:
// first one row of the page's head from the CTEs in from (the horizon,
// whether a committed event is at or above the fence, the fence, the
// page's row count n (NULL: not counted), then the columns extra of
// ReadAllScan), with NULL events, then the page's events, one row each,
// with NULL head columns, from a LATERAL subquery e the caller completes
// ("SELECT … ) e").
//
// The head is sent once, not on every row: three more values in every row
// cost the server a send function call and a buffer each (1.25 against
// 1.09 µs of server CPU an event in one measurement, docs/benchmarks.md);
// a NULL is only its length word.
// PostgreSQL runs the branches of a UNION ALL in order, so the head comes
// first; readAllOnce does not rely on it.
func headRow(from, n, extra string) string {
	nulls := strings.Repeat(`NULL, `, 4+strings.Count(extra, `,`))
	return `
SELECT horizon, coalesce(top >= fence, false), fence, ` + n + extra + `, ` +
		`NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::uuid, NULL::text, NULL::smallint, NULL::bytea, NULL::bytea, NULL::timestamptz, NULL::text[], NULL::smallint
FROM ` + from + `
UNION ALL
SELECT ` + nulls + `e.* FROM ` + from + `, LATERAL (`
}

// pageHead is what a statement of readAllQuery reports besides its events,
// in its head row, from the statement's snapshot.
type pageHead struct {
	horizon int64 // the next transaction ID, plus the offset
	blocked bool  // a committed event is at or above the fence
	fence   int64 // the fence, plus the offset
	rows    int   // how many events follow; -1: not counted
	// For ReadAllScan: the last position the page's scan covers (zero when
	// none), and whether the scan's range reached the fence.
	end   driver.Position
	atEnd bool
}

// headOIDs are the types of the head columns of readAllQuery's statements,
// scanHeadOIDs those ReadAllScan's add.
var (
	headOIDs     = [...]uint32{pgtype.Int8OID, pgtype.BoolOID, pgtype.Int8OID, pgtype.Int8OID}
	scanHeadOIDs = [...]uint32{pgtype.Int8OID, pgtype.Int8OID, pgtype.BoolOID}
)

// readAllOnce runs a statement of readAllQuery (with scan, ReadAllScan's):
// its head row (see headRow), then the page's events, which end where the
// page is full.
func (d *Driver) readAllOnce(ctx context.Context, query string, args []any, limit, maxBytes int, scan bool) (events []driver.RecordedEvent, head pageHead, err error) {
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, head, wrapNative(err)
	}
	defer rows.Close()
	page := newPageBuilder(&d.pages, limit, maxBytes)
	oids := headOIDs[:]
	if scan {
		oids = append(oids, scanHeadOIDs[:]...)
	}
	nh := len(oids)
	// alloc makes the page's slice: at its size when the head row has
	// counted the events (see pageBuilder).
	alloc := func() { page.size(head.rows) }
	head.rows = -1
	sawHead := false
	fds := rows.FieldDescriptions()
	if len(fds) > nh && binaryColumns(fds[:nh], oids...) && binaryColumns(fds[nh:], eventOIDs[:]...) {
		var dec eventDecoder
		for rows.Next() {
			v := rows.RawValues()
			if v[0] != nil { // the head row
				if head, err = decodeHead(v[:nh]); err != nil {
					return nil, head, err
				}
				sawHead = true
				continue
			}
			if page.Full() {
				continue // not expected: the statement's rows end there
			}
			alloc()
			if err := dec.decode(v[nh:], page.Next()); err != nil {
				return nil, head, err
			}
			page.Added()
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, head, wrapNative(err)
		}
		if !sawHead {
			return nil, head, errBadValue
		}
		return page.events(), head, nil
	}
	var (
		horizon, fence, n pgtype.Int8
		blocked, atEnd    pgtype.Bool
		endTx, endSeq     pgtype.Int8
		txID, seq, ver    pgtype.Int8
		stream, typ       pgtype.Text
		id                pgtype.UUID
		ct, mct           pgtype.Int2
		data, meta        []byte
		at                pgtype.Timestamptz
		tags              []string
	)
	targets := []any{&horizon, &blocked, &fence, &n}
	if scan {
		targets = append(targets, &endTx, &endSeq, &atEnd)
	}
	targets = append(targets, &txID, &seq, &stream, &ver, &id, &typ, &ct, &data, &meta, &at, &tags, &mct)
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			return nil, head, wrapNative(err)
		}
		if horizon.Valid { // the head row
			head = pageHead{horizon: horizon.Int64, blocked: blocked.Bool, fence: fence.Int64, rows: -1, atEnd: atEnd.Bool}
			if n.Valid {
				head.rows = int(n.Int64)
			}
			if endTx.Valid && endSeq.Valid {
				head.end = driver.Position{Commit: uint64(endTx.Int64), Prepare: uint64(endSeq.Int64)}
			}
			sawHead = true
			continue
		}
		if !txID.Valid || page.Full() {
			continue
		}
		alloc()
		page.Add(driver.RecordedEvent{
			StreamID:    stream.String,
			Version:     uint64(ver.Int64),
			Position:    driver.Position{Commit: uint64(txID.Int64), Prepare: uint64(seq.Int64)},
			ID:          uuid.UUID(id.Bytes),
			Type:        typ.String,
			ContentType: driver.ContentType(ct.Int16),
			Data:        data,
			Metadata:    meta,
			RecordedAt:  at.Time.UTC(),
			Tags:        tags,

			MetadataContentType: driver.ContentType(mct.Int16),
		})
		data, meta, tags, mct = nil, nil, nil, pgtype.Int2{}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, head, wrapNative(err)
	}
	if !sawHead {
		return nil, head, errBadValue
	}
	return page.events(), head, nil
}

// decodeHead decodes the binary head row of a statement of readAllQuery:
// horizon, blocked, fence and the row count (NULL: not counted), and for a
// scan the end position (NULL when the range holds no event) and atEnd.
func decodeHead(v [][]byte) (pageHead, error) {
	h := pageHead{rows: -1}
	if len(v[0]) != 8 || len(v[1]) != 1 || len(v[2]) != 8 || v[3] != nil && len(v[3]) != 8 {
		return h, errBadValue
	}
	h.horizon, h.blocked, h.fence = int64(binary.BigEndian.Uint64(v[0])), v[1][0] != 0, int64(binary.BigEndian.Uint64(v[2]))
	if v[3] != nil {
		h.rows = int(binary.BigEndian.Uint64(v[3]))
	}
	if len(v) == len(headOIDs) {
		return h, nil
	}
	switch {
	case len(v[6]) != 1:
		return h, errBadValue
	case v[4] == nil && v[5] == nil:
	case len(v[4]) != 8 || len(v[5]) != 8:
		return h, errBadValue
	default:
		h.end = driver.Position{Commit: binary.BigEndian.Uint64(v[4]), Prepare: binary.BigEndian.Uint64(v[5])}
	}
	h.atEnd = v[6][0] != 0
	return h, nil
}

// waitFence waits until the fence reaches horizon, that is until every
// writer of the store that was open at the snapshot that reported horizon
// has ended, polling with back-off until deadline (the read's ReadWait).
// When the deadline passes it logs the backend holding the fence back (see
// logBlocker) and returns the context's error.
func (d *Driver) waitFence(ctx context.Context, horizon int64, deadline time.Time) error {
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	wait := 100 * time.Microsecond
	var fence int64 // the last fence read; 0: none yet
	for {
		var f int64
		if err := d.pool.QueryRow(wctx, d.sql.fence, horizon).Scan(&f); err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				d.logBlocker(ctx, fence)
			}
			return err
		}
		fence = f
		if fence >= horizon {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-wctx.Done():
			t.Stop()
			if ctx.Err() == nil {
				d.logBlocker(ctx, fence)
			}
			return wctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 5*time.Millisecond)
	}
}

// logBlocker logs, once per blocking transaction, the backend of the
// transaction whose ID is fence: a writer of this store (or a role that
// locked its events table) kept open longer than ReadWait, which holds the
// global log back until it ends. A fence of 0 (not read) is not logged.
func (d *Driver) logBlocker(ctx context.Context, fence int64) {
	if fence == 0 || d.blockerLogged.Swap(fence) == fence {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var (
		pid *int32
		xid string
	)
	err := d.pool.QueryRow(lctx, strings.ReplaceAll(blockerSQL, "{{schema}}", quoteIdent(d.schema)), pgx.QueryExecModeExec, fence).Scan(&pid, &xid)
	switch {
	case err == pgx.ErrNoRows:
		return // it has just ended
	case err != nil:
		d.logger.Debug("postgres: could not find the transaction holding reads back", "driver", "postgres", "error", err)
		return
	}
	attrs := []any{"driver", "postgres", "xid", xid, "read_wait", d.readWait}
	if pid != nil {
		attrs = append(attrs, "pid", *pid)
	} else {
		attrs = append(attrs, "prepared", true)
	}
	d.logger.Warn("postgres: an open transaction that may write the store holds the global log back; "+
		"reads and subscriptions see no later events until it ends", attrs...)
}

// scanEvents reads the rows of a statement of streamPageSQL: the head row
// with the page's row count (or a bound of it; NULL: none), then rows of
// eventColumns, until the page holds limit events or maxBytes bytes
// (driver.Page), which is where the rows of the statement end too. The
// page is allocated once, at the head's count (PostgreSQL runs the
// branches of a UNION ALL in order, so the head comes first; without it,
// or with a NULL count, the page is allocated at its limit, see
// pageBuilder). The head row is the one whose tx_id is NULL.
func scanEvents(rows pgx.Rows, pool *driver.PagePool, limit, maxBytes int) ([]driver.RecordedEvent, error) {
	defer rows.Close()
	page := newPageBuilder(pool, limit, maxBytes)
	fds := rows.FieldDescriptions()
	if len(fds) > 1 && binaryColumns(fds[:1], pgtype.Int8OID) && binaryColumns(fds[1:], eventOIDs[:]...) {
		var dec eventDecoder
		for rows.Next() {
			v := rows.RawValues()
			if v[1] == nil { // the head row: an event's tx_id is never NULL
				switch {
				case v[0] == nil:
					page.size(-1) // not counted
				case len(v[0]) != 8:
					return nil, errBadValue
				default:
					page.size(int(binary.BigEndian.Uint64(v[0])))
				}
				continue
			}
			page.size(-1)
			if err := dec.decode(v[1:], page.Next()); err != nil {
				return nil, err
			}
			if page.Added() {
				break
			}
		}
	} else {
		var (
			head           *int64
			txID, seq, ver int64
			id             [16]byte
			ct             int16
			mct            *int16
		)
		skip := make([]any, len(fds))
		for rows.Next() {
			if rows.RawValues()[1] == nil { // the head row
				skip[0] = &head
				if err := rows.Scan(skip...); err != nil {
					return nil, wrapNative(err)
				}
				if head == nil {
					page.size(-1) // not counted
				} else {
					page.size(int(*head))
				}
				continue
			}
			page.size(-1)
			var ev driver.RecordedEvent
			if err := rows.Scan(nil, &txID, &seq, &ev.StreamID, &ver, &id, &ev.Type, &ct, &ev.Data, &ev.Metadata, &ev.RecordedAt, &ev.Tags, &mct); err != nil {
				return nil, wrapNative(err)
			}
			ev.Position = driver.Position{Commit: uint64(txID), Prepare: uint64(seq)}
			ev.Version = uint64(ver)
			ev.ID = uuid.UUID(id)
			ev.ContentType = driver.ContentType(ct)
			if mct != nil {
				ev.MetadataContentType = driver.ContentType(*mct)
			}
			ev.RecordedAt = ev.RecordedAt.UTC()
			if page.Add(ev) {
				break
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrapNative(err)
	}
	return page.events(), nil
}

// clamp converts a version or position part to a bigint parameter. Stored
// values are below MaxInt64, so clamping larger ones keeps comparisons exact.
func clamp(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// StreamVersion implements [driver.Driver].
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	var v int64
	if err := d.pool.QueryRow(ctx, d.sql.streamVersion, stream).Scan(&v); err != nil {
		return 0, wrapNative(err)
	}
	return uint64(v), nil
}
