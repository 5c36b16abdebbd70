package codec_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMigrateCopiesAsStored: migrate.Copy never upcasts. Old versions
// arrive in the destination as stored, byte for byte with their version
// markers, and the codec still upcasts them when they are read there.
func TestMigrateCopiesAsStored(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t)
	src, dst := storetest.Memory(t), storetest.SQLite(t)
	stream, raw := history(t, src, r)
	_, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)

	var copied []eventstore.RecordedEvent
	for ev, err := range dst.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		copied = append(copied, ev)
	}
	require.Len(t, copied, len(raw))
	for i, ev := range copied {
		assert.Equal(t, string(raw[i].Data), string(ev.Data), "event %d: data as stored", i+1)
		assert.Equal(t, string(raw[i].Metadata), string(ev.Metadata), "event %d: metadata as stored", i+1)
	}
	assert.Equal(t, `{"item":"A-1","qty":1}`, string(copied[0].Data), "version 1 stays version 1")
	assert.Empty(t, copied[0].Metadata)

	ms, err := collect(r.ReadStream(ctx, dst, stream, eventstore.ReadStreamOptions{}))
	require.NoError(t, err)
	require.Len(t, ms, len(wantValues))
	for i, m := range ms {
		assert.Equal(t, wantValues[i], m.Value, "event %d", i+1)
		assert.Equal(t, wantVersions[i], m.SchemaVersion, "event %d", i+1)
	}
}
