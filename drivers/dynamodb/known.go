package dynamodb

import (
	"sync"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

// What a driver knows of the streams it appended to, so that an append
// at the end of a stream it wrote skips reads whose answer it already has.
//
// An append at Exact(n) first looks for its first event ID in the stream
// (the by_id Query of retried) and, when it is written as one PutItem,
// reads version n (previousExists). Both answers follow from the put of
// version n+1 succeeding when the driver remembers the stream:
//
//   - Versions of a stream only ever come into being: an event becomes a
//     stub, a swept stub may go, but the last version of a stream stays
//     (a stub when truncated), a deleted stream's next version is fenced
//     (fence.go), and version 1 is always kept. So the put of n+1, on
//     condition that n+1 is free, succeeds only when the stream's last
//     version is n: the read of version n adds nothing once n is known to
//     have existed, and a put over a deleted stream meets its fence and
//     conflicts, as after the read.
//   - At Exact(0) a free version 1 means the stream never had an event, so
//     the ID cannot be in it. At Exact(n), n > 0, it is not in the stream
//     when the driver wrote every one of its versions 1…n and none had the
//     ID: a driver that wrote version 1 of a stream and then each next
//     version knows the ID of every event there. The IDs of versions
//     1…n never change but by being forgotten (a delete), which removes
//     an ID, never adds one.
//
// Only indexed tables skip the lookup. In a head table every append races
// for the head of the log, and a committer that just won knows the next
// position while the losers read it again: without its lookup in front of
// each transaction, a process that keeps appending kept the head, and from
// 4 processes appending back to back one lost the race 101 times in a row
// and failed its append (BenchmarkAppendProcesses, log=head).
//
// A put that conflicts falls back to the full path (the lookup, then the
// stream's version), as before. An append whose outcome is unknown
// (an error) records nothing, so its retry does the lookup once its put
// conflicts. The memory is bounded: at most maxKnownStreams streams and
// maxKnownIDs IDs; past either, streams are forgotten at random.
type knownStreams struct {
	mu      sync.Mutex // protects streams and ids
	streams map[string]*knownStream
	ids     int // IDs held by all streams
}

// knownStream is what the driver knows of one stream.
type knownStream struct {
	last uint64 // versions 1…last exist (or existed: see above)
	// ids holds the ID of every event at versions 1…last when the driver
	// wrote them all; nil when it did not.
	ids map[uuid.UUID]struct{}
}

// The bounds of knownStreams.
const (
	maxKnownStreams = 10_000
	maxKnownIDs     = 100_000
)

// lookupNeeded reports whether an append at Exact(expected) whose first
// event has ID first must look for that ID in the stream before it writes
// (see retried): false at Exact(0), and at the stream's end when the
// driver knows every ID of the stream and first is not one of them.
func (k *knownStreams) lookupNeeded(stream string, expected uint64, first uuid.UUID) bool {
	if expected == 0 {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.streams[stream]
	if s == nil || s.ids == nil || s.last != expected {
		return true
	}
	_, found := s.ids[first]
	return found
}

// exists reports whether version of stream is known to have existed.
func (k *knownStreams) exists(stream string, version uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.streams[stream]
	return s != nil && s.last >= version
}

// appended records an append's events, written to stream from version
// first on.
func (k *knownStreams) appended(stream string, first uint64, events []driver.Event) {
	last := first + uint64(len(events)) - 1
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.streams == nil {
		k.streams = map[string]*knownStream{}
	}
	s := k.streams[stream]
	switch {
	case first == 1:
		// A new stream: these are all its events.
		if s != nil {
			k.ids -= len(s.ids)
		}
		s = &knownStream{ids: make(map[uuid.UUID]struct{}, len(events))}
		k.streams[stream] = s
	case s == nil:
		s = &knownStream{}
		k.streams[stream] = s
	case s.ids != nil && s.last != first-1:
		// Others wrote in between: the IDs are no longer all known.
		k.ids -= len(s.ids)
		s.ids = nil
	}
	s.last = max(s.last, last)
	if s.ids != nil {
		before := len(s.ids)
		for _, e := range events {
			s.ids[e.ID] = struct{}{}
		}
		k.ids += len(s.ids) - before
	}
	for id, other := range k.streams {
		if len(k.streams) <= maxKnownStreams && k.ids <= maxKnownIDs {
			break
		}
		if other != s {
			k.ids -= len(other.ids)
			delete(k.streams, id)
		}
	}
	if k.ids > maxKnownIDs {
		// This stream alone holds too many.
		k.ids -= len(s.ids)
		s.ids = nil
	}
}
