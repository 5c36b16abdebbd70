package kurrentdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/eventkit/eventstore/internal/testenv"
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

// lastPosition returns the position of the last event in $all, read with
// a client of its own: what a test compares to see that nothing was
// written.
func lastPosition(t *testing.T, url string) kdb.Position {
	t.Helper()
	rs, err := nativeClient(t, url).ReadAll(t.Context(), kdb.ReadAllOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	require.NoError(t, err)
	defer rs.Close()
	ev, err := rs.Recv()
	require.NoError(t, err)
	return ev.OriginalEvent().Position
}

// TestOpenMustExist: with must_exist a KurrentDB store opens when the
// server answers, namespace or not (a namespace is only a name prefix, so
// an unused one is an empty store), and writes nothing. An unreachable
// server is a connection error, not ErrStoreNotFound: it may be down, not
// missing.
func TestOpenMustExist(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	before := lastPosition(t, srv.URL())
	closed := testenv.ClosedAddr(t)
	for _, tc := range []struct {
		name    string
		url     string
		opts    kurrentdb.Options
		wantErr bool
	}{
		{name: "URL", url: srv.URL() + "&must_exist=true"},
		{name: "Option", url: srv.URL(), opts: kurrentdb.Options{MustExist: true}},
		{name: "False", url: srv.URL() + "&must_exist=false"},
		{name: "UnusedNamespace", url: srv.URL() + "&must_exist=true&namespace=never-written"},
		{name: "NothingListening", url: "kurrentdb://" + closed + "?tls=false&must_exist=true", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			d, err := kurrentdb.Open(ctx, tc.url, tc.opts)
			if tc.wantErr {
				require.Error(t, err)
				assert.NotErrorIs(t, err, eventstore.ErrStoreNotFound, "a server that does not answer may be down, not missing")
				assert.Contains(t, err.Error(), closed)
				return
			}
			require.NoError(t, err)
			require.NoError(t, d.Close())
			assert.Equal(t, before, lastPosition(t, srv.URL()), "Open wrote to the server")
		})
	}
}

// TestOpenTimeout: Open makes one round trip to the server and gives up
// after the connect timeout when the server accepts connections but never
// answers, and at once when nothing listens. The test's own deadline is
// far longer than the timeouts: only a hang reaches it.
func TestOpenTimeout(t *testing.T) {
	hole, closed := testenv.SilentServer(t), testenv.ClosedAddr(t)
	for _, tc := range []struct {
		name    string
		url     string
		opts    kurrentdb.Options
		timeout bool   // the error must match context.DeadlineExceeded
		says    string // and mention this
	}{
		{"BlackHoleURL", "kurrentdb://" + hole + "?tls=false&connect_timeout=1", kurrentdb.Options{}, true, "no answer from the server within 1s"},
		{"BlackHoleOption", "kurrentdb://" + hole + "?tls=false", kurrentdb.Options{ConnectTimeout: 300 * time.Millisecond}, true, "no answer from the server within 300ms"},
		{"BlackHoleTLS", "kurrentdb://admin:s3cr3t-pw@" + hole + "?connect_timeout=1", kurrentdb.Options{}, true, "no answer from the server"},
		{"NothingListening", "kurrentdb://" + closed + "?tls=false", kurrentdb.Options{}, false, "cannot be reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			_, err := kurrentdb.Open(ctx, tc.url, tc.opts)
			require.Error(t, err)
			require.NoError(t, ctx.Err(), "Open hung until the test's deadline")
			assert.Equal(t, tc.timeout, errors.Is(err, context.DeadlineExceeded), "matches context.DeadlineExceeded: %v", err)
			assert.Contains(t, err.Error(), tc.says)
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
	t.Run("Cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := kurrentdb.Open(ctx, "kurrentdb://"+hole+"?tls=false", kurrentdb.Options{})
		assert.ErrorIs(t, err, context.Canceled)
	})
}
