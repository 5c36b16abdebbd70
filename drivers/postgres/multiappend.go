package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
)

var (
	_ driver.MultiAppender = (*Driver)(nil)
	_ driver.QueryReader   = (*Driver)(nil)
)

// multiWriteSQL is the statement of a locked write (AppendMulti, an Append
// or Import of tagged events), run after its locks (see writeLocked) in a
// statement of its own, so its snapshot sees everything committed before
// the locks were granted. It reads the version of every stream with an
// expectation ($1 stream, $2 kind as appendSQL's, $3 version), looks for a
// retry (the first record's event ID, $4, began an earlier append to its
// stream; NULL:
// none is looked for), evaluates the append condition (appended by
// multiWriteQuery, after the parameters below; false when there is none)
// and, when every expectation holds, no retry is found and the condition
// does not fail, inserts the records in order ($5–$13: stream, ordinal
// among its stream's records from 1, ID, type, content type, data,
// metadata, recorded time, starts_append) with their tags ($14 event ID,
// $15 tag, one pair per tag in the events' and tags' order), into events
// and event_tags. Each record's version is its stream's version plus its
// ordinal, and the records take seq, hence positions, in order under the
// statement's transaction ID: contiguous in the global log.
//
// It returns the streams whose expectation failed with their versions, the
// stream of the retried event (or NULL), whether the condition failed, the
// position of the last event written (or NULLs) and every written stream's
// last version.
const multiWriteSQL = `WITH heads AS MATERIALIZED (
	SELECT h.stream, h.kind, h.want, greatest(b.v, coalesce(m.last, 0)) AS v,
		CASE WHEN m.deleted AND b.v <= m.last THEN 0 ELSE greatest(b.v, coalesce(m.last, 0)) END AS a
	FROM unnest($1::text[], $2::integer[], $3::bigint[]) AS h(stream, kind, want)
		CROSS JOIN LATERAL (SELECT coalesce(max(version), 0) AS v FROM {{schema}}.events WHERE stream_id = h.stream) b
		LEFT JOIN {{schema}}.stream_marks m ON m.stream_id = h.stream
), bad AS MATERIALIZED (
	SELECT stream, a AS v FROM heads WHERE NOT CASE kind WHEN 1 THEN true WHEN 2 THEN a > 0 ELSE a = want END
), dup AS MATERIALIZED (
	SELECT stream_id FROM {{schema}}.events WHERE event_id = $4::uuid AND starts_append AND stream_id = ($5::text[])[1] LIMIT 1
), cond AS MATERIALIZED (
	SELECT {{condition}} AS failed
), tg AS (
	SELECT id, array_agg(tag ORDER BY o) AS tags FROM unnest($14::uuid[], $15::text[]) WITH ORDINALITY AS u(id, tag, o) GROUP BY id
), ins AS (
	INSERT INTO {{schema}}.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, starts_append, tags)
	SELECT x.tx_id, e.stream, h.v + e.k, e.id, e.typ, e.ct, e.data, e.meta, e.at, e.starts, tg.tags
	FROM unnest($5::text[], $6::bigint[], $7::uuid[], $8::text[], $9::smallint[], $10::bytea[], $11::bytea[], $12::timestamptz[], $13::boolean[])
			WITH ORDINALITY AS e(stream, k, id, typ, ct, data, meta, at, starts, ord)
		JOIN heads h ON h.stream = e.stream
		LEFT JOIN tg ON tg.id = e.id,
		(SELECT pg_current_xact_id()::text::bigint + (SELECT xid_offset FROM {{schema}}.meta LIMIT 1) AS tx_id) x
	WHERE NOT EXISTS (SELECT FROM bad) AND NOT EXISTS (SELECT FROM dup) AND NOT (SELECT failed FROM cond)
	ORDER BY e.ord
	RETURNING tx_id, seq, stream_id, version, event_id, event_type
), tins AS (
	INSERT INTO {{schema}}.event_tags (tag, tx_id, seq, event_type)
	SELECT u.tag, i.tx_id, i.seq, i.event_type FROM ins i JOIN unnest($14::uuid[], $15::text[]) AS u(id, tag) ON u.id = i.event_id
	RETURNING 1
), vers AS (
	SELECT stream_id, max(version) AS v FROM ins GROUP BY stream_id
)
SELECT (SELECT array_agg(stream ORDER BY stream) FROM bad), (SELECT array_agg(v ORDER BY stream) FROM bad),
	(SELECT stream_id FROM dup), (SELECT failed FROM cond),
	l.tx_id, l.seq, (SELECT array_agg(stream_id) FROM vers), (SELECT array_agg(v) FROM vers), (SELECT count(*) FROM tins)
FROM (SELECT) one LEFT JOIN (SELECT tx_id, seq FROM ins ORDER BY tx_id DESC, seq DESC LIMIT 1) l ON true`

