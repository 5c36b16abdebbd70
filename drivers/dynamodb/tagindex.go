package dynamodb

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// The tag index. Reads by query (ReadQuery) and DCB append conditions find
// the events of a tag without reading the log: every log entry whose events
// carry tags has, per distinct tag, a tag item written in the same
// TransactWriteItems as the entry (the append's own transaction in a table
// of the head layout; the orderer's pass, the lease holder's direct
// placement or a placed conditional append in an indexed table):
//
//	tag item   pk = "$tag#" + tag   sk = position of the entry's first event
//
// holding, for the events of the entry that carry the tag, in position
// order, their offsets in the entry (o), types (ty), streams (es) and
// versions (ev). Tags follow the rules of stream IDs (no "$" first), and no
// other item has a pk starting with "$tag#", so stream listings and
// migrations never meet a tag item.
//
// A query all of whose items name at least one tag is served by the index:
// the reader reads the last log entry (a query or two; the bound), then
// queries the tag items of each tag the query names with sk from After-99
// (an entry holds at most 99 events) to below the last entry, in pages,
// merging them in position order (an item naming several tags matches the
// positions every one of its tags lists), and matches the last entry's
// events from the entry itself (see tagSearch). A query with an item of
// types only keeps the log scan (see ReadQuery).
//
// The index is a property of the table, recorded in its layout item (tags =
// 1) when the table is set up: a table set up before the index existed
// keeps the log scan (correct, slower), since its older entries have no tag
// items; nothing backfills them.
const (
	tagPrefix = "$tag#"

	// Tag items, one element per event of the entry carrying the tag.
	attrTagOffsets  = "o"  // L of N, offset of the event in the entry
	attrTagStreams  = "es" // L of S, the event's stream
	attrTagVersions = "ev" // L of N, the event's version
	// (attrTypes, "ty": L of S, the event's type)

	// attrTagIndex in the layout item records that every log entry of the
	// table has its tag items (N, 1).
	attrTagIndex = "tags"
)

// tagItemOverhead bounds the bytes of a tag item beyond its tag and its
// events' streams and types: the key, the attribute names, the numbers.
const (
	tagItemOverhead  = 64
	tagEventOverhead = 32
)

// tagPK returns the partition key of a tag's items.
func tagPK(tag string) string { return tagPrefix + tag }

// tagged is an event carrying a tag, within a log entry.
type tagged struct {
	offset  uint64
	typ     string
	stream  string
	version uint64
}

// tagGroups returns the distinct tags of runs, in order of first
// appearance, and the events carrying each.
func tagGroups(runs []run) ([]string, map[string][]tagged) {
	var tags []string
	var evs map[string][]tagged
	off := uint64(0)
	for _, rn := range runs {
		for j, e := range rn.events {
			for _, t := range e.Tags {
				if evs == nil {
					evs = map[string][]tagged{}
				}
				if _, ok := evs[t]; !ok {
					tags = append(tags, t)
				}
				evs[t] = append(evs[t], tagged{offset: off, typ: e.Type, stream: rn.stream, version: rn.first + uint64(j)})
			}
			off++
		}
	}
	return tags, evs
}

// tagItems returns the puts of the tag items of the log entry at position
// start covering runs, for the entry's transaction; none when the table has
// no tag index or no event has tags. The puts are unconditional: the
// entry's own conditional put decides whether the transaction happens.
func (d *Driver) tagItems(start uint64, runs []run) []types.TransactWriteItem {
	if !d.tagIndex {
		return nil
	}
	tags, evs := tagGroups(runs)
	items := make([]types.TransactWriteItem, 0, len(tags))
	for _, t := range tags {
		es := evs[t]
		offs := make([]types.AttributeValue, len(es))
		typs := make([]types.AttributeValue, len(es))
		streams := make([]types.AttributeValue, len(es))
		versions := make([]types.AttributeValue, len(es))
		for i, e := range es {
			offs[i], typs[i], streams[i], versions[i] = num(e.offset), str(e.typ), str(e.stream), num(e.version)
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(d.table),
			Item: map[string]types.AttributeValue{
				attrPK:          str(tagPK(t)),
				attrSK:          num(start),
				attrTagOffsets:  &types.AttributeValueMemberL{Value: offs},
				attrTypes:       &types.AttributeValueMemberL{Value: typs},
				attrTagStreams:  &types.AttributeValueMemberL{Value: streams},
				attrTagVersions: &types.AttributeValueMemberL{Value: versions},
			},
		}})
	}
	return items
}

