package codec

import (
	"context"
	"iter"

	"github.com/eventkit/eventstore"
)

// ReadStream is [eventstore.Store.ReadStream] with each event decoded by
// [Registry.Decode]. On a read or decode error it yields the error once
// and stops; for a decode error the Message holds the event as stored.
func (r *Registry) ReadStream(ctx context.Context, s *eventstore.Store, stream string, opts eventstore.ReadStreamOptions) iter.Seq2[Message, error] {
	return r.messages(ctx, s.ReadStream(ctx, stream, opts))
}

// ReadAll is [eventstore.Store.ReadAll] with each event decoded by
// [Registry.Decode]. Errors are yielded as by [Registry.ReadStream].
func (r *Registry) ReadAll(ctx context.Context, s *eventstore.Store, opts eventstore.ReadAllOptions) iter.Seq2[Message, error] {
	return r.messages(ctx, s.ReadAll(ctx, opts))
}

// ReadQuery is [eventstore.Store.ReadQuery] with each event decoded by
// [Registry.Decode]. Errors are yielded as by [Registry.ReadStream].
func (r *Registry) ReadQuery(ctx context.Context, s *eventstore.Store, q eventstore.Query, opts eventstore.ReadQueryOptions) iter.Seq2[Message, error] {
	return r.messages(ctx, s.ReadQuery(ctx, q, opts))
}

// messages decodes the events of seq.
func (r *Registry) messages(ctx context.Context, seq iter.Seq2[eventstore.RecordedEvent, error]) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for ev, err := range seq {
			if err != nil {
				yield(Message{}, err)
				return
			}
			m, err := r.Decode(ctx, ev)
			if err != nil {
				yield(m, err)
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

// Handler adapts h to an [eventstore.Handler] for [eventstore.Store.Subscribe]
// and [eventstore.Store.SubscribeGroup]: each event is decoded by
// [Registry.Decode] and handed to h. A decode error is returned like an
// error of h, so it stops the subscription (as an
// *[eventstore.HandlerError]) and the event is delivered again when it
// restarts; use [PassThroughUnknownTypes] for a subscription that should go
// on past event types it does not know.
func (r *Registry) Handler(h func(ctx context.Context, m Message) error) eventstore.Handler {
	return func(ctx context.Context, ev eventstore.RecordedEvent) error {
		m, err := r.Decode(ctx, ev)
		if err != nil {
			return err
		}
		return h(ctx, m)
	}
}

// Projection adapts h to an [eventstore.ProjectionHandler] for
// [eventstore.Store.Project]: each batch is decoded by [Registry.Decode]
// and handed to h. A decode error rolls the batch back and stops the
// projection, as an error of h does.
func (r *Registry) Projection(h func(ctx context.Context, tx *eventstore.Tx, ms []Message) error) eventstore.ProjectionHandler {
	return func(ctx context.Context, tx *eventstore.Tx, evs []eventstore.RecordedEvent) error {
		ms := make([]Message, len(evs))
		for i, ev := range evs {
			m, err := r.Decode(ctx, ev)
			if err != nil {
				return err
			}
			ms[i] = m
		}
		return h(ctx, tx, ms)
	}
}
