package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/retry"
	"github.com/eventkit/eventstore/internal/verbatim"
)

// ProgressEvery is how many events Copy reads between two calls of
// [Options.Progress] when it is not writing.
const ProgressEvery = 1000

// DefaultBatchSize is the most events Copy writes in one append when
// [Options.BatchSize] is zero.
const DefaultBatchSize = 500

// Options configures [Copy]. The zero value copies every event from the start
// of the source's log, in appends of up to [DefaultBatchSize] events, without
// snapshots.
type Options struct {
	// BatchSize caps the events of one append. Zero means
	// [DefaultBatchSize]; the destination's [eventstore.Limits] also apply.
	BatchSize int
	// After starts reading the source's log after this position. Zero: from
	// the start, which is always safe (events already copied are compared and
	// skipped). A later start is only a speed-up for a caller who knows every
	// event up to After is already in the destination; otherwise Copy fails
	// with a *[GapError].
	After eventstore.Position
	// Snapshots copies the latest snapshot of each stream Copy read, after
	// the events.
	Snapshots bool
	// Progress, when set, is called after every write, every
	// [ProgressEvery] events read (so a rerun that is skipping what is
	// already there reports too), and at the end, with the totals so far. It runs on Copy's goroutine: it must return quickly.
	Progress func(Stats)
	// DryRun reads and compares as a copy would, but writes nothing: Stats
	// count what a copy would append (Copied, Appends) and conflicts and gaps
	// are reported as they would be. Snapshots are counted, not saved.
	DryRun bool
	// Follow keeps the copy going after it has caught up: new source events
	// are copied as they are appended, in batches of what has arrived, until
	// ctx is done. Copy then returns the context's error (wrapped); it is
	// the normal end of a follow. See docs/migration.md for a cut-over.
	// Snapshots are copied once, when the copy first catches up.
	Follow bool
	// Logger receives a warning for each write to the destination that a
	// follow retries after a transient failure. Nil discards.
	Logger *slog.Logger
}

// Stats counts what [Copy] did.
type Stats struct {
	Read      int // source events read
	Copied    int // events appended to the destination
	Skipped   int // events the destination already held, compared equal
	Appends   int // appends made (destinations without eventstore.Importer)
	Imports   int // imports made: their events kept their recorded times
	Streams   int // distinct streams read
	Snapshots int // snapshots copied
	// Last is the source position of the last event read and handled (copied
	// or skipped); zero when none was.
	Last eventstore.Position
	// Live is set in follow mode once the copy has caught up with the
	// source's log: events counted from then on were copied live.
	Live bool
	// Retries counts the writes to the destination that a follow tried
	// again after a transient failure (an error matching
	// eventstore.ErrTransient).
	Retries int
}

// ErrConflict reports that the destination holds an event that differs from
// the source's at the same stream and version. Errors that match it are
// *[ConflictError] values.
var ErrConflict = errors.New("destination holds a different event")

// ConflictError says where the destination differs from the source. Copy
// stops at the first one; it has overwritten nothing.
type ConflictError struct {
	Stream  string
	Version uint64
	What    string // which field differs: "event id", "type", "content type", "data", "metadata", "tags"
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("stream %q version %d: destination holds a different event (%s differs)", e.Stream, e.Version, e.What)
}

// Is reports whether target is [ErrConflict].
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// GapError reports a source event whose stream's earlier events are not in
// the destination, as happens when [Options.After] skips events that were
// never copied.
type GapError struct {
	Stream      string
	Version     uint64 // the source event's version
	DstVersion  uint64 // the destination stream's version
	SourceStart eventstore.Position
}

func (e *GapError) Error() string {
	return fmt.Sprintf("stream %q: source event at version %d but the destination is at version %d (events %d to %d are missing; copy from an earlier position than %s)",
		e.Stream, e.Version, e.DstVersion, e.DstVersion+1, e.Version-1, e.SourceStart)
}