// txnCost is what one TransactWriteItems takes, or a part of one: its
// items, and about how many bytes they take (never fewer than DynamoDB
// counts). Every builder of a transaction that writes a log entry (the
// committer's, the orderer's pass, the direct placement, a placed
// conditional append) adds the tag items of its entry, tagCost, to its own
// count, and checks the total with fits: the tag index is counted in one
// place.
type txnCost struct{ items, size int }

// plus returns the cost of c and o together.
func (c txnCost) plus(o txnCost) txnCost { return txnCost{c.items + o.items, c.size + o.size} }

// fits reports whether c is within DynamoDB's items and bytes per
// transaction.
func (c txnCost) fits() bool { return c.items <= maxTxnItems && c.size <= maxTxnSize }

// placeItems is what a transaction that places events in an indexed
// table's log takes besides their items: the fence (the orderer's lease
// check and the head of the log, see order.go's fence) and the log entry.
const placeItems = 3

// tagCost returns the cost of the tag items of a log entry covering runs:
// one item per distinct tag; nothing without the tag index.
func (d *Driver) tagCost(runs []run) txnCost {
	if !d.tagIndex {
		return txnCost{}
	}
	tags, evs := tagGroups(runs)
	c := txnCost{items: len(tags)}
	for _, t := range tags {
		c.size += tagItemOverhead + len(tagPrefix) + len(t)
		for _, e := range evs[t] {
			c.size += tagEventOverhead + len(e.typ) + len(e.stream)
		}
	}
	return c
}

// entryTagCost is tagCost for the runs of a log entry (an inbox entry the
// orderer places). A nil d (an orderer tested on its own) has no index.
func (d *Driver) entryTagCost(e logEntry) txnCost {
	if d == nil || !d.tagIndex || e.tags == nil {
		return txnCost{}
	}
	return d.tagCost(entryRuns(e))
}

// entryRuns returns the runs of a log entry, each event with its type and
// tags only.
func entryRuns(e logEntry) []run {
	runs := make([]run, 0, len(e.runs))
	for _, r := range e.runs {
		evs := make([]driver.Event, r.count)
		for j := range evs {
			evs[j].Type = e.types[r.offset+uint64(j)]
			evs[j].Tags = e.tagsAt(r.offset + uint64(j))
		}
		runs = append(runs, run{stream: r.stream, first: r.first, events: evs})
	}
	return runs
}

// addTagCost counts r's tag items in its transaction items and bytes, and
// fails a request whose transaction would then be over DynamoDB's limits
// with an error matching ErrBatchTooLarge, before anything is written:
// the tag items are never split off into another transaction. In an
// indexed table the bound is the orderer's pass or the direct placement,
// whichever takes more items (placeItems, and the inbox deletion or a
// check per stream).
func (d *Driver) addTagCost(r *request) error {
	tags := d.tagCost(r.runs)
	if tags.items == 0 {
		return nil
	}
	r.actions += tags.items
	r.size += tags.size
	need := txnCost{r.actions, r.size}
	if d.indexed {
		need.items = max(need.items, placeItems+1+r.count+tags.items, placeItems+len(r.checks)+len(r.streams)+r.count+tags.items)
	}
	if !need.fits() {
		return fmt.Errorf("dynamodb: %w: %d events with %d distinct tags take %d transaction items (one per event, one per distinct tag, and up to 4 more) and about %d bytes, over DynamoDB's %d items and %d bytes per transaction",
			eventstore.ErrBatchTooLarge, r.count, tags.items, need.items, need.size, maxTxnItems, maxTxnSize)
	}
	return nil
}

// tagServed reports whether the tag index serves q: the table has it and
// every item of q names a tag.
func (d *Driver) tagServed(q driver.Query) bool {
	if !d.tagIndex || len(q.Items) == 0 {
		return false
	}
	for _, it := range q.Items {
		if len(it.Tags) == 0 {
			return false
		}
	}
	return true
}

