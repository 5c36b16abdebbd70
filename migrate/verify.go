package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/eventkit/eventstore"
)

// Report is what [Verify] found.
type Report struct {
	// Equal is true when both stores hold the same streams with the same
	// events, in the same relative global order.
	Equal bool
	// Streams and Events count what the source holds.
	Streams, Events int
	// SourceDigest and DestinationDigest are SHA-256 digests (hex) of each
	// store's content: every stream's ID, version and events digest, in
	// stream ID order. Equal content gives equal digests whatever the
	// driver.
	SourceDigest, DestinationDigest string
	// Difference is the first difference found; nil when Equal.
	Difference *Difference
	// RecordedTimesEqual is true when, in addition to Equal, every event
	// has the same recorded time (to the microsecond) in both stores, as
	// after a copy into a destination that imports. Recorded times are not
	// part of Equal: a copy into a store that cannot keep them (KurrentDB)
	// holds the same events with times of its own.
	RecordedTimesEqual bool
	// TimeDifference is, when Equal but not RecordedTimesEqual, the first
	// event in the global log whose recorded time differs (What is
	// "recorded time"); nil otherwise.
	TimeDifference *Difference
}

// String summarises the report in one line.
func (r Report) String() string {
	if r.Equal {
		return fmt.Sprintf("equal: %d streams, %d events, digest %s", r.Streams, r.Events, r.SourceDigest)
	}
	return "different: " + r.Difference.String()
}

// Difference locates where two stores differ.
type Difference struct {
	Stream  string
	Version uint64 // the first version that differs; 0 when the stream itself is missing
	// What differs: "missing in the source", "missing in the destination"
	// (the event at Version, or the whole stream when Version is 0), "event
	// id", "type", "content type", "data", "metadata", "metadata content
	// type", "tags", "order" (the stores'
	// global logs hold the same events in a different order: Stream and
	// Version are the source's event at the first place they differ, Other
	// is the destination's), or "recorded time" (in
	// [Report.TimeDifference] only).
	What string
	// Other is, for "order", the destination's event at that place, as
	// "stream"@version, or "nothing" when its log ends there.
	Other string
	// SourceTime and DestinationTime are, for "recorded time", the event's
	// recorded time in each store.
	SourceTime, DestinationTime time.Time
}

// String says where the stores differ, naming the stream, the version and
// the field: `stream "Order-42" version 7: data`.
func (d *Difference) String() string {
	switch {
	case d.What == "order":
		return fmt.Sprintf("global order differs: the source has %q@%d where the destination has %s", d.Stream, d.Version, d.Other)
	case d.What == "recorded time":
		return fmt.Sprintf("stream %q version %d: recorded time (source %s, destination %s)", d.Stream, d.Version,
			d.SourceTime.UTC().Format(timeFormat), d.DestinationTime.UTC().Format(timeFormat))
	case d.Version == 0:
		return fmt.Sprintf("stream %q: %s", d.Stream, d.What)
	}
	return fmt.Sprintf("stream %q version %d: %s", d.Stream, d.Version, d.What)
}

// timeFormat prints recorded times to the microsecond, at a fixed width.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

