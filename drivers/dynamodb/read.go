package dynamodb

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/driver"
)

// Reads are strongly consistent queries: a read sees every append that
// returned before it started.

// query runs one Query page with the driver's retries.
func (d *Driver) query(ctx context.Context, in *awsdynamodb.QueryInput) (*awsdynamodb.QueryOutput, error) {
	in.TableName = aws.String(d.table)
	in.ConsistentRead = aws.Bool(true) // also on the local secondary index
	var out *awsdynamodb.QueryOutput
	err := d.call(ctx, "Query", func(ctx context.Context) error {
		var err error
		out, err = d.client.Query(ctx, in, noRetry)
		return err
	})
	return out, err
}

// ReadStream implements [driver.Driver] with strongly consistent Query
// pages of at most 1 MB, until the page holds q.Limit events or q.MaxBytes
// bytes: the events of the last Query page past that are dropped unread, so
// a page holds at most MaxBytes plus one Query page (1 MB) in memory.
//
// Removed events (see retention.go) are left out, whether or not the
// sweep of their removal has deleted their items: a read from version 1
// also reads the stream's meta item (sort key 0, in the same Query) and
// skips the versions below its first kept one; stubs are skipped; a
// backward read stops at a stub above version 1, and a forward read drops
// the events it read below one. The stub below the first kept version is
// written by the removal's commit, so a backward read from the end, and a
// forward read that reaches the end of the stream, meet it above every
// event being removed. The others (a forward read from a later version
// that fills its page, a backward read from a given version) read the
// meta item once with a GetItem before they return events, and drop those
// below its first kept version.
func (d *Driver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	in := &awsdynamodb.QueryInput{
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(q.Stream)},
		ScanIndexForward:          aws.Bool(!q.Backwards),
	}
	switch {
	case q.Backwards && q.From == 0:
		in.KeyConditionExpression = aws.String("pk = :s AND sk > :v")
		in.ExpressionAttributeValues[":v"] = num(metaVersion)
	case q.Backwards:
		in.KeyConditionExpression = aws.String("pk = :s AND sk BETWEEN :m AND :v")
		in.ExpressionAttributeValues[":m"] = num(metaVersion + 1)
		in.ExpressionAttributeValues[":v"] = num(q.From)
	default:
		from := q.From
		if from <= 1 {
			from = metaVersion // the meta item first: where the stream starts
		}
		in.KeyConditionExpression = aws.String("pk = :s AND sk >= :v")
		in.ExpressionAttributeValues[":v"] = num(from)
	}
	out := driver.NewPage(q.Limit, q.MaxBytes)
	firstKept := uint64(1)
	// checked is set once the stream's first kept version is known: read
	// with the meta item, or not needed (a backward read from the end).
	checked := q.Backwards && q.From == 0 || !q.Backwards && q.From <= 1
	// check reads the first kept version and reports whether the page
	// holds only events at or above it.
	check := func() (bool, error) {
		checked = true
		m, err := d.meta(ctx, q.Stream)
		if err != nil {
			return false, wrapNative(err)
		}
		firstKept = max(firstKept, m.firstKept)
		return !slices.ContainsFunc(out.Events, func(ev driver.RecordedEvent) bool { return ev.Version < firstKept }), nil
	}
	// done returns the page read backwards, once it holds only kept
	// events.
	done := func() ([]driver.RecordedEvent, error) {
		if checked || len(out.Events) == 0 {
			return out.Events, nil
		}
		if _, err := check(); err != nil {
			return nil, err
		}
		// Backwards, the events below the first kept version come last.
		return slices.DeleteFunc(out.Events, func(ev driver.RecordedEvent) bool { return ev.Version < firstKept }), nil
	}
	restart := false
	for {
		in.Limit = aws.Int32(int32(min(q.Limit-len(out.Events)+1, 1000)))
		page, err := d.query(ctx, in)
		if err != nil {
			return nil, wrapNative(err)
		}
		for _, item := range page.Items {
			switch {
			case isMeta(item):
				m, err := decodeMeta(item)
				if err != nil {
					return nil, fmt.Errorf("dynamodb: read %q: %w", q.Stream, err)
				}
				firstKept = m.firstKept
				continue
			case isStub(item):
				v, err := getNum(item, attrSK)
				if err != nil {
					return nil, fmt.Errorf("dynamodb: read %q: %w", q.Stream, err)
				}
				if q.Backwards && v > 1 {
					return done() // what lies below is removed
				}
				if len(out.Events) > 0 && out.Events[0].Version < v {
					// What was read below it is being removed.
					kept := out.Events
					out = driver.NewPage(q.Limit, q.MaxBytes)
					for _, ev := range kept {
						if ev.Version > v {
							out.Add(ev)
						}
					}
				}
				firstKept = max(firstKept, v+1)
				continue
			}
			ev, err := decodeEvent(item)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: read %q: %w", q.Stream, err)
			}
			if ev.Version < firstKept {
				continue
			}
			if !out.Add(ev) {
				continue
			}
			if q.Backwards {
				return done()
			}
			if checked {
				return out.Events, nil
			}
			// A forward read from a later version filled its page before
			// it met the end of the stream, or a stub above the events
			// read: they may be being removed.
			ok, err := check()
			if err != nil {
				return nil, err
			}
			if ok {
				return out.Events, nil
			}
			// They are: read again from the first kept version.
			restart = true
			break
		}
		switch {
		case restart:
			restart = false
			out = driver.NewPage(q.Limit, q.MaxBytes)
			in.ExpressionAttributeValues[":v"] = num(firstKept)
			in.ExclusiveStartKey = nil
		case page.LastEvaluatedKey == nil && q.Backwards:
			return done()
		case page.LastEvaluatedKey == nil:
			return out.Events, nil
		default:
			in.ExclusiveStartKey = page.LastEvaluatedKey
		}
	}
}

