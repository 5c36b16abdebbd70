package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Append implements [driver.Driver].
//
// The append runs in one write transaction that takes the file's write lock
// first (BEGIN IMMEDIATE), then reads the stream's version, checks the
// expectation, records where the append begins (one row in appends, which
// finds retries) and inserts the events with reused prepared statements. While
// it runs no other connection, in this process or another, can write, so the
// positions SQLite assigns (the rowid, MAX+1) follow commit order: a reader
// that has seen position P never later sees a new event below P.
//
// Appends that wait for the write connection at the same time share one
// transaction and one commit (group commit, see commit.go), each in a
// savepoint of its own, with its own outcome.
func (d *Driver) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	p := &pendingAppend{ctx: ctx, req: req, events: len(req.Events), done: make(chan struct{})}
	for _, e := range req.Events {
		p.size += len(e.Data) + len(e.Metadata)
	}
	if err := d.enqueue(p); err != nil {
		return driver.AppendResult{}, mapError(err, nil)
	}
	return p.res, nil
}

// appendTx does the work of Append inside the write transaction. written is
// false for a recognised retry, which writes nothing.
func (d *Driver) appendTx(ctx context.Context, w *writer, req driver.AppendRequest) (res driver.AppendResult, written bool, err error) {
	var (
		stored    int64
		retryFrom sql.NullInt64
		marksCol  sql.NullString
	)
	if err := w.head.QueryRowContext(ctx, req.Stream, req.Events[0].ID[:]).Scan(&stored, &retryFrom, &marksCol); err != nil {
		return res, false, err
	}
	m, err := parseMarks(marksCol)
	if err != nil {
		return res, false, err
	}
	// current numbers the new events; actual is what the expectation sees
	// (0 for a deleted stream).
	base, actual := m.versions(uint64(stored))
	current := int64(base)
	conflict := &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: actual}
	if retryFrom.Valid {
		res, err := retried(ctx, w, req, uint64(retryFrom.Int64), conflict)
		return res, false, err
	}
	if !req.Expected.Matches(actual) {
		// An exact expectation names the version the batch went to if this
		// is a retry, so a retry of the end of an earlier batch is found
		// too, by the (stream, version) key. This costs nothing unless the
		// expectation fails.
		if req.Expected.Kind() == driver.ExpectExact && uint64(current) > req.Expected.Version() {
			res, err := retried(ctx, w, req, req.Expected.Version()+1, conflict)
			return res, false, err
		}
		return res, false, conflict
	}
	if err := ctx.Err(); err != nil {
		return res, false, err
	}
	if _, err := w.insertAppend.ExecContext(ctx, req.Stream, req.Events[0].ID[:], current+1); err != nil {
		return res, false, mapError(err, conflict)
	}
	category := driver.Category(req.Stream)
	recordedAt := req.RecordedAt.UnixMicro()
	tagged := slices.ContainsFunc(req.Events, hasTags)
	pos, err := w.insertEvents(ctx, len(req.Events), tagged, func(args []any, j int) []any {
		e := &req.Events[j]
		args = append(args, req.Stream, current+int64(j)+1, category, e.ID[:], e.Type, int64(e.ContentType),
			nonNil(e.Data), nonNil(e.Metadata), recordedAt)
		if tagged {
			args = append(args, encodeTags(e.Tags))
		}
		return args
	})
	if err != nil {
		return res, false, mapError(err, conflict)
	}
	if !m.retention.IsZero() {
		if err := applyRetention(ctx, w, req.Stream, uint64(current)+uint64(len(req.Events)), m, req.RecordedAt); err != nil {
			return res, false, err
		}
	}
	return driver.AppendResult{
		Version:  uint64(current) + uint64(len(req.Events)),
		Position: driver.Position{Commit: uint64(pos)},
	}, true, nil
}

