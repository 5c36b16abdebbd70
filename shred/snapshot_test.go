package shred_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/shred"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSnapshotSealing: a snapshot sealed under the keys of two subjects'
// events opens for its stream and version only, and is erased once either
// subject is forgotten; a key gone before sealing is refused.
func TestSnapshotSealing(t *testing.T) {
	ctx := t.Context()
	sh := newShredder(t, &shred.MemoryKeys{}, 0)
	keyOf := func(subject string) string {
		t.Helper()
		ev, err := sh.Seal(ctx, "Customer-1", event(t, "CustomerRegistered", CustomerRegistered{CustomerID: subject, Name: "Name of " + subject}))
		require.NoError(t, err)
		k, err := sh.SnapshotKey(ctx, recorded(ev))
		require.NoError(t, err)
		require.NotEmpty(t, k)
		return k
	}
	k1, k2 := keyOf("c-1"), keyOf("c-2")
	plain := []byte(`{"names":["Name of c-1","Name of c-2"]}`)
	sealed, err := sh.SealSnapshot(ctx, "Household-1", 7, []string{k2, k1, k2}, plain)
	require.NoError(t, err)
	assert.NotContains(t, string(sealed), "Name of")

	got, keys, ok, err := sh.OpenSnapshot(ctx, "Household-1", 7, sealed)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, plain, got)
	assert.ElementsMatch(t, []string{k1, k2}, keys)

	raw, err := sh.SnapshotKey(ctx, recorded(event(t, "CustomerRegistered", CustomerRegistered{CustomerID: "c-1", Name: "x"})))
	require.NoError(t, err)
	assert.Empty(t, raw, "an event without an envelope has no key")

	for _, tc := range []struct {
		name    string
		stream  string
		version uint64
		sealed  []byte
		target  error
	}{
		{"another stream", "Household-2", 7, sealed, shred.ErrTampered},
		{"another version", "Household-1", 8, sealed, shred.ErrTampered},
		{"ciphertext altered", "Household-1", 7, func() []byte {
			var m map[string]any
			require.NoError(t, json.Unmarshal(sealed, &m))
			m["n"] = "AAAAAAAAAAAAAAAA"
			b, _ := json.Marshal(m)
			return b
		}(), shred.ErrTampered},
		{"newer format", "Household-1", 7, bytes.Replace(sealed, []byte(`"v":1`), []byte(`"v":2`), 1), shred.ErrBadEnvelope},
		{"not a sealed snapshot", "Household-1", 7, []byte(`{"names":[]}`), shred.ErrBadEnvelope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := sh.OpenSnapshot(ctx, tc.stream, tc.version, tc.sealed)
			require.ErrorIs(t, err, tc.target)
		})
	}

	_, err = sh.SealSnapshot(ctx, "Household-1", 7, nil, plain)
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	_, err = sh.SealSnapshot(ctx, "Household-1", 7, []string{"c-1"}, plain)
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument)

	require.NoError(t, sh.Forget(ctx, "c-2"))
	_, _, ok, err = sh.OpenSnapshot(ctx, "Household-1", 7, sealed)
	require.NoError(t, err)
	assert.False(t, ok, "the snapshot opens after a subject was forgotten")
	_, err = sh.SealSnapshot(ctx, "Household-1", 8, []string{k1, k2}, plain)
	require.ErrorIs(t, err, shred.ErrKeyGone, "sealing under a forgotten subject's key")
	keyOf("c-2") // a new key for c-2 does not bring the old one back
	_, err = sh.SealSnapshot(ctx, "Household-1", 8, []string{k1, k2}, plain)
	require.ErrorIs(t, err, shred.ErrKeyGone)
}
