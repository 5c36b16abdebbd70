package postgres

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventstore/driver"
)

// Filtered reads of the global log. Schema version 3 indexes the events by
// category (categoryExpr) and by event type, each in position order, so a
// filter walks an index instead of the log:
//
//   - A list of up to maxIndexedValues values (categories first, else event
//     types) is read through its index: one index range scan per value, in
//     position order, merged (a Merge Append of up to 32 scans), each
//     stopping at the page's limit. A page costs its events, plus one index
//     descent per value, however rare the matches are in the log.
//   - A longer list, or the second list when both are given, is checked on
//     each event the read passes with a hash lookup: a hashed SubPlan built
//     once per statement from the list. `x = ANY($1)` with a parameter is a
//     linear search per row (PostgreSQL hashes only constant arrays), which
//     made one page of a 2,000-category filter over 200,000 events take 3.3
//     s; the hash lookup takes 32 ms for the same walk. A bare `IN (SELECT
//     unnest(…))` would be planned as a join, whose order the planner does
//     not know; wrapped in IS TRUE it stays a filter on the ordered scan.
//
// TestFilteredReadPlans checks these plans.

// categoryExpr is a stream's category (driver.Category) in SQL, as
// events_category_idx indexes it.
const categoryExpr = `split_part(stream_id, '-', 1)`

// maxIndexedValues is the most values of a filter list read through its
// index, one index scan each; a page reads up to that many scans' worth of
// rows (limit each) when the values are all common.
const maxIndexedValues = 32

// scanWindow is how many events of the log a ReadAllScan page examines at
// most when events must be checked one by one (a filter list too long for
// the index, or both lists): the page reads only the window's events after
// After, found with one index-only scan of the primary key.
const scanWindow = 4096

// filterPlan is how a read of the global log applies a filter.
type filterPlan struct {
	// key is the indexed expression the read walks (categoryExpr or
	// event_type), "" to walk the primary key.
	key string
	// values is the parameter holding key's values, without duplicates
	// (each is one scan of a UNION ALL: a duplicate would return its events
	// twice), and slots how many scans: len(values) rounded up to a power
	// of two, so that few statement texts are prepared. Slots past the end
	// of the array compare with NULL and find nothing.
	values string
	slots  int
	// residual are the lists checked on each event by a hash lookup.
	residual []filterCheck
}

// filterCheck is a list checked on each event: expr must be one of the
// parameter's values.
type filterCheck struct{ expr, param string }

// planFilter plans f, adding its lists as parameters with arg (which returns
// the parameter's column in the CTE of parameters).
func planFilter(f driver.Filter, arg func(v any, typ string) string) filterPlan {
	var p filterPlan
	for _, l := range []struct {
		expr   string
		values []string
	}{{categoryExpr, f.Categories}, {"event_type", f.EventTypes}} {
		switch {
		case len(l.values) == 0:
		case p.key == "" && len(l.values) <= maxIndexedValues:
			vs := slices.Clone(l.values)
			slices.Sort(vs)
			vs = slices.Compact(vs)
			p.key, p.values, p.slots = l.expr, arg(vs, "text[]"), 1
			for p.slots < len(vs) {
				p.slots *= 2
			}
		default:
			p.residual = append(p.residual, filterCheck{l.expr, arg(l.values, "text[]")})
		}
	}
	return p
}

// filtered reports whether the plan filters at all.
func (p filterPlan) filtered() bool { return p.key != "" || len(p.residual) > 0 }

// from returns the FROM clause of a page (for pageSQL): the events that
// satisfy cond (a condition on events) and the filter, with the
// parameters of the CTE x. Walking an index, each of its scans stops at
// limit events, so a page reads at most slots × limit of them.
func (p filterPlan) from(events, x, cond string, backwards bool, limit string) string {
	cond += p.checks(x)
	if p.key == "" {
		return `FROM ` + events + ` WHERE ` + cond
	}
	if p.slots == 1 {
		return `FROM ` + events + ` WHERE ` + p.keyIs(x, 1) + ` AND ` + cond
	}
	order := `tx_id, seq`
	if backwards {
		order = `tx_id DESC, seq DESC`
	}
	scans := make([]string, p.slots)
	for i := range scans {
		scans[i] = `(SELECT ` + eventColumns + ` FROM ` + events + ` WHERE ` + p.keyIs(x, i+1) + ` AND ` + cond + `
		ORDER BY ` + order + ` LIMIT ` + limit + `)`
	}
	return `FROM (` + strings.Join(scans, ` UNION ALL `) + `) e`
}

// keyIs returns the condition that the key is the i-th value (from 1).
//
// The range around the equality is redundant, and there for the planner:
// its estimate of the equality alone is one in the number of distinct
// values of the key (the statement's plan is generic), a half with two
// categories in the store, and from it a walk of the log by position that
// checks each event (which returns them in the same order) looked as cheap
// as the key's index. Then a page of a rare category walked the whole log
// (200,000 events, 46 ms, with three categories of which one is 0.1 %).
// Two inequalities on unknown values make PostgreSQL estimate the range at
// 0.5 % more (DEFAULT_RANGE_INEQ_SEL), so the walk looks as expensive as it
// may be and the index, whose scan the range does not change, is chosen.
// TestFilteredReadPlans checks it on such a store.
func (p filterPlan) keyIs(x string, i int) string {
	v := `(` + x + `.` + p.values + `)[` + strconv.Itoa(i) + `]`
	return p.key + ` = ` + v + ` AND ` + p.key + ` >= ` + v + ` AND ` + p.key + ` <= ` + v
}

