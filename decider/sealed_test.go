package decider_test

import (
	"errors"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/decider"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
	"github.com/eventkit/eventstore/shred"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Shredder seals snapshots.
var _ decider.SnapshotSealer = (*shred.Shredder)(nil)

// ---- A joint account of two customers, whose names are personal data ----

type Holder struct {
	shred.Erasure
	Customer string `json:"customer" shred:"subject"`
	Name     string `json:"name" shred:"pii"`
}

type Paid struct {
	Cents int64 `json:"cents"`
}

type Joint struct {
	Names []string `json:"names"`
	Cents int64    `json:"cents"`
}

type (
	AddHolder struct{ Customer, Name string }
	Pay       struct{ Cents int64 }
)

var joint = decider.Decider[Joint, any]{
	Evolve: func(j Joint, ev any) Joint {
		switch e := ev.(type) {
		case Holder:
			j.Names = append(append([]string(nil), j.Names...), e.Name)
		case Paid:
			j.Cents += e.Cents
		}
		return j
	},
	Decide: func(_ Joint, cmd any) ([]any, error) {
		switch c := cmd.(type) {
		case AddHolder:
			return []any{Holder{Customer: c.Customer, Name: c.Name}}, nil
		case Pay:
			return []any{Paid(c)}, nil
		}
		return nil, errors.New("unknown command")
	},
}

// sealingHandler returns a joint-account handler on s that seals events
// (Holder's name) and snapshots (every 2 events) with a Shredder over keys,
// that Shredder, and the codec registry.
func sealingHandler(t testing.TB, s *eventstore.Store, keys shred.KeyStore) (*decider.Handler[Joint, any], *shred.Shredder, *codec.Registry) {
	t.Helper()
	sh, reg := sealingCodec(t, keys)
	h, err := decider.New(s, reg, joint, decider.Options{SnapshotEvery: 2, SnapshotSealer: sh})
	require.NoError(t, err)
	return h, sh, reg
}

// sealingCodec returns a Shredder over keys sealing Holder's name, and a
// codec registry of Holder and Paid that seals and opens through it.
func sealingCodec(t testing.TB, keys shred.KeyStore) (*shred.Shredder, *codec.Registry) {
	t.Helper()
	rule, err := shred.RuleOf[Holder]()
	require.NoError(t, err)
	sh, err := shred.New(shred.Options{Keys: keys, Rules: map[string]shred.Rule{"Holder": rule}})
	require.NoError(t, err)
	reg := codec.New(codec.WithTransform(sh))
	require.NoError(t, codec.Register[Holder](reg, "Holder"))
	require.NoError(t, codec.Register[Paid](reg, "Paid"))
	return sh, reg
}

// TestSealedSnapshots: with a SnapshotSealer, a snapshot of a state built
// from events sealed for two subjects holds neither's plain text; once
// either subject is forgotten the snapshot no longer opens, the state is
// rebuilt from the events (the forgotten name reads as erased) and the
// next snapshot is sealed under the key left. On every backend (the keys in
// the store itself, or in memory for KurrentDB, which keeps none).
func TestSealedSnapshots(t *testing.T) {
	for _, b := range storetest.All() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := b.Open(t)
			var keys shred.KeyStore = &shred.MemoryKeys{}
			if b.Keys {
				keys = s
			}
			h, sh, reg := sealingHandler(t, s, keys)
			stream := "Joint-" + uuid.NewString()

			for _, cmd := range []any{AddHolder{"c-1", "Ada Lovelace"}, AddHolder{"c-2", "Bob Babbage"}, Pay{100}} {
				_, err := h.Handle(ctx, stream, cmd)
				require.NoError(t, err)
			}
			res, err := h.Handle(ctx, stream, Pay{50})
			require.NoError(t, err)
			require.True(t, res.Snapshot, "no snapshot at version 4")
			snap, ok, err := s.LoadSnapshot(ctx, stream)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, uint64(4), snap.Version)
			assert.NotContains(t, string(snap.Data), "Ada")
			assert.NotContains(t, string(snap.Data), "Bob")
			st, err := h.Load(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, uint64(4), st.SnapshotVersion, "the sealed snapshot is used")
			assert.Equal(t, Joint{Names: []string{"Ada Lovelace", "Bob Babbage"}, Cents: 150}, st.Value)

			// A sealed snapshot saved for another stream does not open there.
			other := "Joint-" + uuid.NewString()
			noSnapshots, err := decider.New(s, reg, joint, decider.Options{SnapshotSealer: sh})
			require.NoError(t, err)
			for range 4 {
				_, err := noSnapshots.Handle(ctx, other, Pay{1})
				require.NoError(t, err)
			}
			require.NoError(t, s.SaveSnapshot(ctx, other, snap))
			_, err = h.Load(ctx, other)
			require.ErrorIs(t, err, shred.ErrTampered)

			require.NoError(t, sh.Forget(ctx, "c-2"))
			st, err = h.Load(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, uint64(0), st.SnapshotVersion, "the erased snapshot is not used")
			assert.Equal(t, 4, st.EventsRead)
			assert.Equal(t, Joint{Names: []string{"Ada Lovelace", ""}, Cents: 150}, st.Value, "rebuilt, c-2 erased")

			res, err = h.Handle(ctx, stream, Pay{25})
			require.NoError(t, err)
			require.True(t, res.Snapshot, "no new snapshot after the rebuild")
			snap, _, err = s.LoadSnapshot(ctx, stream)
			require.NoError(t, err)
			assert.NotContains(t, string(snap.Data), "Ada")
			st, err = h.Load(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, uint64(5), st.SnapshotVersion)
			assert.Equal(t, Joint{Names: []string{"Ada Lovelace", ""}, Cents: 175}, st.Value)

			require.NoError(t, sh.Forget(ctx, "c-1"))
			st, err = h.Load(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, uint64(0), st.SnapshotVersion, "sealed under c-1's key, the snapshot is erased")
			assert.Equal(t, Joint{Names: []string{"", ""}, Cents: 175}, st.Value)
		})
	}
}