// lockTableSQL and lockTableExclusiveSQL lock the events table for a locked
// write: ROW EXCLUSIVE is the lock the insert takes anyway, taken earlier;
// SHARE ROW EXCLUSIVE, for a condition with an item without tags (see
// tags.go), also waits for every other writer and holds new ones back. The
// latter goes through lock_writers() (schema 5), as the application role
// may not take it itself.
const (
	lockTableSQL          = `LOCK TABLE {{schema}}.events IN ROW EXCLUSIVE MODE`
	lockTableExclusiveSQL = `SELECT {{schema}}.lock_writers()`
)

// write is one locked write: the arguments of multiWriteSQL and the locks.
type write struct {
	streams  []string // locked with lockStreamsSQL
	locks    lockPlan
	cond     *driver.AppendCondition
	expect   []driver.StreamExpectation
	firstID  any // uuid or nil
	records  []driver.Record
	k        []int64
	at       []time.Time
	starts   []bool
	recorded time.Time
}

// writeOutcome is what multiWriteSQL reported.
type writeOutcome struct {
	bad      []eventstore.WrongExpectedVersionError
	dup      *string
	failed   bool
	position driver.Position
	versions map[string]uint64
}

func (o writeOutcome) written() bool { return o.versions != nil }

// AppendMulti implements [driver.MultiAppender] in one READ COMMITTED
// transaction, sent as one pipeline (one round trip): it locks the streams'
// advisory locks (the key Append takes when it queues on a stream) in the
// order of their keys, locks the events table, takes the tag locks of its
// events and condition (see tags.go), then checks and inserts with
// multiWriteSQL. A concurrent Append that wins a version makes the insert
// fail with 23505; the write then runs again and sees it.
func (d *Driver) AppendMulti(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
	w := write{cond: req.Condition, expect: req.Expect, records: req.Records, recorded: req.RecordedAt}
	w.streams = make([]string, len(req.Expect))
	for i, e := range req.Expect {
		w.streams[i] = e.Stream
	}
	w.firstID = req.Records[0].Event.ID
	w.k = make([]int64, len(req.Records))
	w.starts = make([]bool, len(req.Records))
	seen := map[string]int64{}
	events := make([]driver.Event, len(req.Records))
	for i, r := range req.Records {
		seen[r.Stream]++
		w.k[i] = seen[r.Stream]
		w.starts[i] = w.k[i] == 1
		events[i] = r.Event
	}
	w.locks = newLockPlan(d.schema, events, req.Condition)
	out, err := d.writeLocked(ctx, w)
	if err != nil {
		return driver.MultiAppendResult{}, err
	}
	if out.written() {
		return driver.MultiAppendResult{Position: out.position, Versions: out.versions}, nil
	}
	if out.dup != nil {
		res, ok, err := d.multiRetried(ctx, req)
		if err != nil || ok {
			return res, err
		}
		if len(out.bad) == 0 && !out.failed {
			// As Append: the first event ID began another append to the
			// stream, and this is not a retry of it.
			r := req.Records[0]
			actual, err := d.StreamVersion(ctx, r.Stream)
			if err != nil {
				return driver.MultiAppendResult{}, err
			}
			var exp driver.ExpectedVersion
			for _, e := range req.Expect {
				if e.Stream == r.Stream {
					exp = e.Expected
				}
			}
			out.bad = []eventstore.WrongExpectedVersionError{{Stream: r.Stream, Expected: eventstore.ExpectedVersion(exp), Actual: actual}}
		}
	}
	return driver.MultiAppendResult{}, &eventstore.AppendConflictError{Streams: out.bad, Condition: out.failed}
}

