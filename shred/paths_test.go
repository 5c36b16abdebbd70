package shred_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/migrate"
	"github.com/eventkit/eventstore/shred"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Shredder is a codec.Transform.
var _ codec.Transform = (*shred.Shredder)(nil)

// The forgotten subject's plaintext, which no read may return once it is
// forgotten, and the other subject's, which every read must.
var (
	forgotten = []string{"Ada Lovelace", "ada@example.com", "12 Analytical Row"}
	kept      = []string{"Bob Babbage", "bob@example.com", "1 Difference Lane"}
)

// fixture is a store holding both subjects' events, sealed through a
// codec registry whose transform is the Shredder, with subject c-1
// forgotten.
type fixture struct {
	store *eventstore.Store
	sh    *shred.Shredder
	reg   *codec.Registry
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := t.Context()
	store := eventstore.New(memory.New(), eventstore.Options{})
	t.Cleanup(func() { store.Close() })
	sh := newShredder(t, store, 0) // the keys live in the store itself
	reg := codec.New(codec.WithTransform(sh))
	require.NoError(t, codec.Register[CustomerRegistered](reg, "CustomerRegistered"))
	require.NoError(t, codec.Register[AddressChanged](reg, "AddressChanged"))
	for stream, vs := range map[string][]any{
		"Customer-1": {
			CustomerRegistered{CustomerID: "c-1", Name: "Ada Lovelace", Email: "ada@example.com", Plan: "gold"},
			AddressChanged{CustomerID: "c-1", Street: "12 Analytical Row"},
		},
		"Customer-2": {
			CustomerRegistered{CustomerID: "c-2", Name: "Bob Babbage", Email: "bob@example.com", Plan: "free"},
			AddressChanged{CustomerID: "c-2", Street: "1 Difference Lane"},
		},
	} {
		for _, v := range vs {
			ev, err := reg.Encode(ctx, stream, v)
			require.NoError(t, err)
			_, err = store.Append(ctx, stream, eventstore.Any, ev)
			require.NoError(t, err)
		}
	}
	require.NoError(t, sh.Forget(ctx, "c-1"))
	return fixture{store: store, sh: sh, reg: reg}
}

// checkOpened checks events opened by some read path: c-1's are erased,
// c-2's read back.
func checkOpened(t *testing.T, evs []eventstore.RecordedEvent) {
	t.Helper()
	require.Len(t, evs, 4)
	for _, ev := range evs {
		text := string(ev.Data) + string(ev.Metadata)
		if ev.StreamID == "Customer-1" {
			assert.True(t, shred.Erased(ev), "%s v%d: not marked erased: %s", ev.StreamID, ev.Version, ev.Data)
			for _, s := range forgotten {
				assert.NotContains(t, text, s)
			}
			continue
		}
		assert.False(t, shred.Erased(ev))
		assert.True(t, strings.Contains(text, kept[0]) || strings.Contains(text, kept[2]), "%s v%d: %s", ev.StreamID, ev.Version, ev.Data)
	}
}

// checkTyped checks messages decoded by a codec read path.
func checkTyped(t *testing.T, ms []codec.Message) {
	t.Helper()
	require.Len(t, ms, 4)
	for _, m := range ms {
		switch v := m.Value.(type) {
		case CustomerRegistered:
			if v.CustomerID == "c-1" {
				assert.Equal(t, CustomerRegistered{Erasure: shred.Erasure{Erased: true}, CustomerID: "c-1", Plan: "gold"}, v)
			} else {
				assert.Equal(t, CustomerRegistered{CustomerID: "c-2", Name: "Bob Babbage", Email: "bob@example.com", Plan: "free"}, v)
			}
		case AddressChanged:
			if m.Event.StreamID == "Customer-1" {
				assert.Equal(t, AddressChanged{Erasure: shred.Erasure{Erased: true}}, v, "protected whole: nothing is left")
			} else {
				assert.Equal(t, AddressChanged{CustomerID: "c-2", Street: "1 Difference Lane"}, v)
			}
		default:
			t.Fatalf("unexpected value %T", m.Value)
		}
	}
}

// untilCaughtUp runs a subscription until it has handled what is stored.
func untilCaughtUp(t *testing.T, run func(ctx context.Context, opts eventstore.SubscribeOptions) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := run(ctx, eventstore.SubscribeOptions{Name: "sub", OnCaughtUp: func(eventstore.SubscriptionState) { cancel() }})
	require.ErrorIs(t, err, context.Canceled)
}

