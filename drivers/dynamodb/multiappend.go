package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

var (
	_ driver.MultiAppender = (*Driver)(nil)
	_ driver.QueryReader   = (*Driver)(nil)
)

// AppendMulti implements [driver.MultiAppender]: the whole request is one
// TransactWriteItems, never split.
//
// Like Append, it first looks the first record's event ID up in its
// stream, so a retry of a multi-stream append that succeeded returns the
// original result (see multiRetried). It then reads the version of every
// stream of req.Expect (one strongly consistent query each, in parallel)
// and checks every expectation; with a condition it also looks for an
// event the query matches after the condition's After, in the tag index
// (see tagindex.go) or, for a query with an item of types only, in the log
// entries after After (they carry each event's type and tags, so no event
// is fetched). Every
// failure is reported together in an *[eventstore.AppendConflictError],
// nothing written.
//
// Otherwise the request goes to the committer as one request of several
// runs (consecutive records of one stream), like an import: one log entry
// covering all its events at consecutive positions in the records' order,
// one conditional put per event (version actual+1, actual+2, … of its
// stream, so a concurrent append to a written stream fails it), and per
// stream that is only checked a ConditionCheck that its next version does
// not exist. A conditional append is pinned (request.pin): its log entry
// must take the position after the last one the condition scan examined,
// which the log entry's own conditional put enforces, so no event at all,
// matching or not, can slip in between the scan and the write. A
// cancelled transaction (a version taken, a stream grown, the log moved)
// is evaluated again from the start, at most maxConflicts times.
//
// In an indexed table (see [LogIndexed]) an unconditional multi-stream
// append takes the inbox path, as an import does; a conditional one is
// placed directly, its transaction moving the head of the log from the pin
// (see appendPlaced and pinned.go).
func (d *Driver) AppendMulti(ctx context.Context, req driver.MultiAppendRequest) (driver.MultiAppendResult, error) {
	if err := d.checkMultiSize(req); err != nil {
		return driver.MultiAppendResult{}, err
	}
	// The written streams' retention, applied once the append has
	// committed, as Append does (see retention.go).
	written := writtenStreams(req)
	rets := d.readRetentions(ctx, written)
	defer func() {
		for _, r := range rets {
			r.wait()
		}
	}()
	for attempt := 0; ; attempt++ {
		res, found, taken, err := d.multiRetried(ctx, req)
		if err != nil || found {
			return res, err
		}
		tops, err := d.streamTops(ctx, req.Expect)
		if err != nil {
			return driver.MultiAppendResult{}, wrapNative(err)
		}
		conflict := &eventstore.AppendConflictError{}
		for _, e := range req.Expect {
			// A written stream that holds the first record's ID from
			// another append fails, as Append does.
			if !e.Expected.Matches(tops[e.Stream].version) || (taken && e.Stream == req.Records[0].Stream) {
				conflict.Streams = append(conflict.Streams, eventstore.WrongExpectedVersionError{
					Stream: e.Stream, Expected: eventstore.ExpectedVersion(e.Expected), Actual: tops[e.Stream].version,
				})
			}
		}
		if len(conflict.Streams) > 0 {
			// The versions were read one by one: a transaction may have
			// shown some of its streams' new versions and not yet others.
			// Confirm them at one point in time before naming them.
			ok, err := d.versionsHold(ctx, req.Expect, tops)
			if err != nil {
				return driver.MultiAppendResult{}, wrapNative(err)
			}
			if !ok && attempt < maxConflicts {
				continue
			}
		}
		var pin uint64
		unlock := func() {}
		if req.Condition != nil {
			if !d.indexed || !d.holdsLease() {
				// Not for correctness (the pin is): the conditional
				// appends of one driver would only make each other
				// scan again. (The lease holder's take turns on the
				// orderer's head lock instead.)
				d.condMu.Lock()
				unlock = d.condMu.Unlock
			}
			matched, end, err := d.conditionScan(ctx, *req.Condition)
			if err != nil {
				unlock()
				return driver.MultiAppendResult{}, err
			}
			conflict.Condition, pin = matched, end+1
		}
		if len(conflict.Streams) > 0 || conflict.Condition {
			unlock()
			return driver.MultiAppendResult{}, conflict
		}
		r, versions := d.multiRequest(req, tops)
		r.pin = pin
		var o outcome
		if d.indexed && req.Condition != nil {
			o = d.appendPlaced(ctx, r)
		} else {
			o = d.submit(ctx, r)
		}
		unlock()
		switch {
		case o.err != nil && !o.conflict:
			return driver.MultiAppendResult{}, o.err
		case !o.conflict && !o.moved:
			if o.last > 0 && (!d.indexed || req.Condition != nil) {
				// The next condition of a client that appends after its
				// own append starts there: no query to find out that it
				// starts a new entry. (The append has a log entry of its
				// own, unless an indexed table's orderer placed it with
				// others.)
				d.cuts.put(o.last+1, runsEntry(o.last+1-uint64(r.count), r.runs))
			}
			for i, s := range written {
				d.afterAppend(ctx, s, rets[i], req.RecordedAt)
			}
			return driver.MultiAppendResult{Position: driver.Position{Commit: o.last}, Versions: versions}, nil
		}
		if attempt >= maxConflicts {
			if o.err == nil {
				return driver.MultiAppendResult{}, fmt.Errorf("dynamodb: gave up after the log moved on %d times since the condition was checked", attempt+1)
			}
			return driver.MultiAppendResult{}, fmt.Errorf("dynamodb: gave up after %d concurrent appends took the versions first: %w", attempt+1, o.err)
		}
	}
}

