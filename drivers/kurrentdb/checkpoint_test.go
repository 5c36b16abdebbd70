package kurrentdb_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// appendPositions appends n events to a new stream of s and returns their
// positions.
func appendPositions(t *testing.T, s *eventstore.Store, stream string, n int) []eventstore.Position {
	t.Helper()
	_, err := s.Append(t.Context(), stream, eventstore.NoStream, newEvents(n)...)
	require.NoError(t, err)
	var out []eventstore.Position
	for ev, err := range s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		out = append(out, ev.Position)
	}
	return out
}

// Stores in different namespaces of one server, and one without a
// namespace, list and delete only their own checkpoints, under the same
// names.
func TestCheckpointsPerNamespace(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	ctx := t.Context()
	stores := []struct {
		name  string
		store *eventstore.Store
	}{
		{"namespace a", newStore(t, srv.URL(), kurrentdb.Options{Namespace: "a"})},
		{"namespace a.b", newStore(t, srv.URL(), kurrentdb.Options{Namespace: "a.b"})},
		{"no namespace", newStore(t, srv.URL(), kurrentdb.Options{})},
	}
	want := map[string][]eventstore.Checkpoint{}
	for _, s := range stores {
		pos := appendPositions(t, s.store, "Order-1", 2)
		own := "only-" + s.name
		require.NoError(t, s.store.SetCheckpoint(ctx, "shared", pos[0]))
		require.NoError(t, s.store.SetCheckpoint(ctx, own, pos[1]))
		want[s.name] = []eventstore.Checkpoint{{Name: own, Position: pos[1]}, {Name: "shared", Position: pos[0]}}
	}
	check := func(doing string) {
		t.Helper()
		for _, s := range stores {
			got, err := s.store.Checkpoints(ctx)
			require.NoError(t, err, "%s: %s", doing, s.name)
			assert.Equal(t, want[s.name], got, "%s: %s lists only its own checkpoints", doing, s.name)
		}
	}
	check("after each store set two")

	for _, s := range stores[:2] {
		require.NoError(t, s.store.DeleteCheckpoint(ctx, "shared"), s.name)
		want[s.name] = want[s.name][:1]
		check("after " + s.name + " deleted its checkpoint \"shared\"")
	}
	pos, ok, err := stores[2].store.Checkpoint(ctx, "shared")
	require.NoError(t, err)
	assert.True(t, ok, "another namespace's delete left this store's checkpoint")
	assert.Equal(t, want["no namespace"][1].Position, pos)
}

// DeleteCheckpoint soft-deletes the checkpoint's stream through its
// metadata, keeping $maxCount 1 for when it is saved again; deleting a
// checkpoint that is not there writes nothing.
func TestDeleteCheckpointKeepsMaxCount(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := newStore(t, srv.URL(), kurrentdb.Options{Namespace: "ns"})
	c := nativeClient(t, srv.URL())
	ctx := t.Context()
	pos := appendPositions(t, s, "Order-1", 3)
	stream := kurrentdb.CheckpointStream("ns", "sub")

	before := lastPosition(t, srv.URL())
	for _, name := range []string{"never-saved", "never-saved"} {
		require.NoError(t, s.DeleteCheckpoint(ctx, name))
	}
	assert.Equal(t, before, lastPosition(t, srv.URL()), "deleting a missing checkpoint wrote something")

	for _, p := range pos[:2] {
		require.NoError(t, s.SetCheckpoint(ctx, "sub", p))
	}
	require.NoError(t, s.DeleteCheckpoint(ctx, "sub"))
	rs, err := c.ReadStream(ctx, stream, kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	_, err = rs.Recv()
	rs.Close()
	var kerr *kdb.Error
	require.ErrorAs(t, err, &kerr)
	assert.Equal(t, kdb.ErrorCodeResourceNotFound, kerr.Code(), "a deleted checkpoint's stream reads as missing")
	deleted := lastPosition(t, srv.URL())
	require.NoError(t, s.DeleteCheckpoint(ctx, "sub"), "deleting it again")
	assert.Equal(t, deleted, lastPosition(t, srv.URL()), "deleting a deleted checkpoint wrote something")

	for _, p := range pos {
		require.NoError(t, s.SetCheckpoint(ctx, "sub", p))
	}
	got, ok, err := s.Checkpoint(ctx, "sub")
	require.NoError(t, err)
	require.True(t, ok, "saved again after its delete")
	assert.Equal(t, pos[2], got)
	meta, err := c.GetStreamMetadata(ctx, stream, kdb.ReadStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, meta.MaxCount())
	assert.Equal(t, uint64(1), *meta.MaxCount(), "$maxCount survives the delete")
	rs, err = c.ReadStream(ctx, stream, kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	defer rs.Close()
	_, err = rs.Recv()
	require.NoError(t, err)
	_, err = rs.Recv()
	assert.Error(t, err, "one checkpoint event left in the stream")
}
