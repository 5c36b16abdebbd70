package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// queryMultiHeads returns, for each [stream, hex first event ID or null]
// of a JSON array, its index in the array, the stream's version and the
// first version of the earlier append to the stream that began with that
// event ID, if any: one statement for every stream of a multi-stream append.
const queryMultiHeads = `SELECT j.key,
		(SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = json_extract(j.value, '$[0]')),
		(SELECT first_version FROM appends WHERE stream = json_extract(j.value, '$[0]')
			AND first_event_id = unhex(json_extract(j.value, '$[1]'))),
		(SELECT json_array(last, deleted, max_count, max_age) FROM stream_marks WHERE stream = json_extract(j.value, '$[0]'))
	FROM json_each(?) j`

// AppendMulti implements [driver.MultiAppender] in one write transaction,
// which takes the file's write lock first (BEGIN IMMEDIATE): no other
// writer, in this process or another, runs until it commits, so the checks
// below hold at the commit and the events take consecutive positions.
//
// One statement reads the version of every stream of req.Expect and looks
// up the first event ID of each written stream's records in appends. If the
// first record's ID began an earlier append to its stream, the request is a
// retry (see multiRetried). Otherwise every expectation is checked, and the
// condition, if any, is one query (conditionFails); any failure writes
// nothing and returns an *eventstore.AppendConflictError naming every
// failed stream with its version. A written stream whose first ID began an
// earlier append to it fails too, as Append does. Then one statement
// records where each stream's run begins (an appends row each, so that a
// single Append retrying one stream's part is recognised too), the events
// are inserted in the records' order with the prepared multi-row INSERTs,
// and their tags indexed.
//
// Multi-stream appends join the group commit of Append (commit.go): each
// runs after a SAVEPOINT of its own in a transaction it may share with
// other appends, exactly as it would alone, and sees the events of the
// appends before it in the group, so its checks and condition hold at the
// shared commit.
func (d *Driver) AppendMulti(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
	p := &pendingAppend{ctx: ctx, multi: &req, events: len(req.Records), done: make(chan struct{})}
	for _, r := range req.Records {
		p.size += len(r.Event.Data) + len(r.Event.Metadata)
	}
	if err := d.enqueue(p); err != nil {
		return driver.MultiAppendResult{}, mapError(err, nil)
	}
	return p.multiRes, nil
}

// multiStream is one stream of a multi-stream append.
type multiStream struct {
	driver.StreamExpectation
	records   []int  // indexes of its records, in order; none if only checked
	current   uint64 // its version, as expectations see it (0 while deleted)
	base      uint64 // the version its next event follows
	marks     marks
	retryFrom sql.NullInt64
}

func (s *multiStream) conflict() eventstore.WrongExpectedVersionError {
	return eventstore.WrongExpectedVersionError{Stream: s.Stream, Expected: eventstore.ExpectedVersion(s.Expected), Actual: s.current}
}

// multiAppendTx does the work of AppendMulti inside the write transaction.
// written is false for a recognised retry, which writes nothing.
func multiAppendTx(ctx context.Context, w *writer, req driver.MultiAppendRequest) (res driver.MultiAppendResult, written bool, err error) {
	streams := make([]multiStream, len(req.Expect))
	for i, e := range req.Expect {
		streams[i].StreamExpectation = e
	}
	// The Store gives every written stream an expectation, sorted by stream.
	index := make(map[string]*multiStream, len(streams))
	for i := range streams {
		index[streams[i].Stream] = &streams[i]
	}
	for i, r := range req.Records {
		s, ok := index[r.Stream]
		if !ok {
			return res, false, fmt.Errorf("%w: record %d: stream %q has no expectation", eventstore.ErrInvalidArgument, i, r.Stream)
		}
		s.records = append(s.records, i)
	}
	if err := readMultiHeads(ctx, w, req, streams); err != nil {
		return res, false, err
	}
	if index[req.Records[0].Stream].retryFrom.Valid {
		res, ok, err := multiRetried(ctx, w, req, streams)
		if ok || err != nil {
			return res, false, err
		}
		// Not a retry: the checks below name the first record's stream,
		// whose first event ID began another append, and every other
		// failed one.
	}
	var failed []eventstore.WrongExpectedVersionError
	for i := range streams {
		s := &streams[i]
		if !s.Expected.Matches(s.current) || (len(s.records) > 0 && s.retryFrom.Valid) {
			failed = append(failed, s.conflict())
		}
	}
	condition := false
	if req.Condition != nil {
		if condition, err = conditionFails(ctx, w, req.Condition); err != nil {
			return res, false, err
		}
	}
	if len(failed) > 0 || condition {
		return res, false, &eventstore.AppendConflictError{Streams: failed, Condition: condition}
	}
	if err := ctx.Err(); err != nil {
		return res, false, err
	}

	starts := make([][3]any, 0, len(streams))
	res.Versions = make(map[string]uint64, len(streams))
	next := make(map[string]int64, len(streams))
	for _, s := range streams {
		if len(s.records) == 0 {
			continue
		}
		first := req.Records[s.records[0]].Event.ID
		starts = append(starts, [3]any{s.Stream, hex.EncodeToString(first[:]), s.base + 1})
		res.Versions[s.Stream] = s.base + uint64(len(s.records))
		next[s.Stream] = int64(s.base) + 1
	}
	startsJSON, err := json.Marshal(starts)
	if err != nil {
		return res, false, err
	}
	if _, err := w.importAppends.ExecContext(ctx, startsJSON); err != nil {
		return res, false, err
	}
	recordedAt := req.RecordedAt.UnixMicro()
	tagged := slices.ContainsFunc(req.Records, func(r driver.Record) bool { return hasTags(r.Event) })
	pos, err := w.insertEvents(ctx, len(req.Records), tagged, func(args []any, j int) []any {
		r := &req.Records[j]
		e := &r.Event
		version := next[r.Stream]
		next[r.Stream]++
		args = append(args, r.Stream, version, driver.Category(r.Stream), e.ID[:], e.Type, int64(e.ContentType),
			nonNil(e.Data), nonNil(e.Metadata), recordedAt)
		if tagged {
			args = append(args, encodeTags(e.Tags))
		}
		return args
	})
	if err != nil {
		return res, false, err
	}
	for _, s := range streams {
		if len(s.records) > 0 && !s.marks.retention.IsZero() {
			if err := applyRetention(ctx, w, s.Stream, res.Versions[s.Stream], s.marks, req.RecordedAt); err != nil {
				return res, false, err
			}
		}
	}
	res.Position = driver.Position{Commit: uint64(pos)}
	return res, true, nil
}

