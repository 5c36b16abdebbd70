package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/retry"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// appendSQL appends a batch in one statement, so in one implicit transaction
// and one round trip. It reads the stream's version, looks for a retry (the
// batch's first event ID began an earlier append to the stream) and, when
// there is none and the expectation holds, inserts every event from
// unnest-ed arrays.
//
// The check is atomic with the write: a concurrent append that takes the same
// version makes the insert wait for it and then fail on
// events_stream_version_key (23505), after which Append runs the statement
// again and sees the winner. A successful insert of version n+1 therefore saw
// version n committed before its transaction took an ID, so a stream's events
// are in version order in the global log too.
//
// It returns the version it saw, the version of the retried event (or NULL),
// and the position and version of the last event written (or NULLs).
//
// Parameters: $1 stream, $2 expectation kind (0 exact, 1 any, 2 stream
// exists), $3 expected version, $4 first event ID, $5–$9 the events' IDs,
// types, content types, data and metadata, $10 the recorded time.
const appendSQL = appendCTEs + `
SELECT (SELECT a FROM cur), (SELECT version FROM dup), last.tx_id, last.seq, last.version
FROM (SELECT) one LEFT JOIN last ON true`

// appendCTEs is the part appendSQL and appendNotifySQL share: read the
// version, look for a retry, insert. A retry is found by the batch's first
// event ID among the first events of earlier appends (starts_append, one
// entry per append in a partial index), as semantics.md allows; a batch
// whose first ID sits inside an earlier batch is not recognised.
const appendCTEs = `WITH cur AS (
	SELECT greatest(b.v, coalesce(m.last, 0)) AS v,
		CASE WHEN m.deleted AND b.v <= m.last THEN 0 ELSE greatest(b.v, coalesce(m.last, 0)) END AS a
	FROM (SELECT coalesce(max(version), 0) AS v FROM {{schema}}.events WHERE stream_id = $1) b
		LEFT JOIN {{schema}}.stream_marks m ON m.stream_id = $1
), dup AS (
	SELECT max(version) FILTER (WHERE stream_id = $1) AS version FROM {{schema}}.events WHERE event_id = $4 AND starts_append
), ins AS (
	INSERT INTO {{schema}}.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, starts_append)
	SELECT x.tx_id, $1, cur.v + e.ord, e.id, e.typ, e.ct, e.data, e.meta, $10, e.ord = 1
	FROM cur, dup,
		(SELECT pg_current_xact_id()::text::bigint + (SELECT xid_offset FROM {{schema}}.meta LIMIT 1) AS tx_id) x,
		unnest($5::uuid[], $6::text[], $7::smallint[], $8::bytea[], $9::bytea[]) WITH ORDINALITY AS e(id, typ, ct, data, meta, ord)
	WHERE dup.version IS NULL
		AND CASE $2::integer WHEN 1 THEN true WHEN 2 THEN cur.a > 0 ELSE cur.a = $3 END
	ORDER BY e.ord
	RETURNING tx_id, seq, version
), last AS (
	SELECT tx_id, seq, version FROM ins ORDER BY version DESC LIMIT 1
)`

// appendNotifySQL is appendSQL that also sends the notification inside the
// append's transaction ($11 is the channel). See notifyInTx.
const appendNotifySQL = appendCTEs + `, note AS (
	SELECT pg_notify($11, tx_id::text) FROM last
)
SELECT (SELECT a FROM cur), (SELECT version FROM dup), last.tx_id, last.seq, last.version
FROM (SELECT) one LEFT JOIN last ON true, (SELECT count(*) FROM note) n`

// notifySQL sends the wake-up notification after an append committed, in a
// transaction of its own, when some driver listens: every listening
// connection holds the listeners' advisory lock (keyed by the channel, $1; see listenSQL) in
// shared mode, so taking it exclusively succeeds only when none does, and
// then nothing is sent. A NOTIFY gives its transaction an ID and a commit
// record and queues the message; the lock test writes nothing, so a store
// nobody subscribes to live pays one small read-only statement per
// notifyGap instead (BenchmarkNotify). With a NOTIFY, synchronous_commit is
// off for the transaction, as losing a wake-up in a crash only delays
// subscribers until their next poll. It returns whether it notified.
//
// A listener takes its lock after LISTEN and before its watchers read, so a
// commit whose notification was skipped is visible to that read.
const notifySQL = `SELECT set_config('synchronous_commit', 'off', true),
	CASE WHEN pg_try_advisory_xact_lock(hashtextextended($1, 0)) THEN false ELSE (SELECT true FROM pg_notify($1, $2)) END`

