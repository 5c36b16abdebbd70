// Package decider handles commands on event-sourced streams with the
// decider pattern: load a stream's state, decide new events from a command,
// append them at the version loaded, and on a conflict load again and decide
// again.
//
// The domain logic is a [Decider]: an initial state and two pure functions,
// Evolve (state, event → state) and Decide (state, command → events or an
// error). A [Handler] runs it against an [eventstore.Store], with events
// encoded and decoded by a [codec.Registry], so Evolve sees every event
// upcast to its newest schema version:
//
//	h, err := decider.New(store, reg, account, decider.Options{SnapshotEvery: 100})
//	res, err := h.Handle(ctx, "Account-42", Withdraw{Amount: 30})
//
// # Concurrency
//
// Handle appends expecting the stream at the version it loaded
// ([eventstore.Exact], NoStream for a new stream). When another writer got
// there first, it reads the events it missed, decides again on the new
// state and appends again, up to Options.MaxAttempts times, after a short
// random wait; then it returns a *[ConflictError], which matches
// [eventstore.ErrWrongExpectedVersion]. So concurrent commands on one stream
// never lose an update, and an invariant Decide checks (a balance that
// never goes below zero) holds in the stream.
//
// Each attempt gives its events new random IDs. An append that fails with
// an error matching [eventstore.ErrTransient] (a lost connection: written
// or not, nobody knows) is sent again with the same IDs, which the store
// recognises as a retry: the events are written once.
//
// # Snapshots
//
// With Options.SnapshotEvery = N, Handle saves the state with
// [eventstore.Store.SaveSnapshot] after an append that takes the stream past
// a multiple of N (and after one whose state was loaded without a usable
// snapshot from a stream of N events or more), and every load starts from
// the latest snapshot. The state is encoded by Options.StateSerializer (JSON
// by default) inside a small envelope that records Options.SnapshotSchema:
// bump it when the state type changes, and snapshots of the old shape are
// ignored (the state is rebuilt from the events, and the next snapshot
// replaces them) rather than decoded wrongly.
//
// When the codec seals events of data subjects (crypto-shredding, package
// shred), set Options.SnapshotSealer to the same *shred.Shredder: each
// snapshot is then sealed under the keys of the sealed events its state was
// built from, and once any of their subjects is forgotten the snapshot no
// longer opens, so the state is rebuilt from the events, whose protected
// data reads as erased.
//
// # Correlation and causation
//
// A command carries a [Meta] (embed it in the command type) with its ID and
// the ID of the conversation it belongs to. Every event it produces records
// them under [eventstore.MetadataCausationID] and
// [eventstore.MetadataCorrelationID]; a command without an ID is given a
// random one, and one without a correlation ID starts its own (its ID).
//
// # Errors
//
// Handle returns Decide's error wrapped (nothing is appended), a
// *[ConflictError] when every attempt conflicted, an error matching
// [eventstore.ErrTransient] when the resends of an append failed too, and
// the store's and codec's errors (such as an event type not registered).
// See docs/decider.md for a walk-through.
package decider