// StreamVersion implements [driver.Driver]: the sort key of the stream's
// last item, from a strongly consistent query that reads one key; 0 when
// that item is the stub of a deleted stream (see retention.go).
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	v, err := d.streamVersion(ctx, stream)
	return v, wrapNative(err)
}

func (d *Driver) streamVersion(ctx context.Context, stream string) (uint64, error) {
	t, err := d.top(ctx, stream)
	return t.version, err
}

// lastEntry returns the last log entry of a log partition; ok is false when
// the partition is empty.
func (d *Driver) lastEntry(ctx context.Context, bucket uint64) (e logEntry, ok bool, err error) {
	out, err := d.query(ctx, &awsdynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :l"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":l": str(logPK(bucket))},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil || len(out.Items) == 0 {
		return logEntry{}, false, err
	}
	e, err = decodeLogEntry(out.Items[0])
	return e, err == nil, err
}

// head returns the last entry of the log; ok is false when the log is empty.
//
// Log partitions fill in order: partition k holds the entries whose first
// position p has p / bucketSize == k, and each entry starts where the one
// before it ends, so partitions are never skipped. The search starts from the
// driver's hint (a partition known to hold entries): when the next entry
// would still start in that partition, no later one holds anything;
// otherwise it probes later partitions, doubling the step, then bisects.
func (d *Driver) head(ctx context.Context) (logEntry, bool, error) {
	b := d.bucketHint.Load()
	e, ok, err := d.lastEntry(ctx, b)
	if err != nil || !ok {
		return e, ok, err
	}
	if e.last()+1 < (b+1)*d.bucketSize {
		return e, true, nil
	}
	lo, hi := b, b+1 // lo holds entries; does hi?
	for step := uint64(1); ; step *= 2 {
		he, ok, err := d.lastEntry(ctx, hi)
		if err != nil {
			return logEntry{}, false, err
		}
		if !ok {
			break
		}
		lo, e = hi, he
		hi = lo + step
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		me, ok, err := d.lastEntry(ctx, mid)
		if err != nil {
			return logEntry{}, false, err
		}
		if ok {
			lo, e = mid, me
		} else {
			hi = mid
		}
	}
	d.bucketHint.Store(max(d.bucketHint.Load(), lo))
	return e, true, nil
}

