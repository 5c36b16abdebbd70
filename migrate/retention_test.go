package migrate_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCopyTruncatedAndDeleted copies from memory to SQLite a truncated
// stream (it starts at version 3 in the destination too), a deleted stream
// (not copied) and a deleted stream recreated since (versions 4 and 5);
// Verify finds the two stores equal.
func TestCopyTruncatedAndDeleted(t *testing.T) {
	ctx := t.Context()
	src, dst := storetest.Memory(t), storetest.SQLite(t)
	appendN := func(stream string, exp eventstore.ExpectedVersion, n int) {
		t.Helper()
		evs := make([]eventstore.Event, n)
		for i := range evs {
			evs[i] = eventstore.NewEvent("Happened", []byte(`{}`))
		}
		_, err := src.Append(ctx, stream, exp, evs...)
		require.NoError(t, err)
	}
	appendN("Trunc-1", eventstore.NoStream, 5)
	appendN("Gone-1", eventstore.NoStream, 2)
	appendN("Again-1", eventstore.NoStream, 3)
	require.NoError(t, src.TruncateStream(ctx, "Trunc-1", 3))
	require.NoError(t, src.DeleteStream(ctx, "Gone-1", eventstore.Exact(2)))
	require.NoError(t, src.DeleteStream(ctx, "Again-1", eventstore.Any))
	appendN("Again-1", eventstore.NoStream, 2)

	st, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)
	assert.Equal(t, 5, st.Copied, "events copied")

	versions := func(stream string) []uint64 {
		var vs []uint64
		for ev, err := range dst.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			vs = append(vs, ev.Version)
		}
		return vs
	}
	assert.Equal(t, []uint64{3, 4, 5}, versions("Trunc-1"))
	assert.Equal(t, []uint64{4, 5}, versions("Again-1"))
	assert.Empty(t, versions("Gone-1"))
	for stream, want := range map[string]uint64{"Trunc-1": 5, "Again-1": 5, "Gone-1": 0} {
		v, err := dst.StreamVersion(ctx, stream)
		require.NoError(t, err)
		assert.Equal(t, want, v, "StreamVersion(%q) in the destination", stream)
	}
	rep, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
	require.NoError(t, err)
	assert.True(t, rep.Equal, "Verify: %+v", rep.Difference)

	// A second copy finds everything there.
	st, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)
	assert.Equal(t, 5, st.Skipped)
}