// appendTagged is Append for a batch with tagged events: a locked write of
// one stream, which takes the shared tag locks that make conditions safe.
func (d *Driver) appendTagged(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	w := d.appendWrite(req)
	out, err := d.writeLocked(ctx, w)
	if err != nil {
		return driver.AppendResult{}, err
	}
	if out.written() {
		return driver.AppendResult{Version: out.versions[req.Stream], Position: out.position}, nil
	}
	actual := uint64(0)
	if len(out.bad) > 0 {
		actual = out.bad[0].Actual
	} else if actual, err = d.StreamVersion(ctx, req.Stream); err != nil {
		return driver.AppendResult{}, err
	}
	mismatch := &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: actual}
	if out.dup == nil || *out.dup != req.Stream {
		return driver.AppendResult{}, mismatch
	}
	first, err := d.firstVersion(ctx, req.Stream, req.Events[0].ID)
	if err != nil {
		return driver.AppendResult{}, err
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return driver.AppendResult{}, wrapNative(err)
	}
	defer conn.Release()
	return d.retried(ctx, conn.Conn(), req, first, mismatch)
}

// appendWrite is the locked write of an Append.
func (d *Driver) appendWrite(req driver.AppendRequest) write {
	records := make([]driver.Record, len(req.Events))
	for i, e := range req.Events {
		records[i] = driver.Record{Stream: req.Stream, Event: e}
	}
	w := write{
		streams:  []string{req.Stream},
		locks:    newLockPlan(d.schema, req.Events, nil),
		expect:   []driver.StreamExpectation{{Stream: req.Stream, Expected: req.Expected}},
		firstID:  req.Events[0].ID,
		records:  records,
		k:        make([]int64, len(req.Events)),
		starts:   make([]bool, len(req.Events)),
		recorded: req.RecordedAt,
	}
	for i := range w.k {
		w.k[i] = int64(i + 1)
	}
	w.starts[0] = true
	return w
}

// importTagged is Import for events with tags: a locked write with an
// exact expectation per stream, no stream locks (as Import takes none)
// and no retry lookup.
func (d *Driver) importTagged(ctx context.Context, req driver.ImportRequest) error {
	w := write{
		expect:  make([]driver.StreamExpectation, len(req.Firsts)),
		records: make([]driver.Record, len(req.Events)),
		k:       make([]int64, len(req.Events)),
		at:      make([]time.Time, len(req.Events)),
		starts:  make([]bool, len(req.Events)),
	}
	want := map[string]uint64{}
	for j, i := range req.Firsts {
		e := req.Events[i]
		want[e.StreamID] = e.Version - 1
		w.expect[j] = driver.StreamExpectation{Stream: e.StreamID, Expected: driver.Expect(driver.ExpectExact, e.Version-1)}
		w.starts[i] = true
	}
	events := make([]driver.Event, len(req.Events))
	for i, e := range req.Events {
		events[i] = driver.Event{ID: e.ID, Type: e.Type, ContentType: e.ContentType, Data: e.Data, Metadata: e.Metadata, Tags: e.Tags}
		w.records[i] = driver.Record{Stream: e.StreamID, Event: events[i]}
		w.k[i] = int64(e.Version - want[e.StreamID])
		w.at[i] = e.RecordedAt
	}
	w.locks = newLockPlan(d.schema, events, nil)
	out, err := d.writeLocked(ctx, w)
	if err != nil {
		return err
	}
	if !out.written() && len(out.bad) > 0 {
		// As Import: the first stream in request order that is not at its version.
		for _, e := range w.expect {
			for _, b := range out.bad {
				if b.Stream == e.Stream {
					return &eventstore.WrongExpectedVersionError{Stream: b.Stream, Expected: eventstore.ExpectedVersion(e.Expected), Actual: b.Actual}
				}
			}
		}
	}
	return nil
}

// writeLocked runs a locked write, again after a lost version race (23505:
// an Append that takes no lock won it; the next run sees it) until ctx
// ends, and after a serialization failure or deadlock up to maxAttempts
// times in all, as Append does.
func (d *Driver) writeLocked(ctx context.Context, w write) (writeOutcome, error) {
	args, query := d.multiWriteArgs(w)
	capped := 0
	for attempt := 1; ; attempt++ {
		out, err := d.writeOnce(ctx, w, query, args)
		if err == nil {
			if out.written() && notifyMode != notifyNever {
				d.notifier.announce(int64(out.position.Commit))
			}
			return out, nil
		}
		c := classify(err)
		if c != classVersionTaken && c != classRetry {
			return writeOutcome{}, writeError("append", err)
		}
		if c == classRetry {
			if capped++; capped == maxAttempts {
				return writeOutcome{}, fmt.Errorf("postgres: append: gave up after %d attempts: %w", capped, wrapNative(err))
			}
		}
		if d.retryHook != nil {
			d.retryHook(err)
		}
		if err := backoff.Wait(ctx, min(attempt, 6)); err != nil {
			return writeOutcome{}, err
		}
	}
}