// entryCovering returns the visible log entry that starts at or before
// position p and closest to it; ok is false when there is none. The caller
// checks it reaches p.
func (d *Driver) entryCovering(ctx context.Context, p uint64) (logEntry, bool, error) {
	b := p / d.bucketSize
	for {
		out, err := d.query(ctx, &awsdynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :l AND sk <= :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":l": str(logPK(b)), ":p": num(p)},
			ScanIndexForward:          aws.Bool(false),
			Limit:                     aws.Int32(1),
		})
		if err != nil {
			return logEntry{}, false, err
		}
		if len(out.Items) > 0 {
			e, err := decodeLogEntry(out.Items[0])
			return e, err == nil, err
		}
		// An entry starting in the previous partition may reach into this one.
		if b == 0 || p-b*d.bucketSize >= maxTxnItems {
			return logEntry{}, false, nil
		}
		b--
	}
}

// nextPosition returns the first free position of the log.
func (d *Driver) nextPosition(ctx context.Context) (uint64, error) {
	e, ok, err := d.head(ctx)
	if err != nil {
		return 0, wrapNative(err)
	}
	if !ok {
		return 1, nil
	}
	return e.last() + 1, nil
}

// ReadAll implements [driver.Driver]. It reads log entries in position
// order with strongly consistent queries, keeps the events that the range and
// filter select (the entries carry stream and event types, so non-matching
// events are never fetched), and fetches those with strongly consistent
// BatchGetItem calls until the page holds q.Limit events or q.MaxBytes
// bytes (see fetchPage for what a page holds in memory).
//
// No skipping: positions are dense, so a reader knows which position comes
// next. Log entries appear in position order (each writer read the entry
// before its own). The event items of an entry may become visible a moment
// after the entry, as DynamoDB applies a transaction's items one by one: a
// read that finds an event missing waits briefly for it. If it is still
// missing, a forward read returns only the events before it, so a reader
// that then reads after its last position still gets it; a backward read
// leaves out the appends at the top of the log that are not visible yet (it
// reads the log as it was before them) and fails if one is missing below
// an event it returns.
func (d *Driver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	// Removed events (see retention.go) keep their positions in the log and
	// are passed over: when they leave a page short, the read goes on after
	// (or before) the last one, since a page that is not full ends the read.
	page := driver.NewPage(q.Limit, q.MaxBytes)
	sq := q
	if !q.Backwards {
		for {
			sq.Limit = q.Limit - len(page.Events)
			s, err := d.scanLogForward(ctx, sq, 0)
			if err != nil {
				return nil, err
			}
			had := len(page.Events)
			next, missing, err := d.fetchPage(ctx, s.keys, &page, q.MaxBytes)
			if err != nil {
				return nil, err
			}
			if n := len(page.Events); n > had {
				d.rememberCut(s, page.Events[n-1].Position.Commit+1)
			}
			if page.Full() || missing > 0 || next < len(s.keys) || !s.full() {
				return page.Events, nil
			}
			sq.After = driver.Position{Commit: s.keys[len(s.keys)-1].pos}
		}
	}
	for {
		sq.Limit = q.Limit - len(page.Events)
		keys, err := d.scanLogBackward(ctx, sq)
		if err != nil {
			return nil, err
		}
		next, missing, err := d.fetchPage(ctx, keys, &page, q.MaxBytes)
		if err != nil {
			return nil, err
		}
		if missing == 0 {
			if page.Full() || next < len(keys) || len(keys) < sq.Limit {
				return page.Events, nil
			}
			sq.Before = driver.Position{Commit: keys[len(keys)-1].pos}
			continue
		}
		if len(page.Events) > 0 {
			k := keys[next]
			return nil, fmt.Errorf("dynamodb: read all: %q version %d at position %d is in the log but not visible", k.stream, k.version, k.pos)
		}
		// The events at the top are not visible yet: read the log below
		// the appends in flight.
		sq.Before = driver.Position{Commit: keys[next+missing-1].pos}
		if sq.Before.Commit <= q.After.Commit+1 {
			return nil, nil
		}
	}
}

// scanBound is how many positions of the log ReadAllScan examines at most
// per page (and the rest of the log entry the bound falls in, at most 99
// more): about 4096 × 80 bytes of log entries for single-event appends, a
// few Query requests and ~80 read units.
const scanBound = 4096

