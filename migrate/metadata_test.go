package migrate_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
)

// importedOtherMetadata imports into s a stream whose metadata is not a JSON
// object (as a KurrentDB history or another library's holds) and returns it.
func importedOtherMetadata(t *testing.T, s *eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	at := time.Date(2018, 3, 4, 5, 6, 7, 0, time.UTC)
	mds := []struct {
		ct eventstore.ContentType
		md string
	}{
		{eventstore.JSON, `{"a":1}`},
		{eventstore.JSON, `null`},
		{eventstore.JSON, `[1,2]`},
		{eventstore.Binary, "\x00\xff\x00"},
		{eventstore.Binary, `null`},
	}
	evs := make([]eventstore.RecordedEvent, len(mds))
	for i, m := range mds {
		evs[i] = eventstore.RecordedEvent{StreamID: "Legacy-1", Version: uint64(i) + 1, ID: uuid.New(), Type: "Happened",
			Data: []byte(`{}`), Metadata: []byte(m.md), MetadataContentType: m.ct, RecordedAt: at.Add(time.Duration(i) * time.Second)}
	}
	require.NoError(t, s.Import(t.Context(), evs))
	return evs
}

// Copy keeps metadata that is not a JSON object, and its content type, into
// a destination that imports; Verify compares both; a destination that
// only appends refuses such an event with ErrNotSupported, naming it.
func TestCopyMetadataThatIsNotAnObject(t *testing.T) {
	t.Parallel()
	src := storetest.Memory(t)
	want := importedOtherMetadata(t, src)

	for _, dst := range []struct {
		name string
		open func(testing.TB) *eventstore.Store
	}{{"memory", storetest.Memory}, {"sqlite", storetest.SQLite}} {
		t.Run(dst.name, func(t *testing.T) {
			d := dst.open(t)
			_, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(d), migrate.Options{})
			require.NoError(t, err)
			i := 0
			for ev, err := range d.ReadStream(t.Context(), "Legacy-1", eventstore.ReadStreamOptions{}) {
				require.NoError(t, err)
				assert.Equal(t, string(want[i].Metadata), string(ev.Metadata), "version %d: metadata", ev.Version)
				assert.Equal(t, want[i].MetadataContentType, ev.MetadataContentType, "version %d: metadata content type", ev.Version)
				assert.True(t, want[i].RecordedAt.Equal(ev.RecordedAt), "version %d: recorded time", ev.Version)
				i++
			}
			require.Equal(t, len(want), i)
			r, err := migrate.Verify(t.Context(), migrate.From(src), migrate.To(d))
			require.NoError(t, err)
			assert.True(t, r.Equal && r.RecordedTimesEqual, "%s", r)
		})
	}

	t.Run("verify sees the content type", func(t *testing.T) {
		d := storetest.Memory(t)
		changed := append([]eventstore.RecordedEvent(nil), want...)
		changed[4].MetadataContentType = eventstore.JSON // the same bytes, `null`, as JSON
		require.NoError(t, d.Import(t.Context(), changed))
		r, err := migrate.Verify(t.Context(), migrate.From(src), migrate.To(d))
		require.NoError(t, err)
		require.False(t, r.Equal)
		assert.NotEqual(t, r.SourceDigest, r.DestinationDigest)
		assert.Equal(t, migrate.Difference{Stream: "Legacy-1", Version: 5, What: "metadata content type"}, *r.Difference)
		_, err = migrate.Copy(t.Context(), migrate.From(src), migrate.To(d), migrate.Options{})
		var ce *migrate.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "metadata content type", ce.What)
	})

	t.Run("kurrentdb", func(t *testing.T) {
		d := newKurrentDB(t)
		stats, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(d), migrate.Options{})
		require.ErrorIs(t, err, eventstore.ErrNotSupported)
		assert.ErrorContains(t, err, `stream "Legacy-1" version 2`)
		assert.False(t, errors.Is(err, eventstore.ErrInvalidPayload))
		assert.Zero(t, stats.Copied, "the run holding it is refused whole")
	})
}
