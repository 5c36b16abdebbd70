package dynamodb

import (
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

// ReadStream implements [driver.Driver] with one strongly consistent
// Query of the stream's partition per page of at most 1 MB.
func (d *Driver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	in := &awsdynamodb.QueryInput{
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(q.Stream)},
		ScanIndexForward:          aws.Bool(!q.Backwards),
	}
	switch {
	case q.Backwards && q.From == 0:
		in.KeyConditionExpression = aws.String("pk = :s")
	case q.Backwards:
		in.KeyConditionExpression = aws.String("pk = :s AND sk <= :v")
		in.ExpressionAttributeValues[":v"] = num(q.From)
	default:
		in.KeyConditionExpression = aws.String("pk = :s AND sk >= :v")
		in.ExpressionAttributeValues[":v"] = num(q.From)
	}
	var out []driver.RecordedEvent
	for len(out) < q.Limit {
		in.Limit = aws.Int32(int32(min(q.Limit-len(out), 1000)))
		page, err := d.query(ctx, in)
		if err != nil {
			return nil, wrapNative(err)
		}
		for _, item := range page.Items {
			ev, err := decodeEvent(item)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: read %q: %w", q.Stream, err)
			}
			out = append(out, ev)
		}
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, nil
}

// StreamVersion implements [driver.Driver]: the sort key of the stream's
// last item, from a strongly consistent query that reads one key.
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	v, err := d.streamVersion(ctx, stream)
	return v, wrapNative(err)
}

func (d *Driver) streamVersion(ctx context.Context, stream string) (uint64, error) {
	out, err := d.query(ctx, &awsdynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(stream)},
		ProjectionExpression:      aws.String(attrSK),
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil || len(out.Items) == 0 {
		return 0, err
	}
	return getNum(out.Items[0], attrSK)
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
// BatchGetItem calls.
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
	if !q.Backwards {
		keys, err := d.scanLogForward(ctx, q)
		if err != nil {
			return nil, err
		}
		evs, err := d.fetchEvents(ctx, keys)
		if err != nil {
			return nil, err
		}
		for i, ev := range evs {
			if ev.Version == 0 {
				return evs[:i], nil // not visible yet: stop before it
			}
		}
		return evs, nil
	}
	for {
		keys, err := d.scanLogBackward(ctx, q)
		if err != nil {
			return nil, err
		}
		evs, err := d.fetchEvents(ctx, keys)
		if err != nil {
			return nil, err
		}
		top := 0 // events at the top not visible yet
		for top < len(evs) && evs[top].Version == 0 {
			top++
		}
		for i := top; i < len(evs); i++ {
			if evs[i].Version == 0 {
				k := keys[i]
				return nil, fmt.Errorf("dynamodb: read all: %q version %d at position %d is in the log but not visible", k.stream, k.version, k.pos)
			}
		}
		if top == 0 {
			return evs, nil
		}
		// Read the log below the appends in flight.
		q.Before = driver.Position{Commit: keys[top-1].pos}
		if q.Before.Commit <= q.After.Commit+1 {
			return nil, nil
		}
	}
}

// eventKey names an event selected from the log.
type eventKey struct {
	stream  string
	version uint64
	pos     uint64
}

// selector applies a read's range, filter and limit to log entries.
type selector struct {
	q     driver.AllQuery
	after uint64 // events at positions ≤ after are excluded
	below uint64 // events at positions ≥ below are excluded; 0: no bound
	keys  []eventKey
	cut   *logEntry // the entry the selection ended inside, if it did
}

