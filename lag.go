package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/eventkit/eventstore/driver"
)

// MaxLagCount is how many events [Store.Lag] counts at most.
const MaxLagCount = 100_000

// Lag is how far a reader at some position is behind the log.
type Lag struct {
	// Head is the position of the last event in the log when Lag began.
	Head Position
	// Events counts the events after the position that the filter keeps:
	// events, not a difference of positions, so it is right on logs whose
	// positions have gaps. It stops at MaxLagCount, and then AtLeast is true.
	Events  int
	AtLeast bool
	// Oldest is when the oldest of those events was recorded, zero when
	// there is none: time.Since(Oldest) is how stale a reader is.
	Oldest time.Time
}

// Lag reports how far a reader that has handled the events up to pos is
// behind the log: the events after pos that filter keeps (a zero Filter
// keeps all). It reads the events it counts, a page at a time, so it costs
// a read of the lag, at most MaxLagCount events.
func (s *Store) Lag(ctx context.Context, pos Position, filter Filter) (Lag, error) {
	wrap := func(err error) error { return fmt.Errorf("eventstore: lag after %s: %w", pos, err) }
	if err := validateFilter(filter); err != nil {
		return Lag{}, wrap(err)
	}
	head, err := s.Head(ctx)
	if err != nil {
		return Lag{}, err
	}
	lag, err := s.countLag(ctx, pos, filter, MaxLagCount)
	if err != nil {
		return Lag{}, wrap(err)
	}
	lag.Head = head
	return lag, nil
}

// countLag counts the events after pos that filter keeps, up to limit
// (then AtLeast is true), and finds when the oldest was recorded. Head is
// left zero.
func (s *Store) countLag(ctx context.Context, pos Position, filter Filter, limit int) (Lag, error) {
	var lag Lag
	q := driver.AllQuery{After: driver.Position(pos), Filter: driver.Filter(filter), MaxBytes: s.pageBytes}
	for {
		q.Limit = min(s.pageSize, limit-lag.Events+1)
		page, scanned, end, err := s.readAllPage(ctx, q)
		if err != nil {
			return Lag{}, err
		}
		if lag.Events == 0 && len(page) > 0 {
			lag.Oldest = page[0].RecordedAt
		}
		lag.Events += len(page)
		s.recycle(page)
		if lag.Events > limit {
			lag.Events, lag.AtLeast = limit, true
			return lag, nil
		}
		if end {
			return lag, nil
		}
		q.After = scanned
	}
}
