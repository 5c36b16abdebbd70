package decider

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/eventkit/eventstore"
)

// SnapshotSealer seals the snapshots a [Handler] saves (Options.SnapshotSealer),
// so that a state built from events sealed for data subjects
// (crypto-shredding) is erased with them. *shred.Shredder is one.
type SnapshotSealer interface {
	// SnapshotKey returns the key ev, an event as stored, was sealed under,
	// as an opaque string; "" when ev holds nothing sealed, or its key is
	// gone (the event reads as erased). The Handler calls it on each event
	// it reads, before the codec opens the event, and on the events it
	// appends.
	SnapshotKey(ctx context.Context, ev eventstore.RecordedEvent) (string, error)
	// SealSnapshot returns data, a snapshot of stream at version, sealed so
	// that it opens only while every key in keys (at least one) exists. It
	// fails when one is gone already.
	SealSnapshot(ctx context.Context, stream string, version uint64, keys []string, data []byte) ([]byte, error)
	// OpenSnapshot returns what SealSnapshot sealed, and the keys it was
	// sealed under; ok is false, with a nil error, when a key is gone (the
	// snapshot is erased).
	OpenSnapshot(ctx context.Context, stream string, version uint64, sealed []byte) (data []byte, keys []string, ok bool, err error)
}

// Serializer encodes a state for a snapshot and decodes it back. Every
// [codec.Serializer] is one; the default is [codec.JSON].
type Serializer interface {
	// Marshal encodes v, a state.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a pointer to a state.
	Unmarshal(data []byte, v any) error
}

// snapshotFormat marks a snapshot saved by this package.
const snapshotFormat = "decider/1"

// envelope is the stored form of a snapshot: the state's encoding with the
// schema version it was saved under. A state that is valid JSON is kept as
// is, so snapshots stay readable; other bytes are kept in base64. A Handler
// with a SnapshotSealer marks its snapshots Sealed: with Encoding "sealed"
// Bytes holds the sealer's output; a state built from no sealed event is
// kept as without a sealer.
type envelope struct {
	Format   string          `json:"format"`
	Schema   int             `json:"schema"`
	Sealed   bool            `json:"sealed,omitempty"`
	State    json.RawMessage `json:"state,omitempty"`
	Encoding string          `json:"encoding,omitempty"` // "base64" or "sealed": the state is in Bytes
	Bytes    []byte          `json:"bytes,omitempty"`
}

// addKey records k, a SnapshotSealer key ("" for none), as one the state
// was built from.
func (st *State[S]) addKey(k string) {
	if k == "" {
		return
	}
	if st.keys == nil {
		st.keys = map[string]struct{}{}
	}
	st.keys[k] = struct{}{}
}

// loadSnapshot returns the state in stream's latest snapshot, its version
// and the SnapshotSealer keys it was sealed under; ok is false when there
// is none this Handler can use: none saved, one saved by other code, one
// saved under another SnapshotSchema, one sealed while this Handler has no
// SnapshotSealer or not sealed while it has one, or one whose keys are
// gone (erased).
func (h *Handler[S, C]) loadSnapshot(ctx context.Context, stream string) (state S, version uint64, keys []string, ok bool, err error) {
	snap, found, err := h.store.LoadSnapshot(ctx, stream)
	if err != nil || !found {
		return state, 0, nil, false, err
	}
	var env envelope
	if json.Unmarshal(snap.Data, &env) != nil || env.Format != snapshotFormat || env.Schema != h.opts.SnapshotSchema ||
		env.Sealed != (h.opts.SnapshotSealer != nil) {
		return state, 0, nil, false, nil
	}
	data := []byte(env.State)
	switch env.Encoding {
	case "base64":
		data = env.Bytes
	case "sealed":
		data, keys, ok, err = h.opts.SnapshotSealer.OpenSnapshot(ctx, stream, snap.Version, env.Bytes)
		if err != nil || !ok {
			return state, 0, nil, false, err
		}
	}
	if err := h.opts.StateSerializer.Unmarshal(data, &state); err != nil {
		return state, 0, nil, false, fmt.Errorf("snapshot at version %d, schema %d: %w (bump Options.SnapshotSchema when the state type changes)",
			snap.Version, env.Schema, err)
	}
	return state, snap.Version, keys, true, nil
}

// maybeSnapshot saves state, the state after appending evs (result ar)
// to the loaded st, when the policy says so, and reports whether it did:
// when the append crossed a multiple of SnapshotEvery (so concurrent
// handlers save about once per SnapshotEvery events between them), or when
// st was loaded without a usable snapshot from a stream that now has
// SnapshotEvery events or more.
func (h *Handler[S, C]) maybeSnapshot(ctx context.Context, stream string, st State[S], evs []eventstore.Event, state S, ar eventstore.AppendResult) bool {
	every, before, version := uint64(h.opts.SnapshotEvery), st.Version, ar.Version
	if every == 0 || version/every == before/every && (st.SnapshotVersion > 0 || version < every) {
		return false
	}
	if err := h.saveSnapshot(ctx, stream, st, evs, state, ar); err != nil {
		h.log.WarnContext(ctx, "decider: snapshot not saved", "stream", stream, "version", version, "error", err)
		return false
	}
	return true
}

// saveSnapshot saves state at ar.Version; with a SnapshotSealer, sealed
// under the keys of st's events and of evs.
func (h *Handler[S, C]) saveSnapshot(ctx context.Context, stream string, st State[S], evs []eventstore.Event, state S, ar eventstore.AppendResult) error {
	version := ar.Version
	data, err := h.opts.StateSerializer.Marshal(state)
	if err != nil {
		return err
	}
	env := envelope{Format: snapshotFormat, Schema: h.opts.SnapshotSchema}
	var keys []string
	if sealer := h.opts.SnapshotSealer; sealer != nil {
		env.Sealed = true
		keys = slices.Collect(maps.Keys(st.keys))
		first := ar.FirstVersion()
		for i, ev := range evs {
			k, err := sealer.SnapshotKey(ctx, eventstore.RecordedEvent{StreamID: stream, Version: first + uint64(i), ID: ev.ID,
				Type: ev.Type, ContentType: ev.ContentType, Data: ev.Data, Metadata: ev.Metadata})
			if err != nil {
				return err
			}
			if k != "" && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	switch {
	case len(keys) > 0:
		slices.Sort(keys)
		sealed, err := h.opts.SnapshotSealer.SealSnapshot(ctx, stream, version, keys, data)
		if err != nil {
			return err
		}
		env.Encoding, env.Bytes = "sealed", sealed
	case json.Valid(data):
		env.State = data
	default:
		env.Encoding, env.Bytes = "base64", data
	}
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return h.store.SaveSnapshot(ctx, stream, eventstore.Snapshot{Version: version, Data: b})
}