// readMultiHeads fills in the version and retryFrom of every stream, in
// one statement.
func readMultiHeads(ctx context.Context, w *writer, req driver.MultiAppendRequest, streams []multiStream) error {
	heads := make([][2]any, len(streams))
	for i, s := range streams {
		heads[i][0] = s.Stream
		if len(s.records) > 0 {
			id := req.Records[s.records[0]].Event.ID
			heads[i][1] = hex.EncodeToString(id[:])
		}
	}
	headsJSON, err := json.Marshal(heads)
	if err != nil {
		return err
	}
	rows, err := w.multiHeads.QueryContext(ctx, headsJSON)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			i        int
			stored   int64
			from     sql.NullInt64
			marksCol sql.NullString
		)
		if err := rows.Scan(&i, &stored, &from, &marksCol); err != nil {
			return err
		}
		m, err := parseMarks(marksCol)
		if err != nil {
			return err
		}
		s := &streams[i]
		s.base, s.current = m.versions(uint64(stored))
		s.marks, s.retryFrom = m, from
	}
	// A read cut off (a cancelled context interrupts it) ends the loop
	// early: the versions not read would look like 0.
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// multiRetried handles a multi-stream append whose first record's event ID
// began an earlier append to its stream. It is a retry (ok) if every
// written stream holds its records' event IDs, in order, from where an
// earlier append began with the first of them (right after the version
// expected, for an exact expectation). Then it returns the original result
// when the stored events have the records' content (driver.CheckRetry, per
// stream), and a *driver.RetryMismatchError whose Index counts records when
// they do not. Check-only expectations and the condition are not checked
// again: the original append passed them, and its own events may match the
// condition. Otherwise it is not a retry, and the caller's checks name the
// failed streams, as Append does for a first event ID that began another
// append.
func multiRetried(ctx context.Context, w *writer, req driver.MultiAppendRequest, streams []multiStream) (res driver.MultiAppendResult, ok bool, err error) {
	stored := make([][]driver.RecordedEvent, len(streams))
	for i := range streams {
		s := &streams[i]
		if len(s.records) == 0 {
			continue
		}
		from := uint64(s.retryFrom.Int64)
		if !s.retryFrom.Valid || (s.Expected.Kind() == driver.ExpectExact && from != s.Expected.Version()+1) {
			return res, false, nil
		}
		to := from + uint64(len(s.records)) - 1
		rows, err := w.retryRange.QueryContext(ctx, s.Stream, int64(from), int64(to))
		if err != nil {
			return res, false, err
		}
		evs, err := scanEvents(rows, nil, s.Stream, len(s.records), 0)
		if err != nil {
			return res, false, err
		}
		if len(evs) != len(s.records) {
			return res, false, nil
		}
		for j, ev := range evs {
			if ev.ID != req.Records[s.records[j]].Event.ID {
				return res, false, nil
			}
		}
		stored[i] = evs
	}
	res.Versions = make(map[string]uint64, len(streams))
	last := req.Records[len(req.Records)-1].Stream
	for i, s := range streams {
		if len(s.records) == 0 {
			continue
		}
		evs := make([]driver.Event, len(s.records))
		for j, k := range s.records {
			evs[j] = req.Records[k].Event
		}
		if err := driver.CheckRetry(stored[i], evs); err != nil {
			if m := (*driver.RetryMismatchError)(nil); errors.As(err, &m) && m.Index >= 0 && m.Index < len(s.records) {
				m.Index = s.records[m.Index]
			}
			return driver.MultiAppendResult{}, false, err
		}
		end := stored[i][len(stored[i])-1]
		res.Versions[s.Stream] = end.Version
		if s.Stream == last {
			res.Position = end.Position
		}
	}
	return res, true, nil
}