// multiWriteArgs returns the arguments and the text of w's multiWriteSQL.
func (d *Driver) multiWriteArgs(w write) ([]any, string) {
	n := len(w.records)
	var (
		streams = make([]string, n)
		ids     = make([][16]byte, n)
		types   = make([]string, n)
		cts     = make([]int16, n)
		data    = make([][]byte, n)
		meta    = make([][]byte, n)
		at      = w.at
		tagIDs  [][16]byte
		tags    []string
	)
	if at == nil {
		at = make([]time.Time, n)
	}
	for i, r := range w.records {
		e := r.Event
		streams[i], ids[i], types[i], cts[i] = r.Stream, e.ID, e.Type, int16(e.ContentType)
		data[i], meta[i] = nonNil(e.Data), nonNil(e.Metadata)
		if w.at == nil {
			at[i] = w.recorded
		}
		for _, t := range e.Tags {
			tagIDs = append(tagIDs, e.ID)
			tags = append(tags, t)
		}
	}
	hs := make([]string, len(w.expect))
	kinds := make([]int32, len(w.expect))
	wants := make([]int64, len(w.expect))
	for i, e := range w.expect {
		hs[i], kinds[i], wants[i] = e.Stream, int32(e.Expected.Kind()), clamp(e.Expected.Version())
	}
	if tags == nil {
		tagIDs, tags = [][16]byte{}, []string{}
	}
	args := []any{hs, kinds, wants, w.firstID, streams, w.k, ids, types, cts, data, meta, at, w.starts, tagIDs, tags}
	cond := "false"
	if w.cond != nil {
		cond, args = conditionSQL(quoteIdent(d.schema), *w.cond, args)
	}
	return args, strings.Replace(d.sql.tagged.multiWrite, "{{condition}}", cond, 1)
}

// writeOnce runs w's transaction once as one pipeline: BEGIN, the stream
// locks, the table lock, the tag locks, multiWriteSQL, COMMIT.
func (d *Driver) writeOnce(ctx context.Context, w write, query string, args []any) (writeOutcome, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return writeOutcome{}, err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	var out writeOutcome
	scan := d.queueWrite(b, w, query, args, &out)
	b.Queue(`COMMIT`)
	err = conn.SendBatch(ctx, b).Close()
	if err != nil {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			// The pipeline failed inside its transaction: end it, so the
			// connection goes back to the pool clean (a failed rollback
			// closes it instead).
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, rerr := conn.Exec(rctx, `ROLLBACK`); rerr != nil {
				_ = conn.Conn().Close(rctx) // the pool drops a closed connection
			}
			cancel()
		}
		return writeOutcome{}, err
	}
	scan()
	return out, nil
}

// queueWrite queues w's statements after BEGIN: the locks and
// multiWriteSQL. Once the batch ran, the returned func fills in out.
func (d *Driver) queueWrite(b *pgx.Batch, w write, query string, args []any, out *writeOutcome) func() {
	if len(w.streams) > 0 {
		b.Queue(lockStreamsSQL, d.schema, w.streams)
	}
	if w.locks.tableExclusive {
		b.Queue(d.sql.tagged.lockTableExclusive)
	} else {
		b.Queue(d.sql.tagged.lockTable)
	}
	if len(w.locks.keys) > 0 {
		b.Queue(lockTagsSQL, w.locks.keys, w.locks.exclusive)
	}
	var (
		badStreams []string
		badVers    []int64
		txID, seq  *int64
		vStreams   []string
		vVers      []int64
		nTags      int64
	)
	b.Queue(query, args...).QueryRow(func(row pgx.Row) error {
		return row.Scan(&badStreams, &badVers, &out.dup, &out.failed, &txID, &seq, &vStreams, &vVers, &nTags)
	})
	return func() {
		for i, s := range badStreams {
			var exp driver.ExpectedVersion
			for _, e := range w.expect {
				if e.Stream == s {
					exp = e.Expected
				}
			}
			out.bad = append(out.bad, eventstore.WrongExpectedVersionError{Stream: s, Expected: eventstore.ExpectedVersion(exp), Actual: uint64(badVers[i])})
		}
		if txID != nil {
			out.position = driver.Position{Commit: uint64(*txID), Prepare: uint64(*seq)}
			out.versions = make(map[string]uint64, len(vStreams))
			for i, s := range vStreams {
				out.versions[s] = uint64(vVers[i])
			}
		}
	}
}