// Verify compares the events of the source and the destination: each
// stream's version and a digest of its events (ID, type, content type, data,
// metadata, metadata content type and version), then the relative order of the global logs. It
// reads each log once, plus the first differing stream (or both logs again
// when only the order or the recorded times differ). Both stores should be
// quiescent: events appended during Verify may show as a difference. It
// keeps a 32-byte digest and a version per stream in memory. It reads both
// stores and writes neither.
//
//	report, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
//
// It returns an error only when a store is missing ([eventstore.ErrInvalidArgument]
// for a zero [Source] or [Destination]) or reading fails (the message then
// names the store: "source:" or "destination:"); differences are in the
// Report.
func Verify(ctx context.Context, from Source, to Destination) (Report, error) {
	if err := check(from, to); err != nil {
		return Report{}, fmt.Errorf("migrate: verify: %w", err)
	}
	a, b := from.store, to.store
	sa, err := summarize(ctx, a)
	if err != nil {
		return Report{}, fmt.Errorf("migrate: verify: %w", srcErr(err))
	}
	sb, err := summarize(ctx, b)
	if err != nil {
		return Report{}, fmt.Errorf("migrate: verify: %w", dstErr(err))
	}
	r := Report{Streams: len(sa.streams), Events: sa.events, SourceDigest: sa.digest(), DestinationDigest: sb.digest()}
	d, err := firstStreamDifference(ctx, a, b, sa, sb)
	if err == nil && d == nil && !bytes.Equal(sa.order, sb.order) {
		d, err = firstOrderDifference(ctx, a, b)
	}
	if err == nil && d == nil && !bytes.Equal(sa.times, sb.times) {
		r.TimeDifference, err = firstTimeDifference(ctx, a, b)
	}
	if err != nil {
		return Report{}, fmt.Errorf("migrate: verify: %w", err)
	}
	r.Difference = d
	r.Equal = d == nil
	r.RecordedTimesEqual = r.Equal && r.TimeDifference == nil
	return r, nil
}

// streamSum is what one store holds of one stream: its version and a hash
// chain over its events (each link is SHA-256 of the previous link and the
// next event), so a stream costs 40 bytes and its ID, not a hash state.
type streamSum struct {
	version uint64
	sum     [sha256.Size]byte
}

type summary struct {
	streams map[string]*streamSum
	events  int
	order   []byte // digest of (stream, version) in global order
	times   []byte // digest of the recorded times in global order
}

func summarize(ctx context.Context, s *eventstore.Store) (summary, error) {
	sm := summary{streams: map[string]*streamSum{}}
	order, times := sha256.New(), sha256.New()
	var buf []byte
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			return summary{}, err
		}
		ss := sm.streams[ev.StreamID]
		if ss == nil {
			ss = &streamSum{}
			sm.streams[ev.StreamID] = ss
		}
		ss.version = ev.Version
		buf = appendEvent(append(buf[:0], ss.sum[:]...), ev)
		ss.sum = sha256.Sum256(buf)
		buf = appendString(buf[:0], ev.StreamID)
		buf = binary.BigEndian.AppendUint64(buf, ev.Version)
		order.Write(buf)
		times.Write(binary.BigEndian.AppendUint64(buf[:0], uint64(ev.RecordedAt.UnixMicro())))
		sm.events++
	}
	sm.order = order.Sum(nil)
	sm.times = times.Sum(nil)
	return sm, nil
}

// appendEvent encodes what the digest covers, each variable field length-prefixed.
func appendEvent(buf []byte, ev eventstore.RecordedEvent) []byte {
	buf = binary.BigEndian.AppendUint64(buf, ev.Version)
	buf = append(buf, ev.ID[:]...)
	buf = appendString(buf, ev.Type)
	buf = append(buf, byte(ev.ContentType))
	buf = appendString(buf, string(ev.Data))
	buf = appendString(buf, string(ev.Metadata))
	// The metadata's content type only when it is not JSON (only an import
	// writes such metadata), so the digest of a store without it is what it
	// was before; the top bit tells it from a count of tags.
	if ev.MetadataContentType != eventstore.JSON {
		buf = binary.BigEndian.AppendUint64(buf, 1<<63|uint64(ev.MetadataContentType))
	}
	// Tags only when there are some, so the digest of a store without tags
	// is what it was before events had them.
	if len(ev.Tags) > 0 {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(ev.Tags)))
		for _, t := range ev.Tags {
			buf = appendString(buf, t)
		}
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
	return append(buf, s...)
}