// readRetentions starts reading the retention of streams, concurrently
// with the rest of the append, as readRetention does for one stream, with
// one BatchGetItem of their meta items instead of a GetItem each (a
// multi-stream append writes at most 99 streams, within its 100 keys).
// When the batch fails, each stream is read on its own.
func (d *Driver) readRetentions(ctx context.Context, streams []string) []*retentionAfterAppend {
	rets := make([]*retentionAfterAppend, len(streams))
	if len(streams) == 1 {
		rets[0] = d.readRetention(ctx, streams[0])
		return rets
	}
	for i := range rets {
		rets[i] = &retentionAfterAppend{ch: make(chan streamMeta, 1)}
	}
	go func() {
		keys := make([]eventKey, len(streams))
		for i, s := range streams {
			keys[i] = eventKey{stream: s, version: metaVersion}
		}
		items, err := d.batchGet(ctx, keys, "")
		found := make(map[string]map[string]types.AttributeValue, len(items))
		for _, item := range items {
			if s, serr := getStr(item, attrPK); serr == nil {
				found[s] = item
			}
		}
		for i, s := range streams {
			m, merr := decodeMeta(found[s])
			if err != nil || merr != nil {
				m = d.readRetention(ctx, s).get()
			}
			rets[i].ch <- m
		}
	}()
	return rets
}

// multiItems is how many transaction items a multi-stream append takes at
// most besides its events: the log entry (or inbox entry) and a check per
// stream only checked; placed directly (a conditional append to an indexed
// table), also the lease check, the head of the log and a check per
// written stream that its previous version is placed.
func (d *Driver) multiItems(req driver.MultiAppendRequest) int {
	n := 1 + len(req.Expect) - len(writtenStreams(req))
	if d.indexed && req.Condition != nil {
		n += placeItems - 1 + len(writtenStreams(req))
	}
	return n
}

// checkMultiSize fails a request over a transaction's limits with
// ErrBatchTooLarge, before anything is written.
func (d *Driver) checkMultiSize(req driver.MultiAppendRequest) error {
	cost := txnCost{items: len(req.Records) + d.multiItems(req), size: 128} // 128: the log entry's own bytes
	tagBytes := 0
	for _, s := range writtenStreams(req) {
		cost.size += len(s) + 48
	}
	for _, rec := range req.Records {
		cost.size += eventItemSize(rec.Event) + len(rec.Event.Type) + 8 + tagsBytes(rec.Event.Tags)
		tagBytes += tagsBytes(rec.Event.Tags)
	}
	// One tag item per distinct tag (see tagindex.go); the orderer's pass
	// of an unconditional append to an indexed table is checked when it
	// is submitted.
	var runs []run
	for _, rec := range req.Records {
		runs = append(runs, run{stream: rec.Stream, events: []driver.Event{rec.Event}})
	}
	tags := d.tagCost(runs)
	if cost = cost.plus(tags); !cost.fits() || tagBytes > maxEntryTagsBytes {
		return fmt.Errorf("dynamodb: %w: a multi-stream append of %d events and %d streams takes %d transaction items (%d for its distinct tags) and about %d bytes (%d of tags), over DynamoDB's %d items and %d bytes per transaction (and %d bytes of tags per log entry)",
			eventstore.ErrBatchTooLarge, len(req.Records), len(req.Expect), cost.items, tags.items, cost.size, tagBytes, maxTxnItems, maxTxnSize, maxEntryTagsBytes)
	}
	return nil
}

