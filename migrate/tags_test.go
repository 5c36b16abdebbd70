package migrate_test

import (
	"context"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// appendsTagged is the memory driver without its Importer but with its
// tags: Copy appends, and the appends must carry the tags.
type appendsTagged struct {
	driver.Driver
	q driver.QueryReader
}

func (d appendsTagged) ReadQuery(ctx context.Context, q driver.QueryPage) ([]driver.RecordedEvent, error) {
	return d.q.ReadQuery(ctx, q)
}

// importsUntagged is the memory driver that imports but keeps no tags.
type importsUntagged struct {
	driver.Driver
	driver.Importer
}

func newAppendsTagged() driver.Driver {
	m := memory.New()
	return appendsTagged{noImport{m}, m}
}

func newImportsUntagged() driver.Driver {
	m := memory.New()
	return importsUntagged{noImport{m}, m}
}

// tagged returns an event of type typ with tags.
func tagged(typ string, tags ...string) eventstore.Event {
	ev := eventstore.NewEvent(typ, []byte(`{}`))
	ev.Tags = tags
	return ev
}

// taggedSource returns a memory store whose log interleaves two streams,
// with tagged and untagged events; the first tagged one is "B-1" version 1.
func taggedSource(t *testing.T) *eventstore.Store {
	ctx := t.Context()
	src := storetest.Memory(t)
	_, err := src.Append(ctx, "A-1", eventstore.NoStream, tagged("Opened"), tagged("Noted"))
	require.NoError(t, err)
	_, err = src.AppendMulti(ctx, eventstore.MultiAppend{Records: []eventstore.Record{
		{Stream: "B-1", Event: tagged("Moved", "account:b", "account:a")},
		{Stream: "A-1", Event: tagged("Moved", "account:a")},
		{Stream: "B-1", Event: tagged("Noted")},
	}})
	require.NoError(t, err)
	return src
}

// TestCopyKeepsTags copies tagged events by import and by append: the
// destination holds them with their tags in order, Verify finds the stores
// equal, and reads by query agree.
func TestCopyKeepsTags(t *testing.T) {
	for _, tc := range []struct {
		name             string
		dst              func() driver.Driver
		imports, appends int
	}{
		{"import", func() driver.Driver { return memory.New() }, 1, 0},
		{"append", newAppendsTagged, 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			src := taggedSource(t)
			dst := storetest.Wrap(t, tc.dst())
			st, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
			require.NoError(t, err)
			assert.Equal(t, 5, st.Copied)
			assert.Equal(t, tc.imports, st.Imports)
			assert.Equal(t, tc.appends, st.Appends)
			requireEqualStores(t, src, dst)
			want := readAll(t, src)
			got := readAll(t, dst)
			require.Len(t, got, len(want))
			for i := range want {
				assert.Equal(t, want[i].Tags, got[i].Tags, "event %d (%s@%d)", i, want[i].StreamID, want[i].Version)
			}
			q := eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"account:a"}}}}
			var n int
			for ev, err := range dst.ReadQuery(ctx, q, eventstore.ReadQueryOptions{}) {
				require.NoError(t, err)
				assert.Contains(t, ev.Tags, "account:a")
				n++
			}
			assert.Equal(t, 2, n)

			// A second copy finds everything there, tags compared.
			st, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
			require.NoError(t, err)
			assert.Equal(t, 0, st.Copied)
			assert.Equal(t, 5, st.Skipped)
		})
	}
}

// TestCopyTagsToDestinationWithoutTags copies a tagged source to
// destinations whose drivers keep no tags: Copy fails with ErrNotSupported
// naming the first tagged event, and writes nothing, not even the untagged
// events before it; a dry run says the same.
func TestCopyTagsToDestinationWithoutTags(t *testing.T) {
	for _, tc := range []struct {
		name string
		dst  func() driver.Driver
	}{
		{"imports", newImportsUntagged},
		{"appends", func() driver.Driver { return noImport{memory.New()} }},
	} {
		for _, dry := range []bool{false, true} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := t.Context()
				src := taggedSource(t)
				dst := storetest.Wrap(t, tc.dst())
				_, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{DryRun: dry})
				require.ErrorIs(t, err, eventstore.ErrNotSupported)
				assert.Contains(t, err.Error(), `destination: cannot keep event tags: source stream "B-1" version 1`)
				assert.Empty(t, readAll(t, dst))
			})
		}
	}
	t.Run("untagged source", func(t *testing.T) {
		ctx := t.Context()
		src := storetest.Memory(t)
		_, err := src.Append(ctx, "A-1", eventstore.NoStream, tagged("Opened"))
		require.NoError(t, err)
		dst := storetest.Wrap(t, newImportsUntagged())
		_, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
		require.NoError(t, err)
		requireEqualStores(t, src, dst)
	})
}

// TestVerifyComparesTags finds stores whose events differ only in their
// tags (order included) different, naming "tags", with different digests.
func TestVerifyComparesTags(t *testing.T) {
	ev := tagged("Moved", "account:a", "account:b")
	for _, tc := range []struct {
		name string
		tags []string
	}{
		{"missing", nil},
		{"reordered", []string{"account:b", "account:a"}},
		{"extra", []string{"account:a", "account:b", "account:c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			a, b := storetest.Memory(t), storetest.Memory(t)
			_, err := a.Append(ctx, "S-1", eventstore.NoStream, ev)
			require.NoError(t, err)
			other := ev
			other.Tags = tc.tags
			_, err = b.Append(ctx, "S-1", eventstore.NoStream, other)
			require.NoError(t, err)
			r, err := migrate.Verify(ctx, migrate.From(a), migrate.To(b))
			require.NoError(t, err)
			require.False(t, r.Equal)
			assert.NotEqual(t, r.SourceDigest, r.DestinationDigest)
			assert.Equal(t, migrate.Difference{Stream: "S-1", Version: 1, What: "tags"}, *r.Difference)
		})
	}
}