// TestSealedSnapshotsIgnorePlain: a Handler with a SnapshotSealer ignores
// snapshots saved without one (they may hold plain text of forgotten
// subjects), and one without a sealer ignores sealed snapshots.
func TestSealedSnapshotsIgnorePlain(t *testing.T) {
	ctx := t.Context()
	s := storetest.Memory(t)
	sh, err := shred.New(shred.Options{Keys: s})
	require.NoError(t, err)
	reg := codec.New(codec.WithTransform(sh))
	require.NoError(t, codec.Register[Paid](reg, "Paid"))
	plain, err := decider.New(s, reg, joint, decider.Options{SnapshotEvery: 1})
	require.NoError(t, err)
	sealing, err := decider.New(s, reg, joint, decider.Options{SnapshotEvery: 1, SnapshotSealer: sh})
	require.NoError(t, err)

	res, err := plain.Handle(ctx, "Joint-1", Pay{1})
	require.NoError(t, err)
	require.True(t, res.Snapshot)
	st, err := sealing.Load(ctx, "Joint-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(0), st.SnapshotVersion, "a plain snapshot used by a sealing handler")

	res, err = sealing.Handle(ctx, "Joint-1", Pay{1})
	require.NoError(t, err)
	require.True(t, res.Snapshot)
	st, err = sealing.Load(ctx, "Joint-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), st.SnapshotVersion, "no sealed event: the snapshot is saved in plain text, marked sealed")
	st, err = plain.Load(ctx, "Joint-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(0), st.SnapshotVersion, "a sealing handler's snapshot used by a plain one")
}

// TestSealedSnapshotAfterMigration: migrate.Copy keeps stream IDs and
// versions, so a sealed snapshot copied with the events (and the keys,
// shred.CopyKeys) opens in the destination.
func TestSealedSnapshotAfterMigration(t *testing.T) {
	ctx := t.Context()
	src, dst := storetest.Memory(t), storetest.SQLite(t)
	h, _, _ := sealingHandler(t, src, src)
	for _, cmd := range []any{AddHolder{"c-1", "Ada Lovelace"}, Pay{10}} {
		_, err := h.Handle(ctx, "Joint-1", cmd)
		require.NoError(t, err)
	}
	_, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{Snapshots: true})
	require.NoError(t, err)
	require.NoError(t, shred.CopyKeys(ctx, src, dst))
	hDst, _, _ := sealingHandler(t, dst, dst)
	st, err := hDst.Load(ctx, "Joint-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), st.SnapshotVersion, "the copied sealed snapshot is used")
	assert.Equal(t, Joint{Names: []string{"Ada Lovelace"}, Cents: 10}, st.Value)
}