// runsEntry returns the log entry of runs at positions from start on.
func runsEntry(start uint64, runs []run) logEntry {
	e := logEntry{start: start}
	tagged := false
	for _, rn := range runs {
		e.runs = append(e.runs, logRun{stream: rn.stream, first: rn.first, count: uint64(len(rn.events)), offset: e.count})
		e.count += uint64(len(rn.events))
		for _, ev := range rn.events {
			e.types = append(e.types, ev.Type)
			e.tags = append(e.tags, ev.Tags)
			tagged = tagged || len(ev.Tags) > 0
		}
	}
	if !tagged {
		e.tags = nil
	}
	return e
}

// writtenStreams returns the distinct streams of req's records, in the
// order they first appear.
func writtenStreams(req driver.MultiAppendRequest) []string {
	var out []string
	for _, rec := range req.Records {
		if !slices.Contains(out, rec.Stream) {
			out = append(out, rec.Stream)
		}
	}
	return out
}

// multiRequest lays req out for the committer after the streams' last
// items: runs of consecutive records of one stream, a check per stream
// only checked. A deleted stream (version 0, see retention.go) is written
// after its last version. It returns the request and the written streams'
// versions after it.
func (d *Driver) multiRequest(req driver.MultiAppendRequest, tops map[string]streamTop) (*request, map[string]uint64) {
	next := map[string]uint64{}
	var runs []run
	for _, rec := range req.Records {
		v, ok := next[rec.Stream]
		if !ok {
			v = tops[rec.Stream].last + 1
		}
		if n := len(runs); n == 0 || runs[n-1].stream != rec.Stream {
			runs = append(runs, run{stream: rec.Stream, first: v, at: req.RecordedAt, overFence: !ok && tops[rec.Stream].deleted})
		}
		runs[len(runs)-1].events = append(runs[len(runs)-1].events, rec.Event)
		next[rec.Stream] = v + 1
	}
	r := newRunsRequest(runs, false)
	versions := make(map[string]uint64, len(next))
	for s, v := range next {
		versions[s] = v - 1
	}
	for _, e := range req.Expect {
		if _, written := next[e.Stream]; written {
			continue
		}
		// The stream is still at its version: the next one does not exist
		// (versions are dense and never go away).
		r.checks = append(r.checks, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName:           aws.String(d.table),
			ConditionExpression: aws.String(condFreeOrFence), // a deleted stream's fence: still deleted
			Key:                 key(e.Stream, tops[e.Stream].last+1),
		}})
		r.streams = append(r.streams, e.Stream)
	}
	r.actions += len(r.checks)
	return r, versions
}

// streamTops reads the last item of every stream of expect, in parallel.
func (d *Driver) streamTops(ctx context.Context, expect []driver.StreamExpectation) (map[string]streamTop, error) {
	out := make(map[string]streamTop, len(expect))
	if len(expect) == 1 {
		v, err := d.top(ctx, expect[0].Stream)
		out[expect[0].Stream] = v
		return out, err
	}
	var mu sync.Mutex // protects out and first
	var first error
	var wg sync.WaitGroup
	for _, e := range expect {
		wg.Go(func() {
			v, err := d.top(ctx, e.Stream)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			out[e.Stream] = v
		})
	}
	wg.Wait()
	return out, first
}

