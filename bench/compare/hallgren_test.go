package compare_test

import (
	"context"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/hallgren/eventsourcing/core"
)

// hallgrenStore is what github.com/hallgren/eventsourcing/eventstore/sql's
// Postgres and SQLite stores both offer: Save (no context; the first
// event's Version must be the stream's next), Get (a stream after a
// version, one query) and All (the log from a position, one query).
type hallgrenStore interface {
	core.EventStore
	All(start core.Version) core.Fetcher
}

// hallgren adapts a hallgrenStore to the workloads. A stream "Cat-id" is
// the aggregate (ID "Cat-id", type "Cat"); an event's type is its Reason.
// The store has no event ID column, so the events' IDs are not stored.
func hallgren(s hallgrenStore) contender {
	return contender{
		append: func(_ context.Context, stream string, expected uint64, events []eventstore.Event) error {
			typ := eventstore.Category(stream)
			now := time.Now()
			evs := make([]core.Event, len(events))
			for i, e := range events {
				evs[i] = core.Event{
					AggregateID:   stream,
					AggregateType: typ,
					Version:       core.Version(expected) + core.Version(i) + 1,
					Timestamp:     now,
					Reason:        e.Type,
					Data:          e.Data,
					Metadata:      e.Metadata,
				}
			}
			return s.Save(evs)
		},
		readStream: func(ctx context.Context, stream string) (int, error) {
			it, err := s.Get(ctx, stream, eventstore.Category(stream), 0)
			if err != nil {
				return 0, err
			}
			return drain(it)
		},
		readAll: func(context.Context) (int, error) {
			it, err := s.All(0)()
			if err != nil {
				return 0, err
			}
			return drain(it)
		},
	}
}

// drain reads it to the end, decoding every event, and closes it. The
// iterator has no Err: a query that fails midway ends like a complete one.
func drain(it core.Iterator) (int, error) {
	defer it.Close()
	n := 0
	for it.Next() {
		if _, err := it.Value(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
