package kurrentdb

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf16"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Append implements [driver.Driver].
//
// KurrentDB checks the expectation and recognises retries itself, with one
// exception the driver covers: an append expecting the stream's current
// version whose first event ID is already in the stream is, per
// docs/semantics.md, a retry at the wrong version and must fail, while the
// server would write the events again. So before an Exact(n) append (n ≥ 1)
// the driver checks that the first ID is not among the last retryWindow
// versions up to n (see idIn): from a bounded cache of the IDs it has
// written or read, or by one read of at most retryWindow events plus the
// batch's length, so the cost does not grow with the stream. A first ID
// further back is not looked for, and the server writes the events again.
//
// The server recognises a retry by its event IDs alone and answers with the
// original result, whatever the events' content. The driver compares the
// content (see checkRetry) when it can tell that the server did that, or
// may have: the result places the events at versions the driver knew were
// in the stream before it sent them, or an earlier append with the same
// first ID ended without an answer (a cancelled call, a lost connection).
func (d *Driver) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	if err := d.checkSizes(req.Events); err != nil {
		return driver.AppendResult{}, err
	}
	name := d.streamName(req.Stream)
	exp := req.Expected
	if exp.Kind() == driver.ExpectExact && exp.Version() > 0 {
		found, missing, err := d.idIn(ctx, name, exp.Version(), len(req.Events), req.Events[0].ID)
		if err != nil {
			return driver.AppendResult{}, wrapError(ctx, err)
		}
		if found || missing {
			// missing: no stream, or a soft-deleted one, which the server
			// would recreate at its last revision (see retention.go).
			return driver.AppendResult{}, d.wrongVersion(ctx, req, nil)
		}
	}
	events := make([]kdb.EventData, len(req.Events))
	ids := make([]uuid.UUID, len(req.Events))
	for i, e := range req.Events {
		ct := kdb.ContentTypeJson
		if e.ContentType == driver.Binary {
			ct = kdb.ContentTypeBinary
		}
		events[i] = kdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: ct, Data: e.Data, Metadata: e.Metadata}
		ids[i] = e.ID
	}
	// What the driver knew before sending: versions written before the
	// append cannot be the append's own.
	known, unanswered := d.ids.before(name, ids[0])
	// The last version of the stream when this driver deleted it, before
	// sending: an answer placing the events at or below it is a retry of
	// deleted events (see below).
	deleted := d.deleted.last(name)
	opts := kdb.AppendToStreamOptions{StreamState: streamState(exp)}
	// A retry is recognised for sure only with an exact expectation; with
	// Any or StreamExists the server's memory of recent IDs may be gone
	// (after a restart), so the driver does not retry those itself.
	strong := exp.Kind() == driver.ExpectExact
	res, err := call(ctx, d, strong, func(c *kdb.Client) (*kdb.WriteResult, error) {
		return c.AppendToStream(ctx, name, opts, events...)
	})
	if err != nil {
		if hasCode(err, kdb.ErrorCodeWrongExpectedVersion) || hasCode(err, kdb.ErrorCodeStreamDeleted) {
			// StreamDeleted: StreamExists on a soft-deleted stream.
			return driver.AppendResult{}, d.wrongVersion(ctx, req, err)
		}
		// The server may have written the events: a retry must be compared.
		d.ids.unanswered(name, ids[0])
		return driver.AppendResult{}, wrapError(ctx, err)
	}
	// NextExpectedVersion is the revision of the last event written (of
	// the original append, for a retry).
	version := versionOf(res.NextExpectedVersion)
	first := version - uint64(len(ids)) + 1
	if first <= deleted {
		// The server found the IDs among the events of the stream this
		// driver deleted (its idempotency checks still see them) and wrote
		// nothing: the append is a retry of deleted events.
		return driver.AppendResult{}, d.wrongVersion(ctx, req, nil)
	}
	if first <= known || unanswered {
		if err := d.checkRetry(ctx, name, req, first); err != nil {
			return driver.AppendResult{}, err
		}
		d.ids.answered(name, ids[0])
	}
	d.ids.learn(name, first, ids)
	return driver.AppendResult{
		Version:  version,
		Position: driver.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition},
	}, nil
}