// ReadAllScan implements [driver.ScanReader]. It reads the log entries after
// q.After as ReadAll does, examining at most scanBound positions, and
// fetches only the events the filter keeps. Scanned is the last position
// up to which every position was examined and every matching event
// returned: the end of the contiguous visible log the page read, or the
// position before the first matching event the page did not return (the
// page was full, or the event is not visible yet). Every position up to it
// is covered by a visible log entry, which names the stream and type of
// each of its events, so an event the filter keeps can never appear at or
// below it later: the entries of appends in flight are past the first hole
// of the log, where the scan stops.
func (d *Driver) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	s, err := d.scanLogForward(ctx, q, scanBound)
	if err != nil {
		return driver.ScanPage{}, err
	}
	page := driver.NewPage(q.Limit, q.MaxBytes)
	next, missing, err := d.fetchPage(ctx, s.keys, &page, q.MaxBytes)
	if err != nil {
		return driver.ScanPage{}, err
	}
	scanned, end := s.examined, s.end
	if next < len(s.keys) {
		// Stopped before keys[next]: the page is full, or its event is not
		// visible yet (nothing after it is readable now: the end).
		scanned, end = s.keys[next].pos-1, missing > 0
	}
	if page.Full() {
		end = false
	}
	res := driver.ScanPage{Events: page.Events, End: end}
	if scanned > s.after {
		res.Scanned = driver.Position{Commit: scanned}
		d.rememberCut(s, scanned+1)
	}
	return res, nil
}

// eventKey names an event selected from the log.
type eventKey struct {
	stream  string
	version uint64
	pos     uint64
	entry   *logEntry // the log entry naming it (reads only)
}

// selector applies a read's range, filter and limit to log entries.
type selector struct {
	q driver.AllQuery
	// query, when set, selects the events it matches in place of
	// q.Filter (ReadQuery and append conditions).
	query *driver.Query
	// whole is set for a scan that reads every entry to the end of the
	// log unless it finds a match (a condition): its queries ask for
	// logPage entries from the first.
	whole bool
	after uint64 // events at positions ≤ after are excluded
	below uint64 // events at positions ≥ below are excluded; 0: no bound
	keys  []eventKey
	cut   *logEntry // the entry the selection ended inside, if it did
	last  *logEntry // the last entry added
	// examined is, forwards, the last position up to which every position
	// in the range was examined and every match selected (after when none).
	examined uint64
	// end reports, forwards, that the selection stopped at the end of the
	// range or at a position no visible log entry covers yet.
	end bool
}

func newSelector(q driver.AllQuery) *selector {
	s := &selector{q: q, after: q.After.Commit, examined: q.After.Commit}
	// Positions of this driver have Prepare 0: {c, p>0} lies between c and
	// c+1.
	if !q.Before.IsZero() {
		s.below = q.Before.Commit
		if q.Before.Prepare > 0 {
			s.below++
		}
	}
	return s
}

func (s *selector) full() bool { return len(s.keys) >= s.q.Limit }

// unfiltered reports whether the selector selects every event in range.
func (s *selector) unfiltered() bool {
	if s.query != nil {
		return len(s.query.Items) == 0
	}
	return s.q.Filter.IsEmpty()
}

// inRange reports whether position p is inside the read's range.
func (s *selector) inRange(p uint64) bool { return p > s.after && (s.below == 0 || p < s.below) }

// add selects the events of e at positions within the range, in the given
// direction, until the limit.
func (s *selector) add(e logEntry, forward bool) {
	ep := &e
	s.last = ep
	cats := s.q.Filter.Categories
	for k := range e.count {
		i := k
		if !forward {
			i = e.count - 1 - k
		}
		p := e.start + i
		if !s.inRange(p) {
			continue
		}
		match := len(s.q.Filter.EventTypes) == 0 || slices.Contains(s.q.Filter.EventTypes, e.types[i])
		stream, version := e.event(i)
		if match && len(cats) > 0 {
			match = slices.Contains(cats, driver.Category(stream))
		}
		if s.query != nil {
			match = s.query.Matches(e.types[i], e.tagsAt(i))
		}
		if match && s.full() {
			if forward {
				s.cut = ep
			}
			return
		}
		if match {
			s.keys = append(s.keys, eventKey{stream: stream, version: version, pos: p, entry: ep})
		}
		if forward {
			s.examined = p
		}
	}
}

