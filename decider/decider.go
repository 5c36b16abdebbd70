package decider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/internal/retry"
)

// Decider is the domain logic of one kind of stream: three pure functions of
// values, with no store and no I/O, so they are tested without one.
//
// Events are the Go values registered with the [codec.Registry] the
// [Handler] uses: Decide returns them, Evolve receives them (as
// [codec.Message.Value], upcast to the newest schema version).
type Decider[S, C any] struct {
	// Initial is the state of a stream with no events.
	Initial S
	// Evolve returns the state after event. It must not modify state in
	// place when S holds maps, slices or pointers: a Handler starts every
	// new stream from the same Initial, and decides again from a state it
	// loaded before. An event of a type the registry does not know arrives
	// as nil when the registry passes unknown types through
	// ([codec.PassThroughUnknownTypes]); otherwise the load fails.
	Evolve func(state S, event any) S
	// Decide returns the events cmd produces in state, in order, or an error
	// that refuses cmd. No events and no error means there is nothing to
	// do; nothing is appended.
	Decide func(state S, cmd C) ([]any, error)
}

// Options tune a [Handler]. The zero value is usable: 20 attempts on
// conflicts, two resends of an append that failed transiently, no
// snapshots.
type Options struct {
	// MaxAttempts is how many times Handle decides a command, at most: when
	// another writer appended to the stream between the load and the append,
	// Handle reads the new events and decides again, after a random wait
	// (capped exponential back-off with full jitter: under 5 ms after the
	// first conflict, doubling up to 250 ms). After the last attempt it
	// returns a *[ConflictError]. Zero means 20; 1 means no retry.
	MaxAttempts int
	// TransientRetries is how many times Handle sends one append again, with
	// the same event IDs, when it failed with an error matching
	// [eventstore.ErrTransient]: the store then either writes it or
	// recognises the retry of an append that was written and returns its
	// result, so events are never written twice. Zero means 2; negative
	// means none.
	TransientRetries int
	// SnapshotEvery makes Handle save a snapshot of the state after an
	// append that takes the stream's version past a multiple of it, and
	// after an append to a stream of at least that many events whose state
	// was loaded without a usable snapshot (none yet, or one of another
	// SnapshotSchema). Loads start from the latest snapshot and read only
	// the events after it. Zero means no snapshots are saved; existing ones
	// are still used. Snapshots do not pass through the codec's
	// Transforms: when the codec seals events (crypto-shredding), set
	// SnapshotSealer too.
	SnapshotEvery int
	// SnapshotSchema is the version of the state's encoded form. Bump it
	// when the state type changes incompatibly: snapshots saved under
	// another version are ignored (the state is rebuilt from the events) and
	// replaced by the next snapshot. Zero means 1.
	SnapshotSchema int
	// StateSerializer encodes the state in snapshots. Nil means
	// [codec.JSON] (encoding/json).
	StateSerializer Serializer
	// SnapshotSealer, when set, seals each snapshot under the keys of the
	// sealed events its state was built from (*shred.Shredder is one), so
	// that forgetting any of their subjects erases the snapshot: a load
	// then rebuilds the state from the events, whose protected data reads
	// as erased. Snapshots saved without a sealer are then ignored. Nil
	// means snapshots are saved in plain text (see docs/decider.md).
	SnapshotSealer SnapshotSealer
	// Logger receives a warning when a snapshot could not be saved (the
	// command itself succeeded). Nil means no logging.
	Logger *slog.Logger
}

// Handler runs commands of type C against streams whose state is S: load,
// decide, append. It is safe for concurrent use; concurrent commands on one
// stream are serialised by the store's expected-version check.
type Handler[S, C any] struct {
	store *eventstore.Store
	codec *codec.Registry
	d     Decider[S, C]
	opts  Options
	log   *slog.Logger

	conflictWait  retry.Policy // between attempts after a conflict
	transientWait retry.Policy // between sends of one append
}

