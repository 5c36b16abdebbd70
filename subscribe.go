package eventstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/retry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Handler handles one event of a subscription. Returning an error stops the
// subscription; the event is delivered again when it restarts. ctx is done
// when the subscription is being stopped; a handler that then returns ctx's
// error has not failed: Subscribe returns as when it stops between events.
type Handler func(ctx context.Context, ev RecordedEvent) error

// Subscription defaults.
const (
	DefaultBatchSize    = 100
	DefaultPollInterval = time.Second
	DefaultMaxRetryWait = 10 * time.Second
	// firstPoll is the first back-off step of a subscription that polls.
	firstPoll = 5 * time.Millisecond
	// firstRetryWait bounds the first wait after a transient failure.
	firstRetryWait = 50 * time.Millisecond
	// passedOverSave is how often a checkpoint that moved only past events
	// a filter passed over is saved.
	passedOverSave = time.Second
)

// Subscribe delivers events of the global log to h, in position order, one at
// a time from the calling goroutine: first the events already stored (catch-up),
// then new ones as they are appended (live). It blocks until ctx is done, the
// Store is closed, h returns an error, or the store fails for good.
//
// It never gives up on a transient failure: a read, checkpoint load or
// checkpoint save that fails with an error matching [ErrTransient] (a lost
// connection, a server restarting, throttling, a timeout) is logged through
// the Store's logger and tried again after a capped, jittered wait
// (opts.MaxRetryWait), and delivery resumes strictly after the last event
// handled. Any other error is permanent and ends the subscription.
//
// Delivery is pull-based: at most opts.BatchSize events are held at once, so a
// slow handler slows reading instead of growing memory. With opts.Name set,
// the subscription saves a durable checkpoint after each batch and when it
// stops, and a later Subscribe with the same name (and group member) resumes
// after it. Delivery is at least once: events handled after the last saved
// checkpoint (for example before a crash) are delivered again.
//
// It returns a *[HandlerError] wrapping the handler's error, an error matching
// the context's error when ctx is done, [ErrClosed] when the Store is closed,
// [ErrInvalidArgument] for bad options, or a read or checkpoint error that
// is not transient (for example [ErrNotSupported], or an error a driver did
// not classify).
func (s *Store) Subscribe(ctx context.Context, opts SubscribeOptions, h Handler) error {
	if h == nil {
		return fmt.Errorf("eventstore: subscribe %q: %w", opts.Name, invalid(ErrInvalidArgument, "nil handler"))
	}
	return s.track(ctx, "subscription", opts, h, func(ctx context.Context, sub *subscription) error { return sub.run(ctx) })
}

// track validates opts, registers the subscription with the Store (for
// Subscriptions, and for Close to stop it), runs it and wraps its error;
// kind names it in errors ("subscription", "projection", ...).
func (s *Store) track(ctx context.Context, kind string, opts SubscribeOptions, h Handler, run func(context.Context, *subscription) error) error {
	sub, err := s.newSubscription(opts, h)
	if err != nil {
		return fmt.Errorf("eventstore: %s %q: %w", kind, opts.Name, err)
	}
	// Close cancels ctx synchronously, before it waits, so once Close has
	// begun every handler's context is done. The driver's own retries
	// under it count as the subscription's (eventstore.retries).
	ctx, cancel := context.WithCancel(s.tel.withDriverRetries(ctx, opBatch))
	defer cancel()
	s.subMu.Lock()
	if s.closing {
		s.subMu.Unlock()
		return fmt.Errorf("eventstore: %s %q: %w", kind, opts.Name, ErrClosed)
	}
	s.subs.Add(1)
	s.nextSub++
	id := s.nextSub
	s.cancelSubs[id] = cancel
	s.running[id] = sub
	s.subMu.Unlock()
	defer func() {
		s.subMu.Lock()
		delete(s.cancelSubs, id)
		delete(s.running, id)
		s.subMu.Unlock()
		s.subs.Done()
	}()

	err = run(ctx, sub)
	if ctx.Err() != nil && s.isClosing() && !errors.As(err, new(*HandlerError)) {
		err = ErrClosed
	}
	return fmt.Errorf("eventstore: %s %q: %w", kind, opts.Name, err)
}

