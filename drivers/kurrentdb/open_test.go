package kurrentdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenEveryScheme(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	for _, scheme := range []string{"kurrentdb", "esdb", "kdb", "kurrent", "KurrentDB"} {
		s, err := eventstore.Open(t.Context(), scheme+"://"+srv.Addr()+"?tls=false")
		require.NoError(t, err, scheme)
		_, err = s.Append(t.Context(), "Order-"+scheme, eventstore.NoStream, newEvents(1)...)
		assert.NoError(t, err, scheme)
		var c *kdb.Client
		assert.True(t, s.As(&c), "As(**kurrentdb.Client)")
		assert.NotNil(t, c)
		require.NoError(t, s.Close())
	}
}

func TestNewLeavesTheClientOpen(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	c := nativeClient(t, srv.URL())
	d, err := kurrentdb.New(c, kurrentdb.Options{Namespace: "app"})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	_, err = s.Append(t.Context(), "Order-1", eventstore.NoStream, newEvents(1)...)
	require.NoError(t, err)
	var got *kdb.Client
	require.True(t, s.As(&got))
	assert.Same(t, c, got)
	require.NoError(t, s.Close())
	_, err = c.AppendToStream(t.Context(), "app/Order-1", kdb.AppendToStreamOptions{StreamState: kdb.StreamRevision{Value: 0}},
		kdb.EventData{EventType: "After", ContentType: kdb.ContentTypeJson})
	assert.NoError(t, err, "the client still works, and the stream is stored with the namespace prefix")

	_, err = kurrentdb.New(nil, kurrentdb.Options{})
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
}

func TestNewFromConfig(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	cfg, err := kdb.ParseConnectionString(srv.URL())
	require.NoError(t, err)
	d, err := kurrentdb.NewFromConfig(cfg, kurrentdb.Options{MaxAppendSize: 256 << 20})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	defer s.Close()
	_, err = s.Append(t.Context(), "Order-1", eventstore.NoStream, newEvents(1)...)
	require.NoError(t, err)
	assert.Equal(t, 256<<20, s.Limits().MaxAppendSize)

	_, err = kurrentdb.NewFromConfig(nil, kurrentdb.Options{})
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
}

// Stores in different namespaces of one server see only their own
// streams, snapshots and checkpoints; a store without a namespace sees
// every user stream.
func TestNamespacesAreIsolated(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	a := newStore(t, srv.URL(), kurrentdb.Options{Namespace: "a"})
	b := newStore(t, srv.URL()+"&namespace=b", kurrentdb.Options{})
	all := newStore(t, srv.URL(), kurrentdb.Options{})
	ctx := t.Context()
	for _, s := range []*eventstore.Store{a, b} {
		_, err := s.Append(ctx, "Order-1", eventstore.NoStream, newEvents(2)...)
		require.NoError(t, err)
		require.NoError(t, s.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: 2, Data: []byte("s")}))
	}
	_, err := a.Append(ctx, "Order-1", eventstore.Exact(2), newEvents(1)...)
	require.NoError(t, err)

	streams := func(s *eventstore.Store, f eventstore.Filter, backwards bool) map[string]int {
		got := map[string]int{}
		for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{Filter: f, Backwards: backwards}) {
			require.NoError(t, err)
			got[ev.StreamID]++
		}
		return got
	}
	cat := eventstore.Filter{Categories: []string{"Order"}}
	for _, backwards := range []bool{false, true} {
		assert.Equal(t, map[string]int{"Order-1": 3}, streams(a, eventstore.Filter{}, backwards))
		assert.Equal(t, map[string]int{"Order-1": 2}, streams(b, cat, backwards))
		assert.Equal(t, map[string]int{"a/Order-1": 3, "b/Order-1": 2}, streams(all, eventstore.Filter{}, backwards))
	}
	for s, want := range map[*eventstore.Store]uint64{a: 3, b: 2, all: 0} {
		v, err := s.StreamVersion(ctx, "Order-1")
		require.NoError(t, err)
		assert.Equal(t, want, v)
	}
	_, ok, err := all.LoadSnapshot(ctx, "Order-1")
	require.NoError(t, err)
	assert.False(t, ok, "another namespace's snapshot")
}

// $all holds events a portable reader must not see: system streams and
// types, stream metadata, links, tombstones, the driver's own snapshots
// and checkpoints. ReadAll and subscriptions skip them all.
func TestSystemAndInternalEventsAreHidden(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{}) // seeded with system events
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	c := nativeClient(t, srv.URL())
	ctx := t.Context()
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, newEvents(2)...)
	require.NoError(t, err)
	var m kdb.StreamMetadata
	m.SetMaxAge(time.Hour)
	_, err = c.SetStreamMetadata(ctx, "Order-1", kdb.AppendToStreamOptions{}, m)
	require.NoError(t, err)
	_, err = c.TombstoneStream(ctx, "Other-1", kdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	require.NoError(t, s.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: 2, Data: []byte("state")}))
	_, err = s.Append(ctx, "Order-1", eventstore.Exact(2), newEvents(1)...)
	require.NoError(t, err)

	var got []string
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		got = append(got, ev.StreamID)
	}
	assert.Equal(t, []string{"Order-1", "Order-1", "Order-1"}, got)

	h := subscribeStore(t, s, eventstore.SubscribeOptions{Name: "projection"})
	for v := uint64(1); v <= 3; v++ {
		assert.Equal(t, v, h.next(t).Version)
	}
	_, err = c.AppendToStream(ctx, "$sys-1", kdb.AppendToStreamOptions{}, kdb.EventData{EventType: "Internal", ContentType: kdb.ContentTypeJson})
	require.NoError(t, err)
	_, err = s.Append(ctx, "Order-1", eventstore.Exact(3), newEvents(1)...)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), h.next(t).Version, "live, past a system event")
	h.none(t)
}

// Snapshots and checkpoints live in streams of their own with $maxCount 1,
// so the server keeps only the latest.
func TestInternalStreamsKeepOnlyTheLatest(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := newStore(t, srv.URL(), kurrentdb.Options{Namespace: "ns"})
	c := nativeClient(t, srv.URL())
	ctx := context.Background()
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, newEvents(3)...)
	require.NoError(t, err)
	for v := uint64(1); v <= 3; v++ {
		require.NoError(t, s.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: v, Data: []byte{byte(v)}}))
	}
	require.NoError(t, s.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: 2, Data: []byte("old")}), "an older one is ignored")
	snap, ok, err := s.LoadSnapshot(ctx, "Order-1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, eventstore.Snapshot{Version: 3, Data: []byte{3}}, snap)

	name := kurrentdb.SnapshotStream("ns", "Order-1")
	meta, err := c.GetStreamMetadata(ctx, name, kdb.ReadStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, meta.MaxCount())
	assert.Equal(t, uint64(1), *meta.MaxCount())
	rs, err := c.ReadStream(ctx, name, kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	defer rs.Close()
	_, err = rs.Recv()
	require.NoError(t, err)
	_, err = rs.Recv()
	assert.Error(t, err, "one snapshot left in the stream")
	assert.Equal(t, "ns/\x1fsnapshot:Order-1", name)
	assert.Equal(t, "\x1fcheckpoint:$projection[0/2]", kurrentdb.CheckpointStream("", eventstore.CheckpointName("projection", eventstore.Group{Member: 0, Size: 2})))
}