// rememberCut remembers the log entry covering position next, or ending
// just before it, when the selection read it: the next page of a read that
// starts at next then needs no query to find where the entry covering next
// starts (the entry itself, or next, where the next one will start).
func (d *Driver) rememberCut(s *selector, next uint64) {
	cands := []*logEntry{s.cut, s.last}
	i, _ := slices.BinarySearchFunc(s.keys, next, func(k eventKey, p uint64) int { return cmp.Compare(k.pos, p) })
	if i < len(s.keys) {
		cands = append(cands, s.keys[i].entry)
	}
	if i > 0 {
		cands = append(cands, s.keys[i-1].entry)
	}
	for _, e := range cands {
		if e != nil && e.start < next && next <= e.last()+1 {
			d.cuts.put(next, *e)
			return
		}
	}
}

// cutCache remembers the log entries recent forward reads ended inside or
// at the end of, by the position after the last event they returned (or
// scanned), so that reading the next page (the Store reads in pages;
// subscriptions poll after their last event) needs no query to find the
// entry it starts in, or to learn that it starts a new one. Entries never
// change once visible, so a remembered one is always right.
type cutCache struct {
	mu    sync.Mutex // protects m and order
	m     map[uint64]logEntry
	order []uint64 // keys, oldest first
}

const cutCacheSize = 64

func (c *cutCache) get(next uint64) (logEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[next]
	return e, ok
}

func (c *cutCache) put(next uint64, e logEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[uint64]logEntry{}
	}
	if _, ok := c.m[next]; ok {
		return
	}
	if len(c.order) == cutCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[next] = e
	c.order = append(c.order, next)
}

// firstLogPage and logPage bound how many log entries one query asks for
// (a scan's queries grow up to its bound instead of logPage).
const (
	firstLogPage = 16
	logPage      = 512
)

// scanLogForward selects events from the log entries after q.After, in
// position order, stopping at the first position no visible entry covers,
// and, when bound > 0, once it has examined bound positions or more (it
// examines whole entries, so at most 99 more).
func (d *Driver) scanLogForward(ctx context.Context, q driver.AllQuery, bound uint64) (*selector, error) {
	return d.scanForward(ctx, newSelector(q), bound)
}

// scanForward is scanLogForward with the selector s (see ReadQuery).
func (d *Driver) scanForward(ctx context.Context, s *selector, bound uint64) (*selector, error) {
	q := s.q
	next := s.after + 1 // the next position the log must cover
	bucket := next / d.bucketSize
	in := &awsdynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :l AND sk >= :p")}
	// Entries hold up to 100 events: ask for few at first, more as the
	// read goes on, and never for more than the events still wanted (when
	// nothing is filtered out) or the positions left to the bound (each
	// entry covers one at least).
	pageLimit, maxPageLimit := firstLogPage, logPage
	if s.whole {
		pageLimit = logPage
	}
	if bound > 0 {
		maxPageLimit = int(bound)
	}
	// bounded reports that the scan has examined bound positions.
	bounded := func() bool { return bound > 0 && next-1-s.after >= bound }
	var entriesRead, positionsRead uint64 // by the queries so far
	first := next > 1
	if e, ok := d.cuts.get(next); ok {
		if next <= e.last() {
			// The previous page ended inside this entry.
			s.add(e, true)
			next, bucket = e.last()+1, (e.last()+1)/d.bucketSize
		}
		first = false // next starts an entry, if one is visible
	}
	for !s.full() && !bounded() {
		if s.below != 0 && next >= s.below {
			s.end = true
			break
		}
		limit := pageLimit
		if s.unfiltered() {
			limit = min(limit, q.Limit-len(s.keys))
		}
		if bound > 0 {
			// Entries cover a position at least; at the size of those
			// read so far, fewer are needed (an entry past the bound is
			// read again by the next page).
			need := bound - (next - 1 - s.after)
			if entriesRead > 0 {
				need = (need*entriesRead + positionsRead - 1) / positionsRead
			}
			limit = min(limit, int(need))
		}
		pageLimit = min(pageLimit*4, maxPageLimit)
		in.Limit = aws.Int32(int32(limit))
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":l": str(logPK(bucket)), ":p": num(next)}
		out, err := d.query(ctx, in)
		if err != nil {
			return nil, wrapNative(err)
		}
		entries := make([]logEntry, len(out.Items))
		for i, item := range out.Items {
			if entries[i], err = decodeLogEntry(item); err != nil {
				return nil, fmt.Errorf("dynamodb: read all: %w", err)
			}
			entriesRead, positionsRead = entriesRead+1, positionsRead+entries[i].count
		}
		if first && (len(entries) == 0 || entries[0].start != next) {
			// The read starts inside an append (after a page that ended
			// there): continue with the entry covering next.
			first = false
			e, ok, err := d.entryCovering(ctx, next)
			if err != nil {
				return nil, wrapNative(err)
			}
			if !ok || e.last() < next {
				s.end = true // next is not visible yet
				return s, nil
			}
			s.add(e, true)
			next = e.last() + 1
			bucket = next / d.bucketSize
			continue
		}
		first = false
		for _, e := range entries {
			if e.start != next || (s.below != 0 && e.start >= s.below) {
				// Position next is not visible yet (an append in flight
				// took it; a later read continues from it), or the range
				// ends before it.
				s.end = true
				return s, nil
			}
			s.add(e, true)
			next = e.last() + 1
			if s.full() || bounded() {
				return s, nil
			}
		}
		if out.LastEvaluatedKey != nil {
			continue // more entries in this partition
		}
		if next/d.bucketSize == bucket {
			s.end = true // the entry starting at next is not visible yet
			break
		}
		bucket = next / d.bucketSize
	}
	return s, nil
}