// listenSQL marks a listening connection for notifySQL: the listeners'
// advisory lock ($1, the channel) in shared mode, for the session. It is in
// the single-bigint key space, apart from the driver's two-key locks.
const listenSQL = `SELECT pg_advisory_lock_shared(hashtextextended($1, 0))`

// retriedSQL reads the events a retried append would have written, content
// included, to compare them with the retry.
const retriedSQL = `SELECT version, event_id, tx_id, seq, event_type, content_type, data, metadata, tags FROM {{schema}}.events
WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`

// maxAttempts bounds how often Append runs its statement when the server
// reports a conflict it may resolve by trying again: a concurrent append won
// the version (23505), a serialization failure (40001) or a deadlock (40P01).
// An append at Any or StreamExists that lost the version is not bounded: it
// never fails for that (see Append).
const maxAttempts = 8

// lockStreamSQL takes a transaction-level advisory lock on a stream of a
// schema ($1, $2). Appends at Any or StreamExists that lost a race for the
// end of a stream take it before trying again, so they queue instead of
// racing each other.
const lockStreamSQL = `SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`

// notifyMode selects where the wake-up notification is sent. Inside the
// append's transaction NOTIFY takes a database-wide lock that PostgreSQL
// holds until the commit is flushed, which serializes the commits of all
// concurrent appends (BenchmarkNotify measures it). So an append hands its
// transaction ID to the driver's notifier after the commit, which sends one
// NOTIFY for everything committed since its last one, on its own, off the
// append's path. A notification lost to a crash in between only delays
// subscribers until their next poll. The other modes exist for the benchmark.
var notifyMode = notifyAfterCommit

const (
	notifyAfterCommit = iota
	notifyInTx
	notifyNever // measures what notifying costs; subscriptions then poll
)

// Append implements [driver.Driver].
func (d *Driver) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	if hasTags(req.Events) {
		return d.appendTagged(ctx, req) // takes the tag locks (tags.go)
	}
	n := len(req.Events)
	ids := make([][16]byte, n)
	types := make([]string, n)
	cts := make([]int16, n)
	data := make([][]byte, n)
	meta := make([][]byte, n)
	size := 0
	for i, e := range req.Events {
		size += len(e.Data) + len(e.Metadata) + len(e.Type)
		ids[i] = e.ID
		types[i] = e.Type
		cts[i] = int16(e.ContentType)
		data[i] = nonNil(e.Data)
		meta[i] = nonNil(e.Metadata)
	}
	kind, expected := 0, int64(req.Expected.Version())
	switch req.Expected.Kind() {
	case driver.ExpectAny:
		kind = 1
	case driver.ExpectStreamExists:
		kind = 2
	}
	args := []any{req.Stream, kind, expected, ids[0], ids, types, cts, data, meta, req.RecordedAt}

	var (
		conflict error // the last 23505 seen, kept as the native cause
		// queue: an append at Any or StreamExists lost the end of the
		// stream to another append; it tries again under the stream's lock.
		queue  bool
		capped int // attempts that count towards maxAttempts
	)
	for attempt := 1; ; attempt++ {
		var (
			res driver.AppendResult
			err error
		)
		if attempt == 1 && size <= groupMaxBytes && groupInflight > 0 && notifyMode != notifyInTx {
			res, err = d.appendGrouped(ctx, req, args)
		} else {
			res, err = d.appendOnce(ctx, req, args, queue)
		}
		if err == nil {
			return res, nil
		}
		if w, ok := err.(*eventstore.WrongExpectedVersionError); ok {
			if w.Err == nil {
				w.Err = conflict
			}
			return driver.AppendResult{}, w
		}
		if dup, ok := err.(*eventstore.DuplicateEventIDError); ok {
			return driver.AppendResult{}, dup
		}
		c := classify(err)
		if c == classVersionTaken {
			conflict = err
		}
		if c != classVersionTaken && c != classRetry {
			return driver.AppendResult{}, appendError(err)
		}
		if c == classVersionTaken && req.Expected.Kind() != driver.ExpectExact {
			// Any and StreamExists (on a stream that has events) check no
			// version: another append taking the next one is no reason to
			// fail, however often it happens. Queueing on the stream's lock
			// stops the losers racing each other; ctx bounds the wait.
			queue = true
			if d.retryHook != nil {
				d.retryHook(err)
			}
			if err := ctx.Err(); err != nil {
				return driver.AppendResult{}, err
			}
			continue
		}
		if capped++; capped == maxAttempts {
			if c == classVersionTaken {
				actual, verr := d.StreamVersion(ctx, req.Stream)
				if verr != nil {
					return driver.AppendResult{}, appendError(err)
				}
				return driver.AppendResult{}, &eventstore.WrongExpectedVersionError{
					Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: actual, Err: err}
			}
			return driver.AppendResult{}, fmt.Errorf("postgres: append: gave up after %d attempts: %w", capped, wrapNative(err))
		}
		if d.retryHook != nil {
			d.retryHook(err)
		}
		if err := backoff.Wait(ctx, attempt); err != nil {
			return driver.AppendResult{}, err
		}
	}
}

