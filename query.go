package eventstore

import (
	"context"
	"fmt"
	"iter"

	"github.com/eventkit/eventstore/driver"
	"go.opentelemetry.io/otel/attribute"
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
	attrs := func(a []attribute.KeyValue) []attribute.KeyValue { return append(a, attrFiltered.Bool(true)) }
	return s.pagedRead(ctx, opReadAll, readName{op: "read by query"}, opts.Limit, attrs, func() (nextPage, error) {
		dq, err := validateQuery(q)
		if err != nil {
			return nil, err
		}
		if s.querier == nil {
			return nil, ErrNotSupported
		}
		page := driver.QueryPage{Query: dq, After: driver.Position(opts.After), MaxBytes: s.pageBytes}
		return func(ctx context.Context, limit int) ([]driver.RecordedEvent, bool, error) {
			page.Limit = limit
			evs, err := guarded(s, ctx, func() ([]driver.RecordedEvent, error) { return s.querier.ReadQuery(ctx, page) })
			evs = s.limitPage(evs, page.Limit)
			if err != nil || !driver.PageFull(evs, page.Limit, page.MaxBytes) {
				return evs, false, err
			}
			page.After = evs[len(evs)-1].Position
			return evs, true, nil
		}, nil
	})
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