// checks returns the residual conditions, each a hashed SubPlan over the
// list's values.
func (p filterPlan) checks(x string) string {
	var b strings.Builder
	for _, c := range p.residual {
		b.WriteString(` AND (` + c.expr + ` = ANY (SELECT unnest(r.` + c.param + `) FROM ` + x + ` r)) IS TRUE`)
	}
	return b.String()
}

// scanSQL returns the rest of ReadAllScan's statement after the CTE s of
// readAllQuery: the CTE b adds to s the end of the page's scan, the
// position up to which the page examines the log, and whether it is the
// end of the fenced range (at_end); the head row (headRow) then holds the
// horizon, blocked, the fence, no row count, end_tx, end_seq and at_end.
//
// The end is the last event below the fence in the range of the query (a
// backward probe of the primary key), so the scan never reports a position
// that an event not yet visible could still take: every event up to it has
// a tx_id below the fence (see lockFenceSQL). When events are checked one
// by one (residual lists), the scan also stops at the scanWindow-th event
// after After, found by an index-only scan of the primary key (OFFSET),
// and the page reads only up to it. Walking an index alone, a page costs
// its events, so it needs no window: it reads up to the end.
func scanSQL(events string, inRange func(x string) string, plan filterPlan, limit, maxBytes string) string {
	var b strings.Builder
	b.WriteString(`, b AS MATERIALIZED (
	SELECT s.*, `)
	if len(plan.residual) > 0 {
		b.WriteString(`coalesce(w.tx_id, l.tx_id) AS end_tx, coalesce(w.seq, l.seq) AS end_seq, w.tx_id IS NULL AS at_end FROM s
	LEFT JOIN LATERAL (SELECT tx_id, seq FROM ` + events + ` WHERE ` + inRange("s") + `
		ORDER BY tx_id, seq OFFSET ` + strconv.Itoa(scanWindow-1) + ` LIMIT 1) w ON true`)
	} else {
		b.WriteString(`l.tx_id AS end_tx, l.seq AS end_seq, true AS at_end FROM s`)
	}
	b.WriteString(`
	LEFT JOIN LATERAL (SELECT tx_id, seq FROM ` + events + ` WHERE ` + inRange("s") + `
		ORDER BY tx_id DESC, seq DESC LIMIT 1) l ON true
)` + headRow(`b`, `NULL::bigint`, `, end_tx, end_seq, at_end`) + `
	`)
	cond := inRange("b") + ` AND (tx_id, seq) <= (b.end_tx, b.end_seq)`
	b.WriteString(pageSQL(plan.from(events, "b", cond, false, "b."+limit), `tx_id, seq`, false, plan.filtered(), "b."+limit, "b."+maxBytes))
	b.WriteString(`
) e`)
	return b.String()
}

// ReadAllScan implements [driver.ScanReader]. One statement reads the
// page and the end of its scan (see scanSQL) in one snapshot, behind the
// same visibility fence as ReadAll: Scanned is the last event returned when
// the page is full, otherwise the end of the scan, which is the position
// of an event below the fence. Walking an index (a short list of
// categories or event types, and no other list) a page examines only the
// events it returns and reaches the end of the fenced range; checking
// events one by one it examines at most scanWindow events of the log.
//
// When the scan reaches the fence while committed events are held back
// behind an open writer, it waits for the writer (up to Options.ReadWait)
// and reads again, as ReadAll does.
func (d *Driver) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	query, args := d.readAllQuery(q, true)
	page, head, err := d.readAllOnce(ctx, query, args, q.Limit, q.MaxBytes, true)
	if err != nil {
		return driver.ScanPage{}, err
	}
	full := driver.PageFull(page, q.Limit, q.MaxBytes)
	if !full && head.atEnd && head.blocked && d.readWait >= 0 {
		// As in ReadAll: until a read's own fence reaches the horizon.
		horizon, deadline := head.horizon, time.Now().Add(d.readWait)
		for !full && head.atEnd && head.blocked && head.fence < horizon {
			if err := d.waitFence(ctx, horizon, deadline); err != nil {
				if ctx.Err() != nil {
					return driver.ScanPage{}, ctx.Err()
				}
				break // still held back: return what is safe
			}
			if page, head, err = d.readAllOnce(ctx, query, args, q.Limit, q.MaxBytes, true); err != nil {
				return driver.ScanPage{}, err
			}
			full = driver.PageFull(page, q.Limit, q.MaxBytes)
		}
	}
	if full {
		return driver.ScanPage{Events: page, Scanned: page[len(page)-1].Position}, nil
	}
	return driver.ScanPage{Events: page, Scanned: head.end, End: head.atEnd}, nil
}
