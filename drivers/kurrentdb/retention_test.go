package kurrentdb_test

import (
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverClock is a settable clock for the double (kurrentdbtest.Options.Clock).
type serverClock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func (c *serverClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *serverClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestMaxAgeHidesQuietStreams checks what KurrentDB's $maxAge does that the
// portable rule does not require: events that age on a quiet stream are
// hidden from every read at once, ReadAll included, while the stream keeps
// its version (read with an empty append when every event is hidden) and
// appends go on after it.
func TestMaxAgeHidesQuietStreams(t *testing.T) {
	clk := &serverClock{now: time.Now()}
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{Clock: clk.Now})
	store := eventstore.New(openDriver(t, srv.URL(), kurrentdb.Options{}), eventstore.Options{})
	t.Cleanup(func() { store.Close() })
	ctx := t.Context()
	s := "Aging-1"
	_, err := store.Append(ctx, s, eventstore.NoStream, eventstore.NewEvent("Old", []byte(`{}`)), eventstore.NewEvent("Old", []byte(`{}`)))
	require.NoError(t, err)
	require.NoError(t, store.SetStreamRetention(ctx, s, eventstore.Retention{MaxAge: 90 * time.Minute}))
	r, err := store.StreamRetention(ctx, s)
	require.NoError(t, err)
	assert.Equal(t, 90*time.Minute, r.MaxAge)
	clk.Advance(time.Hour)
	_, err = store.Append(ctx, s, eventstore.Exact(2), eventstore.NewEvent("Young", []byte(`{}`)))
	require.NoError(t, err)
	clk.Advance(time.Hour) // the first two are 2 h old, the third 1 h

	versions := func() (stream, all []uint64) {
		for ev, err := range store.ReadStream(ctx, s, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			stream = append(stream, ev.Version)
		}
		for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
			require.NoError(t, err)
			if ev.StreamID == s {
				all = append(all, ev.Version)
			}
		}
		return stream, all
	}
	stream, all := versions()
	assert.Equal(t, []uint64{3}, stream, "$maxAge hides the old events from stream reads")
	assert.Equal(t, []uint64{3}, all, "and the driver from ReadAll")

	clk.Advance(time.Hour)
	stream, all = versions()
	assert.Empty(t, stream, "every event hidden")
	assert.Empty(t, all)
	v, err := store.StreamVersion(ctx, s)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), v, "the stream keeps its version when every event is hidden")
	res, err := store.Append(ctx, s, eventstore.Exact(3), eventstore.NewEvent("Again", []byte(`{}`)))
	require.NoError(t, err)
	assert.Equal(t, uint64(4), res.Version)

	// Removing the setting does not bring the hidden events back.
	require.NoError(t, store.SetStreamRetention(ctx, s, eventstore.Retention{}))
	stream, all = versions()
	assert.Equal(t, []uint64{4}, stream)
	assert.Equal(t, []uint64{4}, all)
}

// TestDeleteIsTheServersSoftDelete checks the metadata the driver leaves:
// a soft delete ($tb = 2^63−1) that the native client sees as one, and a
// recreated stream whose $tb is the old last revision plus one.
func TestDeleteIsTheServersSoftDelete(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	d := openDriver(t, srv.URL(), kurrentdb.Options{})
	store := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { store.Close() })
	ctx := t.Context()
	var c *kdb.Client
	require.True(t, store.As(&c))
	s := "Soft-1"
	_, err := store.Append(ctx, s, eventstore.NoStream, eventstore.NewEvent("A", []byte(`{}`)), eventstore.NewEvent("B", []byte(`{}`)))
	require.NoError(t, err)
	require.NoError(t, store.TruncateStream(ctx, s, 2))
	m, err := c.GetStreamMetadata(ctx, s, kdb.ReadStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, m.TruncateBefore())
	assert.Equal(t, uint64(1), *m.TruncateBefore(), "TruncateStream before version 2 is $tb 1")

	require.NoError(t, store.DeleteStream(ctx, s, eventstore.Exact(2)))
	rs, err := c.ReadStream(ctx, s, kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	_, err = rs.Recv()
	rs.Close()
	var kerr *kdb.Error
	require.ErrorAs(t, err, &kerr)
	assert.Equal(t, kdb.ErrorCodeResourceNotFound, kerr.Code(), "the native client sees a soft-deleted stream")

	res, err := store.Append(ctx, s, eventstore.Any, eventstore.NewEvent("C", []byte(`{}`)))
	require.NoError(t, err)
	assert.Equal(t, uint64(3), res.Version)
	m, err = c.GetStreamMetadata(ctx, s, kdb.ReadStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, m.TruncateBefore())
	assert.Equal(t, uint64(2), *m.TruncateBefore(), "recreated by the server: $tb is the old last revision plus one")
}