// digest hashes every stream's ID, version and sum in stream ID order.
func (sm summary) digest() string {
	h := sha256.New()
	var buf []byte
	for _, id := range slices.Sorted(maps.Keys(sm.streams)) {
		ss := sm.streams[id]
		buf = appendString(buf[:0], id)
		buf = binary.BigEndian.AppendUint64(buf, ss.version)
		buf = append(buf, ss.sum[:]...)
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// firstStreamDifference finds, in stream ID order, the first stream that
// differs and reads it on both sides to say where.
func firstStreamDifference(ctx context.Context, a, b *eventstore.Store, sa, sb summary) (*Difference, error) {
	ids := slices.Sorted(maps.Keys(sa.streams))
	for id := range sb.streams {
		if sa.streams[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		x, y := sa.streams[id], sb.streams[id]
		switch {
		case y == nil:
			return &Difference{Stream: id, What: "missing in the destination"}, nil
		case x == nil:
			return &Difference{Stream: id, What: "missing in the source"}, nil
		case x.version == y.version && x.sum == y.sum:
			continue
		}
		return streamDifference(ctx, a, b, id)
	}
	return nil, nil
}

// streamDifference reads stream on both sides in step and names the first
// version that differs.
func streamDifference(ctx context.Context, a, b *eventstore.Store, stream string) (*Difference, error) {
	next, stop := iter.Pull2(b.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}))
	defer stop()
	var v uint64
	for ea, err := range a.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
		if err != nil {
			return nil, srcErr(err)
		}
		v = ea.Version
		eb, err, ok := next()
		if !ok {
			return &Difference{Stream: stream, Version: ea.Version, What: "missing in the destination"}, nil
		}
		if err != nil {
			return nil, dstErr(err)
		}
		if what := diffEvent(ea, eb); what != "" {
			return &Difference{Stream: stream, Version: ea.Version, What: what}, nil
		}
	}
	if _, err, ok := next(); ok {
		if err != nil {
			return nil, dstErr(err)
		}
		return &Difference{Stream: stream, Version: v + 1, What: "missing in the source"}, nil
	}
	// The stream changed between the two reads.
	return nil, fmt.Errorf("stream %q differed in the log but not when read again: is a store being written?", stream)
}

// firstOrderDifference reads both logs in step to find where their orders part.
func firstOrderDifference(ctx context.Context, a, b *eventstore.Store) (*Difference, error) {
	next, stop := iter.Pull2(b.ReadAll(ctx, eventstore.ReadAllOptions{}))
	defer stop()
	for ea, err := range a.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			return nil, srcErr(err)
		}
		eb, err, ok := next()
		if err != nil {
			return nil, dstErr(err)
		}
		if !ok || eb.StreamID != ea.StreamID || eb.Version != ea.Version {
			other := "nothing"
			if ok {
				other = fmt.Sprintf("%q@%d", eb.StreamID, eb.Version)
			}
			return &Difference{Stream: ea.StreamID, Version: ea.Version, What: "order", Other: other}, nil
		}
	}
	return nil, fmt.Errorf("global order differed but not when read again: is a store being written?")
}

// firstTimeDifference reads both logs, which hold the same events in the
// same order, in step to find the first event whose recorded time differs.
func firstTimeDifference(ctx context.Context, a, b *eventstore.Store) (*Difference, error) {
	next, stop := iter.Pull2(b.ReadAll(ctx, eventstore.ReadAllOptions{}))
	defer stop()
	for ea, err := range a.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			return nil, srcErr(err)
		}
		eb, err, ok := next()
		if err != nil {
			return nil, dstErr(err)
		}
		if !ok || eb.StreamID != ea.StreamID || eb.Version != ea.Version {
			break
		}
		if ea.RecordedAt.UnixMicro() != eb.RecordedAt.UnixMicro() {
			return &Difference{Stream: ea.StreamID, Version: ea.Version, What: "recorded time",
				SourceTime: ea.RecordedAt, DestinationTime: eb.RecordedAt}, nil
		}
	}
	return nil, fmt.Errorf("recorded times differed but not when read again: is a store being written?")
}
