package eventstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	_ "github.com/eventkit/eventstore/drivers/memory"
	_ "github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckpointName(t *testing.T) {
	tests := []struct {
		name  string
		group eventstore.Group
		want  string
	}{
		{"orders", eventstore.Group{}, "orders"},
		{"orders", eventstore.Group{Member: 0, Size: 1}, "orders"},
		{"orders", eventstore.Group{Member: 0, Size: 2}, "$orders[0/2]"},
		{"orders", eventstore.Group{Member: 11, Size: 12}, "$orders[11/12]"},
		{"orders[0/2]", eventstore.Group{}, "orders[0/2]"},
		{"orders[0/2]", eventstore.Group{Member: 1, Size: 2}, "$orders[0/2][1/2]"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		got := eventstore.CheckpointName(tc.name, tc.group)
		assert.Equal(t, tc.want, got, "CheckpointName(%q, %+v)", tc.name, tc.group)
		sub := fmt.Sprintf("%q %+v", tc.name, tc.group)
		if tc.group.Size <= 1 {
			sub = fmt.Sprintf("%q", tc.name) // no group and a group of 1 are the same subscription
		}
		if other, dup := seen[got]; dup && other != sub {
			t.Errorf("subscriptions %s and %s share the checkpoint %q", other, sub, got)
		}
		seen[got] = sub
	}
}

// FuzzCheckpointName checks that two different durable subscriptions with
// valid options never share a checkpoint name.
func FuzzCheckpointName(f *testing.F) {
	f.Add("a", uint8(0), uint8(2), "a[0/2]", uint8(0), uint8(0))
	f.Add("a[1/3]", uint8(0), uint8(2), "a", uint8(1), uint8(3))
	f.Add("a", uint8(1), uint8(12), "a[1/1]", uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, n1 string, m1, s1 uint8, n2 string, m2, s2 uint8) {
		g1, g2 := normal(m1, s1), normal(m2, s2)
		if eventstore.ValidateStreamID(n1) != nil || eventstore.ValidateStreamID(n2) != nil || n1 == n2 && g1 == g2 {
			return // subscription names follow the stream ID rules
		}
		if c := eventstore.CheckpointName(n1, g1); c == eventstore.CheckpointName(n2, g2) {
			t.Errorf("subscriptions %q %+v and %q %+v share the checkpoint %q", n1, g1, n2, g2, c)
		}
	})
}

// normal makes a valid group from two fuzzed numbers: no group when size
// is below 2.
func normal(member, size uint8) eventstore.Group {
	if size < 2 {
		return eventstore.Group{}
	}
	return eventstore.Group{Member: int(member) % int(size), Size: int(size)}
}

// checkpointStores opens a fresh store on each driver that keeps
// checkpoints: memory, and SQLite in a file.
func checkpointStores(t *testing.T) map[string]*eventstore.Store {
	stores := map[string]*eventstore.Store{}
	for name, url := range map[string]string{
		"memory": "memory://",
		"sqlite": "sqlite://" + filepath.Join(t.TempDir(), "events.db"),
	} {
		s, err := eventstore.Open(t.Context(), url)
		require.NoError(t, err, url)
		t.Cleanup(func() { assert.NoError(t, s.Close()) })
		stores[name] = s
	}
	return stores
}

// handle runs a durable subscription until it has handled n events, stops
// it (so it saves its checkpoint) and returns what it handled.
func handle(t *testing.T, s *eventstore.Store, opts eventstore.SubscribeOptions, n int) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []eventstore.RecordedEvent
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, opts, func(_ context.Context, ev eventstore.RecordedEvent) error {
			got = append(got, ev)
			if len(got) == n {
				cancel()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("subscription %q %+v: handled %d events, want %d (it resumed after them?)", opts.Name, opts.Group, len(got), n)
	}
	return got
}

// appendRound appends one event to each of n streams and returns them, in
// log order.
func appendRound(t *testing.T, s *eventstore.Store, n int, exp eventstore.ExpectedVersion) []eventstore.RecordedEvent {
	t.Helper()
	for i := range n {
		_, err := s.Append(t.Context(), fmt.Sprintf("Order-%d", i), exp, eventstore.NewEvent("Placed", nil))
		require.NoError(t, err)
	}
	var log []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		log = append(log, ev)
	}
	return log[len(log)-n:]
}

func share(log []eventstore.RecordedEvent, g eventstore.Group) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, ev := range log {
		if eventstore.GroupMember(ev.StreamID, g.Size) == g.Member {
			out = append(out, ev)
		}
	}
	return out
}

func ids(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprintf("%s@%d", ev.StreamID, ev.Version)
	}
	return out
}

func TestSubscribeGroupMemberHasItsOwnCheckpoint(t *testing.T) {
	for driver, s := range checkpointStores(t) {
		t.Run(driver, func(t *testing.T) {
			g := eventstore.Group{Member: 0, Size: 2}
			member := eventstore.SubscribeOptions{Name: "proj", Group: g}
			// A valid ungrouped name, equal to the member's checkpoint name
			// before it had a "$".
			lookalike := eventstore.SubscribeOptions{Name: "proj[0/2]"}

			first := appendRound(t, s, 12, eventstore.NoStream)
			require.NotEmpty(t, share(first, g))
			assert.Equal(t, ids(share(first, g)), ids(handle(t, s, member, len(share(first, g)))))
			assert.Equal(t, ids(first), ids(handle(t, s, lookalike, len(first))),
				"an ungrouped subscription named like the member's old checkpoint starts from the beginning")

			second := appendRound(t, s, 12, eventstore.Exact(1))
			assert.Equal(t, ids(second), ids(handle(t, s, lookalike, len(second))))
			assert.Equal(t, ids(share(second, g)), ids(handle(t, s, member, len(share(second, g)))),
				"the member resumes after its own checkpoint, not the other subscription's")
		})
	}
}

func TestSubscribeGroupMemberResumesFromOldCheckpoint(t *testing.T) {
	for driver, s := range checkpointStores(t) {
		t.Run(driver, func(t *testing.T) {
			g := eventstore.Group{Member: 1, Size: 3}
			member := eventstore.SubscribeOptions{Name: "proj", Group: g}
			// What a member saved before its checkpoint name had a "$":
			// the checkpoint of an ungrouped subscription with that name.
			old := eventstore.SubscribeOptions{Name: "proj[1/3]"}

			first := appendRound(t, s, 12, eventstore.NoStream)
			done, rest := first[:5], first[5:]
			require.NotEmpty(t, share(done, g), "the member handled some events before the upgrade")
			require.NotEmpty(t, share(rest, g))
			handle(t, s, old, len(done))
			assert.Equal(t, ids(share(rest, g)), ids(handle(t, s, member, len(share(rest, g)))),
				"the member resumes after the checkpoint saved under the old name")

			// The old name is read once: the member now keeps its own.
			second := appendRound(t, s, 12, eventstore.Exact(1))
			handle(t, s, old, len(rest)+len(second))
			assert.Equal(t, ids(share(second, g)), ids(handle(t, s, member, len(share(second, g)))),
				"the member resumes after its own checkpoint once it has one")
		})
	}
}
