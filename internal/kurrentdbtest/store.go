package kurrentdbtest

import (
	"bytes"
	"encoding/json"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"
)

// Expected-state values, as the server numbers them internally.
const (
	expectAny          int64 = -2
	expectNoStream     int64 = -1
	expectStreamExists int64 = -4
	expectInvalid      int64 = -3 // ExpectedVersion.Invalid: refused
)

// Special event numbers and metadata values.
const (
	// tombstoneNumber is the event number of a $streamDeleted record.
	tombstoneNumber = math.MaxInt64
	// deletedTB is the $tb of a soft-deleted stream.
	deletedTB = math.MaxInt64
)

// Record sizes used to move the log position: a header plus the payloads,
// as a prepare record is laid out, so positions have gaps like a real log's.
const (
	recordHeader = 88
	emptyRecord  = 64
)

// record is one record of the log with data: an event, a metadata event, a
// link or a tombstone. Records are immutable once written.
type record struct {
	pos     uint64 // commit == prepare
	size    uint64 // bytes it takes in the log
	stream  string
	number  int64 // revision in its stream; tombstoneNumber for a tombstone
	id      uuid.UUID
	typ     string
	json    bool
	data    []byte
	meta    []byte
	created int64 // 100-ns ticks since the Unix epoch
}

// end is the position just past r.
func (r *record) end() uint64 { return r.pos + r.size }

type streamState struct {
	events    []*record // events[n] has revision n
	tombstone *record
}

// last returns the revision of the last event, -1 when there is none.
func (st *streamState) last() int64 {
	if st == nil {
		return -1
	}
	return int64(len(st.events)) - 1
}

// store is the server's database: the log, the stream index and the
// committed-events cache.
type store struct {
	opts Options

	mu      sync.Mutex // protects everything below
	log     []*record  // records with data, in position order
	end     uint64     // position of the next record (the writer checkpoint)
	streams map[string]*streamState
	cache   idCache
	changed chan struct{} // closed and replaced after every write
	hold    chan struct{} // when set, appends wait until it is closed

	streamReads  atomic.Uint64 // stream reads with a count answered
	streamEvents atomic.Uint64 // events those reads sent
}

func newStore(opts Options) *store {
	s := &store{
		opts:    opts,
		streams: map[string]*streamState{},
		cache:   idCache{capacity: opts.IdempotencyCacheSize, entries: map[uuid.UUID]cacheEntry{}},
		changed: make(chan struct{}),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeEpoch()
	return s
}

// writeEpoch writes the record a node writes when it becomes leader. It is
// in $all, hidden by the default filter.
func (s *store) writeEpoch() {
	s.appendSystem("$epoch-information", "$epoch-information", []byte(`{"epochNumber":0}`))
}

// seed writes what a fresh node's $all holds besides user events, so
// drivers are tested against them: settings, a metadata event, a link, a
// node stats event and a tombstone of a stream without events.
func (s *store) seed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendSystem("$settings", "$settings", []byte(`{"$userStreamAcl":{"$r":"$all","$w":"$all"},"$systemStreamAcl":{"$r":"$admins"}}`))
	s.appendSystem("$$Seeded-1", "$metadata", []byte(`{"$cacheControl":60,"owner":"seed"}`))
	s.appendSystem("$ce-Seeded", "$>", []byte("0@$settings"))
	s.appendSystem("$stats-127.0.0.1:2113", "$statsCollected", []byte(`{"proc-cpu":0}`))
	s.tombstone("SeededDeleted")
}

// appendSystem appends one JSON event to a stream, without checks.
func (s *store) appendSystem(stream, typ string, data []byte) *record {
	st := s.stream(stream)
	r := s.newRecord(stream, st.last()+1, uuid.New(), typ, true, data, nil)
	st.events = append(st.events, r)
	s.cache.put(r.id, stream, r.number)
	s.notify()
	return r
}

