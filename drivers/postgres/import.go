package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// importSQL writes an import in one statement, so in one implicit
// transaction and one round trip whatever the number of streams. heads
// holds each stream of the request once, in order of first appearance, with
// the version it must be at ($1, $2); the insert runs only if every stream
// is there, and the statement returns the first stream that is not, with
// its version. The events ($3–$11: stream, version, ID, type, content type,
// data, metadata, recorded time, whether the event begins its stream's run
// in the request) are inserted in request order, so they take seq, hence
// positions, in that order, all under the statement's transaction ID: the
// no-skip argument of Append holds unchanged. The first event of each
// stream's run is marked starts_append, so a later retry of an append with
// those IDs is recognised as for an append.
//
// As for Append, the check is atomic with the write: an append that takes
// one of the versions concurrently makes the insert fail on
// events_stream_version_key, and Import runs the statement again.
const importSQL = `WITH heads AS MATERIALIZED (
	SELECT h.stream, h.want, h.ord, greatest(b.v, coalesce(m.last, 0)) AS v,
		CASE WHEN m.deleted AND b.v <= m.last THEN 0 ELSE greatest(b.v, coalesce(m.last, 0)) END AS a
	FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS h(stream, want, ord)
		CROSS JOIN LATERAL (SELECT coalesce(max(version), 0) AS v FROM {{schema}}.events WHERE stream_id = h.stream) b
		LEFT JOIN {{schema}}.stream_marks m ON m.stream_id = h.stream
), bad AS (
	-- A stream at version 0 may start later, after every version it had:
	-- the copy of a truncated stream.
	SELECT stream, want, a AS v FROM heads WHERE a <> want AND (a <> 0 OR want < v) ORDER BY ord LIMIT 1
), ins AS (
	INSERT INTO {{schema}}.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, starts_append)
	SELECT x.tx_id, e.stream, e.version, e.id, e.typ, e.ct, e.data, e.meta, e.at, e.starts
	FROM (SELECT pg_current_xact_id()::text::bigint + (SELECT xid_offset FROM {{schema}}.meta LIMIT 1) AS tx_id) x,
		unnest($3::text[], $4::bigint[], $5::uuid[], $6::text[], $7::smallint[], $8::bytea[], $9::bytea[], $10::timestamptz[], $11::boolean[])
			WITH ORDINALITY AS e(stream, version, id, typ, ct, data, meta, at, starts, ord)
	WHERE NOT EXISTS (SELECT FROM bad)
	ORDER BY e.ord
	RETURNING tx_id
)
SELECT bad.stream, bad.v, (SELECT max(tx_id) FROM ins) FROM (SELECT) one LEFT JOIN bad ON true`

// Import implements [driver.Importer] with one statement (see
// importSQL). A conflict with a concurrent append (23505 on
// events_stream_version_key), a serialization failure or a deadlock runs it
// again, up to 8 times as for Append; a stream that is then not at the
// version before its first event gives a *WrongExpectedVersionError.
func (d *Driver) Import(ctx context.Context, req driver.ImportRequest) error {
	if hasRecordedTags(req.Events) {
		return d.importTagged(ctx, req) // takes the tag locks (tags.go)
	}
	n := len(req.Events)
	var (
		heads    = make([]string, len(req.Firsts))
		want     = make([]int64, len(req.Firsts))
		streams  = make([]string, n)
		versions = make([]int64, n)
		ids      = make([][16]byte, n)
		types    = make([]string, n)
		cts      = make([]int16, n)
		data     = make([][]byte, n)
		meta     = make([][]byte, n)
		at       = make([]time.Time, n)
		starts   = make([]bool, n)
	)
	for j, i := range req.Firsts {
		e := req.Events[i]
		heads[j], want[j], starts[i] = e.StreamID, clamp(e.Version-1), true
	}
	for i, e := range req.Events {
		streams[i] = e.StreamID
		versions[i] = clamp(e.Version)
		ids[i] = e.ID
		types[i] = e.Type
		cts[i] = int16(e.ContentType)
		data[i] = nonNil(e.Data)
		meta[i] = nonNil(e.Metadata)
		at[i] = e.RecordedAt
	}
	args := []any{heads, want, streams, versions, ids, types, cts, data, meta, at, starts}

	for attempt := 1; ; attempt++ {
		var (
			bad    *string
			actual *int64
			txID   *int64
		)
		err := d.pool.QueryRow(ctx, d.sql.importEvents, args...).Scan(&bad, &actual, &txID)
		if err == nil {
			if bad != nil {
				return &eventstore.WrongExpectedVersionError{Stream: *bad, Expected: eventstore.Exact(uint64(want[slices.Index(heads, *bad)])), Actual: uint64(*actual)}
			}
			if txID != nil && notifyMode != notifyNever {
				d.notifier.announce(*txID)
			}
			return nil
		}
		c := classify(err)
		if c != classVersionTaken && c != classRetry {
			return writeError("import", err)
		}
		if attempt == maxAttempts {
			return fmt.Errorf("postgres: import: gave up after %d attempts: %w", attempt, wrapNative(err))
		}
		if d.retryHook != nil {
			d.retryHook(err)
		}
		if err := backoff.Wait(ctx, attempt); err != nil {
			return err
		}
	}
}
