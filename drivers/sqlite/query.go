package sqlite

import (
	"context"
	"database/sql"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Reads by query and append conditions (Dynamic Consistency Boundaries).
//
// A query item with tags walks the event_tags key of its first tag from the
// position bound (tag = ? AND position > ?), in position order, and checks
// each further tag with one lookup of the same key ((tag, position)) and
// the types, if any, with one lookup of the event by its rowid. An item
// with types and no tags walks the log by position, as a ReadAll filtered
// by types does: event types have no index (see schema version 1), so that
// an untagged event costs an append nothing more than before. A query's
// items are OR-ed: each is a sub-select limited to the page, merged by
// position; a condition is an EXISTS per item, under the write lock.

// maxQueryItems is the most query items one statement holds (SQLite allows
// 500 terms in a compound SELECT and an expression depth of 1000); a longer
// query runs in statements of this many items each.
const maxQueryItems = 32

// queryItems normalises a query's items for SQL: repeated tags are dropped,
// and so are items that no event can match (more distinct tags than an event
// may carry). all reports a query without items, which matches every event;
// a query whose every item was dropped has no items and matches nothing.
func queryItems(q driver.Query) (items []driver.QueryItem, all bool) {
	if len(q.Items) == 0 {
		return nil, true
	}
	items = make([]driver.QueryItem, 0, len(q.Items))
	for _, it := range q.Items {
		tags := it.Tags
		if len(tags) > 1 {
			tags = slices.Clone(tags)
			slices.Sort(tags)
			tags = slices.Compact(tags)
			// Keep the caller's first tag first: it is the one walked.
			if i := slices.Index(tags, it.Tags[0]); i > 0 {
				tags[0], tags[i] = tags[i], tags[0]
			}
		}
		if len(tags) > eventstore.MaxEventTags {
			continue
		}
		items = append(items, driver.QueryItem{Types: it.Types, Tags: tags})
	}
	return items, false
}

// itemQuery returns a SELECT of the positions of the events after the
// position after that match it, and its arguments. With limit > 0 it
// selects the first limit of them in position order (a page), otherwise
// all of them in no particular order (an EXISTS).
func itemQuery(it driver.QueryItem, after int64, limit int) (string, []any) {
	var b strings.Builder
	var args []any
	if len(it.Tags) == 0 {
		b.WriteString("SELECT position FROM events WHERE position > ?")
		args = append(args, after)
		cond, typeArgs := inList("type", it.Types)
		b.WriteString(cond)
		args = append(args, typeArgs...)
	} else {
		b.WriteString("SELECT t0.position FROM event_tags t0 WHERE t0.tag = ? AND t0.position > ?")
		args = append(args, it.Tags[0], after)
		for i, tag := range it.Tags[1:] {
			t := "t" + strconv.Itoa(i+1)
			b.WriteString(" AND EXISTS (SELECT 1 FROM event_tags " + t + " WHERE " + t + ".tag = ? AND " + t + ".position = t0.position)")
			args = append(args, tag)
		}
		if len(it.Types) > 0 {
			cond, typeArgs := inList("e.type", it.Types)
			b.WriteString(" AND EXISTS (SELECT 1 FROM events e WHERE e.position = t0.position" + cond + ")")
			args = append(args, typeArgs...)
		}
	}
	if limit > 0 {
		if len(it.Tags) == 0 {
			b.WriteString(" ORDER BY position LIMIT ?")
		} else {
			b.WriteString(" ORDER BY t0.position LIMIT ?")
		}
		args = append(args, limit)
	}
	return b.String(), args
}

// pageQuery returns the read of one page of events matching any of items
// (at most maxQueryItems, at least one) after the position after: each
// item's first limit positions, merged, and the first limit events of
// those in position order.
func pageQuery(items []driver.QueryItem, after int64, limit int) (string, []any) {
	parts := make([]string, len(items))
	var args []any
	for i, it := range items {
		sub, subArgs := itemQuery(it, after, limit)
		parts[i] = "SELECT position FROM (" + sub + ")"
		args = append(args, subArgs...)
	}
	query := "SELECT " + allColumns + " FROM events WHERE position IN (" + strings.Join(parts, " UNION ALL ") +
		") ORDER BY position LIMIT ?"
	return query, append(args, limit)
}

// conditionQuery returns a query of one row and column: 1 when an event
// after the position after matches one of items (at most maxQueryItems,
// at least one), else 0.
func conditionQuery(items []driver.QueryItem, after int64) (string, []any) {
	parts := make([]string, len(items))
	var args []any
	for i, it := range items {
		sub, subArgs := itemQuery(it, after, 0)
		parts[i] = "EXISTS (" + sub + ")"
		args = append(args, subArgs...)
	}
	return "SELECT " + strings.Join(parts, " OR "), args
}

// queryConditionAll is the condition of a query without items: any event
// after the position.
const queryConditionAll = "SELECT EXISTS (SELECT 1 FROM events WHERE position > ? AND stream <> '')"

// ReadQuery implements [driver.QueryReader]. One statement reads a page:
// see pageQuery for its shape and TestQueryPlans for its plan. A query of
// more than maxQueryItems items reads a page per group of that many and
// merges them. Every event up to the highest committed position is
// visible (one writer gives positions in commit order), so a page never
// passes an event that could still appear below it.
func (d *Driver) ReadQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	after, _ := bounds(q.After, driver.Position{})
	items, all := queryItems(q.Query)
	switch {
	case all:
		rows, err := d.read.allForwards.QueryContext(ctx, after, int64(math.MaxInt64), q.Limit)
		if err != nil {
			return nil, mapError(err, nil)
		}
		out, err := scanEvents(rows, &d.pages, "", q.Limit, q.MaxBytes)
		return out, mapError(err, nil)
	case len(items) == 0:
		return nil, nil
	case len(items) <= maxQueryItems:
		return d.queryPage(ctx, items, after, q.Limit, q.MaxBytes)
	}
	// Each group's page is complete up to its last event if it is full,
	// and to the end of the log if not: the merge is complete up to the
	// lowest such end.
	var merged []driver.RecordedEvent
	end := int64(math.MaxInt64)
	for group := range slices.Chunk(items, maxQueryItems) {
		page, err := d.queryPage(ctx, group, after, q.Limit, q.MaxBytes)
		if err != nil {
			return nil, err
		}
		if driver.PageFull(page, q.Limit, q.MaxBytes) {
			end = min(end, int64(page[len(page)-1].Position.Commit))
		}
		merged = append(merged, page...)
	}
	slices.SortFunc(merged, func(a, b driver.RecordedEvent) int { return a.Position.Compare(b.Position) })
	merged = slices.CompactFunc(merged, func(a, b driver.RecordedEvent) bool { return a.Position == b.Position })
	out := driver.NewPage(q.Limit, q.MaxBytes)
	for _, ev := range merged {
		if int64(ev.Position.Commit) > end || out.Add(ev) {
			break
		}
	}
	return out.Events, nil
}