// tombstone hard-deletes a stream.
func (s *store) tombstone(stream string) *record {
	st := s.stream(stream)
	r := s.newRecord(stream, tombstoneNumber, uuid.New(), "$streamDeleted", false, nil, nil)
	st.tombstone = r
	s.cache.put(r.id, stream, r.number)
	s.notify()
	return r
}

// stream returns the state of a stream, creating it.
func (s *store) stream(name string) *streamState {
	st := s.streams[name]
	if st == nil {
		st = &streamState{}
		s.streams[name] = st
	}
	return st
}

// newRecord places a record at the end of the log.
func (s *store) newRecord(stream string, number int64, id uuid.UUID, typ string, isJSON bool, data, meta []byte) *record {
	r := &record{
		stream: stream, number: number, id: id, typ: typ, json: isJSON,
		data: bytes.Clone(data), meta: bytes.Clone(meta),
		created: s.now().UnixNano() / 100,
		size:    uint64(recordHeader + 2*len(stream) + 2*len(typ) + len(data) + len(meta)),
	}
	r.pos = s.alloc(r.size)
	s.log = append(s.log, r)
	return r
}

// now is the server's clock: Options.Clock, or the time.
func (s *store) now() time.Time {
	if s.opts.Clock != nil {
		return s.opts.Clock()
	}
	return time.Now()
}

// alloc reserves size bytes of log; a record that does not fit in the
// rest of the current chunk starts the next one.
func (s *store) alloc(size uint64) uint64 {
	chunk := s.opts.ChunkSize
	if s.end%chunk+size > chunk && s.end%chunk != 0 {
		s.end += chunk - s.end%chunk
	}
	pos := s.end
	s.end += size
	return pos
}

// notify wakes every subscription.
func (s *store) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// streamMeta is the parsed $metadata of a stream.
type streamMeta struct {
	raw      map[string]json.RawMessage
	maxCount *int64 // $maxCount, when positive
	maxAge   *int64 // $maxAge in seconds, when positive
	tb       *int64 // $tb, when not negative
}

// metadataOf returns the last $metadata written to $$stream.
func (s *store) metadataOf(stream string) (streamMeta, bool) {
	ms := s.streams["$$"+stream]
	if ms == nil || len(ms.events) == 0 {
		return streamMeta{}, false
	}
	var m streamMeta
	d := json.NewDecoder(bytes.NewReader(ms.events[len(ms.events)-1].data))
	d.UseNumber()
	if d.Decode(&m.raw) != nil {
		return streamMeta{}, true
	}
	num := func(key string) *int64 {
		var n json.Number
		if raw, ok := m.raw[key]; ok && json.Unmarshal(raw, &n) == nil {
			if v, err := n.Int64(); err == nil {
				return &v
			}
		}
		return nil
	}
	// StreamMetadata.FromJsonReader keeps only positive $maxCount and
	// $maxAge and a non-negative $tb; others read as absent.
	if m.maxCount = num("$maxCount"); m.maxCount != nil && *m.maxCount <= 0 {
		m.maxCount = nil
	}
	if m.maxAge = num("$maxAge"); m.maxAge != nil && *m.maxAge <= 0 {
		m.maxAge = nil
	}
	if m.tb = num("$tb"); m.tb != nil && *m.tb < 0 {
		m.tb = nil
	}
	return m, true
}

func (s *store) softDeleted(stream string) bool {
	m, _ := s.metadataOf(stream)
	return m.tb != nil && *m.tb == deletedTB
}

// readStatus is the outcome of looking a stream up for a read.
type readStatus int

const (
	readOK readStatus = iota
	readNotFound
	readDeleted // tombstoned
)