// subscription is one running Subscribe call.
type subscription struct {
	store      *Store
	opts       SubscribeOptions
	handler    Handler
	checkpoint string // checkpoint name; empty when not durable
	// oldCheckpoint is a group member's checkpoint name before
	// CheckpointName's "$", read when checkpoint is missing; else empty.
	oldCheckpoint string
	retry         retry.Policy // the waits after transient failures
	state         subState
}

// retrying runs op until it succeeds or fails for good. A failure matching
// ErrTransient while ctx is live is logged and op tried again after the
// subscription's back-off; ctx ending a wait returns ctx's error.
func (sub *subscription) retrying(ctx context.Context, what string, op func() error) error {
	return sub.retry.Do(ctx, func(context.Context) error { return op() },
		func(err error) bool { return ctx.Err() == nil && errors.Is(err, ErrTransient) },
		func(attempt int, err error) {
			sub.state.update(func(st *SubscriptionState) {
				st.Retries++
				st.LastError, st.LastErrorAt = err, time.Now()
			})
			sub.store.tel.retried(ctx, what)
			sub.store.logger.Warn("subscription retrying after a transient failure",
				"subscription", sub.opts.Name, "operation", what, "attempt", attempt, "error", err)
		})
}

func (s *Store) newSubscription(opts SubscribeOptions, h Handler) (*subscription, error) {
	if opts.Name != "" {
		if err := validateName(ErrInvalidArgument, "subscription name", opts.Name); err != nil {
			return nil, err
		}
	}
	g := opts.Group
	switch {
	case g.Size < 0 || g.Member < 0:
		return nil, invalid(ErrInvalidArgument, "negative group member or size: %+v", g)
	case g.Size <= 1 && g.Member != 0:
		return nil, invalid(ErrInvalidArgument, "group member %d without a group size", g.Member)
	case g.Size > 1 && g.Member >= g.Size:
		return nil, invalid(ErrInvalidArgument, "group member %d is not below the group size %d", g.Member, g.Size)
	case opts.BatchSize < 0:
		return nil, invalid(ErrInvalidArgument, "negative batch size %d", opts.BatchSize)
	case opts.PollInterval < 0:
		return nil, invalid(ErrInvalidArgument, "negative poll interval %s", opts.PollInterval)
	case opts.MaxRetryWait < 0:
		return nil, invalid(ErrInvalidArgument, "negative maximum retry wait %s", opts.MaxRetryWait)
	}
	if err := validateFilter(opts.Filter); err != nil {
		return nil, err
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxRetryWait == 0 {
		opts.MaxRetryWait = DefaultMaxRetryWait
	}
	sub := &subscription{store: s, opts: opts, handler: h,
		retry: retry.Policy{Base: min(firstRetryWait, opts.MaxRetryWait), Max: opts.MaxRetryWait}}
	sub.state.st = SubscriptionState{Name: opts.Name, Group: opts.Group, Filter: opts.Filter, Started: time.Now()}
	if opts.Name != "" {
		sub.checkpoint = CheckpointName(opts.Name, g)
		if g.Size > 1 {
			sub.oldCheckpoint = oldCheckpointName(opts.Name, g)
		}
	}
	return sub, nil
}

// CheckpointName returns the name under which a subscription's checkpoint is
// stored: the subscription name itself, or for a member of a consumer group
// "$" followed by the name and "[member/size]" ("$orders[0/2]"). A valid
// subscription name never starts with "$", so no two subscriptions share a
// checkpoint. Changing a group's size starts new checkpoints.
//
// Before this form, a member's checkpoint was named without the "$"
// ("orders[0/2]"), which is also a valid ungrouped name. A member whose
// checkpoint is missing starts from one saved under that old name, if any,
// and saves it under the new one at once; the old one is not read again.
func CheckpointName(name string, g Group) string {
	if g.Size <= 1 {
		return name
	}
	return "$" + oldCheckpointName(name, g)
}

// oldCheckpointName is the name a group member's checkpoint had before
// CheckpointName added its "$".
func oldCheckpointName(name string, g Group) string {
	return fmt.Sprintf("%s[%d/%d]", name, g.Member, g.Size)
}

// GroupMember returns which member of a consumer group of size members
// receives the events of stream.
func GroupMember(stream string, size int) int {
	if size <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(stream))
	return int(h.Sum32() % uint32(size))
}

