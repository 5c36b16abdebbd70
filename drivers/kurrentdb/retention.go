package kurrentdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Deleting, truncating and retention map to KurrentDB's own stream
// metadata (shared/kurrentdb-semantics.md §7–§8):
//
//   - DeleteStream is the server's soft delete (Streams.Delete, expecting
//     the stream's last revision): $tb becomes 2^63−1, reads find no
//     stream, and the next append recreates it with revisions continuing.
//     The snapshot stream is soft-deleted too.
//   - TruncateStream sets $tb, the first revision stream reads return.
//   - SetStreamRetention sets $maxCount and $maxAge (whole seconds, rounded
//     up). The server applies them on every stream read; the driver first
//     moves $tb to the first event the old setting left readable, so a
//     relaxed or removed setting never brings hidden events back.
//
// Metadata is changed by reading the stream's metadata stream ($$stream)
// and appending its new version expecting the revision read, keeping the
// keys the driver does not own; a concurrent change makes it read again.
//
// The server removes nothing at once: hidden events stay in the log, and in
// $all, until a scavenge. The driver's global-log reads (ReadAll,
// ReadAllScan, and so subscriptions) leave them out: for each stream met in
// a page they read the stream's first readable revision once (a forward
// read of one event, which applies $tb, $maxCount, $maxAge and deletion as
// the server does) and drop the events below it.

// metaKeys are the keys of the stream metadata the driver sets.
const (
	keyTruncateBefore = "$tb"
	keyMaxCount       = "$maxCount"
	keyMaxAge         = "$maxAge"
)

// softDeleted is the $tb of a soft-deleted stream.
const softDeleted = math.MaxInt64

var (
	_ driver.StreamDeleter    = (*Driver)(nil)
	_ driver.StreamTruncater  = (*Driver)(nil)
	_ driver.RetentionKeeper  = (*Driver)(nil)
	_ driver.RetentionApplier = (*Driver)(nil)
)

// DeleteStream implements [driver.StreamDeleter] with the server's soft
// delete, expecting the revision of the stream's last event (read first),
// so an append that comes in between makes it look again.
func (d *Driver) DeleteStream(ctx context.Context, stream string, expected driver.ExpectedVersion) error {
	name := d.streamName(stream)
	for attempt := 0; ; attempt++ {
		v, err := d.StreamVersion(ctx, stream)
		if err != nil {
			return err
		}
		if !expected.Matches(v) {
			return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: eventstore.ExpectedVersion(expected), Actual: v}
		}
		if v == 0 {
			return nil
		}
		_, err = call(ctx, d, true, func(c *kdb.Client) (*kdb.DeleteResult, error) {
			return c.DeleteStream(ctx, name, kdb.DeleteStreamOptions{StreamState: kdb.StreamRevision{Value: revisionOf(v)}})
		})
		if deleteConflict(err) && attempt < saveAttempts {
			continue // appended to meanwhile: look again
		}
		if err != nil {
			return wrapError(ctx, err)
		}
		d.deleted.add(name, v)
		d.ids.forget(name)
		return d.deleteSnapshot(ctx, stream)
	}
}

// deleteSnapshot soft-deletes the snapshot stream of a stream, if it has
// one, expecting the snapshot read: the server's answer to a failed
// expectation names the stream in a trailer, which gRPC cannot carry for
// internal stream names (they hold a control character), so the driver
// does not ask for a delete that could fail that way.
func (d *Driver) deleteSnapshot(ctx context.Context, stream string) error {
	name := SnapshotStream(d.opts.Namespace, stream)
	for range saveAttempts {
		last, ok, err := d.lastInternal(ctx, name)
		if err != nil || !ok {
			return wrapError(ctx, err)
		}
		_, err = call(ctx, d, true, func(c *kdb.Client) (*kdb.DeleteResult, error) {
			return c.DeleteStream(ctx, name, kdb.DeleteStreamOptions{StreamState: kdb.StreamRevision{Value: last.EventNumber}})
		})
		if err == nil || ctx.Err() != nil {
			return wrapError(ctx, err)
		}
		// A snapshot saved meanwhile: look again.
	}
	return fmt.Errorf("kurrentdb: delete the snapshot of %q: %d concurrent saves in a row", stream, saveAttempts)
}