// backoff is the wait between tries of an append or import the server
// rolled back: up to 2 ms after the first try, doubling to at most 64 ms,
// with full jitter so racing appenders spread out. maxAttempts bounds the
// tries.
var backoff = retry.Policy{Base: 2 * time.Millisecond, Max: 64 * time.Millisecond}

// appendOnce runs the append statement once, then sends the wake-up
// notification (unless it went inside the transaction). With queue, the
// statement runs in a read-committed transaction after taking the stream's
// lock (lockStreamSQL), so its snapshot is taken once the appends queued
// before it have committed. It returns a *WrongExpectedVersionError when the
// expectation fails or a retry does not match, and the native error
// otherwise.
func (d *Driver) appendOnce(ctx context.Context, req driver.AppendRequest, args []any, queue bool) (driver.AppendResult, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return driver.AppendResult{}, err
	}
	defer conn.Release()
	var (
		current          int64
		dup              *int64
		txID, seq, lastV *int64
	)
	query := d.sql.append
	if notifyMode == notifyInTx {
		query, args = d.sql.appendNotify, append(args, d.sql.channel)
	}
	if queue {
		err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, lockStreamSQL, d.schema, req.Stream); err != nil {
				return err
			}
			return tx.QueryRow(ctx, query, args...).Scan(&current, &dup, &txID, &seq, &lastV)
		})
	} else {
		err = conn.QueryRow(ctx, query, args...).Scan(&current, &dup, &txID, &seq, &lastV)
	}
	if err != nil {
		return driver.AppendResult{}, err
	}
	if txID != nil {
		if notifyMode == notifyAfterCommit {
			d.notifier.announce(*txID)
		}
		return driver.AppendResult{
			Version:  uint64(*lastV),
			Position: driver.Position{Commit: uint64(*txID), Prepare: uint64(*seq)},
		}, nil
	}
	mismatch := &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: uint64(current)}
	if dup == nil {
		return driver.AppendResult{}, mismatch
	}
	return d.retried(ctx, conn.Conn(), req, *dup, mismatch)
}

// retried checks whether an append whose first event ID began an earlier
// append to the stream (at version first) is a retry of an append that
// succeeded: the stream holds the batch's IDs in order from there, and for
// an exact expectation the first one is right after the expected version.
// Then it returns the original result if the stored events have the batch's
// content, and a *DuplicateEventIDError if they do not; otherwise mismatch.
func (d *Driver) retried(ctx context.Context, conn *pgx.Conn, req driver.AppendRequest, first int64, mismatch error) (driver.AppendResult, error) {
	if req.Expected.Kind() == driver.ExpectExact && uint64(first) != req.Expected.Version()+1 {
		return driver.AppendResult{}, mismatch
	}
	rows, err := conn.Query(ctx, d.sql.retried, req.Stream, first, len(req.Events))
	if err != nil {
		return driver.AppendResult{}, err
	}
	var (
		stored     = make([]driver.RecordedEvent, 0, len(req.Events))
		version    int64
		id         [16]byte
		txID, seq  int64
		typ        string
		ct         int16
		data, meta []byte
		tags       []string
	)
	_, err = pgx.ForEachRow(rows, []any{&version, &id, &txID, &seq, &typ, &ct, &data, &meta, &tags}, func() error {
		stored = append(stored, driver.RecordedEvent{
			StreamID: req.Stream, Version: uint64(version), ID: uuid.UUID(id),
			Position: driver.Position{Commit: uint64(txID), Prepare: uint64(seq)},
			Type:     typ, ContentType: driver.ContentType(ct), Data: data, Metadata: meta, Tags: tags,
		})
		return nil
	})
	if err != nil {
		return driver.AppendResult{}, err
	}
	if len(stored) != len(req.Events) {
		return driver.AppendResult{}, mismatch
	}
	for i, ev := range stored {
		if ev.ID != req.Events[i].ID {
			return driver.AppendResult{}, mismatch
		}
	}
	if err := driver.CheckRetry(stored, req.Events); err != nil {
		return driver.AppendResult{}, err
	}
	last := stored[len(stored)-1]
	return driver.AppendResult{Version: last.Version, Position: last.Position}, nil
}

// nonNil returns b, or an empty slice for nil: pgx sends a nil slice as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