func (sub *subscription) run(ctx context.Context) error {
	s := sub.store
	wake := sub.watch(ctx)
	var after Position
	var unsaved bool
	err := sub.retrying(ctx, "start", func() (err error) {
		after, unsaved, err = sub.start(ctx)
		return err
	})
	if err != nil {
		return err
	}
	saved, lastSaved := after, time.Time{}
	save := func(ctx context.Context) error {
		if sub.checkpoint == "" || after == saved && !unsaved {
			return nil
		}
		if err := s.acquire(); err != nil {
			return err
		}
		defer s.release()
		if err := s.driver.SaveCheckpoint(ctx, sub.checkpoint, driver.Position(after)); err != nil {
			return fmt.Errorf("save checkpoint %s: %w", after, err)
		}
		saved, unsaved, lastSaved = after, false, time.Now()
		sub.state.checkpointSaved()
		return nil
	}
	var saveFailed bool
	err = sub.follow(ctx, wake, nil, func() Position { return after }, func(ctx context.Context, page []driver.RecordedEvent, scanned Position) (bool, error) {
		for _, dev := range page {
			ev := recordedFromDriver(dev)
			if g := sub.opts.Group; g.Size > 1 && GroupMember(ev.StreamID, g.Size) != g.Member {
				after = ev.Position
				sub.state.update(func(st *SubscriptionState) { st.Position = after })
				continue
			}
			if err := sub.handle(ctx, ev); err != nil {
				return false, err
			}
			after = ev.Position
			sub.state.update(func(st *SubscriptionState) { st.Position, st.Handled = after, st.Handled+1 })
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
		}
		if after.Less(scanned) {
			// Events up to scanned that the filter passed over: the
			// checkpoint moves past them too.
			after = scanned
			sub.state.update(func(st *SubscriptionState) { st.Position = after })
		}
		// A checkpoint that moved only past events the filter passed over
		// is saved at most every passedOverSave, so idle filtered
		// subscriptions under other writes do not write on every wake-up.
		if len(page) > 0 || time.Since(lastSaved) >= passedOverSave {
			if err := sub.retrying(ctx, "save checkpoint", func() error { return save(ctx) }); err != nil {
				if ctx.Err() != nil {
					return false, ctx.Err()
				}
				saveFailed = true
				return false, err
			}
		}
		return false, nil
	})
	if saveFailed {
		return err
	}
	// Save under a short deadline of its own: ctx may already be done.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := save(sctx); serr != nil {
		s.logger.Error("checkpoint not saved on stop", "subscription", sub.opts.Name, "position", after.String(), "error", serr)
		return errors.Join(err, serr)
	}
	return err
}