// checkRetry reads the events a successful append left at versions first,
// first+1, … and compares them with the append's: when the server took the
// append for a retry of an earlier one with other content, it returns
// eventstore.CheckRetry's *DuplicateEventIDError (the server wrote nothing).
func (d *Driver) checkRetry(ctx context.Context, name string, req driver.AppendRequest, first uint64) error {
	evs, err := d.readStream(ctx, name, kdb.ReadStreamOptions{From: kdb.Revision(revisionOf(first))}, uint64(len(req.Events)))
	if err != nil {
		return wrapError(ctx, fmt.Errorf("kurrentdb: reading the events of the append to compare them with a retry: %w", err))
	}
	if len(evs) == 0 || versionOf(evs[0].EventNumber) != first {
		// Truncated since (see retention.go): the server still knows their
		// IDs, and the original result is the answer.
		return nil
	}
	stored := make([]driver.RecordedEvent, len(evs))
	for i, ev := range evs {
		stored[i] = convert(ev, req.Stream)
		if i < len(req.Events) && stored[i].ID != req.Events[i].ID {
			return fmt.Errorf("kurrentdb: the server answered an append of %d events with version %d, where version %d holds event %s, not %s",
				len(req.Events), first+uint64(len(req.Events))-1, stored[i].Version, stored[i].ID, req.Events[i].ID)
		}
	}
	if len(stored) != len(req.Events) {
		return fmt.Errorf("kurrentdb: the server answered an append of %d events with version %d, but the stream holds %d of them",
			len(req.Events), first+uint64(len(req.Events))-1, len(stored))
	}
	return driver.CheckRetry(stored, req.Events)
}

// wrongVersion builds the error for a rejected append. The client does not
// expose the stream's revision, so the actual version is read afterwards.
func (d *Driver) wrongVersion(ctx context.Context, req driver.AppendRequest, cause error) error {
	wev := &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Err: cause}
	actual, err := d.StreamVersion(ctx, req.Stream)
	if err != nil {
		return errors.Join(wev, fmt.Errorf("kurrentdb: reading the actual version: %w", err))
	}
	wev.Actual = actual
	return wev
}

// checkSizes applies the server's limits as the server measures them, so
// an append over them fails whole before anything is sent (the server
// would fail it in the middle of the request, with an error the client
// reports as ErrorCodeUnknown).
func (d *Driver) checkSizes(events []driver.Event) error {
	total := 0
	for i, e := range events {
		size := len(e.Data) + len(e.Metadata) + 2*len(utf16.Encode([]rune(e.Type)))
		if size > d.opts.MaxAppendEventSize || size+eventOverhead > maxMessageSize {
			return fmt.Errorf("kurrentdb: event %d: %w: %d bytes counting its type twice, over the server's limit of %d",
				i, eventstore.ErrEventTooLarge, size, min(d.opts.MaxAppendEventSize, maxMessageSize-eventOverhead))
		}
		total += size
	}
	if total > d.opts.MaxAppendSize {
		return fmt.Errorf("kurrentdb: %w: %d bytes counting event types twice, over the server's MaxAppendSize of %d",
			eventstore.ErrBatchTooLarge, total, d.opts.MaxAppendSize)
	}
	return nil
}

// retryWindow is how many of a stream's latest versions the driver looks
// through, before an Exact(n) append, for the batch's first event ID.
const retryWindow = 256

// windowStart returns the first version the check before an Exact(n)
// append looks at.
func windowStart(n uint64) uint64 {
	if n <= retryWindow {
		return 1
	}
	return n - retryWindow + 1
}

