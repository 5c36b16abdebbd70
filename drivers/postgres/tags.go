package postgres

import (
	"encoding/binary"
	"hash/fnv"
	"slices"

	"github.com/eventkit/eventstore/driver"
)

// Append conditions are made race-proof at READ COMMITTED with
// transaction-level advisory locks, keyed per (event type, tag) and
// (any type, tag), taken in one order by every writer (see lockPlan):
//
//   - A writer of tagged events (Append, Import, AppendMulti) takes a SHARED
//     lock on (type, tag) and (*, tag) for each tag of each event. Writers
//     never block each other.
//   - A condition item with tags takes an EXCLUSIVE lock on (t, s0) for each
//     of its types t, or (*, s0) when it has none, where s0 is its smallest
//     tag. An event matching the item has type t (when the item has types)
//     and carries s0, so its writer holds a shared lock on that very key:
//     the condition waits for it to end, and checks in a statement that
//     starts after that, which sees the event. A hash collision only makes
//     unrelated appends wait for each other.
//   - A condition item without tags (types only) and a query without items
//     can match events without tags, whose writers take no locks: events
//     without tags cost nothing extra. Such a condition locks the events
//     table in SHARE ROW EXCLUSIVE mode instead, which waits for every
//     writer of the store and holds new ones back until it commits.
//
// Every transaction of the driver that takes these locks takes them in one
// order: its streams' locks (lockStreamSQL's keys, sorted), then the lock
// on the events table, then the tag locks sorted by key. The lock on the
// events table comes before the transaction's ID (so the visibility fence
// of reads stays sound) and before the tag locks, so a table lock never
// waits for a writer that waits for it.

// tagKey is the advisory lock key of (eventType, tag) in schema, or of
// (*, tag) when eventType is "" (event types are never empty).
func tagKey(schema, eventType, tag string) int64 {
	h := fnv.New64a()
	h.Write([]byte(schema))
	h.Write([]byte{0})
	if eventType == "" {
		h.Write([]byte{'*'})
	} else {
		h.Write([]byte{'t'})
		h.Write([]byte(eventType))
	}
	h.Write([]byte{0})
	h.Write([]byte(tag))
	return int64(h.Sum64())
}

// lockPlan is what a write takes before it checks and inserts: tag locks
// (keys sorted, each exclusive or shared) and the mode of its lock on the
// events table.
type lockPlan struct {
	keys      []int64
	exclusive []bool
	// tableExclusive: a condition item without tags; the events table is
	// locked in SHARE ROW EXCLUSIVE mode instead of ROW EXCLUSIVE.
	tableExclusive bool
}

// newLockPlan returns the locks of a write of events under cond (nil: none).
func newLockPlan(schema string, events []driver.Event, cond *driver.AppendCondition) lockPlan {
	mode := map[int64]bool{} // key → exclusive
	for _, e := range events {
		for _, tag := range e.Tags {
			for _, k := range [2]int64{tagKey(schema, e.Type, tag), tagKey(schema, "", tag)} {
				if _, ok := mode[k]; !ok {
					mode[k] = false
				}
			}
		}
	}
	var p lockPlan
	if cond != nil {
		if len(cond.FailIfEventsMatch.Items) == 0 {
			p.tableExclusive = true
		}
		for _, it := range cond.FailIfEventsMatch.Items {
			if len(it.Tags) == 0 {
				p.tableExclusive = true
				continue
			}
			s0 := slices.Min(it.Tags)
			if len(it.Types) == 0 {
				mode[tagKey(schema, "", s0)] = true
			}
			for _, t := range it.Types {
				mode[tagKey(schema, t, s0)] = true
			}
		}
	}
	p.keys = make([]int64, 0, len(mode))
	for k := range mode {
		p.keys = append(p.keys, k)
	}
	slices.Sort(p.keys)
	p.exclusive = make([]bool, len(p.keys))
	for i, k := range p.keys {
		p.exclusive[i] = mode[k]
	}
	return p
}

// lockTagsSQL takes the advisory locks of a lockPlan, in the arrays' order
// ($1 keys, $2 whether exclusive). A function scan returns an array's
// elements in order, and nothing in the statement reorders them.
const lockTagsSQL = `SELECT count(CASE WHEN u.x THEN pg_advisory_xact_lock(u.k)::text ELSE pg_advisory_xact_lock_shared(u.k)::text END)
FROM unnest($1::bigint[], $2::boolean[]) AS u(k, x)`

// lockStreamsSQL takes the advisory lock of lockStreamSQL on each stream of
// schema $1 named in $2, in the order of the keys, so two writes that lock
// the same streams cannot deadlock (not even when two names share a key).
const lockStreamsSQL = `SELECT count(pg_advisory_xact_lock(hashtext($1), h)::text)
FROM (SELECT DISTINCT hashtext(s) AS h FROM unnest($2::text[]) AS s ORDER BY h) k`

// hasTags reports whether an event of evs has tags.
func hasTags(evs []driver.Event) bool {
	for _, e := range evs {
		if len(e.Tags) > 0 {
			return true
		}
	}
	return false
}

// decodeTextArray decodes a one-dimensional text[] without NULLs in
// PostgreSQL's binary format; an empty array is nil.
func decodeTextArray(b []byte) ([]string, error) {
	if len(b) < 12 {
		return nil, errBadValue
	}
	ndim := binary.BigEndian.Uint32(b)
	if ndim == 0 {
		return nil, nil
	}
	if ndim != 1 || len(b) < 20 {
		return nil, errBadValue
	}
	n := int(binary.BigEndian.Uint32(b[12:]))
	b = b[20:]
	out := make([]string, 0, n)
	for range n {
		if len(b) < 4 {
			return nil, errBadValue
		}
		l := int(int32(binary.BigEndian.Uint32(b)))
		if l < 0 || len(b) < 4+l {
			return nil, errBadValue
		}
		out = append(out, string(b[4:4+l]))
		b = b[4+l:]
	}
	return out, nil
}
