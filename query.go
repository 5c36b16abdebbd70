package eventstore

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/eventkit/eventstore/driver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Query selects events by type and tags, for [Store.ReadQuery] and
// [AppendCondition]: an event matches when it matches any item. A query
// without items matches every event.
type Query struct {
	Items []QueryItem
}

// QueryItem matches an event whose type is one of Types (any type when Types
// is empty) and whose tags include every one of Tags. At least one of the two
// must be non-empty.
type QueryItem struct {
	Types []string
	Tags  []string
}

// Matches reports whether e matches q.
func (q Query) Matches(e RecordedEvent) bool {
	return toDriverQuery(q).Matches(e.Type, e.Tags)
}

// AppendCondition is a Dynamic Consistency Boundary condition on
// [Store.AppendMulti]: the append fails with [ErrAppendConditionFailed] if
// an event matching FailIfEventsMatch has a position after After. A zero
// After means anywhere in the log, which makes uniqueness rules possible
// ("no UserRegistered event with tag username:ada").
//
// Take After from a read with [Store.ReadQuery] of the same query: the
// position of the last event it returned, or zero when it returned none.
// Positions from elsewhere (a subscription, [Store.Head]) are safe too when
// every event matching the query up to them was seen.
type AppendCondition struct {
	FailIfEventsMatch Query
	After             Position
}

// ReadQueryOptions control [Store.ReadQuery].
type ReadQueryOptions struct {
	// After: events with positions after it; zero from the start.
	After Position
	// Limit caps the events returned; 0 means all.
	Limit int
}

// ReadQuery returns the events matching q after opts.After in position order.
// Like [Store.ReadAll] it never returns an event while one with a lower
// position may still become visible, so the position of the last event
// returned is a safe [AppendCondition.After]. On failure the sequence yields
// one error and ends; errors match [ErrInvalidQuery] for a bad query and
// [ErrNotSupported] when the driver does not read by query.
func (s *Store) ReadQuery(ctx context.Context, q Query, opts ReadQueryOptions) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		ctx := ctx // each range has its own span
		start, n, span := time.Now(), 0, trace.Span(nil)
		if tr := s.tel.activeTracer(); tr != nil {
			ctx, span = s.tel.start(ctx, tr, opReadAll, trace.SpanKindClient, []attribute.KeyValue{attrFiltered.Bool(true)})
		}
		ctx = s.tel.withDriverRetries(ctx, opReadAll)
		var failed error
		defer func() {
			s.tel.observe(ctx, opReadAll, start)
			if span != nil {
				end(span, failed, attrCount.Int(n))
			}
		}()
		fail := func(err error) {
			failed = err
			yield(RecordedEvent{}, fmt.Errorf("eventstore: read by query: %w", err))
		}
		dq, err := validateQuery(q)
		if err != nil {
			fail(err)
			return
		}
		if opts.Limit < 0 {
			fail(invalid(ErrInvalidArgument, "negative limit %d", opts.Limit))
			return
		}
		if s.querier == nil {
			fail(ErrNotSupported)
			return
		}
		page := driver.QueryPage{Query: dq, After: driver.Position(opts.After), MaxBytes: s.pageBytes}
		remaining := opts.Limit
		for {
			page.Limit = s.pageSize
			if opts.Limit > 0 && remaining < s.pageSize {
				page.Limit = remaining
			}
			evs, err := s.readQueryPage(ctx, page)
			if err != nil {
				fail(err)
				return
			}
			for _, ev := range evs {
				n++
				if !yield(recordedFromDriver(ev), nil) {
					return
				}
			}
			remaining -= len(evs)
			if !driver.PageFull(evs, page.Limit, page.MaxBytes) || (opts.Limit > 0 && remaining == 0) {
				return
			}
			page.After = evs[len(evs)-1].Position
		}
	}
}

func (s *Store) readQueryPage(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	page, err := s.querier.ReadQuery(ctx, q)
	// A driver that returns more than asked must not break the paging above.
	return page[:min(len(page), q.Limit)], err
}

// validateQuery checks q's items and returns the driver's form.
func validateQuery(q Query) (driver.Query, error) {
	for i, it := range q.Items {
		if len(it.Types) == 0 && len(it.Tags) == 0 {
			return driver.Query{}, invalid(ErrInvalidQuery, "item %d has neither types nor tags", i)
		}
		for _, t := range it.Types {
			if err := ValidateEventType(t); err != nil {
				return driver.Query{}, fmt.Errorf("%w: item %d: %w", ErrInvalidQuery, i, err)
			}
		}
		for _, t := range it.Tags {
			if err := ValidateTag(t); err != nil {
				return driver.Query{}, fmt.Errorf("%w: item %d: %w", ErrInvalidQuery, i, err)
			}
		}
	}
	return toDriverQuery(q), nil
}

func toDriverQuery(q Query) driver.Query {
	items := make([]driver.QueryItem, len(q.Items))
	for i, it := range q.Items {
		items[i] = driver.QueryItem(it)
	}
	return driver.Query{Items: items}
}

// checkTags returns ErrNotSupported when an event has tags and the driver
// does not keep them.
func (s *Store) checkTags(evs []driver.Event) error {
	if s.querier != nil {
		return nil
	}
	for _, e := range evs {
		if len(e.Tags) > 0 {
			return fmt.Errorf("event tags: %w", ErrNotSupported)
		}
	}
	return nil
}
