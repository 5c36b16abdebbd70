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
// the driver checks that the first ID is not among versions 1..n; it keeps
// the IDs it has written or read in a bounded cache, so this costs a read
// only for streams it has not seen.
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
		found, err := d.idIn(ctx, name, exp.Version(), len(req.Events), req.Events[0].ID)
		if err != nil {
			return driver.AppendResult{}, wrapError(ctx, err)
		}
		if found {
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
	opts := kdb.AppendToStreamOptions{StreamState: streamState(exp)}
	// A retry is recognised for sure only with an exact expectation; with
	// Any or StreamExists the server's memory of recent IDs may be gone
	// (after a restart), so the driver does not retry those itself.
	strong := exp.Kind() == driver.ExpectExact
	res, err := call(ctx, d, strong, func(c *kdb.Client) (*kdb.WriteResult, error) {
		return c.AppendToStream(ctx, name, opts, events...)
	})
	if err != nil {
		if hasCode(err, kdb.ErrorCodeWrongExpectedVersion) {
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

// idIn reports whether id is the ID of one of versions 1..n of a stream.
// When the cache does not know those versions it reads them, and up to
// ahead versions past n, which an append of ahead events at Exact(n) would
// take: if the stream already holds them, the append may be a retry, and
// knowing them lets Append compare its content.
func (d *Driver) idIn(ctx context.Context, name string, n uint64, ahead int, id uuid.UUID) (bool, error) {
	found, known := d.ids.lookup(name, n, id)
	if found || known >= n {
		return found, nil
	}
	// Read the versions the cache does not know. They never change, so
	// what is read stays true.
	evs, err := d.readStream(ctx, name, kdb.ReadStreamOptions{From: kdb.Revision(revisionOf(known + 1))}, n-known+uint64(ahead))
	if err != nil {
		return false, err
	}
	read := make([]uuid.UUID, 0, len(evs))
	contiguous := true
	for i, ev := range evs {
		v := versionOf(ev.EventNumber)
		if v <= n && ev.EventID == id {
			found = true
		}
		contiguous = contiguous && v == known+1+uint64(i)
		read = append(read, ev.EventID)
	}
	if contiguous {
		d.ids.learn(name, known+1, read)
	}
	return found, nil
}

// idCacheLimit bounds how many event IDs the driver remembers, across
// streams (about 60 bytes each).
const idCacheLimit = 100_000

// idCache remembers, for recently used streams, the event IDs of versions
// 1..known: enough to tell whether an ID is already in the first n
// versions of a stream without reading it. Streams used least recently are
// forgotten first.
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

type streamIDs struct {
	name  string
	known uint64               // versions 1..known are held
	ids   map[uuid.UUID]uint64 // event ID → version
}

func newIDCache(limit int) *idCache {
	return &idCache{limit: limit, streams: map[string]*list.Element{}}
}

// lookup reports whether id is at one of versions 1..n of a stream, as far
// as the cache knows, and how many versions it knows.
func (c *idCache) lookup(name string, n uint64, id uuid.UUID) (found bool, known uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.streams[name]
	if !ok {
		return false, 0
	}
	c.lru.MoveToFront(el)
	s := el.Value.(*streamIDs)
	v, ok := s.ids[id]
	return ok && v <= n, s.known
}

// before returns how many versions of a stream the cache knows, and
// whether an append to it beginning with event id ended unanswered.
func (c *idCache) before(name string, id uuid.UUID) (known uint64, unanswered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.streams[name]; ok {
		known = el.Value.(*streamIDs).known
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

// learn records that versions first, first+1, … of a stream hold ids. Only
// what extends the known versions without a gap is kept.
func (c *idCache) learn(name string, first uint64, ids []uuid.UUID) {
	if len(ids) == 0 || len(ids) > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.streams[name]
	if !ok {
		if first != 1 {
			return
		}
		el = c.lru.PushFront(&streamIDs{name: name, ids: map[uuid.UUID]uint64{}})
		c.streams[name] = el
	}
	c.lru.MoveToFront(el)
	s := el.Value.(*streamIDs)
	if first > s.known+1 || first+uint64(len(ids)) <= s.known+1 {
		return // a gap, or nothing new
	}
	for i, id := range ids {
		v := first + uint64(i)
		if _, dup := s.ids[id]; v <= s.known || dup {
			continue // a duplicate keeps its first version
		}
		s.ids[id] = v
		c.size++
	}
	s.known = first + uint64(len(ids)) - 1
	for c.size > c.limit {
		last := c.lru.Back()
		old := last.Value.(*streamIDs)
		c.lru.Remove(last)
		delete(c.streams, old.name)
		c.size -= len(old.ids)
	}
}