// retried handles an append that may repeat events already in the stream
// from version from on (its first event ID began an earlier append there, or
// its exact expectation points there): if the stream holds the batch's IDs
// in order from there (and, for an exact expectation, from is right after
// it) the append already happened: it returns the original result when the
// stored events have the batch's content, and a *DuplicateEventIDError when
// they do not. Otherwise it conflicts. See docs/semantics.md, "Idempotent
// retries".
func retried(ctx context.Context, w *writer, req driver.AppendRequest, from uint64, conflict error) (driver.AppendResult, error) {
	if req.Expected.Kind() == driver.ExpectExact && from != req.Expected.Version()+1 {
		return driver.AppendResult{}, conflict
	}
	to := from + uint64(len(req.Events)) - 1
	rows, err := w.retryRange.QueryContext(ctx, req.Stream, int64(from), int64(to))
	if err != nil {
		return driver.AppendResult{}, err
	}
	stored, err := scanEvents(rows, nil, req.Stream, len(req.Events), 0)
	if err != nil {
		return driver.AppendResult{}, err
	}
	if len(stored) != len(req.Events) {
		return driver.AppendResult{}, conflict
	}
	for i, ev := range stored {
		if ev.ID != req.Events[i].ID {
			return driver.AppendResult{}, conflict
		}
	}
	if err := driver.CheckRetry(stored, req.Events); err != nil {
		return driver.AppendResult{}, err
	}
	last := stored[len(stored)-1]
	return driver.AppendResult{Version: last.Version, Position: last.Position}, nil
}

// nonNil returns b, or an empty slice for nil: go-sqlite3 binds a nil slice
// as NULL, and payloads are never NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// insertEvents inserts n events, whose columns row appends to args, with
// multi-row INSERTs of 64, 16, 4 and 1 rows (100 events are four
// statements), each prepared once: per statement, database/sql and
// go-sqlite3 cost about as much as SQLite spends inserting a row. With
// tagged, row appends the tags column too, and the events' tags are indexed
// in event_tags by one more statement. It returns the last event's
// position; the events take consecutive positions (the rowid, MAX+1, under
// the write lock).
func (w *writer) insertEvents(ctx context.Context, n int, tagged bool, row func(args []any, j int) []any) (int64, error) {
	stmts, columns := &w.insert, insertColumns
	if tagged {
		stmts, columns = &w.insertTagged, insertColumns+1
	}
	args := make([]any, 0, columns*min(n, insertRows[0]))
	var last sql.Result
	for i := 0; i < n; {
		k := 0
		for insertRows[k] > n-i {
			k++
		}
		args = args[:0]
		for j := i; j < i+insertRows[k]; j++ {
			args = row(args, j)
		}
		// database/sql does not check ctx between statements on a
		// connection, and go-sqlite3 may run a statement whose context is
		// already done: stop at once instead.
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var err error
		if last, err = stmts[k].ExecContext(ctx, args...); err != nil {
			return 0, err
		}
		i += insertRows[k]
	}
	pos, err := last.LastInsertId()
	if err != nil || !tagged {
		return pos, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if _, err := w.insertTags.ExecContext(ctx, pos-int64(n), pos); err != nil {
		return 0, err
	}
	return pos, nil
}

func hasTags(e driver.Event) bool { return len(e.Tags) > 0 }

// encodeTags returns the tags column of an event: a JSON array, or nil
// (NULL) when it has no tags.
func encodeTags(tags []string) any {
	if len(tags) == 0 {
		return nil
	}
	b, _ := json.Marshal(tags) // strings always marshal
	return string(b)
}

// decodeTags reads the tags column; nil for NULL.
func decodeTags(col sql.NullString) ([]string, error) {
	if !col.Valid {
		return nil, nil
	}
	var tags []string
	if err := json.Unmarshal([]byte(col.String), &tags); err != nil {
		return nil, fmt.Errorf("tags column %q: %w", col.String, err)
	}
	if len(tags) == 0 {
		return nil, nil
	}
	return tags, nil
}