func newSelector(q driver.AllQuery) *selector {
	s := &selector{q: q, after: q.After.Commit}
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

// inRange reports whether position p is inside the read's range.
func (s *selector) inRange(p uint64) bool { return p > s.after && (s.below == 0 || p < s.below) }

// add selects the events of e at positions within the range, in the given
// direction, until the limit.
func (s *selector) add(e logEntry, forward bool) {
	cats := s.q.Filter.Categories
	for k := range e.count {
		i := k
		if !forward {
			i = e.count - 1 - k
		}
		p := e.start + i
		if !s.inRange(p) || (len(s.q.Filter.EventTypes) > 0 && !slices.Contains(s.q.Filter.EventTypes, e.types[i])) {
			continue
		}
		stream, version := e.event(i)
		if len(cats) > 0 && !slices.Contains(cats, driver.Category(stream)) {
			continue
		}
		if s.full() {
			if forward {
				s.cut = &e
			}
			return
		}
		s.keys = append(s.keys, eventKey{stream: stream, version: version, pos: p})
	}
}

// cutCache remembers the log entries recent forward reads ended inside, by
// the position after the last event they returned, so that reading the next
// page (the Store reads in pages; subscriptions poll after their last event)
// needs no query to find the entry it starts in. Entries never change once
// visible, so a remembered one is always right.
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

// firstLogPage and logPage bound how many log entries one query asks for.
const (
	firstLogPage = 16
	logPage      = 512
)

// scanLogForward selects events from the log entries after q.After, in
// position order, stopping at the first position no visible entry covers.
func (d *Driver) scanLogForward(ctx context.Context, q driver.AllQuery) ([]eventKey, error) {
	s := newSelector(q)
	next := s.after + 1 // the next position the log must cover
	bucket := next / d.bucketSize
	in := &awsdynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :l AND sk >= :p")}
	// Entries hold up to 100 events: ask for few at first, more as the
	// read goes on, and never for more than the events still wanted (when
	// nothing is filtered out).
	pageLimit := firstLogPage
	first := next > 1
	if e, ok := d.cuts.get(next); ok {
		// The previous page ended inside this entry.
		s.add(e, true)
		next, bucket, first = e.last()+1, (e.last()+1)/d.bucketSize, false
	}
	defer func() {
		if s.cut != nil {
			d.cuts.put(s.keys[len(s.keys)-1].pos+1, *s.cut)
		}
	}()
	for !s.full() && (s.below == 0 || next < s.below) {
		limit := pageLimit
		if q.Filter.IsEmpty() {
			limit = min(limit, q.Limit-len(s.keys))
		}
		pageLimit = min(pageLimit*4, logPage)
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
				return s.keys, nil // next is not visible yet
			}
			s.add(e, true)
			next = e.last() + 1
			bucket = next / d.bucketSize
			continue
		}
		first = false
		for _, e := range entries {
			if e.start != next {
				// Position next is not visible yet: an append in flight
				// took it. Stop here; a later read continues from it.
				return s.keys, nil
			}
			if s.below != 0 && e.start >= s.below {
				return s.keys, nil
			}
			s.add(e, true)
			next = e.last() + 1
			if s.full() {
				return s.keys, nil
			}
		}
		if out.LastEvaluatedKey != nil {
			continue // more entries in this partition
		}
		if next/d.bucketSize == bucket {
			break // the entry starting at next is not visible yet
		}
		bucket = next / d.bucketSize
	}
	return s.keys, nil
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

// fetchEvents reads the events named by keys with strongly consistent
// BatchGetItem calls and returns them in the order of keys. An event not
// visible yet (its append's log entry is, its items not yet) gets a brief
// wait; if it is still missing its place holds a zero RecordedEvent.
func (d *Driver) fetchEvents(ctx context.Context, keys []eventKey) ([]driver.RecordedEvent, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	type id struct {
		stream  string
		version uint64
	}
	got := make(map[id]driver.RecordedEvent, len(keys))
	missing := keys
	for wait := 0; ; wait++ {
		for chunk := range slices.Chunk(missing, maxBatchGet) {
			items, err := d.batchGet(ctx, chunk, "")
			if err != nil {
				return nil, wrapNative(err)
			}
			for _, item := range items {
				ev, err := decodeEvent(item)
				if err != nil {
					return nil, fmt.Errorf("dynamodb: read all: %w", err)
				}
				got[id{ev.StreamID, ev.Version}] = ev
			}
		}
		missing = slices.DeleteFunc(slices.Clone(missing), func(k eventKey) bool {
			_, ok := got[id{k.stream, k.version}]
			return ok
		})
		if len(missing) == 0 || wait >= missingWaits {
			break
		}
		if err := backoff.Wait(ctx, wait+1); err != nil {
			return nil, err
		}
	}
	out := make([]driver.RecordedEvent, len(keys))
	for i, k := range keys {
		ev, ok := got[id{k.stream, k.version}]
		if !ok {
			continue
		}
		if ev.Position.Commit != k.pos {
			return nil, fmt.Errorf("dynamodb: read all: %q version %d is at position %d, the log says %d", k.stream, k.version, ev.Position.Commit, k.pos)
		}
		out[i] = ev
	}
	return out, nil
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