// scanLogBackward selects events from the log entries before q.Before (or
// from the head), newest first, down to q.After.
func (d *Driver) scanLogBackward(ctx context.Context, q driver.AllQuery) ([]eventKey, error) {
	s := newSelector(q)
	h, ok, err := d.head(ctx)
	if err != nil || !ok {
		return nil, wrapNative(err)
	}
	expect := h.last() // the position the next entry (going down) must cover
	if s.below != 0 && s.below-1 < expect {
		expect = s.below - 1
	}
	bucket := expect / d.bucketSize
	in := &awsdynamodb.QueryInput{
		KeyConditionExpression: aws.String("pk = :l AND sk <= :p"),
		ScanIndexForward:       aws.Bool(false),
	}
	pageLimit := firstLogPage
	for !s.full() && expect > s.after {
		limit := pageLimit
		if q.Filter.IsEmpty() {
			limit = min(limit, q.Limit-len(s.keys))
		}
		pageLimit = min(pageLimit*4, logPage)
		in.Limit = aws.Int32(int32(limit))
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":l": str(logPK(bucket)), ":p": num(expect)}
		out, err := d.query(ctx, in)
		if err != nil {
			return nil, wrapNative(err)
		}
		for _, item := range out.Items {
			e, err := decodeLogEntry(item)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: read all: %w", err)
			}
			if e.start > expect || e.last() < expect {
				return nil, fmt.Errorf("dynamodb: read all: the log has no entry for position %d", expect)
			}
			s.add(e, false)
			expect = e.start - 1
			if s.full() || expect <= s.after {
				return s.keys, nil
			}
		}
		if out.LastEvaluatedKey != nil {
			continue
		}
		if bucket == 0 {
			break
		}
		bucket = min(bucket-1, expect/d.bucketSize)
	}
	return s.keys, nil
}

