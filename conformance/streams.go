package conformance

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/listcheck"
)

// Rules of docs/semantics.md "Listing streams".

func init() { ruleSets = append(ruleSets, streamListRules) }

func streamListRules() []rule {
	return []rule{
		{name: "ListStreamsPagesEveryStreamOnce", run: withCapability[driver.StreamLister]("ListStreamsNotSupported", testListStreamsPages)},
		{name: "ListStreamsPrefixIsLiteral", run: withCapability[driver.StreamLister]("ListStreamsNotSupported", testListStreamsLiteralPrefix)},
		{name: "ListStreamsRejectsBadInput", run: withCapability[driver.StreamLister]("ListStreamsNotSupported", testListStreamsBadInput)},
		{name: "ListStreamsNotSupported", run: testListStreamsNotSupported},
	}
}

// listCategory returns a category name no other rule uses.
func listCategory() string { return listcheck.Category() }

// listAll pages through a listing and returns every stream it saw with its
// version, failing on a stream seen twice or a page too long.
func listAll(t *testing.T, f *fixture, opts eventstore.ListStreamsOptions) map[string]uint64 {
	t.Helper()
	seen := map[string]uint64{}
	for _, s := range listcheck.ListAll(t, f.store, opts) {
		seen[s.ID] = s.Version
	}
	return seen
}

// testListStreamsPages writes streams of one category (its own stream and
// seven "cat-…" ones), one of a category that shares its first letters,
// and one elsewhere, and lists them by category and by prefix in pages of
// 1, 2 and 100: every stream comes exactly once, with its version.
func testListStreamsPages(t *testing.T, f *fixture) {
	cat := listCategory()
	inCategory := map[string]uint64{cat: 2}
	for i := range 7 {
		inCategory[cat+"-"+string(rune('a'+i))] = uint64(i%3 + 1)
	}
	lookalike := map[string]uint64{cat + "x-1": 1}
	elsewhere := map[string]uint64{stream("Other"): 1}
	for _, m := range []map[string]uint64{inCategory, lookalike, elsewhere} {
		for id, n := range m {
			events := make([]eventstore.Event, n)
			for i := range events {
				events[i] = eventstore.NewEvent("Listed", []byte(`{}`))
			}
			if _, err := f.store.Append(f.ctx, id, eventstore.NoStream, events...); err != nil {
				t.Fatalf("Append(%q): %v", id, err)
			}
		}
	}
	withPrefix := maps.Clone(inCategory)
	maps.Copy(withPrefix, lookalike)
	dashed := maps.Clone(inCategory)
	delete(dashed, cat)
	for _, limit := range []int{1, 2, 100} {
		for _, c := range []struct {
			opts eventstore.ListStreamsOptions
			want map[string]uint64
		}{
			{eventstore.ListStreamsOptions{Category: cat, Limit: limit}, inCategory},
			{eventstore.ListStreamsOptions{Prefix: cat, Limit: limit}, withPrefix},
			{eventstore.ListStreamsOptions{Prefix: cat + "-", Limit: limit}, dashed},
		} {
			if got := listAll(t, f, c.opts); !maps.Equal(got, c.want) {
				t.Errorf("ListStreams(%+v) over all pages:\n got %v\nwant %v", c.opts, got, c.want)
			}
		}
	}
	all := listAll(t, f, eventstore.ListStreamsOptions{Limit: 3})
	for _, m := range []map[string]uint64{inCategory, lookalike, elsewhere} {
		for id, v := range m {
			if all[id] != v {
				t.Errorf("ListStreams without a prefix: stream %q: want version %d, got %d (listed: %v)", id, v, all[id], all[id] != 0)
			}
		}
	}
	if got := listAll(t, f, eventstore.ListStreamsOptions{Category: listCategory()}); len(got) != 0 {
		t.Errorf("ListStreams of a category without streams: want none, got %v", got)
	}
}

// testListStreamsLiteralPrefix checks that a prefix is matched byte for
// byte: SQL pattern characters and quotes in it match only themselves.
func testListStreamsLiteralPrefix(t *testing.T, f *fixture) {
	cat := listCategory()
	ids := []string{cat + "_u-1", cat + "au-1", cat + "%p-1", cat + "Zp-1", cat + "'q-1", cat + `\b-1`, cat + "\\\\-1"}
	for _, id := range ids {
		if _, err := f.store.Append(f.ctx, id, eventstore.NoStream, eventstore.NewEvent("Listed", nil)); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
	}
	for _, c := range []struct{ prefix, want string }{
		{cat + "_", cat + "_u-1"},
		{cat + "%", cat + "%p-1"},
		{cat + "'", cat + "'q-1"},
		{cat + `\b`, cat + `\b-1`},
		{cat + `\\`, cat + `\\-1`},
	} {
		got := slices.Sorted(maps.Keys(listAll(t, f, eventstore.ListStreamsOptions{Prefix: c.prefix, Limit: 2})))
		if !slices.Equal(got, []string{c.want}) {
			t.Errorf("ListStreams(Prefix %q): want [%s], got %q", c.prefix, c.want, got)
		}
	}
}

// testListStreamsBadInput checks the arguments a listing refuses.
func testListStreamsBadInput(t *testing.T, f *fixture) {
	cat := listCategory()
	if _, err := f.store.Append(f.ctx, cat+"-1", eventstore.NoStream, eventstore.NewEvent("Listed", nil)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	for _, c := range []struct {
		name string
		opts eventstore.ListStreamsOptions
		want error
	}{
		{"negative limit", eventstore.ListStreamsOptions{Limit: -1}, eventstore.ErrInvalidArgument},
		{"limit over the maximum", eventstore.ListStreamsOptions{Limit: eventstore.MaxListStreams + 1}, eventstore.ErrInvalidArgument},
		{"prefix and category", eventstore.ListStreamsOptions{Prefix: cat, Category: cat}, eventstore.ErrInvalidArgument},
		{"category with a dash", eventstore.ListStreamsOptions{Category: cat + "-1"}, eventstore.ErrInvalidArgument},
		{"system prefix", eventstore.ListStreamsOptions{Prefix: "$all"}, eventstore.ErrInvalidStreamID},
		{"invalid UTF-8", eventstore.ListStreamsOptions{Prefix: "Lst\xff"}, eventstore.ErrInvalidStreamID},
		{"NUL byte", eventstore.ListStreamsOptions{Prefix: "Lst\x00"}, eventstore.ErrInvalidStreamID},
		{"a category cursor that is not one", eventstore.ListStreamsOptions{Category: cat, Cursor: "not-a-cursor"}, eventstore.ErrInvalidCursor},
		{"a cursor of another prefix", eventstore.ListStreamsOptions{Prefix: cat, Cursor: "Zzz-not-" + cat}, eventstore.ErrInvalidCursor},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.store.ListStreams(f.ctx, c.opts); !errors.Is(err, c.want) {
				t.Errorf("ListStreams(%+v): want %v, got %v", c.opts, c.want, err)
			}
		})
	}
}

// testListStreamsNotSupported checks that a driver without
// driver.StreamLister makes ListStreams fail with ErrNotSupported.
func testListStreamsNotSupported(t *testing.T, f *fixture) {
	if _, ok := f.driver.(driver.StreamLister); ok {
		t.Skip("the driver implements driver.StreamLister: the other listing rules apply")
	}
	if _, err := f.store.ListStreams(f.ctx, eventstore.ListStreamsOptions{}); !errors.Is(err, eventstore.ErrNotSupported) {
		t.Errorf("ListStreams without driver.StreamLister: want ErrNotSupported, got %v", err)
	}
}