// Copy writes to the destination every event of the source's global log
// (after opts.After) that the destination does not have yet, in the source's
// order; see the package documentation for what it keeps and how it
// resumes. It returns what it did, also on failure. The source is only
// read:
//
//	stats, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
//
// A write refused because a stream of the destination moved since Copy read
// its version (the last write of an earlier, cancelled copy can land late on
// a server, or another copy runs) is compared again: events now there and
// equal are skipped, and counted in [Stats.Skipped].
//
// Errors: [eventstore.ErrInvalidArgument] for a zero [Source] or
// [Destination], or both on the same Store; a *[ConflictError] (matching
// [ErrConflict]) when the destination holds a different event at a version,
// also one written by someone else during the copy; a *[GapError] when the
// destination misses earlier events of a stream; a wrapped
// [eventstore.ErrNotSupported], before anything is written, when source
// events carry tags and the destination's driver does not keep them (a
// follow meeting such an event later stops there); a wrapped
// [eventstore.ErrWrongExpectedVersion] when a stream of the destination
// moves again while Copy compares; the context's error when ctx is done; any
// read or write error of either store, its message starting with "source:"
// or "destination:". Writes are atomic, so a failure leaves the destination
// at a batch boundary and a rerun continues from it.
func Copy(ctx context.Context, from Source, to Destination, opts Options) (Stats, error) {
	err := check(from, to)
	if err == nil && from.store == to.store {
		err = fmt.Errorf("the source and the destination are the same store: %w", eventstore.ErrInvalidArgument)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("migrate: copy: %w", err)
	}
	src, dst := from.store, to.store
	c := copier{
		ctx:      ctx,
		dst:      dst,
		opts:     opts,
		limits:   dst.Limits(),
		versions: map[string]uint64{},
		seen:     map[string]bool{},
	}
	if c.opts.BatchSize <= 0 {
		c.opts.BatchSize = DefaultBatchSize
	}
	if c.limits.MaxAppendEvents > 0 {
		c.opts.BatchSize = min(c.opts.BatchSize, c.limits.MaxAppendEvents)
	}
	c.src = src
	err = c.checkTags(src)
	if err == nil {
		err = c.run(src)
	}
	if err == nil && opts.Snapshots {
		err = c.snapshots(src)
	}
	if err == nil && opts.Follow {
		err = c.follow(src)
	}
	if opts.Progress != nil {
		opts.Progress(c.stats)
	}
	if err != nil {
		return c.stats, fmt.Errorf("migrate: copy: %w", err)
	}
	return c.stats, nil
}

// copier is the state of one Copy call; it is used by one goroutine.
type copier struct {
	src    *eventstore.Store // the source, read only
	ctx    context.Context
	dst    *eventstore.Store
	opts   Options
	limits eventstore.Limits
	stats  Stats

	// versions caches the destination's version of streams read so far
	// (nothing else writes to them during a copy). When allKnown, a stream
	// missing from it is at version 0 in dst; otherwise dst is asked.
	versions map[string]uint64
	allKnown bool
	// streams lists the streams read, in read order; seen holds them.
	streams []string
	seen    map[string]bool

	// While lockstep, dst's global log is read alongside the source's: as long
	// as it holds the same events in the same order (what an earlier Copy
	// wrote), they are skipped without a stream read each.
	lockstep bool
	dstLog   func() (eventstore.RecordedEvent, error, bool)
	stopLog  func()

	// pending are events new to dst, in source order: of any streams when
	// dst can import, else consecutive events of one stream.
	pending     []eventstore.RecordedEvent
	pendingSize int
	// cannotImport is set once dst has said it cannot import: Copy then
	// appends run by run.
	cannotImport bool
	// resyncing is set while pending events refused for a version are
	// handled again (see resync): a second refusal is returned.
	resyncing bool
	// present are consecutive events of one stream that dst already has,
	// to be compared in one read.
	present []eventstore.RecordedEvent

	// dstLast is the highest position Copy has seen in dst's log, read in
	// lockstep or returned by its own appends.
	dstLast eventstore.Position

	// arrived carries the source's new events in follow mode.
	arrived chan eventstore.RecordedEvent

	// noTags is set when the source keeps tags and the destination does
	// not: a tagged event stops the copy before it is written.
	noTags bool
}

