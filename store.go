package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/verbatim"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Store is the portable event store applications use. It validates input,
// fills defaults, wraps errors and runs subscriptions once for every driver.
// A Store is safe for concurrent use. Create one with [Open] or [New].
type Store struct {
	driver driver.Driver
	// The driver's optional capabilities, type-asserted once in New; nil
	// when the driver lacks one.
	watcher     driver.Watcher
	importer    driver.Importer
	aser        driver.Aser
	checkpoints driver.CheckpointManager
	scanner     driver.ScanReader
	recycler    driver.PageRecycler
	leaser      driver.Leaser
	txer        driver.CheckpointTxer
	lister      driver.StreamLister
	multi       driver.MultiAppender
	querier     driver.QueryReader
	deleter     driver.StreamDeleter
	truncater   driver.StreamTruncater
	retention   driver.RetentionKeeper
	applier     driver.RetentionApplier
	limits      Limits
	pageBytes   int // the bound of a read page, in bytes of data and metadata
	pageSize    int // events per read page: driver.PageSizer's, else defaultPageSize
	logger      *slog.Logger
	tel         *telemetry

	// mu guards closed. Calls into the driver hold it for reading, so Close,
	// which takes it for writing, waits for them before closing the driver.
	mu     sync.RWMutex
	closed bool // no new driver calls

	// subMu protects closing, cancelSubs, running and nextSub. It is separate from
	// mu, which a long driver call may hold for reading.
	subMu      sync.Mutex
	closing    bool                          // no new subscriptions
	cancelSubs map[uint64]context.CancelFunc // running Subscribe calls
	running    map[uint64]*subscription      // the same calls, for their state
	nextSub    uint64

	subs      sync.WaitGroup // running Subscribe calls
	closeOnce sync.Once
}

// New returns a Store over a driver. Drivers' typed constructors return a
// driver to pass here. The Store takes ownership of d: Close closes it.
// New detects d's optional capabilities ([driver.Watcher],
// [driver.LimitReporter], [driver.Importer], [driver.Aser],
// [driver.CheckpointManager], [driver.ScanReader], [driver.Leaser],
// [driver.CheckpointTxer], [driver.StreamLister], [driver.PageSizer],
// [driver.StreamDeleter], [driver.StreamTruncater],
// [driver.RetentionKeeper]) once, by their
// method sets, and the Store keeps what it found: a wrapper around a driver
// must itself implement the capabilities it means to pass on.
//
// The Store reports traces and metrics through opts.TracerProvider and
// opts.MeterProvider; it names the backend (db.system.name) by
// [driver.SystemNamer], which every driver here implements.
func New(d driver.Driver, opts Options) *Store { return newStore(d, opts, "") }

// newStore is New for a driver opened under the URL scheme scheme ("" for
// one passed to New).
func newStore(d driver.Driver, opts Options, scheme string) *Store {
	s := &Store{driver: d, logger: loggerOrDiscard(opts.Logger)}
	s.watcher, _ = d.(driver.Watcher)
	s.importer, _ = d.(driver.Importer)
	s.aser, _ = d.(driver.Aser)
	s.checkpoints, _ = d.(driver.CheckpointManager)
	s.scanner, _ = d.(driver.ScanReader)
	s.recycler, _ = d.(driver.PageRecycler)
	s.leaser, _ = d.(driver.Leaser)
	s.txer, _ = d.(driver.CheckpointTxer)
	s.lister, _ = d.(driver.StreamLister)
	s.multi, _ = d.(driver.MultiAppender)
	s.querier, _ = d.(driver.QueryReader)
	s.deleter, _ = d.(driver.StreamDeleter)
	s.truncater, _ = d.(driver.StreamTruncater)
	s.retention, _ = d.(driver.RetentionKeeper)
	s.applier, _ = d.(driver.RetentionApplier)
	s.limits = Limits{MaxEventSize: DefaultMaxEventSize}
	if opts.MaxEventSize > 0 {
		s.limits.MaxEventSize = opts.MaxEventSize
	}
	if lr, ok := d.(driver.LimitReporter); ok {
		dl := lr.Limits()
		if dl.MaxEventSize > 0 && dl.MaxEventSize < s.limits.MaxEventSize {
			s.limits.MaxEventSize = dl.MaxEventSize
		}
		s.limits.MaxAppendEvents = dl.MaxAppendEvents
		s.limits.MaxAppendSize = dl.MaxAppendSize
	}
	s.pageBytes = DefaultMaxPageBytes
	if opts.MaxPageBytes > 0 {
		s.pageBytes = opts.MaxPageBytes
	}
	s.pageSize = defaultPageSize
	if ps, ok := d.(driver.PageSizer); ok && ps.PageSize() > 0 {
		s.pageSize = ps.PageSize()
	}
	s.cancelSubs = map[uint64]context.CancelFunc{}
	s.running = map[uint64]*subscription{}
	s.tel = newTelemetry(s, opts, systemName(d, scheme))
	return s
}

