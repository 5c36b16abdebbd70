package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/eventkit/eventstore/driver"
)

// conditionSQL returns the SQL expression that is true when an event
// matching cond's query has a position after cond.After (any position when
// it is zero), adding its parameters to args. Each item is one probe for
// the first matching event after After, in position order:
//
//   - with tags, an index range scan of event_tags for the item's first
//     tag after After (filtered by the item's types, which the index
//     includes), each event found checked for the item's other tags in
//     events.tags (a primary-key probe, otherTags);
//   - with types only, a probe of events_type_idx for each type;
//   - a query without items is one probe of the primary key.
//
// The locks taken before (tags.go) make the result final: no event the
// expression does not see can still commit before the append does.
func conditionSQL(schema string, cond driver.AppendCondition, args []any) (string, []any) {
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	after := `(` + arg(clamp(cond.After.Commit)) + `::bigint, ` + arg(clamp(cond.After.Prepare)) + `::bigint)`
	events, tags := schema+`.events`, schema+`.event_tags`
	// probe is true when the first row of from, in position order, exists.
	// Not EXISTS, whose subquery PostgreSQL plans without its ORDER BY and
	// LIMIT: for a common tag it then chose a sequential scan that finds
	// the first match "soon", which is never soon when After is recent.
	probe := func(from, order string) string {
		return `(SELECT true ` + from + ` ORDER BY ` + order + ` LIMIT 1) IS NOT NULL`
	}
	items := cond.FailIfEventsMatch.Items
	if len(items) == 0 {
		return probe(`FROM `+events+` WHERE (tx_id, seq) > `+after, `tx_id, seq`), args
	}
	parts := make([]string, len(items))
	for i, it := range items {
		if len(it.Tags) == 0 {
			parts[i] = `EXISTS (SELECT FROM unnest(` + arg(it.Types) + `::text[]) ty WHERE ` +
				probe(`FROM `+events+` WHERE event_type = ty AND (tx_id, seq) > `+after, `tx_id, seq`) + `)`
			continue
		}
		c := `FROM ` + tags + ` t WHERE t.tag = ` + arg(it.Tags[0]) + `::text AND (t.tx_id, t.seq) > ` + after
		if len(it.Types) > 0 {
			c += ` AND t.event_type = ANY (` + arg(it.Types) + `::text[])`
		}
		if len(it.Tags) > 1 {
			c += ` AND ` + otherTags(events, arg(it.Tags)+`::text[]`)
		}
		parts[i] = probe(c, `t.tx_id, t.seq`)
	}
	return `(` + strings.Join(parts, ` OR `) + `)`, args
}

// ReadQuery implements [driver.QueryReader]. One statement reads the page
// behind the same visibility fence as ReadAll (see lockFenceSQL), so the
// position of the last event of a page is a safe AppendCondition.After:
// an event that becomes visible later has a higher position. Each query
// item is one ordered index range scan that stops at the page's limit
// (event_tags for an item with tags, events_type_idx per type for one with
// types only, the primary key for a query without items); their union is
// cut at the limit in position order, and the page's events are read by
// primary key.
//
// As ReadAll, when committed events are held back behind an open writer and
// the page is not full, it waits (up to Options.ReadWait) for the writers
// open when it started and reads again.
func (d *Driver) ReadQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	query, args := d.readQueryQuery(q)
	return d.readBehindFence(ctx, query, args, q.Limit, q.MaxBytes, func(page []driver.RecordedEvent, _ pageHead) bool {
		return driver.PageFull(page, q.Limit, q.MaxBytes)
	})
}

// readQueryQuery builds ReadQuery's statement: the head row of
// readAllQuery's (headRow) and the page. As there, every parameter enters
// through the materialized CTE s.
func (d *Driver) readQueryQuery(q driver.QueryPage) (string, []any) {
	var params strings.Builder
	args := make([]any, 0, 8)
	arg := func(v any, typ string) string {
		args = append(args, v)
		n := strconv.Itoa(len(args))
		params.WriteString(`, $` + n + `::` + typ + ` AS p` + n)
		return "s.p" + n
	}
	schema := quoteIdent(d.schema)
	events, tags := schema+`.events`, schema+`.event_tags`
	limit := arg(q.Limit, "integer")
	maxBytes := arg(maxBytesArg(q.MaxBytes), "bigint")
	// inRange is the condition that an event of alias x is below the fence
	// and after After.
	var after string
	if !q.After.IsZero() {
		after = `(` + arg(clamp(q.After.Commit), "bigint") + `, ` + arg(clamp(q.After.Prepare), "bigint") + `)`
	}
	inRange := func(x string) string {
		c := x + `.tx_id < s.fence`
		if after != "" {
			c += ` AND (` + x + `.tx_id, ` + x + `.seq) > ` + after
		}
		return c
	}
	var scans []string
	if len(q.Query.Items) == 0 {
		scans = append(scans, `(SELECT e.tx_id, e.seq FROM `+events+` e WHERE `+inRange("e")+` ORDER BY e.tx_id, e.seq LIMIT `+limit+`)`)
	}
	for _, it := range q.Query.Items {
		if len(it.Tags) == 0 {
			// One ordered scan of events_type_idx per type; the range
			// around the equality is there for the planner (see keyIs).
			scans = append(scans, `(SELECT k.tx_id, k.seq FROM unnest(`+arg(it.Types, "text[]")+`) ty, LATERAL (
		SELECT e.tx_id, e.seq FROM `+events+` e WHERE e.event_type = ty AND e.event_type >= ty AND e.event_type <= ty AND `+inRange("e")+`
		ORDER BY e.tx_id, e.seq LIMIT `+limit+`) k)`)
			continue
		}
		c := `t.tag = ` + arg(it.Tags[0], "text") + ` AND ` + inRange("t")
		if len(it.Types) > 0 {
			c += ` AND t.event_type = ANY (` + arg(it.Types, "text[]") + `)`
		}
		if len(it.Tags) > 1 {
			c += ` AND ` + otherTags(events, arg(it.Tags, "text[]"))
		}
		scans = append(scans, `(SELECT t.tx_id, t.seq FROM `+tags+` t WHERE `+c+` ORDER BY t.tx_id, t.seq LIMIT `+limit+`)`)
	}
	from := `FROM ` + events + ` WHERE (tx_id, seq) IN (SELECT tx_id, seq FROM (` + strings.Join(scans, `
	UNION `) + `) k ORDER BY tx_id, seq LIMIT ` + limit + `)`
	query := d.sql.snapshot + params.String() + `
FROM t)` + headRow(`s`, `NULL::bigint`, ``) + `
	` + pageSQL(from, `tx_id, seq`, false, true, limit, maxBytes) + `
) e`
	return query, args
}

// otherTags is the condition that the event of the event_tags row t
// carries every tag of the array tags: a scalar subquery, which PostgreSQL
// runs per row as a probe of the primary key. Written as EXISTS, it was
// planned as a semi-join that read every event of the log to filter
// events.tags (160 ms for a page of 51 events of 100,000: TestQueryPlans).
func otherTags(events, tags string) string {
	return `(SELECT e.tags FROM ` + events + ` e WHERE e.tx_id = t.tx_id AND e.seq = t.seq) @> ` + tags
}