// tagCursor reads the tag items of one tag in sk order, a page at a time.
type tagCursor struct {
	tag     string
	in      *awsdynamodb.QueryInput
	items   []tagEntry // read, not merged yet
	read    uint64     // every item with sk ≤ read has been read
	done    bool       // every item below the bound has been read
	pageLim int32
}

// tagEntry is a decoded tag item.
type tagEntry struct {
	start   uint64
	offsets []uint64
	types   []string
	streams []string
	version []uint64
}

// tagHit is an event a tag item names, with the query's tags it carries.
type tagHit struct {
	typ     string
	stream  string
	version uint64
	tags    []string
}

// tagMatches returns the keys of the events q matches at positions in
// (after, bound), in position order, at most limit, from the tag items of
// the tags q names (the caller checked tagServed). Tag items of removed
// events may remain: their events are passed over by the fetch, as the log
// scan's are. It reads the items of each tag in pages that grow from 16 to
// 512, so a query that matches early reads little, and merges them by
// entry: the entries up to the lowest sk every tag has been read to are
// complete.
func (d *Driver) tagMatches(ctx context.Context, q driver.Query, after, bound uint64, limit int) ([]eventKey, error) {
	if bound <= after+1 {
		return nil, nil
	}
	// An entry starting at or before after may hold later positions: it
	// holds at most maxTxnItems-1 events.
	lo := after - min(after, maxTxnItems-1)
	var curs []*tagCursor
	seen := map[string]bool{}
	for _, it := range q.Items {
		for _, t := range it.Tags {
			if seen[t] {
				continue
			}
			seen[t] = true
			curs = append(curs, &tagCursor{tag: t, read: lo, pageLim: firstLogPage, in: &awsdynamodb.QueryInput{
				KeyConditionExpression: aws.String("pk = :t AND sk BETWEEN :lo AND :hi"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":t": str(tagPK(t)), ":lo": num(lo + 1), ":hi": num(bound - 1),
				},
			}})
		}
	}
	var keys []eventKey
	for {
		// The lowest sk every tag has been read to.
		frontier := bound - 1
		for _, c := range curs {
			if !c.done {
				frontier = min(frontier, c.read)
			}
		}
		// Merge the complete entries.
		hits := map[uint64]*tagHit{}
		for _, c := range curs {
			n := 0
			for _, e := range c.items {
				if e.start > frontier {
					break
				}
				n++
				for i, off := range e.offsets {
					p := e.start + off
					if p <= after || p >= bound {
						continue
					}
					h := hits[p]
					if h == nil {
						h = &tagHit{typ: e.types[i], stream: e.streams[i], version: e.version[i]}
						hits[p] = h
					}
					h.tags = append(h.tags, c.tag)
				}
			}
			c.items = c.items[n:]
		}
		ps := make([]uint64, 0, len(hits))
		for p, h := range hits {
			if q.Matches(h.typ, h.tags) {
				ps = append(ps, p)
			}
		}
		slices.Sort(ps)
		for _, p := range ps {
			h := hits[p]
			keys = append(keys, eventKey{stream: h.stream, version: h.version, pos: p})
			if len(keys) >= limit {
				return keys, nil
			}
		}
		// Read on the tags that hold the frontier back.
		more := false
		for _, c := range curs {
			if c.done || c.read > frontier {
				continue
			}
			more = true
			if err := d.readTagPage(ctx, c, bound); err != nil {
				return nil, err
			}
		}
		if !more {
			return keys, nil
		}
	}
}

// readTagPage reads the next page of c's tag items below bound.
func (d *Driver) readTagPage(ctx context.Context, c *tagCursor, bound uint64) error {
	c.in.Limit = aws.Int32(c.pageLim)
	c.pageLim = min(c.pageLim*4, logPage)
	out, err := d.query(ctx, c.in)
	if err != nil {
		return wrapNative(fmt.Errorf("read tag %q: %w", c.tag, err))
	}
	for _, item := range out.Items {
		e, err := decodeTagItem(item)
		if err != nil {
			return fmt.Errorf("dynamodb: read tag %q: %w", c.tag, err)
		}
		c.items = append(c.items, e)
		c.read = e.start
	}
	if out.LastEvaluatedKey == nil {
		c.done, c.read = true, bound-1
		return nil
	}
	c.in.ExclusiveStartKey = out.LastEvaluatedKey
	return nil
}