// New returns a Handler that loads and appends through store, encoding and
// decoding events with reg. It fails with an error matching
// [eventstore.ErrInvalidArgument] when store, reg, Evolve or Decide is nil or
// an option is negative (TransientRetries excepted).
func New[S, C any](store *eventstore.Store, reg *codec.Registry, d Decider[S, C], opts Options) (*Handler[S, C], error) {
	switch {
	case store == nil || reg == nil:
		return nil, fmt.Errorf("decider: %w: nil store or registry", eventstore.ErrInvalidArgument)
	case d.Evolve == nil || d.Decide == nil:
		return nil, fmt.Errorf("decider: %w: Evolve and Decide must be set", eventstore.ErrInvalidArgument)
	case opts.MaxAttempts < 0 || opts.SnapshotEvery < 0 || opts.SnapshotSchema < 0:
		return nil, fmt.Errorf("decider: %w: negative option in %+v", eventstore.ErrInvalidArgument, opts)
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 20
	}
	if opts.TransientRetries == 0 {
		opts.TransientRetries = 2
	}
	opts.TransientRetries = max(opts.TransientRetries, 0)
	if opts.SnapshotSchema == 0 {
		opts.SnapshotSchema = 1
	}
	if opts.StateSerializer == nil {
		opts.StateSerializer = codec.JSON{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler[S, C]{
		store: store, codec: reg, d: d, opts: opts, log: log,
		conflictWait:  retry.Policy{Base: 5 * time.Millisecond, Max: 250 * time.Millisecond},
		transientWait: retry.Policy{Base: 50 * time.Millisecond, Max: time.Second},
	}, nil
}

// State is a stream's state as loaded.
type State[S any] struct {
	// Value is the state: Initial evolved by every event of the stream.
	Value S
	// Version is the stream version Value reflects; 0 for a stream with no
	// events.
	Version uint64
	// SnapshotVersion is the version of the snapshot the load started from;
	// 0 when it started from Initial.
	SnapshotVersion uint64
	// EventsRead is how many events the load read after the snapshot.
	EventsRead int

	// keys are the SnapshotSealer keys of the events Value was built from.
	keys map[string]struct{}
}

// Load returns the state of stream: its latest usable snapshot, evolved by
// the events after it. It appends nothing.
func (h *Handler[S, C]) Load(ctx context.Context, stream string) (State[S], error) {
	st, err := h.load(ctx, stream, true)
	if err != nil {
		return State[S]{}, fmt.Errorf("decider: load %q: %w", stream, err)
	}
	return st, nil
}

// load reads the state of stream, from its snapshot when useSnapshot.
func (h *Handler[S, C]) load(ctx context.Context, stream string, useSnapshot bool) (State[S], error) {
	st := State[S]{Value: h.d.Initial}
	if useSnapshot {
		v, version, keys, ok, err := h.loadSnapshot(ctx, stream)
		if err != nil {
			return State[S]{}, err
		}
		if ok {
			st.Value, st.Version, st.SnapshotVersion = v, version, version
			for _, k := range keys {
				st.addKey(k)
			}
		}
	}
	return st, h.catchUp(ctx, stream, &st)
}

// catchUp evolves st by the events of stream after st.Version. With a
// SnapshotSealer, it records each event's key before the codec opens it:
// an event whose key is gone then is erased when opened.
func (h *Handler[S, C]) catchUp(ctx context.Context, stream string, st *State[S]) error {
	opts := eventstore.ReadStreamOptions{From: st.Version + 1}
	for ev, err := range h.store.ReadStream(ctx, stream, opts) {
		if err != nil {
			return err
		}
		if h.opts.SnapshotSealer != nil {
			k, err := h.opts.SnapshotSealer.SnapshotKey(ctx, ev)
			if err != nil {
				return err
			}
			st.addKey(k)
		}
		msg, err := h.codec.Decode(ctx, ev)
		if err != nil {
			return err
		}
		st.Value = h.d.Evolve(st.Value, msg.Value)
		st.Version = msg.Event.Version
		st.EventsRead++
	}
	return nil
}

// Result is what [Handler.Handle] did. Along with an error it holds what
// was known by then: Meta, Attempts, and the state the last decision saw.
type Result[S any] struct {
	// State is the state after the command's events: the loaded state when
	// the command produced none.
	State S
	// Version is the stream version State reflects.
	Version uint64
	// Events are the events appended, as Decide returned them; nil when
	// none were.
	Events []any
	// Append reports the append (positions, event IDs); zero when nothing
	// was appended.
	Append eventstore.AppendResult
	// Meta holds the command and correlation IDs recorded in the events'
	// metadata, generated ones included.
	Meta Meta
	// Attempts is how many times the command was decided.
	Attempts int
	// SnapshotVersion is the version of the snapshot the first load started
	// from; 0 when none was used.
	SnapshotVersion uint64
	// EventsRead is how many events were read to build the state, over
	// every attempt.
	EventsRead int
	// Snapshot reports that a snapshot of State was saved at Version.
	Snapshot bool
}

// Handle runs cmd against stream: it loads the stream's state (latest
// snapshot and the events after it), calls Decide, and appends the events it
// returns expecting the stream still at the loaded version (NoStream for a
// new stream). Each event's metadata records the command's IDs (see [Meta]).
//
// When another writer appended first, Handle reads the events it missed and
// decides again, up to Options.MaxAttempts times; then it returns a
// *[ConflictError], which matches [eventstore.ErrWrongExpectedVersion]. Each
// attempt gives its events new IDs; an append that fails with an error
// matching [eventstore.ErrTransient] is sent again with the same IDs (see
// Options.TransientRetries), so it is written at most once. If the resends
// fail too, the error matches ErrTransient and the events may or may not
// have been written.
//
// An error from Decide is returned wrapped, and nothing is appended. A
// command that produces no events appends nothing and returns the loaded
// state. After an append, a snapshot is saved when Options.SnapshotEvery
// says so; a failure to save it is logged, not returned.
func (h *Handler[S, C]) Handle(ctx context.Context, stream string, cmd C) (Result[S], error) {
	res := Result[S]{Meta: metaOf(cmd)}
	fail := func(err error) (Result[S], error) {
		return res, fmt.Errorf("decider: handle %q: %w", stream, err)
	}
	st, err := h.load(ctx, stream, true)
	if err != nil {
		return fail(err)
	}
	res.SnapshotVersion = st.SnapshotVersion
	res.EventsRead = st.EventsRead
	for {
		res.Attempts++
		res.State, res.Version = st.Value, st.Version
		events, err := h.d.Decide(st.Value, cmd)
		if err != nil {
			return fail(err)
		}
		if len(events) == 0 {
			return res, nil
		}
		evs, err := h.encode(ctx, stream, events, res.Meta)
		if err != nil {
			return fail(err)
		}
		ar, err := h.append(ctx, stream, st.Version, evs)
		if err == nil {
			state := st.Value
			for _, e := range events {
				state = h.d.Evolve(state, e)
			}
			res.State, res.Version, res.Events, res.Append = state, ar.Version, events, ar
			res.Snapshot = h.maybeSnapshot(ctx, stream, st, evs, state, ar)
			return res, nil
		}
		var wrong *eventstore.WrongExpectedVersionError
		if !errors.As(err, &wrong) {
			return fail(err)
		}
		if res.Attempts >= h.opts.MaxAttempts {
			return res, &ConflictError{Stream: stream, Attempts: res.Attempts, Err: err}
		}
		if err := h.conflictWait.Wait(ctx, res.Attempts); err != nil {
			return fail(err)
		}
		before := st.EventsRead
		if wrong.Actual < st.Version {
			// The stream is shorter than the state we hold (deleted and
			// written again): start over from the events alone.
			st, err = h.load(ctx, stream, false)
			before = 0
		} else {
			err = h.catchUp(ctx, stream, &st)
		}
		if err != nil {
			return fail(err)
		}
		res.EventsRead += st.EventsRead - before
	}
}

// encode encodes events for stream with the codec, recording meta in their
// metadata. The codec gives each a new ID, which its transforms may bind:
// it is kept.
func (h *Handler[S, C]) encode(ctx context.Context, stream string, events []any, meta Meta) ([]eventstore.Event, error) {
	md := meta.metadata()
	evs := make([]eventstore.Event, len(events))
	for i, v := range events {
		ev, err := h.codec.EncodeMetadata(ctx, stream, v, md)
		if err != nil {
			return nil, err
		}
		evs[i] = ev
	}
	return evs, nil
}

// append appends evs at version, sending the same events again after a
// transient failure.
func (h *Handler[S, C]) append(ctx context.Context, stream string, version uint64, evs []eventstore.Event) (eventstore.AppendResult, error) {
	for try := 1; ; try++ {
		res, err := h.store.Append(ctx, stream, eventstore.Exact(version), evs...)
		if err == nil || !errors.Is(err, eventstore.ErrTransient) || try > h.opts.TransientRetries {
			return res, err
		}
		if err := h.transientWait.Wait(ctx, try); err != nil {
			return res, err
		}
	}
}

// ConflictError is the error [Handler.Handle] returns when every attempt
// lost the race to another writer. It matches
// [eventstore.ErrWrongExpectedVersion]: the last append's
// *[eventstore.WrongExpectedVersionError] is reachable with [errors.As].
// None of the command's events were written.
type ConflictError struct {
	Stream   string
	Attempts int   // how many times the command was decided
	Err      error // the last append's error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("decider: handle %q: still conflicting after %d attempts: %v", e.Stream, e.Attempts, e.Err)
}

// Unwrap returns the last append's error.
func (e *ConflictError) Unwrap() error { return e.Err }