// idIn reports whether an append at Exact(n) whose first event ID is id
// must fail because id is already in the stream, as far as the server
// would not tell: it is at one of the versions windowStart(n)..n and the
// stream is at version n. A stream past n needs no check (the server
// compares the batch with version n+1 on, and conflicts or finds the
// retry), and neither does one short of n (the server conflicts).
//
// What the cache does not know it reads: versions windowStart(n)..n, or
// fewer when the cache holds the start of them, and up to ahead versions
// past n, which an append of ahead events at Exact(n) would take: if the
// stream already holds them, the append may be a retry, and knowing them
// lets Append compare its content. So the check reads at most
// retryWindow+ahead events, whatever the stream's length.
//
// missing reports that the read found no stream: never written, or
// soft-deleted (see retention.go).
func (d *Driver) idIn(ctx context.Context, name string, n uint64, ahead int, id uuid.UUID) (found, missing bool, err error) {
	found, next, done := d.ids.check(name, n, windowStart(n), id)
	if done {
		return found, false, nil
	}
	// Versions never change, so what is read stays true.
	evs, exists, err := d.readStreamFound(ctx, name, kdb.ReadStreamOptions{From: kdb.Revision(revisionOf(next))}, n-next+1+uint64(ahead))
	if err != nil || !exists {
		return false, !exists, err
	}
	read := make([]uuid.UUID, 0, len(evs))
	contiguous := true
	var first uint64
	for i, ev := range evs {
		v := versionOf(ev.EventNumber)
		if i == 0 {
			first = v
		}
		if v <= n && ev.EventID == id {
			found = true
		}
		contiguous = contiguous && v == first+uint64(i)
		read = append(read, ev.EventID)
	}
	if contiguous && len(read) > 0 {
		d.ids.learn(name, first, read)
	}
	return found, false, nil
}

// idCacheLimit bounds how many event IDs the driver remembers, across
// streams (about 60 bytes each).
const idCacheLimit = 100_000

// idCache remembers, for recently used streams, the event IDs of their
// latest known versions: at least the last retryWindow of them (or all,
// for a shorter stream), at most twice as many, so that the check before
// an Exact(n) append needs no read for a stream the driver has written or
// read. Streams used least recently are forgotten first.
//
// It also remembers, by stream and first event ID, appends that ended
// without an answer from the server (which may have written them), so that
// their retries are compared with what was written; at most
// unansweredLimit, the oldest forgotten first.
type idCache struct {
	limit int

	mu      sync.Mutex // protects everything below
	streams map[string]*list.Element
	lru     list.List              // of *streamIDs, most recently used first
	size    int                    // IDs held
	unsure  map[appendKey]struct{} // unanswered appends
	fifo    []appendKey            // the keys of unsure, oldest first
}

// appendKey names an append by its stream and first event ID.
type appendKey struct {
	name string
	id   uuid.UUID
}

// unansweredLimit bounds how many unanswered appends the cache remembers.
const unansweredLimit = 1024

// streamIDs holds the event IDs of versions lo, lo+1, … of a stream.
type streamIDs struct {
	name  string
	lo    uint64
	ids   []uuid.UUID       // ids[i] is at version lo+i; never empty
	count map[uuid.UUID]int // how often each ID is in ids
}

// known returns the last version held.
func (s *streamIDs) known() uint64 { return s.lo + uint64(len(s.ids)) - 1 }

func (s *streamIDs) add(ids []uuid.UUID) {
	for _, id := range ids {
		s.count[id]++
	}
}

func (s *streamIDs) drop(ids []uuid.UUID) {
	for _, id := range ids {
		if s.count[id]--; s.count[id] == 0 {
			delete(s.count, id)
		}
	}
}

func newIDCache(limit int) *idCache {
	return &idCache{limit: limit, streams: map[string]*list.Element{}}
}