// decodeTagItem decodes a tag item.
func decodeTagItem(item map[string]types.AttributeValue) (tagEntry, error) {
	var e tagEntry
	var err error
	if e.start, err = getNum(item, attrSK); err != nil {
		return e, err
	}
	if e.offsets, err = getNums(item, attrTagOffsets); err != nil {
		return e, err
	}
	if e.types, err = getStrs(item, attrTypes); err != nil {
		return e, err
	}
	if e.streams, err = getStrs(item, attrTagStreams); err != nil {
		return e, err
	}
	if e.version, err = getNums(item, attrTagVersions); err != nil {
		return e, err
	}
	if n := len(e.offsets); len(e.types) != n || len(e.streams) != n || len(e.version) != n {
		return e, fmt.Errorf("tag item at %d: lists of different lengths", e.start)
	}
	return e, nil
}

// tagSearch returns the keys of the events q matches after position
// after, in position order, at most limit, and the bound they were
// searched below: the position after the last log entry. It reads the last
// entry first (the bound), then the tag items of the entries before it,
// and takes the last entry's own matches from the entry itself, which
// carries its events' types and tags.
//
// Why the last entry is not read through its tag items: DynamoDB applies a
// transaction's items one by one, so while a transaction commits a reader
// may see its log entry and not yet its tag items, as it may not yet see
// its event items (see ReadAll). Log entries are written one transaction
// after the other by one writer at a time (the committer of a head table,
// which sends the next transaction once the previous one returned, and an
// indexed table's lease holder), and a TransactWriteItems returns once
// every item is applied, so only the last entry can be in that state.
// (Writers of a head table in several processes are the exception: one
// reads the head while another's transaction is still being applied; see
// docs/dynamodb.md.)
func (d *Driver) tagSearch(ctx context.Context, q driver.Query, after uint64, limit int) (keys []eventKey, bound uint64, err error) {
	h, ok, err := d.head(ctx)
	if err != nil {
		return nil, 0, wrapNative(err)
	}
	if !ok {
		return nil, 1, nil
	}
	keys, err = d.tagMatches(ctx, q, after, h.start, limit)
	if err != nil || len(keys) >= limit {
		return keys, h.last() + 1, err
	}
	for i := range h.count {
		p := h.start + i
		if p <= after || !q.Matches(h.types[i], h.tagsAt(i)) {
			continue
		}
		stream, version := h.event(i)
		keys = append(keys, eventKey{stream: stream, version: version, pos: p, entry: &h})
		if len(keys) >= limit {
			break
		}
	}
	return keys, h.last() + 1, nil
}

// readTagQuery is ReadQuery served by the tag index (see tagServed and
// tagSearch). A page that ends short ends at the bound: the matches below
// the last log entry the read saw.
func (d *Driver) readTagQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	page := driver.NewPage(q.Limit, q.MaxBytes)
	after := q.After.Commit
	for {
		want := q.Limit - len(page.Events)
		keys, _, err := d.tagSearch(ctx, q.Query, after, want)
		if err != nil {
			return nil, err
		}
		next, missing, err := d.fetchPage(ctx, keys, &page, q.MaxBytes)
		if err != nil {
			return nil, err
		}
		// Removed events passed over leave the page short: go on after
		// them, unless the matches ended at the bound.
		if page.Full() || missing > 0 || next < len(keys) || len(keys) < want {
			break
		}
		after = keys[len(keys)-1].pos
	}
	return page.Events, nil
}

// tagCondition is conditionScan's search served by the tag index (see
// tagSearch): it looks for one event q matches after a position below the
// bound. When none matches, end is the last position below the bound (even
// for an After past it): an append pinned to the bound keeps the
// condition.
func (d *Driver) tagCondition(q driver.Query) conditionSearch {
	return func(ctx context.Context, after uint64) (*eventKey, uint64, error) {
		keys, bound, err := d.tagSearch(ctx, q, after, 1)
		if err != nil || len(keys) == 0 {
			return nil, bound - 1, err
		}
		return &keys[0], 0, nil
	}
}