// versionsHold reports whether every stream of expect was at its last item
// in tops at one point in time: one TransactGetItems (serializable with
// transactions) finds none of their next items.
func (d *Driver) versionsHold(ctx context.Context, expect []driver.StreamExpectation, tops map[string]streamTop) (bool, error) {
	gets := make([]types.TransactGetItem, len(expect))
	for i, e := range expect {
		gets[i] = types.TransactGetItem{Get: &types.Get{
			TableName: aws.String(d.table), Key: key(e.Stream, tops[e.Stream].last+1), ProjectionExpression: aws.String(attrSK + ", " + attrFence),
		}}
	}
	var out *awsdynamodb.TransactGetItemsOutput
	err := d.call(ctx, "TransactGetItems", func(ctx context.Context) error {
		var err error
		out, err = d.client.TransactGetItems(ctx, &awsdynamodb.TransactGetItemsInput{TransactItems: gets}, noRetry)
		return err
	})
	if err != nil {
		return false, err
	}
	for _, r := range out.Responses {
		if len(r.Item) > 0 && !isFence(r.Item) {
			return false, nil
		}
	}
	return true, nil
}

// multiRetried recognises a retry of a multi-stream append that already
// succeeded: the first record's event ID is in its stream. If every written
// stream holds its records' events, in order, from one version on, with the
// same content (compared with CheckRetry), it returns the original result
// with found set; with other content, CheckRetry's error (its Index
// counting records). When some are missing, taken reports that the first
// record's ID is in its stream from another append.
func (d *Driver) multiRetried(ctx context.Context, req driver.MultiAppendRequest) (res driver.MultiAppendResult, found, taken bool, err error) {
	first := req.Records[0]
	vs, err := d.versionsOf(ctx, first.Stream, first.Event.ID)
	if err != nil || len(vs) == 0 {
		return driver.MultiAppendResult{}, false, false, wrapNative(err)
	}
	perStream := map[string][]driver.Event{}
	index := map[string][]int{} // the records of each stream
	for i, rec := range req.Records {
		perStream[rec.Stream] = append(perStream[rec.Stream], rec.Event)
		index[rec.Stream] = append(index[rec.Stream], i)
	}
	res = driver.MultiAppendResult{Versions: map[string]uint64{}}
	var last driver.RecordedEvent // the last record's event, stored
	lastStream := req.Records[len(req.Records)-1].Stream
	var changed error
	for _, s := range writtenStreams(req) {
		stored, err := d.storedRun(ctx, s, perStream[s])
		var m *driver.RetryMismatchError
		if errors.As(err, &m) {
			if changed == nil {
				changed = &driver.RetryMismatchError{Index: index[s][m.Index], Version: m.Version, Field: m.Field}
			}
			continue
		}
		if err != nil {
			return driver.MultiAppendResult{}, false, false, err
		}
		if stored == nil {
			return driver.MultiAppendResult{}, false, true, nil
		}
		res.Versions[s] = stored[len(stored)-1].Version
		if s == lastStream {
			last = stored[len(stored)-1]
		}
	}
	if changed != nil {
		return driver.MultiAppendResult{}, false, false, changed
	}
	if d.indexed && last.Position.IsZero() {
		p, err := d.awaitPlaced(ctx, last.StreamID, last.Version)
		if err != nil {
			return driver.MultiAppendResult{}, false, false, err
		}
		last.Position = driver.Position{Commit: p}
	}
	res.Position = last.Position
	return res, true, false, nil
}

// storedRun returns the events of a stream that hold evs' IDs in order,
// from an occurrence of the first one; nil when there are none. Stored
// events with other content fail with CheckRetry's error.
func (d *Driver) storedRun(ctx context.Context, stream string, evs []driver.Event) ([]driver.RecordedEvent, error) {
	vs, err := d.versionsOf(ctx, stream, evs[0].ID)
	if err != nil {
		return nil, wrapNative(err)
	}
	var changed error
	for _, v := range vs {
		stored, err := d.eventsFrom(ctx, stream, v, len(evs))
		if err != nil {
			return nil, wrapNative(err)
		}
		if len(stored) != len(evs) || !slices.EqualFunc(stored, evs, func(s driver.RecordedEvent, e driver.Event) bool { return s.ID == e.ID }) {
			continue
		}
		if err := driver.CheckRetry(stored, evs); err != nil {
			changed = err
			continue
		}
		return stored, nil
	}
	return nil, changed
}