// firstVersion returns the version of the event id that began an append to
// stream.
func (d *Driver) firstVersion(ctx context.Context, stream string, id [16]byte) (int64, error) {
	var v int64
	err := d.pool.QueryRow(ctx, d.sql.tagged.firstVersion, stream, id).Scan(&v)
	if err != nil {
		return 0, wrapNative(err)
	}
	return v, nil
}

// multiRetried checks whether req is a retry of a multi-stream append that
// succeeded: for each stream, its records' IDs began an append there and
// follow each other in order, as Append's retried checks one stream, with
// the same content (driver.CheckRetry). Then it returns the original
// result and true; with other content a *driver.RetryMismatchError whose
// Index counts records; otherwise false.
func (d *Driver) multiRetried(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, bool, error) {
	type part struct {
		req driver.AppendRequest
		idx []int // the records' indexes
	}
	parts := map[string]*part{}
	var order []string
	for i, r := range req.Records {
		p := parts[r.Stream]
		if p == nil {
			p = &part{req: driver.AppendRequest{Stream: r.Stream, Expected: driver.Expect(driver.ExpectAny, 0)}}
			for _, e := range req.Expect {
				if e.Stream == r.Stream {
					p.req.Expected = e.Expected
				}
			}
			parts[r.Stream] = p
			order = append(order, r.Stream)
		}
		p.req.Events = append(p.req.Events, r.Event)
		p.idx = append(p.idx, i)
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return driver.MultiAppendResult{}, false, wrapNative(err)
	}
	defer conn.Release()
	res := driver.MultiAppendResult{Versions: map[string]uint64{}}
	var last driver.Position
	for _, s := range order {
		p := parts[s]
		var first int64
		err := conn.QueryRow(ctx, d.sql.tagged.firstVersion, s, p.req.Events[0].ID).Scan(&first)
		if errors.Is(err, pgx.ErrNoRows) {
			return driver.MultiAppendResult{}, false, nil
		}
		if err != nil {
			return driver.MultiAppendResult{}, false, wrapNative(err)
		}
		errNot := errors.New("not a retry")
		r, err := d.retried(ctx, conn.Conn(), p.req, first, errNot)
		var m *driver.RetryMismatchError
		switch {
		case err == errNot:
			return driver.MultiAppendResult{}, false, nil
		case errors.As(err, &m):
			m.Index = p.idx[m.Index]
			return driver.MultiAppendResult{}, false, m
		case err != nil:
			return driver.MultiAppendResult{}, false, wrapNative(err)
		}
		res.Versions[s] = r.Version
		if p.idx[len(p.idx)-1] == len(req.Records)-1 {
			last = r.Position
		}
	}
	res.Position = last
	return res, true, nil
}

// firstVersionSQL finds the version of the event $2 that began an append
// to stream $1 (the partial index of starts_append).
const firstVersionSQL = `SELECT version FROM {{schema}}.events WHERE event_id = $2 AND starts_append AND stream_id = $1`

// taggedStatements holds the SQL of locked writes and reads by query with
// the schema name filled in.
type taggedStatements struct {
	multiWrite                    string // {{condition}} still to fill in
	lockTable, lockTableExclusive string
	firstVersion                  string
}

func newTaggedStatements(r *strings.Replacer) taggedStatements {
	return taggedStatements{
		multiWrite:         r.Replace(multiWriteSQL),
		lockTable:          r.Replace(lockTableSQL),
		lockTableExclusive: r.Replace(lockTableExclusiveSQL),
		firstVersion:       r.Replace(firstVersionSQL),
	}
}

// hasRecordedTags reports whether an event of evs has tags.
func hasRecordedTags(evs []driver.RecordedEvent) bool {
	for _, e := range evs {
		if len(e.Tags) > 0 {
			return true
		}
	}
	return false
}