// checkTags fails, before anything is written, a copy of tagged events to
// a destination whose driver does not keep tags. Only then does it read the
// source's log an extra time, to find a tagged event.
func (c *copier) checkTags(src *eventstore.Store) error {
	srcTags, err := keepsTags(c.ctx, src)
	if err != nil {
		return srcErr(err)
	}
	if !srcTags {
		return nil
	}
	dstTags, err := keepsTags(c.ctx, c.dst)
	if err != nil {
		return dstErr(err)
	}
	if dstTags {
		return nil
	}
	c.noTags = true
	for ev, err := range src.ReadAll(c.ctx, eventstore.ReadAllOptions{After: c.opts.After}) {
		if err != nil {
			return srcErr(err)
		}
		if len(ev.Tags) > 0 {
			return tagsError(ev)
		}
	}
	return nil
}

// keepsTags reports whether s's driver keeps event tags (it reads by query).
func keepsTags(ctx context.Context, s *eventstore.Store) (bool, error) {
	for _, err := range s.ReadQuery(ctx, eventstore.Query{}, eventstore.ReadQueryOptions{Limit: 1}) {
		if errors.Is(err, eventstore.ErrNotSupported) {
			return false, nil
		}
		return err == nil, err
	}
	return true, nil
}

// tagsError is the error of a copy of tagged event ev to a destination
// that does not keep tags.
func tagsError(ev eventstore.RecordedEvent) error {
	return dstErr(fmt.Errorf("cannot keep event tags: source stream %q version %d is tagged %q: %w",
		ev.StreamID, ev.Version, ev.Tags, eventstore.ErrNotSupported))
}

func (c *copier) run(src *eventstore.Store) error {
	if c.opts.After.IsZero() {
		next, stop := iter.Pull2(c.dst.ReadAll(c.ctx, eventstore.ReadAllOptions{}))
		defer stop()
		c.lockstep, c.dstLog, c.stopLog = true, next, stop
	}
	for ev, err := range src.ReadAll(c.ctx, eventstore.ReadAllOptions{After: c.opts.After}) {
		if err != nil {
			return srcErr(err)
		}
		c.stats.Read++
		if err := c.add(ev); err != nil {
			return err
		}
		if c.opts.Progress != nil && c.stats.Read%ProgressEvery == 0 {
			c.opts.Progress(c.stats)
		}
	}
	if err := c.flushPresent(); err != nil {
		return err
	}
	return c.flush()
}