// readable returns the revisions a stream read may return: [lo, hi], empty
// when lo > hi. Metadata ($tb, $maxCount, $maxAge, the implicit $maxCount 1
// of metastreams) hides older events from stream reads, never from $all
// (IndexReader.ReadStreamEvents{Forward,Backward}Internal): the lowest
// readable revision is max($tb, last − $maxCount + 1), and with $maxAge
// the server returns the events recorded at or after now − $maxAge,
// walking down from the newest and stopping at the first older one, so
// everything at or below the newest expired event is hidden.
func (s *store) readable(stream string) (lo, hi int64, status readStatus) {
	st := s.streams[stream]
	if st != nil && st.tombstone != nil {
		return 0, -1, readDeleted
	}
	if st == nil || len(st.events) == 0 || s.softDeleted(stream) {
		return 0, -1, readNotFound
	}
	hi = st.last()
	if strings.HasPrefix(stream, "$$") {
		return hi, hi, readOK
	}
	if m, ok := s.metadataOf(stream); ok {
		if m.tb != nil {
			lo = max(lo, *m.tb)
		}
		if m.maxCount != nil {
			lo = max(lo, hi-*m.maxCount+1)
		}
		if m.maxAge != nil {
			threshold := s.now().Add(-time.Duration(*m.maxAge)*time.Second).UnixNano() / 100
			events := st.events
			for n := hi; n >= lo; n-- {
				if events[n].created < threshold {
					lo = n + 1
					break
				}
			}
		}
	}
	return lo, hi, readOK
}

// decision is the outcome of an append's consistency check.
type decision int

const (
	decideWrite decision = iota
	decideWrongVersion
	decideDeleted
	decideIdempotent
	decideCorrupted // answered as a wrong expected version
)

type checkResult struct {
	decision    decision
	current     int64 // last revision of the stream, -1 when it has none
	first, last int64 // revisions of an idempotent retry
	softDeleted bool  // the write undeletes the stream
}

// check is IndexWriter.CheckCommit: the expected-state check and the
// strong and weak idempotency checks, in the server's order.
func (s *store) check(stream string, expected int64, ids []uuid.UUID) checkResult {
	st := s.streams[stream]
	if st != nil && st.tombstone != nil {
		return checkResult{decision: decideDeleted, current: st.last()}
	}
	cur := st.last()
	res := checkResult{current: cur}
	if expected == expectStreamExists {
		if s.softDeleted(stream) {
			res.decision = decideDeleted
			return res
		}
		if _, hasMeta := s.metadataOf(stream); cur < 0 && !hasMeta {
			res.decision = decideWrongVersion
			return res
		}
	}
	if expected == expectAny || expected == expectStreamExists {
		// Weak: only the committed-events cache is consulted.
		for i, id := range ids {
			e, ok := s.cache.get(id)
			if !ok || e.stream != stream {
				if i == 0 {
					res.softDeleted = s.softDeleted(stream)
					return res
				}
				res.decision = decideCorrupted
				return res
			}
			if i == 0 {
				res.first = e.number
			}
			res.last = e.number
		}
		if len(ids) == 0 {
			res.softDeleted = s.softDeleted(stream)
			return res
		}
		res.decision = decideIdempotent
		return res
	}
	if expected < cur {
		// Strong: event i must be the one stored at revision expected+1+i.
		n := expected
		for _, id := range ids {
			n++
			if n <= cur && st.events[n].id == id {
				continue
			}
			if n != expected+1 {
				res.decision = decideCorrupted
				return res
			}
			if expected == expectNoStream && s.softDeleted(stream) {
				res.softDeleted = true
				return res
			}
			res.decision = decideWrongVersion
			return res
		}
		if n == expected {
			// No events: a pure check, which passes expecting no_stream
			// on a soft-deleted stream and fails otherwise.
			if expected == expectNoStream && s.softDeleted(stream) {
				res.softDeleted = true
				return res
			}
			res.decision = decideWrongVersion
			return res
		}
		res.decision, res.first, res.last = decideIdempotent, expected+1, n
		return res
	}
	if expected > cur {
		res.decision = decideWrongVersion
		return res
	}
	res.softDeleted = s.softDeleted(stream)
	return res
}

