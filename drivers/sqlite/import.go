package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

var _ driver.Importer = (*Driver)(nil)

// Import implements [driver.Importer]: one write transaction reads the
// version of every stream in the request in one statement, records where
// each stream's run begins in the appends table (so a later retry of an
// append with those IDs is recognised, as for an append), and inserts the
// events in order, with their tags.
func (d *Driver) Import(ctx context.Context, req driver.ImportRequest) error {
	var last int64
	err := d.write(ctx, func(w *writer) error {
		var err error
		last, err = importTx(ctx, w, req)
		return err
	})
	if err != nil {
		return mapError(err, nil)
	}
	d.watch.appended(last)
	return nil
}

// importTx does the work of Import inside the write transaction and returns
// the last event's position.
func importTx(ctx context.Context, w *writer, req driver.ImportRequest) (int64, error) {
	firsts := make([]*driver.RecordedEvent, len(req.Firsts))
	streams := make([]string, len(firsts))
	starts := make([][3]any, len(firsts))
	for i, k := range req.Firsts {
		e := &req.Events[k]
		firsts[i] = e
		streams[i] = e.StreamID
		starts[i] = [3]any{e.StreamID, hex.EncodeToString(e.ID[:]), e.Version}
	}
	streamsJSON, err := json.Marshal(streams)
	if err != nil {
		return 0, err
	}
	current := make([]uint64, len(firsts))
	base := make([]uint64, len(firsts))
	mk := make([]marks, len(firsts))
	rows, err := w.importHeads.QueryContext(ctx, streamsJSON)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var i int
		var v int64
		var col sql.NullString
		if err := rows.Scan(&i, &v, &col); err != nil {
			rows.Close()
			return 0, err
		}
		m, err := parseMarks(col)
		if err != nil {
			rows.Close()
			return 0, err
		}
		base[i], current[i] = m.versions(uint64(v))
		mk[i] = m
	}
	// A read cut off (a cancelled context interrupts it) ends the loop early:
	// the versions not read would look like 0.
	if err := rows.Err(); err != nil {
		rows.Close()
		return 0, err
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	for i, e := range firsts {
		// A stream at version 0 may start later, after every version it
		// had: the copy of a truncated stream.
		if current[i] != e.Version-1 && (current[i] != 0 || e.Version <= base[i]) {
			return 0, &eventstore.WrongExpectedVersionError{Stream: e.StreamID, Expected: eventstore.Exact(e.Version - 1), Actual: current[i]}
		}
	}
	startsJSON, err := json.Marshal(starts)
	if err != nil {
		return 0, err
	}
	if _, err := w.importAppends.ExecContext(ctx, startsJSON); err != nil {
		return 0, err
	}
	tagged := slices.ContainsFunc(req.Events, func(e driver.RecordedEvent) bool { return len(e.Tags) > 0 })
	last, err := w.insertEvents(ctx, len(req.Events), tagged, func(args []any, j int) []any {
		e := &req.Events[j]
		args = append(args, e.StreamID, int64(e.Version), driver.Category(e.StreamID), e.ID[:], e.Type, int64(e.ContentType),
			nonNil(e.Data), nonNil(e.Metadata), e.RecordedAt.UnixMicro())
		if tagged {
			args = append(args, encodeTags(e.Tags))
		}
		return args
	})
	if err != nil {
		return 0, err
	}
	now := time.Now()
	for i, e := range firsts {
		if mk[i].retention.IsZero() {
			continue
		}
		top := e.Version
		for _, ev := range req.Events {
			if ev.StreamID == e.StreamID {
				top = max(top, ev.Version)
			}
		}
		mk[i].deleted = false
		if err := applyRetention(ctx, w, e.StreamID, top, mk[i], now); err != nil {
			return 0, err
		}
	}
	return last, nil
}
