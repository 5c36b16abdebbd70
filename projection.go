package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventkit/eventstore/driver"
	"go.opentelemetry.io/otel/trace"
)

// ProjectionHandler handles one batch of a projection inside the backend
// transaction that also saves the projection's checkpoint: what it writes
// through tx commits together with the checkpoint, or not at all. Returning
// an error rolls both back and stops the projection; the batch is delivered
// again when it restarts. As for a [Handler], a handler that returns ctx's
// error because the projection is stopping has not failed.
type ProjectionHandler func(ctx context.Context, tx *Tx, events []RecordedEvent) error

// Tx is the backend transaction of one projection batch. It is valid only
// while the handler runs; the handler must not commit or roll it back.
type Tx struct{ tx driver.Tx }

// As sets target, a pointer to one of the native transaction types the
// driver's documentation lists (for example *pgx.Tx for PostgreSQL, **sql.Tx
// for SQLite), and reports whether it could.
func (t *Tx) As(target any) bool { return t.tx.As(target) }

// Project runs a projection: it delivers the events of the global log to h
// in batches of at most opts.BatchSize, in position order, each inside one
// backend transaction that saves the projection's checkpoint (opts.Name,
// required) when h returns nil. A read model written through the
// transaction therefore moves with the checkpoint: a crash at any point
// applies every event exactly once, never twice, never lost.
//
// The checkpoint is saved by compare-and-set: if another instance of the
// projection (or [Store.SetCheckpoint]) moved it since this one last saved,
// the batch is rolled back, and Project reloads the checkpoint and goes on
// after it, logging that it did. Running two instances is thus safe, though
// only one does useful work at a time.
//
// Options are those of [Store.Subscribe] but Group, which must be zero.
// Transient failures are retried as for Subscribe; when the outcome of a
// commit is unknown, the compare-and-set tells on the next try. Drivers
// without [driver.CheckpointTxer] return [ErrNotSupported] (of ours:
// DynamoDB and KurrentDB; see docs/subscriptions.md). It returns as
// Subscribe does.
func (s *Store) Project(ctx context.Context, opts SubscribeOptions, h ProjectionHandler) error {
	if opts.Name == "" {
		return fmt.Errorf("eventstore: project: %w", invalid(ErrInvalidArgument, "a projection needs a name"))
	}
	if opts.Group != (Group{}) {
		return fmt.Errorf("eventstore: project %q: %w", opts.Name, invalid(ErrInvalidArgument, "a projection cannot be a group member: use SubscribeGroup"))
	}
	if h == nil {
		return fmt.Errorf("eventstore: project %q: %w", opts.Name, invalid(ErrInvalidArgument, "nil handler"))
	}
	p := &projection{handler: h}
	return s.track(ctx, "projection", opts, nil, func(ctx context.Context, sub *subscription) error {
		if s.txer == nil {
			return ErrNotSupported
		}
		p.subscription = sub
		return p.run(ctx)
	})
}

// projection is one running Project call.
type projection struct {
	*subscription
	handler ProjectionHandler
	// saved is the checkpoint as last seen in the store; has is false
	// while there is none.
	saved     Position
	has       bool
	lastSaved time.Time
}