// proposed is an event to write.
type proposed struct {
	id   uuid.UUID
	typ  string
	json bool
	data []byte
	meta []byte
}

// size is how the server measures an event against its limits.
func (p proposed) size() int {
	return len(p.data) + len(p.meta) + 2*len(utf16.Encode([]rune(p.typ)))
}

// write commits events after a passing check and returns the last revision
// and the position of the last record written (an empty record when there
// are no events).
func (s *store) write(stream string, res checkResult, events []proposed) (last int64, pos uint64) {
	if res.softDeleted {
		s.undelete(stream, res.current)
	}
	if len(events) == 0 {
		pos = s.alloc(emptyRecord)
		s.notify()
		return res.current, pos
	}
	st := s.stream(stream)
	for _, e := range events {
		r := s.newRecord(stream, st.last()+1, e.id, e.typ, e.json, e.data, e.meta)
		st.events = append(st.events, r)
		s.cache.put(r.id, stream, r.number)
		pos = r.pos
	}
	s.notify()
	return st.last(), pos
}

// undelete rewrites the metadata of a soft-deleted stream that is written
// to again: $tb moves to the next revision, so the old events stay hidden
// and revisions continue.
func (s *store) undelete(stream string, current int64) {
	m, _ := s.metadataOf(stream)
	raw := map[string]json.RawMessage{}
	for k, v := range m.raw {
		raw[k] = v
	}
	raw["$tb"] = json.RawMessage(jsonInt(current + 1))
	data, _ := json.Marshal(raw)
	s.appendSystem("$$"+stream, "$metadata", data)
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// softDelete writes $tb = max to the stream's metadata, replacing it.
func (s *store) softDelete(stream string) *record {
	return s.appendSystem("$$"+stream, "$metadata", []byte(`{"$tb":9223372036854775807}`))
}

// firstAfter returns the index in the log of the first record positioned
// at or after (commit, prepare) when inclusive, strictly after otherwise.
// Positions compare as (commit, prepare) pairs; a record's pair is (pos, pos).
func (s *store) firstAfter(commit, prepare uint64, inclusive bool) int {
	return sort.Search(len(s.log), func(i int) bool {
		p := s.log[i].pos
		if p != commit {
			return p > commit
		}
		if inclusive {
			return p >= prepare
		}
		return p > prepare
	})
}

// defaultHidden is DefaultAllFilter: $all never shows the epoch records or
// the checkpoints and parked messages of persistent subscriptions to $all.
func defaultHidden(r *record) bool {
	if r.stream == "$epoch-information" {
		return true
	}
	const ps = "$persistentsubscription-$all::"
	return strings.HasPrefix(r.stream, ps) && (strings.HasSuffix(r.stream, "-checkpoint") || strings.HasSuffix(r.stream, "-parked"))
}

// idCache is the committed-events cache (BoundedCache<Guid, EventInfo>):
// bounded, evicting the oldest entry first, and empty after a restart.
type idCache struct {
	capacity int
	entries  map[uuid.UUID]cacheEntry
	fifo     []uuid.UUID // insertion order; fifo[head:] are live
	head     int
}

type cacheEntry struct {
	stream string
	number int64
}

func (c *idCache) get(id uuid.UUID) (cacheEntry, bool) {
	e, ok := c.entries[id]
	return e, ok
}

func (c *idCache) put(id uuid.UUID, stream string, number int64) {
	if _, ok := c.entries[id]; !ok {
		c.fifo = append(c.fifo, id)
	}
	c.entries[id] = cacheEntry{stream: stream, number: number}
	for len(c.entries) > c.capacity {
		delete(c.entries, c.fifo[c.head])
		c.head++
	}
	if c.head > 1024 && c.head > len(c.fifo)/2 {
		c.fifo = append([]uuid.UUID(nil), c.fifo[c.head:]...)
		c.head = 0
	}
}

func (c *idCache) clear() {
	c.entries = map[uuid.UUID]cacheEntry{}
	c.fifo, c.head = nil, 0
}
