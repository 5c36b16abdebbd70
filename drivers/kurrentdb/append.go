package kurrentdb

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode/utf16"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Append implements [eventstore.Driver].
//
// KurrentDB checks the expectation and recognises retries itself, with one
// exception the driver covers: an append expecting the stream's current
// version whose first event ID is already in the stream is, per
// docs/semantics.md, a retry at the wrong version and must fail, while the
// server would write the events again. So before an Exact(n) append (n ≥ 1)
// the driver checks that the first ID is not among versions 1..n; it keeps
// the IDs it has written or read in a bounded cache, so this costs a read
// only for streams it has not seen.
func (d *Driver) Append(ctx context.Context, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	if err := d.checkSizes(req.Events); err != nil {
		return eventstore.AppendResult{}, err
	}
	name := d.streamName(req.Stream)
	exp := req.Expected
	if exp.Kind() == eventstore.ExactVersion && exp.Version() > 0 {
		found, err := d.idIn(ctx, name, exp.Version(), req.Events[0].ID)
		if err != nil {
			return eventstore.AppendResult{}, wrapError(ctx, err)
		}
		if found {
			return eventstore.AppendResult{}, d.wrongVersion(ctx, req, nil)
		}
	}
	events := make([]kdb.EventData, len(req.Events))
	ids := make([]uuid.UUID, len(req.Events))
	for i, e := range req.Events {
		ct := kdb.ContentTypeJson
		if e.ContentType == eventstore.Binary {
			ct = kdb.ContentTypeBinary
		}
		events[i] = kdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: ct, Data: e.Data, Metadata: e.Metadata}
		ids[i] = e.ID
	}
	opts := kdb.AppendToStreamOptions{StreamState: streamState(exp)}
	// A retry is recognised for sure only with an exact expectation; with
	// Any or StreamExists the server's memory of recent IDs may be gone
	// (after a restart), so the driver does not retry those itself.
	strong := exp.Kind() == eventstore.ExactVersion
	res, err := call(ctx, d, strong, func(c *kdb.Client) (*kdb.WriteResult, error) {
		return c.AppendToStream(ctx, name, opts, events...)
	})
	if err != nil {
		if hasCode(err, kdb.ErrorCodeWrongExpectedVersion) {
			return eventstore.AppendResult{}, d.wrongVersion(ctx, req, err)
		}
		return eventstore.AppendResult{}, wrapError(ctx, err)
	}
	// NextExpectedVersion is the revision of the last event written (of
	// the original append, for a retry).
	version := versionOf(res.NextExpectedVersion)
	d.ids.learn(name, version-uint64(len(ids))+1, ids)
	return eventstore.AppendResult{
		Version:  version,
		Position: eventstore.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition},
	}, nil
}

// wrongVersion builds the error for a rejected append. The client does not
// expose the stream's revision, so the actual version is read afterwards.
func (d *Driver) wrongVersion(ctx context.Context, req eventstore.AppendRequest, cause error) error {
	wev := &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: req.Expected, Err: cause}
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
func (d *Driver) checkSizes(events []eventstore.Event) error {
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
func (d *Driver) idIn(ctx context.Context, name string, n uint64, id uuid.UUID) (bool, error) {
	found, known := d.ids.lookup(name, n, id)
	if found || known >= n {
		return found, nil
	}
	// Read the versions the cache does not know. They never change, so
	// what is read stays true.
	evs, err := d.readStream(ctx, name, kdb.ReadStreamOptions{From: kdb.Revision(revisionOf(known + 1))}, n-known)
	if err != nil {
		return false, err
	}
	read := make([]uuid.UUID, 0, len(evs))
	contiguous := true
	for i, ev := range evs {
		v := versionOf(ev.EventNumber)
		if v > n {
			break
		}
		if ev.EventID == id {
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
type idCache struct {
	limit int

	mu      sync.Mutex // protects everything below
	streams map[string]*list.Element
	lru     list.List // of *streamIDs, most recently used first
	size    int       // IDs held
}

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