// fetchPage fetches the events named by keys, in order, into page, and
// stops once the page is full. It fetches in rounds of strongly consistent
// BatchGetItem calls: with maxBytes > 0 a round asks for no more events than
// the bytes the page still takes allow at the size of the largest event of
// the read so far (until one is seen, the largest the driver stores,
// maxEventBytes), and at most 100. A page therefore holds at most maxBytes
// plus one event, and a read holds at most about maxBytes plus one round
// (as much again, or more only when later events are larger than every one
// before them: at most 100 events of ~400 KB). Removed events (see
// retention.go) are passed over. An event not visible yet (its append's log
// entry is, its items not yet) gets a brief wait; if it is still missing,
// fetchPage returns with the page holding the events before it and missing
// the number of consecutive events of its round, from it, that are missing
// (0 when none is). next is how many keys it went through: those of the
// events added and of the removed events passed over.
func (d *Driver) fetchPage(ctx context.Context, keys []eventKey, page *driver.Page, maxBytes int) (next, missing int, err error) {
	held := driver.PageBytes(page.Events)
	largest := 0 // the largest event of the read so far, in bytes
	for next < len(keys) && !page.Full() {
		rest := keys[next:]
		n := roundSize(rest)
		if maxBytes > 0 {
			size := maxEventBytes
			if len(page.Events) > 0 {
				size = max(largest, 1)
			}
			n = min(n, max(1, (maxBytes-held+size-1)/size))
		}
		evs, removed, err := d.fetchEvents(ctx, rest[:n])
		if err != nil {
			return next, 0, err
		}
		for i, ev := range evs {
			if removed[i] {
				next++
				continue
			}
			if ev.Version == 0 { // not visible yet: stop before it
				missing = 1
				for i+missing < len(evs) && evs[i+missing].Version == 0 && !removed[i+missing] {
					missing++
				}
				return next, missing, nil
			}
			size := len(ev.Data) + len(ev.Metadata)
			largest, held = max(largest, size), held+size
			next++
			if page.Add(ev) {
				return next, 0, nil
			}
		}
	}
	return next, 0, nil
}

// roundSize is how many of keys one fetch round asks for: as many as fit
// in one BatchGetItem of maxBatchGet keys with the meta items of their
// streams (see fetchEvents), at least one.
func roundSize(keys []eventKey) int {
	var streams []string
	for i, k := range keys {
		if !slices.Contains(streams, k.stream) {
			streams = append(streams, k.stream)
		}
		if i+1+len(streams) > maxBatchGet {
			return max(i, 1)
		}
	}
	return len(keys)
}

// maxEventBytes is the most data and metadata one event holds.
const maxEventBytes = maxItemSize - eventItemOverhead

// fetchEvents reads the events named by keys with strongly consistent
// BatchGetItem calls and returns them in the order of keys. Each round
// reads, in the same requests, the meta items of the streams it asks
// events of: an event is removed (removed[i]) when its version lies below
// its stream's first kept version (tb, read in the round, or known from an
// earlier read) or its item is a stub. So an event whose removal committed
// before the read began is never returned, whether or not the removal's
// sweep has deleted its item yet: the commit raises tb before any item is
// deleted, and tb never goes down (see retention.go). An event not visible
// yet (its append's log entry is, its items not yet) gets a brief wait; if
// it is still missing its place holds a zero RecordedEvent.
func (d *Driver) fetchEvents(ctx context.Context, keys []eventKey) (evs []driver.RecordedEvent, removed []bool, err error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	type id struct {
		stream  string
		version uint64
	}
	removed = make([]bool, len(keys))
	gone := map[id]bool{}
	got := make(map[id]driver.RecordedEvent, len(keys))
	var missing []eventKey
	for i, k := range keys {
		if k.version < d.removed.firstKept(k.stream) {
			removed[i] = true
			gone[id{k.stream, k.version}] = true
			continue
		}
		missing = append(missing, k)
	}
	for wait := 0; len(missing) > 0; wait++ {
		// The events still wanted, then the meta items of their streams.
		ask := slices.Clone(missing)
		metas := 0
		for _, k := range missing {
			if !slices.ContainsFunc(ask[len(missing):], func(m eventKey) bool { return m.stream == k.stream }) {
				ask = append(ask, eventKey{stream: k.stream, version: metaVersion})
				metas++
			}
		}
		items, err := d.batchGetAll(ctx, ask)
		if err != nil {
			return nil, nil, wrapNative(err)
		}
		firstKept := make(map[string]uint64, metas)
		var found []driver.RecordedEvent
		for _, item := range items {
			switch {
			case isMeta(item):
				s, err := getStr(item, attrPK)
				if err != nil {
					return nil, nil, fmt.Errorf("dynamodb: read all: %w", err)
				}
				m, err := decodeMeta(item)
				if err != nil {
					return nil, nil, fmt.Errorf("dynamodb: read all: %q: %w", s, err)
				}
				if m.firstKept > 1 {
					firstKept[s] = m.firstKept
					d.removed.put(s, m.firstKept)
				}
			case isStub(item):
				s, err := getStr(item, attrPK)
				if err != nil {
					return nil, nil, fmt.Errorf("dynamodb: read all: %w", err)
				}
				v, err := getNum(item, attrSK)
				if err != nil {
					return nil, nil, fmt.Errorf("dynamodb: read all: %w", err)
				}
				gone[id{s, v}] = true
			default:
				ev, err := decodeEvent(item)
				if err != nil {
					return nil, nil, fmt.Errorf("dynamodb: read all: %w", err)
				}
				if ev.Position.IsZero() {
					// An indexed table's orderer has written the log
					// entry; its update of the event is not visible yet.
					continue
				}
				found = append(found, ev)
			}
		}
		for _, ev := range found {
			if ev.Version < firstKept[ev.StreamID] {
				gone[id{ev.StreamID, ev.Version}] = true // its removal committed; its sweep has not reached it
				continue
			}
			got[id{ev.StreamID, ev.Version}] = ev
		}
		// A missing item may be a removed event's: its stream's meta
		// item, read in the same round, says.
		missing = slices.DeleteFunc(slices.Clone(missing), func(k eventKey) bool {
			if k.version < firstKept[k.stream] {
				gone[id{k.stream, k.version}] = true
			}
			_, ok := got[id{k.stream, k.version}]
			return ok || gone[id{k.stream, k.version}]
		})
		if len(missing) == 0 || wait >= missingWaits {
			break
		}
		if err := backoff.Wait(ctx, wait+1); err != nil {
			return nil, nil, err
		}
	}
	evs = make([]driver.RecordedEvent, len(keys))
	for i, k := range keys {
		if gone[id{k.stream, k.version}] {
			removed[i] = true
			continue
		}
		ev, ok := got[id{k.stream, k.version}]
		if !ok {
			continue
		}
		if ev.Position.Commit != k.pos {
			return nil, nil, fmt.Errorf("dynamodb: read all: %q version %d is at position %d, the log says %d", k.stream, k.version, ev.Position.Commit, k.pos)
		}
		evs[i] = ev
	}
	return evs, removed, nil
}