func TestEveryReadPathAfterForget(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()

	t.Run("stored bytes", func(t *testing.T) {
		for ev, err := range f.store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
			require.NoError(t, err)
			for _, s := range append(forgotten, kept...) {
				assert.NotContains(t, string(ev.Data)+string(ev.Metadata), s, "stored in plain text")
			}
		}
	})

	raw := []struct {
		name string
		read func(t *testing.T) []eventstore.RecordedEvent
	}{
		{"Store.ReadStream+Open", func(t *testing.T) (out []eventstore.RecordedEvent) {
			for _, stream := range []string{"Customer-1", "Customer-2"} {
				for ev, err := range f.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
					require.NoError(t, err)
					ev, err = f.sh.Open(ctx, ev)
					require.NoError(t, err)
					out = append(out, ev)
				}
			}
			return out
		}},
		{"Store.ReadAll+OpenAll", func(t *testing.T) (out []eventstore.RecordedEvent) {
			for ev, err := range f.sh.OpenAll(ctx, f.store.ReadAll(ctx, eventstore.ReadAllOptions{})) {
				require.NoError(t, err)
				out = append(out, ev)
			}
			return out
		}},
		{"Store.Subscribe+Handler", func(t *testing.T) (out []eventstore.RecordedEvent) {
			untilCaughtUp(t, func(ctx context.Context, opts eventstore.SubscribeOptions) error {
				return f.store.Subscribe(ctx, opts, f.sh.Handler(func(_ context.Context, ev eventstore.RecordedEvent) error {
					out = append(out, ev)
					return nil
				}))
			})
			return out
		}},
		{"Store.Project+Projection", func(t *testing.T) (out []eventstore.RecordedEvent) {
			untilCaughtUp(t, func(ctx context.Context, opts eventstore.SubscribeOptions) error {
				opts.Name = "projection"
				return f.store.Project(ctx, opts, f.sh.Projection(func(_ context.Context, _ *eventstore.Tx, evs []eventstore.RecordedEvent) error {
					out = append(out, evs...)
					return nil
				}))
			})
			return out
		}},
	}
	for _, p := range raw {
		t.Run(p.name, func(t *testing.T) { checkOpened(t, p.read(t)) })
	}

	typed := []struct {
		name string
		read func(t *testing.T) []codec.Message
	}{
		{"Registry.ReadStream", func(t *testing.T) (out []codec.Message) {
			for _, stream := range []string{"Customer-1", "Customer-2"} {
				for m, err := range f.reg.ReadStream(ctx, f.store, stream, eventstore.ReadStreamOptions{}) {
					require.NoError(t, err)
					out = append(out, m)
				}
			}
			return out
		}},
		{"Registry.ReadAll", func(t *testing.T) (out []codec.Message) {
			for m, err := range f.reg.ReadAll(ctx, f.store, eventstore.ReadAllOptions{}) {
				require.NoError(t, err)
				out = append(out, m)
			}
			return out
		}},
		{"Registry.Decode", func(t *testing.T) (out []codec.Message) {
			for ev, err := range f.store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
				require.NoError(t, err)
				m, err := f.reg.Decode(ctx, ev)
				require.NoError(t, err)
				out = append(out, m)
			}
			return out
		}},
		{"Registry.Handler", func(t *testing.T) (out []codec.Message) {
			untilCaughtUp(t, func(ctx context.Context, opts eventstore.SubscribeOptions) error {
				opts.Name = "typed-sub"
				return f.store.Subscribe(ctx, opts, f.reg.Handler(func(_ context.Context, m codec.Message) error {
					out = append(out, m)
					return nil
				}))
			})
			return out
		}},
		{"Registry.Projection", func(t *testing.T) (out []codec.Message) {
			untilCaughtUp(t, func(ctx context.Context, opts eventstore.SubscribeOptions) error {
				opts.Name = "typed-projection"
				return f.store.Project(ctx, opts, f.reg.Projection(func(_ context.Context, _ *eventstore.Tx, ms []codec.Message) error {
					out = append(out, ms...)
					return nil
				}))
			})
			return out
		}},
	}
	for _, p := range typed {
		t.Run(p.name, func(t *testing.T) { checkTyped(t, p.read(t)) })
	}
}

// TestForgottenAfterMigration copies a store whose subject was forgotten to
// SQLite: the destination's files hold no plaintext of either subject (the
// events are copied sealed), the forgotten one opens erased, and the other
// opens with its key.
func TestForgottenAfterMigration(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	dir := t.TempDir()
	d, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Options{})
	require.NoError(t, err)
	dst := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { dst.Close() })

	_, err = migrate.Copy(ctx, migrate.From(f.store), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)
	// Keys are not events: the copy carried none.
	_, ok, err := dst.LoadKey(ctx, "c-2")
	require.NoError(t, err)
	require.False(t, ok, "migrate.Copy copied a key")
	// CopyKeys moves the keys that still exist.
	require.NoError(t, shred.CopyKeys(ctx, f.store, dst))

	var evs []eventstore.RecordedEvent
	sh := newShredder(t, dst, 0) // the destination's own keys
	for ev, err := range sh.OpenAll(ctx, dst.ReadAll(ctx, eventstore.ReadAllOptions{})) {
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	checkOpened(t, evs)

	// Every byte SQLite wrote: the database, its WAL and shared memory.
	require.NoError(t, dst.Close())
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, fi := range files {
		b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
		require.NoError(t, err)
		for _, s := range append(forgotten, kept...) {
			assert.NotContains(t, string(b), s, "%s holds plaintext", fi.Name())
		}
	}
}