// conditionScan looks for an event the condition's query matches after
// its After position, in the tag index when it serves the query (see
// tagCondition), otherwise in the log entries (which carry the events'
// types and tags), up to the first position no visible log entry covers
// yet. It returns whether one matched and, when none did, the last
// position examined: an append whose first event takes the next position
// keeps the condition.
//
// An After past the head of the log examines up to it (capped so that the
// position after it exists): the append then takes the head's next
// position (see committer.run).
func (d *Driver) conditionScan(ctx context.Context, cond driver.AppendCondition) (matched bool, end uint64, err error) {
	if d.tagServed(cond.FailIfEventsMatch) {
		return d.firstUnremoved(ctx, cond.After.Commit, d.tagCondition(cond.FailIfEventsMatch)) // see tagindex.go
	}
	return d.firstUnremoved(ctx, cond.After.Commit, func(ctx context.Context, after uint64) (*eventKey, uint64, error) {
		s := newSelector(driver.AllQuery{After: driver.Position{Commit: after}, Limit: 1})
		s.query, s.whole = &cond.FailIfEventsMatch, true
		s, err := d.scanForward(ctx, s, 0)
		if err != nil {
			return nil, 0, err
		}
		if len(s.keys) == 0 {
			return nil, min(s.examined, math.MaxUint64-1), nil
		}
		return &s.keys[0], 0, nil
	})
}

// conditionSearch finds the first event a condition's query matches after
// a position: its key, or nil and the last position examined.
type conditionSearch func(ctx context.Context, after uint64) (match *eventKey, end uint64, err error)

// firstUnremoved runs search from after until it finds an event that is
// not removed (see retention.go): removed events keep their log entries
// and tag items, tags and all, but match nothing, as ReadQuery passes them
// over, so the search goes on after them. It returns whether one matched
// and, when none did, the last position examined.
func (d *Driver) firstUnremoved(ctx context.Context, after uint64, search conditionSearch) (matched bool, end uint64, err error) {
	for {
		k, end, err := search(ctx, after)
		if err != nil || k == nil {
			return false, end, err
		}
		_, removed, err := d.fetchEvents(ctx, []eventKey{*k})
		if err != nil {
			return false, 0, err
		}
		if !removed[0] {
			return true, 0, nil
		}
		after = k.pos
	}
}

// appendPlaced writes a conditional multi-stream append to an indexed
// table straight into the log. While this driver's orderer holds the lease
// it does so as the lease holder's appends are (see place.go): the
// transaction moves the orderer's head of the log from r.pin, the position
// after the last one the condition scan examined, so it fails if anything
// was placed since. Otherwise (orderer=off, or another process holds the
// lease) it takes the pinned path (see pinned.go), which moves the head
// the same way without the lease. An append waiting in the inbox takes a
// later position: its append has not returned yet. A stream whose previous
// version is not placed yet, or a head that moved, gives outcome.moved
// (the caller evaluates the append again).
func (d *Driver) appendPlaced(ctx context.Context, r *request) outcome {
	o := d.orderer
	if !d.holdsLease() {
		return d.appendPinned(ctx, r)
	}
	o.hmu.Lock()
	if o.gen == 0 || time.Until(o.expires) < o.lease/3 || o.ctx.Err() != nil {
		// The lease is being renewed or lost: not the holder's to place.
		o.hmu.Unlock()
		return d.appendPinned(ctx, r)
	}
	if o.next == 0 {
		next, err := o.readHead()
		if err != nil {
			o.hmu.Unlock()
			return outcome{err: wrapNative(err)}
		}
		o.next = next
	}
	if o.next > r.pin {
		o.hmu.Unlock()
		return outcome{moved: true}
	}
	items, roles, last := d.placedItems(o.fence(uint64(r.count)), o.next, r)
	_, err := d.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{
		TransactItems: items, ClientRequestToken: aws.String(newToken()),
	}, noRetry)
	if err == nil {
		start := o.next
		o.next += uint64(r.count)
		o.hmu.Unlock()
		d.bucketHint.Store(max(d.bucketHint.Load(), start/d.bucketSize))
		d.notify()
		return outcome{last: last}
	}
	o.next = 0     // the transaction may have been applied, or the head moved: read it again
	o.hmu.Unlock() // the orderer's pass may be what placedFailed waits for
	return d.placedFailed(ctx, err, items, roles)
}