// handle calls the handler with one event. It returns ctx's error when the
// handler gave up because the subscription is stopping (not a failure: the
// event is delivered again), and a *HandlerError for any other failure.
//
// The call has a span of its own (a child of the batch's) that links to the
// span context recorded in the event's metadata, if any.
func (sub *subscription) handle(ctx context.Context, ev RecordedEvent) (err error) {
	tel := sub.store.tel
	start := time.Now()
	var span trace.Span
	if tr := tel.activeTracer(); tr != nil {
		var links []trace.SpanStartOption
		if sc := spanContextOf(ev); sc.IsValid() {
			links = append(links, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
		attrs := append(sub.spanAttrs(), attrEventType.String(ev.Type))
		ctx, span = tel.start(ctx, tr, opHandler, trace.SpanKindInternal, withCategory(attrs, ev.StreamID), links...)
	}
	defer func() {
		tel.observe(ctx, opHandler, start)
		if span != nil {
			end(span, err)
		}
	}()
	err = sub.handler(ctx, ev)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ctx.Err()
	default:
		return &HandlerError{Subscription: sub.opts.Name, Event: ev, Err: err}
	}
}

// spanAttrs returns the attributes that tell the subscription's spans apart.
func (sub *subscription) spanAttrs() []attribute.KeyValue {
	st := sub.state.get()
	attrs := []attribute.KeyValue{attrSpanSub.String(CheckpointName(st.Name, st.Group))}
	if st.Member != "" {
		attrs = append(attrs, attrSubMember.String(st.Member))
	}
	return attrs
}

// watch returns the driver's wake-up channel, nil when the driver has none
// or cannot give one now (the subscription then polls).
func (sub *subscription) watch(ctx context.Context) <-chan struct{} {
	s := sub.store
	if s.watcher == nil {
		return nil
	}
	if err := s.acquire(); err != nil {
		return nil // the read that follows reports the closed Store
	}
	ch, err := s.watcher.Watch(ctx)
	s.release()
	if err != nil {
		s.logger.Warn("live wake-up unavailable, polling", "subscription", sub.opts.Name, "error", err)
		return nil
	}
	return ch
}

// follow reads the global log page by page after the position after
// returns, until ctx ends or onPage fails, and returns why. It retries
// transient read failures, keeps the Live and CaughtUp state and calls
// OnCaughtUp, and once a read reached the end of the log sleeps until a
// wake-up signal, a value on changed, or the poll timer. onPage gets every
// page read, empty ones included, with how far the read scanned; it moves
// the position itself, and asks for reread when the next read must not wait
// (a projection that found its checkpoint moved). A wake channel the driver closed is asked for again
// at most once per PollInterval, before a read, so nothing appended between
// is missed.
//
// A page with events is one subscription batch: it has a span, started
// when its read began, in whose context onPage runs, and a duration.
func (sub *subscription) follow(ctx context.Context, wake, changed <-chan struct{}, after func() Position, onPage func(ctx context.Context, page []driver.RecordedEvent, scanned Position) (reread bool, err error)) error {
	s := sub.store
	q := driver.AllQuery{Limit: sub.opts.BatchSize, Filter: driver.Filter(sub.opts.Filter), MaxBytes: s.pageBytes}
	wait := firstPoll
	lastWatch := time.Now()
	for {
		if wake == nil && s.watcher != nil && time.Since(lastWatch) >= sub.opts.PollInterval {
			wake, lastWatch = sub.watch(ctx), time.Now()
		}
		q.After = driver.Position(after())
		sub.state.setReadFrom(Position(q.After))
		readStart := time.Now()
		var page []driver.RecordedEvent
		var scanned driver.Position
		var end bool
		err := sub.retrying(ctx, "read", func() (err error) {
			page, scanned, end, err = s.readAllPage(ctx, q)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read: %w", err)
		}
		reread, err := sub.batch(ctx, readStart, page, Position(scanned), onPage)
		read := len(page)
		s.recycle(page) // onPage is done with it
		if err != nil {
			return err
		}
		live := end && !reread
		var first bool
		sub.state.update(func(st *SubscriptionState) {
			first = live && !st.CaughtUp
			st.Live, st.CaughtUp = live, st.CaughtUp || live
		})
		if first && sub.opts.OnCaughtUp != nil {
			sub.opts.OnCaughtUp(sub.state.get())
		}
		if !live {
			wait = firstPoll
			continue // more may be waiting: no need to sleep
		}
		if read > 0 {
			wait = firstPoll
		}
		if err := sub.sleep(ctx, &wake, changed, &wait); err != nil {
			return err
		}
	}
}

// batch runs onPage on a page read from readStart on; a page with events is
// a subscription batch, with a span and a duration.
func (sub *subscription) batch(ctx context.Context, readStart time.Time, page []driver.RecordedEvent, scanned Position, onPage func(context.Context, []driver.RecordedEvent, Position) (bool, error)) (reread bool, err error) {
	if len(page) == 0 {
		return onPage(ctx, page, scanned)
	}
	tel := sub.store.tel
	var span trace.Span
	if tr := tel.activeTracer(); tr != nil {
		ctx, span = tel.start(ctx, tr, opBatch, trace.SpanKindConsumer, append(sub.spanAttrs(), attrCount.Int(len(page))),
			trace.WithTimestamp(readStart))
	}
	reread, err = onPage(ctx, page, scanned)
	tel.observe(ctx, opBatch, readStart)
	if span != nil {
		end(span, err)
	}
	return reread, err
}

// later returns the later of two positions.
func later(a, b Position) Position {
	if a.Less(b) {
		return b
	}
	return a
}

// sleep waits for a wake-up signal, a value on changed or the poll timer.
// Without signals the timer backs off from firstPoll to PollInterval; with
// them it stays at PollInterval as a safety net. A wake channel the driver
// closed sends no more signals: sleep sets *wake to nil, and the
// subscription polls until follow watches again.
func (sub *subscription) sleep(ctx context.Context, wake *<-chan struct{}, changed <-chan struct{}, wait *time.Duration) error {
	d := *wait
	if *wake != nil {
		d = sub.opts.PollInterval
	} else {
		*wait = min(*wait*2, sub.opts.PollInterval)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case _, ok := <-*wake:
		if !ok {
			sub.store.logger.Warn("live wake-up channel closed, polling", "subscription", sub.opts.Name)
			*wake = nil
		}
	case <-changed:
	case <-t.C:
	}
	return nil
}

// start returns the position after which delivery begins. unsaved is true
// when a durable subscription must save it even before it handles an event:
// the end of the log found for FromEnd, which a restart without a checkpoint
// would find again further on, skipping what was appended in between; or a
// checkpoint found under its old name, to be saved under the new one.
func (sub *subscription) start(ctx context.Context) (after Position, unsaved bool, err error) {
	s := sub.store
	if err := s.acquire(); err != nil {
		return Position{}, false, err
	}
	defer s.release()
	if sub.checkpoint != "" {
		pos, ok, err := s.driver.LoadCheckpoint(ctx, sub.checkpoint)
		if err != nil {
			return Position{}, false, fmt.Errorf("load checkpoint: %w", err)
		}
		if ok {
			return Position(pos), false, nil
		}
		if sub.oldCheckpoint != "" {
			pos, ok, err := s.driver.LoadCheckpoint(ctx, sub.oldCheckpoint)
			if err != nil {
				return Position{}, false, fmt.Errorf("load checkpoint: %w", err)
			}
			if ok {
				return Position(pos), true, nil // saved under the new name before anything else
			}
		}
	}
	if !sub.opts.FromEnd {
		return sub.opts.After, false, nil
	}
	end, err := s.endOfLog(ctx)
	if err != nil {
		return Position{}, false, fmt.Errorf("find the end of the log: %w", err)
	}
	return end, sub.checkpoint != "", nil
}

// Head returns the position of the last event in the global log, zero when
// the log is empty. Reading or subscribing after it delivers only events
// appended later.
func (s *Store) Head(ctx context.Context) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, fmt.Errorf("eventstore: head: %w", err)
	}
	if err := s.acquire(); err != nil {
		return Position{}, fmt.Errorf("eventstore: head: %w", err)
	}
	defer s.release()
	head, err := s.endOfLog(ctx)
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: head: %w", err)
	}
	return head, nil
}

// endOfLog returns the position of the newest event, zero when the log is
// empty. It reads the newest event backwards; a driver without backwards
// reads (ErrNotSupported) is read forwards to the end instead.
func (s *Store) endOfLog(ctx context.Context) (Position, error) {
	last, err := s.driver.ReadAll(ctx, driver.AllQuery{Backwards: true, Limit: 1})
	if !errors.Is(err, ErrNotSupported) {
		if err != nil || len(last) == 0 {
			return Position{}, err
		}
		return Position(last[0].Position), nil
	}
	var end driver.Position
	for {
		q := driver.AllQuery{After: end, Limit: s.pageSize, MaxBytes: s.pageBytes}
		page, err := s.driver.ReadAll(ctx, q)
		if err != nil {
			return Position{}, err
		}
		if len(page) > 0 {
			end = page[len(page)-1].Position
		}
		if !driver.PageFull(page, q.Limit, q.MaxBytes) {
			return Position(end), nil
		}
	}
}
