package sqlite

import (
	"context"
	"database/sql"

	"github.com/eventkit/eventstore"
)

var _ eventstore.Importer = (*Driver)(nil)

// Import implements [eventstore.Importer]: one write transaction checks the
// version of every stream in the request, records where each stream's run
// begins in the appends table (so a later retry of an append with those
// IDs is recognised, as for an append), and inserts the events in order.
func (d *Driver) Import(ctx context.Context, req eventstore.ImportRequest) error {
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
func importTx(ctx context.Context, w *writer, req eventstore.ImportRequest) (int64, error) {
	checked := make(map[string]bool)
	for _, e := range req.Events {
		if checked[e.StreamID] {
			continue
		}
		checked[e.StreamID] = true
		var (
			current   int64
			retryFrom sql.NullInt64
		)
		if err := w.head.QueryRowContext(ctx, e.StreamID, e.ID[:]).Scan(&current, &retryFrom); err != nil {
			return 0, err
		}
		conflict := &eventstore.WrongExpectedVersionError{Stream: e.StreamID, Expected: eventstore.Exact(e.Version - 1), Actual: uint64(current)}
		if uint64(current) != e.Version-1 {
			return 0, conflict
		}
		if _, err := w.insertAppend.ExecContext(ctx, e.StreamID, e.ID[:], int64(e.Version)); err != nil {
			return 0, mapError(err, conflict)
		}
	}
	last, err := w.insertEvents(ctx, len(req.Events), func(args []any, j int) []any {
		e := &req.Events[j]
		return append(args, e.StreamID, int64(e.Version), eventstore.Category(e.StreamID), e.ID[:], e.Type, int64(e.ContentType),
			nonNil(e.Data), nonNil(e.Metadata), e.RecordedAt.UnixMicro())
	})
	if err != nil {
		return 0, err
	}
	return last.LastInsertId()
}