// check answers, from the cache, the check before an append at Exact(n)
// whose first event ID is id, looking at versions from..n. When done, the
// answer is found. Otherwise the versions from next to n (and later) must
// be read, and found tells whether id is among the versions before next
// that the cache holds.
func (c *idCache) check(name string, n, from uint64, id uuid.UUID) (found bool, next uint64, done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.streams[name]
	if !ok {
		return false, from, false
	}
	c.lru.MoveToFront(el)
	s := el.Value.(*streamIDs)
	known := s.known()
	switch {
	case known > n:
		return false, 0, true // the stream is past n: the server decides
	case s.lo > from || known+1 < from:
		return false, from, false // the cache lacks the start of the window
	case known == n:
		return s.count[id] > 0, 0, true
	default:
		return s.count[id] > 0, known + 1, false
	}
}

// before returns the last version of a stream the cache knows (0 for
// none), and whether an append to it beginning with event id ended
// unanswered.
func (c *idCache) before(name string, id uuid.UUID) (known uint64, unanswered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.streams[name]; ok {
		known = el.Value.(*streamIDs).known()
	}
	_, unanswered = c.unsure[appendKey{name, id}]
	return known, unanswered
}

// unanswered records that an append to a stream beginning with event id
// ended without an answer.
func (c *idCache) unanswered(name string, id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := appendKey{name, id}
	if _, ok := c.unsure[k]; ok {
		return
	}
	if c.unsure == nil {
		c.unsure = map[appendKey]struct{}{}
	}
	if len(c.fifo) == unansweredLimit {
		delete(c.unsure, c.fifo[0])
		c.fifo = c.fifo[1:]
	}
	c.unsure[k] = struct{}{}
	c.fifo = append(c.fifo, k)
}

// answered forgets an unanswered append once a retry of it was answered
// and compared.
func (c *idCache) answered(name string, id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := appendKey{name, id}
	if _, ok := c.unsure[k]; !ok {
		return
	}
	delete(c.unsure, k)
	c.fifo = slices.DeleteFunc(c.fifo, func(x appendKey) bool { return x == k })
}

// learn records that versions first, first+1, … of a stream hold ids.
// What joins the versions held without a gap is added; a later range with
// a gap replaces them; an earlier one is ignored. Only the last
// retryWindow versions are kept once twice as many are held.
func (c *idCache) learn(name string, first uint64, ids []uuid.UUID) {
	if len(ids) == 0 || len(ids) > c.limit {
		return
	}
	last := first + uint64(len(ids)) - 1
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.streams[name]
	if !ok {
		el = c.lru.PushFront(&streamIDs{name: name, lo: first, count: map[uuid.UUID]int{}})
		c.streams[name] = el
		s := el.Value.(*streamIDs)
		s.ids = slices.Clone(ids)
		s.add(s.ids)
		c.size += len(s.ids)
	} else {
		c.lru.MoveToFront(el)
		s := el.Value.(*streamIDs)
		known := s.known()
		switch {
		case first <= known+1 && last+1 >= s.lo: // joins: the union
			if first < s.lo {
				head := ids[:s.lo-first]
				s.add(head)
				c.size += len(head)
				s.ids = append(slices.Clone(head), s.ids...)
				s.lo = first
			}
			if last > known {
				tail := ids[known+1-first:]
				s.add(tail)
				c.size += len(tail)
				s.ids = append(s.ids, tail...)
			}
		case last > known: // later, with a gap
			c.size += len(ids) - len(s.ids)
			s.lo, s.ids, s.count = first, slices.Clone(ids), map[uuid.UUID]int{}
			s.add(s.ids)
		default:
			return // earlier, with a gap
		}
	}
	s := el.Value.(*streamIDs)
	if len(s.ids) > 2*retryWindow {
		cut := len(s.ids) - retryWindow
		s.drop(s.ids[:cut])
		s.ids = slices.Clone(s.ids[cut:])
		s.lo += uint64(cut)
		c.size -= cut
	}
	for c.size > c.limit {
		back := c.lru.Back()
		old := back.Value.(*streamIDs)
		c.lru.Remove(back)
		delete(c.streams, old.name)
		c.size -= len(old.ids)
	}
}