// Limits returns the limits appends are checked against.
func (s *Store) Limits() Limits { return s.limits }

// acquire marks a driver call in flight; it fails with ErrClosed after Close.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) release() { s.mu.RUnlock() }

// do runs f as a driver call: it fails with ctx's error when ctx is done and
// with ErrClosed after Close, and holds off Close while f runs.
func (s *Store) do(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	return f()
}

// isClosing reports whether Close has begun.
func (s *Store) isClosing() bool {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	return s.closing
}

// Close stops running subscriptions, waits for their handlers and for calls in
// flight to return, then closes the driver. It returns the driver's Close
// error, if any; the Store is closed all the same. Close is idempotent, as
// [database/sql.DB.Close] is: a second call (or one made while the first runs)
// waits for the first to finish and returns nil. After Close every other
// method fails with [ErrClosed], except As. A handler must not call Close:
// Close would wait for that handler to return.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		// Subscriptions stop first, so they can still save their checkpoints.
		s.subMu.Lock()
		s.closing = true
		for _, cancel := range s.cancelSubs {
			cancel()
		}
		s.subMu.Unlock()
		s.subs.Wait()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.tel.close()
		if derr := s.driver.Close(); derr != nil {
			err = fmt.Errorf("eventstore: close: %w", derr)
		}
	})
	return err
}

// As gives access to the driver's native client: pass a pointer to a variable
// of one of the types the driver's documentation lists. It reports whether
// the driver set it; it is false for nil and for types the driver does not know.
func (s *Store) As(target any) bool {
	if target == nil {
		return false
	}
	return s.aser != nil && s.aser.As(target)
}

// Append writes events to the end of stream, all or none, if the stream is at
// the expected version. Zero event IDs are replaced by new random ones.
//
// Errors: [ErrWrongExpectedVersion] (also a *[WrongExpectedVersionError]) when
// the expectation fails; [ErrInvalidArgument] or one of its specific forms for
// a bad stream ID, no events, a bad event, or a batch over [Store.Limits];
// [ErrClosed] after Close; the context's error when ctx is done. In every
// error case nothing was written, except that a driver cannot always tell
// whether a write that timed out reached the server: retrying with the same
// event IDs is then safe (it returns the original result).
func (s *Store) Append(ctx context.Context, stream string, expected ExpectedVersion, events ...Event) (AppendResult, error) {
	start := time.Now()
	var span trace.Span
	if tr := s.tel.activeTracer(); tr != nil {
		var attrs [3]attribute.KeyValue // on the stack: start copies it
		kv := append(attrs[:0], attrCount.Int(len(events)), attrExpected.String(expectedKind(driver.ExpectedVersion(expected))))
		ctx, span = s.tel.start(ctx, tr, opAppend, trace.SpanKindClient, withCategory(kv, stream))
	}
	res, size, err := s.append(s.tel.withDriverRetries(ctx, opAppend), stream, expected, events)
	s.tel.appended(ctx, start, len(events), size, err)
	if span != nil {
		end(span, err, attrBytes.Int(size))
	}
	return res, err
}