// TruncateStream implements [driver.StreamTruncater]: $tb becomes the
// revision of version before (at most the stream's version plus one). A
// stream at version 0 (never written, or deleted) is left as it is.
func (d *Driver) TruncateStream(ctx context.Context, stream string, before uint64) error {
	return d.changeMeta(ctx, stream, func(m streamMetadata, version uint64) (streamMetadata, bool) {
		if version == 0 {
			return m, false
		}
		tb := revisionOf(min(before, version+1))
		if cur, ok := m.num(keyTruncateBefore); ok && cur >= tb {
			return m, false
		}
		m.set(keyTruncateBefore, tb)
		return m, true
	})
}

// SetStreamRetention implements [driver.RetentionKeeper] with $maxCount
// and $maxAge (in whole seconds, rounded up).
func (d *Driver) SetStreamRetention(ctx context.Context, stream string, r driver.Retention) error {
	return d.changeMeta(ctx, stream, func(m streamMetadata, _ uint64) (streamMetadata, bool) {
		if r.MaxCount > 0 {
			m.set(keyMaxCount, r.MaxCount)
		} else {
			m.remove(keyMaxCount)
		}
		if r.MaxAge > 0 {
			m.set(keyMaxAge, ceilSeconds(r.MaxAge))
		} else {
			m.remove(keyMaxAge)
		}
		return m, true
	})
}

// ApplyRetention implements [driver.RetentionApplier] and does nothing:
// KurrentDB applies $maxAge and $maxCount itself, on every read (a quiet
// stream's aged events are hidden as soon as they age), and this driver
// hides them from ReadAll and subscriptions too. The space is freed by a
// scavenge, which the server's operators run (docs/kurrentdb.md). The
// result counts nothing.
func (d *Driver) ApplyRetention(ctx context.Context) (driver.RetentionResult, error) {
	return driver.RetentionResult{}, ctx.Err()
}

// StreamRetention implements [driver.RetentionKeeper].
func (d *Driver) StreamRetention(ctx context.Context, stream string) (driver.Retention, error) {
	m, _, err := d.readMeta(ctx, d.streamName(stream))
	if err != nil {
		return driver.Retention{}, wrapError(ctx, err)
	}
	var r driver.Retention
	if n, ok := m.num(keyMaxCount); ok {
		r.MaxCount = n
	}
	if n, ok := m.num(keyMaxAge); ok {
		r.MaxAge = math.MaxInt64 // the longest Duration, when n seconds are longer
		if n <= math.MaxInt64/uint64(time.Second) {
			r.MaxAge = time.Duration(n) * time.Second
		}
	}
	return r, nil
}