// batchGetConcurrency bounds the BatchGetItem requests of one round in
// flight at once (a round of 100 events and the meta items of their
// streams takes two).
const batchGetConcurrency = 4

// batchGetAll reads the items of keys, strongly consistent, in chunks of
// maxBatchGet sent concurrently, returning the items found in any order.
func (d *Driver) batchGetAll(ctx context.Context, keys []eventKey) ([]map[string]types.AttributeValue, error) {
	if len(keys) <= maxBatchGet {
		return d.batchGet(ctx, keys, "")
	}
	chunks := slices.Collect(slices.Chunk(keys, maxBatchGet))
	results := make([][]map[string]types.AttributeValue, len(chunks))
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, batchGetConcurrency)
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i], errs[i] = d.batchGet(ctx, chunk, "")
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return slices.Concat(results...), nil
}

// missingWaits is how many times a read waits for events of a committed
// append to become visible (about a second in all).
const missingWaits = 6

// batchGet reads up to maxBatchGet events, strongly consistent, returning the
// items found in any order; it asks again for keys DynamoDB left unprocessed.
// A non-empty projection names the attributes to read.
func (d *Driver) batchGet(ctx context.Context, keys []eventKey, projection string) ([]map[string]types.AttributeValue, error) {
	ks := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		ks[i] = key(k.stream, k.version)
	}
	ka := types.KeysAndAttributes{Keys: ks, ConsistentRead: aws.Bool(true)}
	if projection != "" {
		ka.ProjectionExpression = aws.String(projection)
	}
	req := map[string]types.KeysAndAttributes{d.table: ka}
	var items []map[string]types.AttributeValue
	for attempt := 1; len(req) > 0; attempt++ {
		var out *awsdynamodb.BatchGetItemOutput
		err := d.call(ctx, "BatchGetItem", func(ctx context.Context) error {
			var err error
			out, err = d.client.BatchGetItem(ctx, &awsdynamodb.BatchGetItemInput{RequestItems: req}, noRetry)
			return err
		})
		if err != nil {
			return nil, err
		}
		items = append(items, out.Responses[d.table]...)
		req = out.UnprocessedKeys
		if len(req) > 0 && attempt > 1 {
			// Unprocessed keys without progress mean throttling.
			if err := backoff.Wait(ctx, attempt-1); err != nil {
				return nil, err
			}
		}
	}
	return items, nil
}