func (p *projection) run(ctx context.Context) error {
	wake := p.watch(ctx)
	if err := p.retrying(ctx, "start", func() error { return p.load(ctx) }); err != nil {
		return err
	}
	if !p.has && p.opts.FromEnd {
		// Saved at once: a restart must not find a later end.
		end, err := p.store.endOfLog(ctx)
		if err != nil {
			return fmt.Errorf("find the end of the log: %w", err)
		}
		if err := p.commit(ctx, end, nil); err != nil {
			return err
		}
	}
	after := p.saved
	if !p.has {
		after = p.opts.After
	}
	return p.follow(ctx, wake, nil, func() Position { return after }, func(ctx context.Context, page []driver.RecordedEvent, scanned Position) (bool, error) {
		to := scanned
		if n := len(page); n > 0 {
			to = later(to, Position(page[n-1].Position))
		}
		if !after.Less(to) {
			return false, nil
		}
		if len(page) == 0 && time.Since(p.lastSaved) < passedOverSave {
			after = to // saved with the next batch, or within passedOverSave
			p.state.update(func(st *SubscriptionState) { st.Position = after })
			return false, nil
		}
		events := make([]RecordedEvent, len(page))
		for i, dev := range page {
			events[i] = recordedFromDriver(dev)
		}
		var apply func(tx driver.Tx) error
		if len(events) > 0 {
			apply = func(tx driver.Tx) error {
				err := p.callHandler(ctx, tx, events)
				switch {
				case err == nil:
					return nil
				case ctx.Err() != nil && errors.Is(err, ctx.Err()):
					return ctx.Err()
				default:
					return &HandlerError{Subscription: p.opts.Name, Event: events[0], Err: err}
				}
			}
		}
		err := p.commit(ctx, to, apply)
		if errors.Is(err, ErrCheckpointMoved) {
			p.store.logger.Info("projection checkpoint moved by another writer; going on after it",
				"projection", p.opts.Name, "expected", p.saved.String())
			if err := p.retrying(ctx, "reload checkpoint", func() error { return p.load(ctx) }); err != nil {
				return false, err
			}
			after = p.saved
			if !p.has {
				after = p.opts.After
			}
			return true, nil
		}
		if err != nil {
			return false, err
		}
		after = to
		p.state.update(func(st *SubscriptionState) {
			st.Position, st.Handled = after, st.Handled+uint64(len(events))
		})
		return false, nil
	})
}

// load reads the stored checkpoint into saved and has.
func (p *projection) load(ctx context.Context) error {
	s := p.store
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	pos, ok, err := s.driver.LoadCheckpoint(ctx, p.checkpoint)
	if err != nil {
		return fmt.Errorf("load checkpoint: %w", err)
	}
	p.saved, p.has = Position(pos), ok
	return nil
}

// commit runs apply (nil: nothing) in a transaction that moves the
// checkpoint from saved to to, retrying transient failures. A retry after
// a commit whose outcome was unknown finds the checkpoint moved: if it is
// at to, the commit had happened.
func (p *projection) commit(ctx context.Context, to Position, apply func(driver.Tx) error) error {
	s := p.store
	err := p.retrying(ctx, "commit", func() error {
		if err := s.acquire(); err != nil {
			return err
		}
		defer s.release()
		err := s.txer.CheckpointTx(ctx, p.checkpoint, driver.Position(p.saved), p.has, driver.Position(to), apply)
		if errors.Is(err, ErrCheckpointMoved) {
			return err
		}
		if err != nil && !errors.As(err, new(*HandlerError)) && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("commit checkpoint %s: %w", to, err)
		}
		return err
	})
	if err == nil {
		p.saved, p.has, p.lastSaved = to, true, time.Now()
		p.state.checkpointSaved()
	}
	return err
}

// maxLinks bounds the links of a projection handler's span (the SDK's
// default limit).
const maxLinks = 128

// callHandler calls the handler with a batch, in a span of its own that
// links to the span contexts recorded in the events' metadata (the first
// maxLinks distinct ones).
func (p *projection) callHandler(ctx context.Context, tx driver.Tx, events []RecordedEvent) (err error) {
	tel := p.store.tel
	start := time.Now()
	var span trace.Span
	if tr := tel.activeTracer(); tr != nil {
		var links []trace.Link
		seen := map[trace.SpanID]bool{}
		for _, ev := range events {
			if sc := spanContextOf(ev); sc.IsValid() && !seen[sc.SpanID()] && len(links) < maxLinks {
				seen[sc.SpanID()] = true
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
		ctx, span = tel.start(ctx, tr, opHandler, trace.SpanKindInternal, append(p.spanAttrs(), attrCount.Int(len(events))),
			trace.WithLinks(links...))
	}
	defer func() {
		tel.observe(ctx, opHandler, start)
		if span != nil {
			end(span, err)
		}
	}()
	return p.handler(ctx, &Tx{tx}, events)
}