// append is Append without telemetry; it also returns the bytes of data
// and metadata written, trace context included.
func (s *Store) append(ctx context.Context, stream string, expected ExpectedVersion, events []Event) (AppendResult, int, error) {
	if err := ValidateStreamID(stream); err != nil {
		return AppendResult{}, 0, appendErr(stream, err)
	}
	exp := driver.ExpectedVersion(expected)
	if exp.Kind() > driver.ExpectStreamExists {
		return AppendResult{}, 0, appendErr(stream, invalid(ErrInvalidVersion, "unknown expected version kind %d", exp.Kind()))
	}
	evs, err := validateEvents(events, s.limits)
	if err != nil {
		return AppendResult{}, 0, appendErr(stream, err)
	}
	if err := s.checkTags(evs); err != nil {
		return AppendResult{}, 0, appendErr(stream, err)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !verbatim.Is(ctx) {
		recordTraceContext(evs, sc, s.limits)
	}
	if err := ctx.Err(); err != nil {
		return AppendResult{}, 0, appendErr(stream, err)
	}
	if err := s.acquire(); err != nil {
		return AppendResult{}, 0, appendErr(stream, err)
	}
	defer s.release()
	sent, clamped := clampExpected(exp)
	req := driver.AppendRequest{Stream: stream, Expected: sent, Events: evs, RecordedAt: driver.Now()}
	dres, err := s.driver.Append(ctx, req)
	if err != nil {
		if clamped {
			restoreExpected(err, map[string]ExpectedVersion{stream: expected})
		}
		return AppendResult{}, 0, appendErr(stream, duplicateEventID(stream, evs, err))
	}
	res := AppendResult{Version: dres.Version, Position: Position(dres.Position), EventIDs: make([]uuid.UUID, len(evs))}
	size := 0
	for i, e := range evs {
		res.EventIDs[i] = e.ID
		size += len(e.Data) + len(e.Metadata)
	}
	return res, size, nil
}

// duplicateEventID turns a driver's *driver.RetryMismatchError into the
// *DuplicateEventIDError applications match; other errors pass unchanged.
func duplicateEventID(stream string, evs []driver.Event, err error) error {
	var m *driver.RetryMismatchError
	if !errors.As(err, &m) || m.Index < 0 || m.Index >= len(evs) {
		return err
	}
	return &DuplicateEventIDError{Stream: stream, ID: evs[m.Index].ID, Version: m.Version, Field: m.Field}
}

func appendErr(stream string, err error) error {
	return fmt.Errorf("eventstore: append %q: %w", stream, err)
}

func fmtErr(format string, args ...any) error { return fmt.Errorf(format, args...) }

// StreamVersion returns the version of stream: the version of its last
// event, which is the number of events appended to it, 0 when it has none.
// Events removed by [Store.TruncateStream] or retention still count; a
// stream removed by [Store.DeleteStream] and not appended to since has
// version 0. It reads no events.
func (s *Store) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := ValidateStreamID(stream); err != nil {
		return 0, fmt.Errorf("eventstore: stream version %q: %w", stream, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("eventstore: stream version %q: %w", stream, err)
	}
	if err := s.acquire(); err != nil {
		return 0, fmt.Errorf("eventstore: stream version %q: %w", stream, err)
	}
	defer s.release()
	v, err := s.driver.StreamVersion(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("eventstore: stream version %q: %w", stream, err)
	}
	return v, nil
}

// defaultPageSize is how many events a read fetches from the driver at a
// time, at most, unless the driver states its own (driver.PageSizer); pages
// are also bounded in bytes (Options.MaxPageBytes). Reads go in keyed pages
// so a slow loop body never pins a connection.
const defaultPageSize = 512

// ReadStream returns the events of one stream, in version order (or reverse
// with Backwards). A stream with no events yields nothing. On failure the
// sequence yields one error and ends. Ranging again reads again.
func (s *Store) ReadStream(ctx context.Context, stream string, opts ReadStreamOptions) iter.Seq2[RecordedEvent, error] {
	attrs := func(a []attribute.KeyValue) []attribute.KeyValue {
		return withCategory(append(a, attrBackwards.Bool(opts.Backwards)), stream)
	}
	return s.pagedRead(ctx, opReadStream, readName{"read stream", stream}, opts.Limit, attrs, func() (nextPage, error) {
		if err := ValidateStreamID(stream); err != nil {
			return nil, err
		}
		q := driver.StreamQuery{Stream: stream, From: opts.From, Backwards: opts.Backwards, MaxBytes: s.pageBytes}
		if !q.Backwards && q.From == 0 {
			q.From = 1
		}
		return func(ctx context.Context, limit int) ([]driver.RecordedEvent, bool, error) {
			q.Limit = limit
			page, err := guarded(s, ctx, func() ([]driver.RecordedEvent, error) { return s.driver.ReadStream(ctx, q) })
			page = s.limitPage(page, q.Limit)
			if err != nil || !driver.PageFull(page, q.Limit, q.MaxBytes) {
				return page, false, err
			}
			last := page[len(page)-1].Version
			switch {
			case !q.Backwards:
				q.From = last + 1
			case last <= 1:
				return page, false, nil
			default:
				q.From = last - 1
			}
			return page, true, nil
		}, nil
	})
}

// ReadAll returns events of the global log in position order (or reverse
// with Backwards), filtered by opts.Filter. On failure the sequence yields one
// error and ends. Ranging again reads again.
func (s *Store) ReadAll(ctx context.Context, opts ReadAllOptions) iter.Seq2[RecordedEvent, error] {
	attrs := func(a []attribute.KeyValue) []attribute.KeyValue {
		return append(a, attrBackwards.Bool(opts.Backwards), attrFiltered.Bool(!opts.Filter.IsEmpty()))
	}
	return s.pagedRead(ctx, opReadAll, readName{op: "read all"}, opts.Limit, attrs, func() (nextPage, error) {
		if err := validateReadAll(opts); err != nil {
			return nil, err
		}
		q := driver.AllQuery{After: driver.Position(opts.After), Before: driver.Position(opts.Before), Backwards: opts.Backwards,
			Filter: driver.Filter(opts.Filter), MaxBytes: s.pageBytes}
		return func(ctx context.Context, limit int) ([]driver.RecordedEvent, bool, error) {
			q.Limit = limit
			page, scanned, end, err := s.readAllPage(ctx, q)
			if q.Backwards {
				q.Before = scanned
			} else {
				q.After = scanned
			}
			return page, !end, err
		}, nil
	})
}

// readAllPage reads one page of the global log. scanned is where the next
// page starts (after it, or before it backwards): the last event read, or
// for a filtered forwards read through a driver.ScanReader the last event
// the driver examined. end reports that no more follow.
func (s *Store) readAllPage(ctx context.Context, q driver.AllQuery) (page []driver.RecordedEvent, scanned driver.Position, end bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, scanned, false, err
	}
	if err := s.acquire(); err != nil {
		return nil, scanned, false, err
	}
	defer s.release()
	if s.scanner != nil && !q.Backwards && !q.Filter.IsEmpty() {
		p, err := s.scanner.ReadAllScan(ctx, q)
		if err != nil {
			return nil, scanned, false, err
		}
		page = s.limitPage(p.Events, q.Limit)
		scanned = p.Scanned
		if n := len(page); n > 0 && scanned.Less(page[n-1].Position) {
			scanned = page[n-1].Position
		}
		// A page with no events that scanned nothing is the end whatever
		// End says: reading again would not move.
		end = (p.End || scanned.Compare(q.After) <= 0) && !driver.PageFull(page, q.Limit, q.MaxBytes)
		return page, scanned, end, nil
	}
	page, err = s.driver.ReadAll(ctx, q)
	if err != nil {
		return nil, scanned, false, err
	}
	page = s.limitPage(page, q.Limit)
	if len(page) > 0 {
		scanned = page[len(page)-1].Position
	}
	return page, scanned, !driver.PageFull(page, q.Limit, q.MaxBytes), nil
}