// ceilSeconds returns d in whole seconds, rounded up, without overflow.
func ceilSeconds(d time.Duration) uint64 {
	s := uint64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// changeMeta reads a stream's metadata and version, lets change edit it
// (false: nothing to write), and writes it expecting the metadata stream's
// revision read, keeping $tb at least at the first revision readable
// before the change; it reads again after a concurrent change. It never
// writes the metadata of a soft-deleted stream without its $tb, which
// would bring the stream back.
func (d *Driver) changeMeta(ctx context.Context, stream string, change func(streamMetadata, uint64) (streamMetadata, bool)) error {
	name := d.streamName(stream)
	for range saveAttempts {
		m, rev, err := d.readMeta(ctx, name)
		if err != nil {
			return wrapError(ctx, err)
		}
		version, err := d.StreamVersion(ctx, stream)
		if err != nil {
			return err
		}
		if version > 0 {
			// What the current metadata hides stays hidden.
			first, ok, err := d.firstReadable(ctx, name)
			if err != nil {
				return wrapError(ctx, err)
			}
			if cur, has := m.num(keyTruncateBefore); ok && (!has || cur < first) && first > 0 {
				m.set(keyTruncateBefore, first)
			}
		}
		m, write := change(m, version)
		if !write {
			return nil
		}
		err = d.writeMeta(ctx, name, m, rev)
		if hasCode(err, kdb.ErrorCodeWrongExpectedVersion) {
			continue // changed meanwhile: read again
		}
		return wrapError(ctx, err)
	}
	return fmt.Errorf("kurrentdb: change the metadata of %q: %d concurrent changes in a row", stream, saveAttempts)
}

// streamMetadata is a stream's metadata as JSON keys and raw values, so
// keys the driver does not own are written back as they were.
type streamMetadata map[string]json.RawMessage

func (m streamMetadata) num(k string) (uint64, bool) {
	raw, ok := m[k]
	if !ok {
		return 0, false
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&n) != nil {
		return 0, false
	}
	v, err := n.Int64()
	if err != nil || v < 0 {
		return 0, false
	}
	return uint64(v), true
}

func (m streamMetadata) set(k string, v uint64) {
	b, _ := json.Marshal(v)
	m[k] = b
}

func (m streamMetadata) remove(k string) { delete(m, k) }

// readMeta reads the last metadata event of a KurrentDB stream; rev is nil
// when the stream has none.
func (d *Driver) readMeta(ctx context.Context, name string) (streamMetadata, *uint64, error) {
	evs, err := d.readStream(ctx, "$$"+name, kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	if err != nil || len(evs) == 0 {
		return streamMetadata{}, nil, err
	}
	m := streamMetadata{}
	if len(evs[0].Data) > 0 {
		if err := json.Unmarshal(evs[0].Data, &m); err != nil {
			return nil, nil, fmt.Errorf("kurrentdb: the metadata of %q is not a JSON object: %w", name, err)
		}
	}
	rev := evs[0].EventNumber
	return m, &rev, nil
}

// writeMeta appends a metadata event expecting the metadata stream's
// revision rev (nil: no metadata yet).
func (d *Driver) writeMeta(ctx context.Context, name string, m streamMetadata, rev *uint64) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var state kdb.StreamState = kdb.NoStream{}
	if rev != nil {
		state = kdb.StreamRevision{Value: *rev}
	}
	_, err = call(ctx, d, true, func(c *kdb.Client) (*kdb.WriteResult, error) {
		return c.AppendToStream(ctx, "$$"+name, kdb.AppendToStreamOptions{StreamState: state},
			kdb.EventData{EventID: uuid.New(), EventType: "$metadata", ContentType: kdb.ContentTypeJson, Data: data})
	})
	return err
}

// firstReadable returns the revision of the first event a stream read
// returns (the server applies $tb, $maxCount, $maxAge); ok is false when
// none is readable (no stream, a deleted one, or every event hidden).
func (d *Driver) firstReadable(ctx context.Context, name string) (uint64, bool, error) {
	evs, err := d.readStream(ctx, name, kdb.ReadStreamOptions{From: kdb.Start{}}, 1)
	if err != nil || len(evs) == 0 {
		return 0, false, err
	}
	return evs[0].EventNumber, true, nil
}

// probeStream reads the last readable event of a KurrentDB stream: found
// is false when the server finds no stream (never written, or
// soft-deleted), ev nil when it exists with every event hidden.
func probeStream(ctx context.Context, c *kdb.Client, name string) (ev *kdb.RecordedEvent, found bool, err error) {
	rs, err := c.ReadStream(ctx, name, kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	if err != nil {
		return nil, false, err
	}
	defer rs.Close()
	r, err := rs.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return nil, true, nil
	case hasCode(err, kdb.ErrorCodeResourceNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return r.Event, true, nil
}

// hiddenVersion returns the version of a stream that exists on the server
// but whose events are all hidden by its metadata: $tb when it hides them
// all, else (with $maxAge) the server's answer to an empty append expecting
// the stream to exist (a check that writes no event; a soft-deleted stream
// fails it, and is at version 0).
func (d *Driver) hiddenVersion(ctx context.Context, c *kdb.Client, name string) (uint64, error) {
	evs, err := func() ([]*kdb.RecordedEvent, error) {
		rs, err := c.ReadStream(ctx, "$$"+name, kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		var out []*kdb.RecordedEvent
		_, err = recvEach(rs, func(ev *kdb.RecordedEvent) bool { out = append(out, ev); return true })
		if hasCode(err, kdb.ErrorCodeResourceNotFound) {
			return nil, nil
		}
		return out, err
	}()
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	m := streamMetadata{}
	_ = json.Unmarshal(evs[0].Data, &m)
	if tb, ok := m.num(keyTruncateBefore); ok && tb == softDeleted {
		return 0, nil
	}
	if _, ok := m.num(keyMaxAge); !ok {
		if tb, ok := m.num(keyTruncateBefore); ok {
			return tb, nil // revisions below tb hidden, and no more: version tb
		}
		return 0, nil
	}
	res, err := c.AppendToStream(ctx, name, kdb.AppendToStreamOptions{StreamState: kdb.StreamExists{}})
	switch {
	case hasCode(err, kdb.ErrorCodeStreamDeleted), hasCode(err, kdb.ErrorCodeWrongExpectedVersion):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return versionOf(res.NextExpectedVersion), nil
}

// visibility decides, for one global-log read, which events of $all are
// still readable: those at or above their stream's first readable
// revision, read once per stream per read (see firstReadable).
type visibility struct {
	first map[string]int64 // KurrentDB stream → first readable revision; MaxInt64: none
}

func newVisibility() *visibility { return &visibility{first: map[string]int64{}} }

// kept reports whether the event at revision rev of a KurrentDB stream is
// readable.
func (v *visibility) kept(ctx context.Context, c *kdb.Client, name string, rev uint64) (bool, error) {
	first, ok := v.first[name]
	if !ok {
		rs, err := c.ReadStream(ctx, name, kdb.ReadStreamOptions{From: kdb.Start{}}, 1)
		if err != nil {
			return false, err
		}
		first = math.MaxInt64
		r, err := rs.Recv()
		rs.Close()
		switch {
		case errors.Is(err, io.EOF), hasCode(err, kdb.ErrorCodeResourceNotFound), hasCode(err, kdb.ErrorCodeStreamDeleted):
		case err != nil:
			return false, err
		case r.Event != nil:
			first = int64(r.Event.EventNumber)
		}
		v.first[name] = first
	}
	return int64(rev) >= first, nil
}

// deletedStreams remembers the streams this driver deleted and their last
// version, so that an append the server takes for a retry of one of the
// deleted events (its strong idempotency check still finds their IDs) is
// reported as a conflict rather than as a success with nothing readable.
// Bounded: the oldest are forgotten first.
type deletedStreams struct {
	mu    sync.Mutex // protects m and order
	m     map[string]uint64
	order []string
}

const deletedLimit = 10_000

func (s *deletedStreams) add(name string, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]uint64{}
	}
	if _, ok := s.m[name]; !ok {
		if len(s.order) == deletedLimit {
			delete(s.m, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, name)
	}
	s.m[name] = version
}

// last returns the last version a deleted stream had; 0 when unknown.
func (s *deletedStreams) last(name string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[name]
}

// forget drops what the cache knows of a stream (its events were deleted).
func (c *idCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.streams[name]
	if !ok {
		return
	}
	c.size -= len(el.Value.(*streamIDs).ids)
	c.lru.Remove(el)
	delete(c.streams, name)
}

// readStreamFound reads up to count events of a KurrentDB stream; exists
// is false when the server finds no stream.
func (d *Driver) readStreamFound(ctx context.Context, name string, opts kdb.ReadStreamOptions, count uint64) (evs []*kdb.RecordedEvent, exists bool, err error) {
	type result struct {
		evs    []*kdb.RecordedEvent
		exists bool
	}
	r, err := call(ctx, d, true, func(c *kdb.Client) (result, error) {
		rs, err := c.ReadStream(ctx, name, opts, count)
		if err != nil {
			return result{}, err
		}
		defer rs.Close()
		var out []*kdb.RecordedEvent
		_, err = recvEach(rs, func(ev *kdb.RecordedEvent) bool { out = append(out, ev); return true })
		if hasCode(err, kdb.ErrorCodeResourceNotFound) {
			return result{}, nil
		}
		return result{evs: out, exists: true}, err
	})
	return r.evs, r.exists, err
}
