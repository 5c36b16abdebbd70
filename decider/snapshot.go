package decider

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/eventkit/eventstore"
)

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
// is, so snapshots stay readable; other bytes are kept in base64.
type envelope struct {
	Format   string          `json:"format"`
	Schema   int             `json:"schema"`
	State    json.RawMessage `json:"state,omitempty"`
	Encoding string          `json:"encoding,omitempty"` // "base64": the state is in Bytes
	Bytes    []byte          `json:"bytes,omitempty"`
}

// loadSnapshot returns the state in stream's latest snapshot and its
// version; ok is false when there is none this Handler can use: none saved,
// one saved by other code, or one saved under another SnapshotSchema.
func (h *Handler[S, C]) loadSnapshot(ctx context.Context, stream string) (state S, version uint64, ok bool, err error) {
	snap, found, err := h.store.LoadSnapshot(ctx, stream)
	if err != nil || !found {
		return state, 0, false, err
	}
	var env envelope
	if json.Unmarshal(snap.Data, &env) != nil || env.Format != snapshotFormat || env.Schema != h.opts.SnapshotSchema {
		return state, 0, false, nil
	}
	data := []byte(env.State)
	if env.Encoding == "base64" {
		data = env.Bytes
	}
	if err := h.opts.StateSerializer.Unmarshal(data, &state); err != nil {
		return state, 0, false, fmt.Errorf("snapshot at version %d, schema %d: %w (bump Options.SnapshotSchema when the state type changes)",
			snap.Version, env.Schema, err)
	}
	return state, snap.Version, true, nil
}

// maybeSnapshot saves state at version, the stream's version after an
// append at before, when the policy says so, and reports whether it did:
// when the append crossed a multiple of SnapshotEvery (so concurrent
// handlers save about once per SnapshotEvery events between them), or when
// the state was loaded without a usable snapshot (from, its version, is 0)
// from a stream that now has SnapshotEvery events or more.
func (h *Handler[S, C]) maybeSnapshot(ctx context.Context, stream string, from, before uint64, state S, version uint64) bool {
	every := uint64(h.opts.SnapshotEvery)
	if every == 0 || version/every == before/every && (from > 0 || version < every) {
		return false
	}
	if err := h.saveSnapshot(ctx, stream, state, version); err != nil {
		h.log.WarnContext(ctx, "decider: snapshot not saved", "stream", stream, "version", version, "error", err)
		return false
	}
	return true
}

func (h *Handler[S, C]) saveSnapshot(ctx context.Context, stream string, state S, version uint64) error {
	data, err := h.opts.StateSerializer.Marshal(state)
	if err != nil {
		return err
	}
	env := envelope{Format: snapshotFormat, Schema: h.opts.SnapshotSchema}
	if json.Valid(data) {
		env.State = data
	} else {
		env.Encoding, env.Bytes = "base64", data
	}
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return h.store.SaveSnapshot(ctx, stream, eventstore.Snapshot{Version: version, Data: b})
}