// follow copies what src's log gets after c.stats.Last (or Options.After,
// when nothing came after it) until c.ctx is done.
// A subscription feeds a channel; each turn takes what has arrived, up to a
// batch, and writes it before taking more, so a slow destination slows the
// subscription instead of growing memory.
func (c *copier) follow(src *eventstore.Store) error {
	if c.lockstep {
		// dst's log may go on past what the catch-up compared, so what the
		// lockstep learnt of versions no longer holds.
		c.lockstep, c.allKnown = false, false
		c.stopLog()
		clear(c.versions)
	}
	c.stats.Live = true
	if c.opts.Progress != nil {
		c.opts.Progress(c.stats)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	from := c.stats.Last
	if from.IsZero() {
		from = c.opts.After // nothing was read after it
	}
	c.arrived = make(chan eventstore.RecordedEvent, c.opts.BatchSize)
	arrived := c.arrived
	stopped := make(chan error, 1)
	go func() {
		stopped <- src.Subscribe(ctx, eventstore.SubscribeOptions{After: from, BatchSize: c.opts.BatchSize},
			func(ctx context.Context, ev eventstore.RecordedEvent) error {
				select {
				case arrived <- ev:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
	}()
	for {
		select {
		case ev := <-arrived:
			if err := c.addLive(ev); err != nil {
				cancel()
				<-stopped
				return err
			}
		case err := <-stopped:
			if c.ctx.Err() != nil {
				return c.ctx.Err()
			}
			return srcErr(err)
		}
	}
}

// addLive handles ev and whatever else has arrived meanwhile, up to a batch,
// then writes it.
func (c *copier) addLive(ev eventstore.RecordedEvent) error {
	for n := 1; ; n++ {
		c.stats.Read++
		if err := c.add(ev); err != nil {
			return err
		}
		if n == c.opts.BatchSize {
			break
		}
		var more bool
		select {
		case ev, more = <-c.arrived:
		default:
		}
		if !more {
			break
		}
	}
	if err := c.flushPresent(); err != nil {
		return err
	}
	return c.flush()
}

// add queues ev either to be compared with dst's copy or to be appended.
func (c *copier) add(ev eventstore.RecordedEvent) error {
	if c.noTags && len(ev.Tags) > 0 {
		return tagsError(ev)
	}
	if !c.seen[ev.StreamID] {
		c.seen[ev.StreamID] = true
		c.streams = append(c.streams, ev.StreamID)
		c.stats.Streams++
	}
	if c.lockstep {
		done, err := c.step(ev)
		if done || err != nil {
			return err
		}
	}
	have, ok := c.versions[ev.StreamID]
	if !ok && c.allKnown {
		have, ok = 0, true
		c.versions[ev.StreamID] = 0
	}
	if !ok {
		// Before asking dst, settle what is queued: it may be this stream's.
		if err := c.flushPresent(); err != nil {
			return err
		}
		if err := c.flush(); err != nil {
			return err
		}
		v, err := c.dst.StreamVersion(c.ctx, ev.StreamID)
		if err != nil {
			return dstErr(err)
		}
		have = v
		c.versions[ev.StreamID] = v
	}
	switch {
	case ev.Version <= have:
		if err := c.flush(); err != nil {
			return err
		}
		if len(c.present) > 0 && !follows(c.present[len(c.present)-1], ev) || len(c.present) >= pageLimit {
			if err := c.flushPresent(); err != nil {
				return err
			}
		}
		c.present = append(c.present, ev)
		return nil
	case ev.Version == have+1 || c.truncatedStart(ev, have):
		if err := c.flushPresent(); err != nil {
			return err
		}
		size := len(ev.Data) + len(ev.Metadata)
		if len(c.pending) > 0 && (c.cannotImport && !follows(c.pending[len(c.pending)-1], ev) ||
			len(c.pending) >= c.opts.BatchSize ||
			c.limits.MaxAppendSize > 0 && c.pendingSize+size > c.limits.MaxAppendSize) {
			if err := c.flush(); err != nil {
				return err
			}
		}
		c.pending = append(c.pending, ev)
		c.pendingSize += size
		// Count it now so the next event of the stream is seen as next.
		c.versions[ev.StreamID] = ev.Version
		return nil
	default:
		return &GapError{Stream: ev.StreamID, Version: ev.Version, DstVersion: have, SourceStart: c.opts.After}
	}
}

// step compares ev with the next event of dst's log and reports whether it
// was there (and so skipped). At the end of dst's log every stream's version
// in dst is known: the ones met, and 0 for the others. At the first event
// that differs, the lockstep ends and so does what it learnt of versions: dst
// may hold further events of those streams later in its log.
func (c *copier) step(ev eventstore.RecordedEvent) (bool, error) {
	got, err, ok := c.dstLog()
	if err != nil {
		return false, dstErr(err)
	}
	if ok {
		c.seenAt(got.Position)
	}
	if ok && got.StreamID == ev.StreamID && got.Version == ev.Version && diffEvent(ev, got) == "" {
		c.versions[ev.StreamID] = ev.Version
		c.stats.Skipped++
		c.stats.Last = ev.Position
		return true, nil
	}
	c.lockstep = false
	c.stopLog()
	if ok {
		clear(c.versions)
	} else {
		c.allKnown = true
	}
	return false, nil
}

// pageLimit caps how many already-present events are compared per read.
const pageLimit = 512

// truncatedStart reports whether ev is the first event its stream still
// holds in the source, after a truncation there (or retention), while dst
// has none of the stream: an import then starts the stream at ev's version
// in dst too (driver.Importer allows it when the driver truncates). Without
// an import the gap stays an error.
func (c *copier) truncatedStart(ev eventstore.RecordedEvent, have uint64) bool {
	if have != 0 || ev.Version <= 1 || c.cannotImport || c.src == nil {
		return false
	}
	for first, err := range c.src.ReadStream(c.ctx, ev.StreamID, eventstore.ReadStreamOptions{Limit: 1}) {
		return err == nil && first.Version == ev.Version
	}
	return false
}

func follows(prev, ev eventstore.RecordedEvent) bool {
	return prev.StreamID == ev.StreamID && prev.Version+1 == ev.Version
}

// flush writes the pending events: in one import when dst can, keeping
// their recorded times, else in one append per run of one stream, each with
// the exact version its first event needs.
func (c *copier) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	err := c.writeRetrying()
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) && !c.resyncing {
		return c.resync()
	}
	if err != nil {
		// The cache no longer says what dst holds; a rerun asks again.
		c.forget(c.pending)
		return err
	}
	c.pending = c.pending[:0]
	c.pendingSize = 0
	if c.opts.Progress != nil {
		c.opts.Progress(c.stats)
	}
	return nil
}

// writeRetrying is write; once a follow is live it does not give up on a
// transient failure of the destination: it waits (capped, jittered back-off)
// and writes again. A write that did reach the destination before failing
// is then recognised (an append retried with the same event IDs) or found
// in place by resync.
func (c *copier) writeRetrying() error {
	if !c.stats.Live {
		return c.write()
	}
	policy := retry.Policy{Base: 50 * time.Millisecond, Max: 10 * time.Second}
	return policy.Do(c.ctx, func(context.Context) error { return c.write() },
		func(err error) bool { return c.ctx.Err() == nil && errors.Is(err, eventstore.ErrTransient) },
		func(attempt int, err error) {
			c.stats.Retries++
			if c.opts.Logger != nil {
				c.opts.Logger.Warn("migrate: retrying a write to the destination after a transient failure", "attempt", attempt, "error", err)
			}
		})
}

// forget drops the cached destination versions of evs's streams.
func (c *copier) forget(evs []eventstore.RecordedEvent) {
	for _, ev := range evs {
		delete(c.versions, ev.StreamID)
	}
	c.allKnown = false
}

// resync handles the pending events again after dst refused them for a
// stream's version: a stream of dst moved since Copy learnt its version.
// The usual cause is the last write of an earlier, cancelled copy, which a
// server can still apply after its caller gave up; then the events are
// there and compare equal. Anything else is reported as a *ConflictError,
// or, should dst move again meanwhile, as the version error.
func (c *copier) resync() error {
	evs := slices.Clone(c.pending)
	c.pending, c.pendingSize = c.pending[:0], 0
	c.forget(evs)
	c.resyncing = true
	defer func() { c.resyncing = false }()
	for _, ev := range evs {
		if err := c.add(ev); err != nil {
			return err
		}
	}
	if err := c.flushPresent(); err != nil {
		return err
	}
	return c.flush()
}

// write writes c.pending and counts it.
func (c *copier) write() error {
	if c.opts.DryRun {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		c.stats.Appends += len(runs(c.pending))
		c.count(c.pending)
		return nil
	}
	return dstErr(c.writePending())
}

func (c *copier) writePending() error {
	if !c.cannotImport {
		err := c.importEvents(c.pending)
		if !errors.Is(err, eventstore.ErrNotSupported) {
			return err
		}
		c.cannotImport = true
	}
	for _, run := range runs(c.pending) {
		first := run[0]
		events := make([]eventstore.Event, len(run))
		for i, ev := range run {
			events[i] = eventstore.Event{ID: ev.ID, Type: ev.Type, ContentType: ev.ContentType, Data: ev.Data, Metadata: ev.Metadata, Tags: ev.Tags}
		}
		// verbatim: the copies keep their metadata byte for byte, without
		// the trace context an append would record in it.
		res, err := c.dst.Append(verbatim.With(c.ctx), first.StreamID, eventstore.Exact(first.Version-1), events...)
		if err != nil {
			return err
		}
		c.stats.Appends++
		if !c.dstLast.IsZero() && !c.dstLast.Less(res.Position) {
			// A write's events get positions after every event visible
			// before it began, so these were there already: dst took the
			// append for a retry of the late write that put them there.
			c.stats.Skipped += len(run)
			c.stats.Last = run[len(run)-1].Position
			c.pending = c.pending[len(run):]
			continue
		}
		c.seenAt(res.Position)
		c.count(run)
	}
	return nil
}

// seenAt records that dst's log reaches at least p.
func (c *copier) seenAt(p eventstore.Position) {
	if c.dstLast.Less(p) {
		c.dstLast = p
	}
}

// importEvents imports evs and counts them. A destination may find a
// request too large that its Limits allowed (a driver's own overhead per
// request can depend on how the streams interleave): evs is then imported
// in halves, each all or none.
func (c *copier) importEvents(evs []eventstore.RecordedEvent) error {
	err := c.dst.Import(c.ctx, evs)
	if errors.Is(err, eventstore.ErrBatchTooLarge) && len(evs) > 1 {
		half := len(evs) / 2
		if err := c.importEvents(evs[:half]); err != nil {
			return err
		}
		return c.importEvents(evs[half:])
	}
	if err != nil {
		return err
	}
	c.stats.Imports++
	c.count(evs)
	return nil
}

// count records evs, the first of the pending events, as copied: they are
// no longer pending.
func (c *copier) count(evs []eventstore.RecordedEvent) {
	c.stats.Copied += len(evs)
	c.stats.Last = evs[len(evs)-1].Position
	c.pending = c.pending[len(evs):]
}

// runs splits evs into runs of consecutive events of one stream.
func runs(evs []eventstore.RecordedEvent) [][]eventstore.RecordedEvent {
	var out [][]eventstore.RecordedEvent
	start := 0
	for i := 1; i <= len(evs); i++ {
		if i == len(evs) || !follows(evs[i-1], evs[i]) {
			out = append(out, evs[start:i])
			start = i
		}
	}
	return out
}

// flushPresent reads dst's copy of the queued present events and compares.
func (c *copier) flushPresent() error {
	if len(c.present) == 0 {
		return nil
	}
	first := c.present[0]
	i := 0
	for got, err := range c.dst.ReadStream(c.ctx, first.StreamID, eventstore.ReadStreamOptions{From: first.Version, Limit: len(c.present)}) {
		if err != nil {
			return dstErr(err)
		}
		want := c.present[i]
		if what := diffEvent(want, got); what != "" {
			return &ConflictError{Stream: want.StreamID, Version: want.Version, What: what}
		}
		i++
	}
	if i != len(c.present) {
		// Streams only grow, so dst cannot have lost the events it counted.
		return fmt.Errorf("destination: stream %q: returned %d of its events %d to %d", first.StreamID, i, first.Version, first.Version+uint64(len(c.present))-1)
	}
	c.stats.Skipped += len(c.present)
	c.stats.Last = c.present[len(c.present)-1].Position
	c.present = c.present[:0]
	return nil
}

// snapshots copies the latest snapshot of every stream read, where dst has
// the version it claims (a source stream may have grown since it was read).
func (c *copier) snapshots(src *eventstore.Store) error {
	for _, stream := range c.streams {
		snap, ok, err := src.LoadSnapshot(c.ctx, stream)
		if err != nil {
			return srcErr(err)
		}
		if !ok {
			continue
		}
		have, known := c.versions[stream]
		if !known {
			if have, err = c.dst.StreamVersion(c.ctx, stream); err != nil {
				return dstErr(err)
			}
		}
		if snap.Version > have {
			continue
		}
		if cur, ok, err := c.dst.LoadSnapshot(c.ctx, stream); err != nil {
			return dstErr(err)
		} else if ok && cur.Version >= snap.Version {
			continue
		}
		if !c.opts.DryRun {
			if err := c.dst.SaveSnapshot(c.ctx, stream, snap); err != nil {
				return dstErr(err)
			}
		}
		c.stats.Snapshots++
	}
	return nil
}

// diffEvent names the first field in which a and b differ as events (stream
// and version aside), or returns "".
func diffEvent(a, b eventstore.RecordedEvent) string {
	switch {
	case a.ID != b.ID:
		return "event id"
	case a.Type != b.Type:
		return "type"
	case a.ContentType != b.ContentType:
		return "content type"
	case !bytes.Equal(a.Data, b.Data):
		return "data"
	case !bytes.Equal(a.Metadata, b.Metadata):
		return "metadata"
	case !slices.Equal(a.Tags, b.Tags):
		return "tags"
	}
	return ""
}