// holdsLease reports whether this driver's orderer holds the lease.
func (d *Driver) holdsLease() bool { return d.orderer != nil && d.orderer.holding.Load() }

// placedFailed sorts out a failed transaction of a placed append by its
// cancellation reasons: a version taken or a checked stream grown is a
// conflict; an invalid request an error; anything else (the head moved, a
// previous version not placed yet, a transaction conflict, an unknown
// outcome, which the caller's retry lookup settles) outcome.moved after a
// moment, waiting for a previous version's position when that was the
// reason.
func (d *Driver) placedFailed(ctx context.Context, err error, items []types.TransactWriteItem, roles []itemRole) outcome {
	again := func(wait time.Duration) outcome {
		if err := sleep(ctx, wait); err != nil {
			return outcome{err: err}
		}
		return outcome{moved: true}
	}
	reasons, cancelled := cancellationReasons(err, len(items))
	if !cancelled {
		if classify(err) == classRetry {
			return again(25 * time.Millisecond)
		}
		return outcome{err: wrapNative(err)}
	}
	var unplaced []streamVersion
	for i, cls := range reasons {
		switch {
		case cls == classConflict && (roles[i] == roleEvent || roles[i] == roleCheck):
			return outcome{conflict: true, err: err} // a version taken, a stream grown
		case cls == classConflict && roles[i] == rolePrevious:
			k := items[i].ConditionCheck.Key
			s, _ := getStr(k, attrPK)
			v, _ := getNum(k, attrSK)
			unplaced = append(unplaced, streamVersion{s, v})
		case cls == classInvalid:
			return outcome{err: wrapNative(err)}
		}
	}
	for _, sv := range unplaced {
		// Placed by the orderer's next pass (or missing: the evaluation
		// again finds out).
		if _, err := d.awaitPlaced(ctx, sv.stream, sv.version); err != nil {
			return outcome{err: err}
		}
	}
	return again(5 * time.Millisecond)
}

// rolePrevious is an item of a placed append checking that the previous
// version of a stream has a position.
const rolePrevious itemRole = roleEvent + 1

// placedItems lays out the transaction that places r at position start:
// the fence (the items that move the head of the log from start), the log
// entry, the checks of streams only checked, per written stream not new a
// check that its previous version is placed (so no append of it waits in
// the inbox), and the event items with their positions. It returns the
// items, their roles and the position of r's last event.
//
// The orderer's pass (order.go's build) writes the same fence, log entry
// and tag items (entryPuts), but its events are already written: it
// updates their positions and deletes their inbox items, where this puts
// new event items and checks previous versions. So the two share the
// entry's items only; the lease holder's direct placement (place.go's
// buildDirect) is the same shape as this for a group of single-run
// appends, with a stricter check of the previous version (not a deleted
// stream's stub, which takes the inbox path).
func (d *Driver) placedItems(fence []types.TransactWriteItem, start uint64, r *request) ([]types.TransactWriteItem, []itemRole, uint64) {
	table := aws.String(d.table)
	var items []types.TransactWriteItem
	var roles []itemRole
	add := func(item types.TransactWriteItem, role itemRole) {
		items = append(items, item)
		roles = append(roles, role)
	}
	for _, item := range fence {
		add(item, roleLog)
	}
	for _, item := range d.entryPuts(start, r.runs) {
		add(item, roleLog)
	}
	for _, ck := range r.checks {
		add(ck, roleCheck)
	}
	seen := map[string]bool{}
	for _, rn := range r.runs {
		if seen[rn.stream] {
			continue
		}
		seen[rn.stream] = true
		if rn.first > 1 {
			add(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
				TableName: table, Key: key(rn.stream, rn.first-1),
				ConditionExpression: aws.String("attribute_exists(pk) AND attribute_exists(p)"),
			}}, rolePrevious)
		}
	}
	pos := start
	for _, rn := range r.runs {
		for j, e := range rn.events {
			add(types.TransactWriteItem{Put: &types.Put{
				TableName: table, ConditionExpression: rn.putCond(j),
				Item: laterInAppend(eventItem(rn.stream, rn.first+uint64(j), pos, e, rn.recordedAt(j), driver.JSON), j),
			}}, roleEvent)
			pos++
		}
	}
	return items, roles, pos - 1
}