// queryPage reads one page of the events matching any of items.
func (d *Driver) queryPage(ctx context.Context, items []driver.QueryItem, after int64, limit, maxBytes int) ([]driver.RecordedEvent, error) {
	query, args := pageQuery(items, after, limit)
	rows, err := d.query(ctx, query, args...)
	if err != nil {
		return nil, mapError(err, nil)
	}
	out, err := scanEvents(rows, &d.pages, "", limit, maxBytes)
	return out, mapError(err, nil)
}

// conditionFails reports, inside the write transaction on w, whether an
// event matching c's query follows c.After. The transaction holds the
// file's write lock, so no event can be added between this check and the
// commit.
func conditionFails(ctx context.Context, w *writer, c *driver.AppendCondition) (bool, error) {
	after, _ := bounds(c.After, driver.Position{})
	items, all := queryItems(c.FailIfEventsMatch)
	var found bool
	if all {
		err := w.stmt(ctx, queryConditionAll, func(st *sql.Stmt) error {
			return st.QueryRowContext(ctx, after).Scan(&found)
		})
		return found, err
	}
	for group := range slices.Chunk(items, maxQueryItems) {
		query, args := conditionQuery(group, after)
		err := w.stmt(ctx, query, func(st *sql.Stmt) error {
			return st.QueryRowContext(ctx, args...).Scan(&found)
		})
		if err != nil || found {
			return found, err
		}
	}
	return false, nil
}

// maxConditionStmts bounds how many condition shapes keep a prepared
// statement on the write connection.
const maxConditionStmts = 64

// stmt runs fn with query prepared on the write connection: prepared once
// per query text while fewer than maxConditionStmts shapes have been seen
// (an application has a few kinds of condition), else for this call only.
func (w *writer) stmt(ctx context.Context, query string, fn func(st *sql.Stmt) error) error {
	st, ok := w.conditions[query]
	if !ok {
		var err error
		if st, err = w.conn.PrepareContext(ctx, query); err != nil {
			return err
		}
		if len(w.conditions) < maxConditionStmts {
			if w.conditions == nil {
				w.conditions = map[string]*sql.Stmt{}
			}
			w.conditions[query] = st
		} else {
			defer st.Close()
		}
	}
	return fn(st)
}