// SaveSnapshot stores a snapshot of stream at snap.Version. The stream must
// have reached that version ([ErrInvalidVersion] otherwise). A snapshot with a
// lower version than the stored one is ignored, so the latest state wins.
func (s *Store) SaveSnapshot(ctx context.Context, stream string, snap Snapshot) error {
	wrap := func(err error) error { return fmt.Errorf("eventstore: save snapshot %q: %w", stream, err) }
	if err := ValidateStreamID(stream); err != nil {
		return wrap(err)
	}
	if snap.Version == 0 {
		return wrap(invalid(ErrInvalidVersion, "snapshot version must be at least 1"))
	}
	if len(snap.Data) > s.limits.MaxEventSize {
		return wrap(invalid(ErrEventTooLarge, "snapshot of %d bytes, over the limit of %d", len(snap.Data), s.limits.MaxEventSize))
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	if err := s.acquire(); err != nil {
		return wrap(err)
	}
	defer s.release()
	// Streams only grow, so a version seen here cannot be taken back.
	v, err := s.driver.StreamVersion(ctx, stream)
	if err != nil {
		return wrap(err)
	}
	if snap.Version > v {
		return wrap(invalid(ErrInvalidVersion, "snapshot version %d is beyond the stream's version %d", snap.Version, v))
	}
	if err := s.driver.SaveSnapshot(ctx, stream, driver.Snapshot(snap)); err != nil {
		return wrap(err)
	}
	return nil
}

// LoadSnapshot returns the latest snapshot of stream; ok is false when none
// was saved.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (snap Snapshot, ok bool, err error) {
	wrap := func(err error) error { return fmt.Errorf("eventstore: load snapshot %q: %w", stream, err) }
	if err := ValidateStreamID(stream); err != nil {
		return Snapshot{}, false, wrap(err)
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, false, wrap(err)
	}
	if err := s.acquire(); err != nil {
		return Snapshot{}, false, wrap(err)
	}
	defer s.release()
	ds, ok, err := s.driver.LoadSnapshot(ctx, stream)
	if err != nil {
		return Snapshot{}, false, wrap(err)
	}
	return Snapshot(ds), ok, nil
}

// loggerOrDiscard returns l, or a logger that discards when l is nil.
func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
