package kurrentdbtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the stream metadata rules of shared/kurrentdb-semantics.md §8
// (the server's IndexReader.ReadStreamEvents{Forward,Backward}Internal and
// StreamMetadata.FromJsonReader): what $tb, $maxCount and $maxAge hide
// from stream reads, and that $all ignores them.

// clock is a settable server clock for Options.Clock.
type clock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// setMetadata replaces a stream's metadata.
func setMetadata(t testing.TB, c *kdb.Client, stream string, m kdb.StreamMetadata) {
	t.Helper()
	_, err := c.SetStreamMetadata(context.Background(), stream, kdb.AppendToStreamOptions{}, m)
	require.NoError(t, err)
}

// readBackwards reads a stream backwards from its end.
func readBackwards(t testing.TB, c *kdb.Client, stream string) []*kdb.RecordedEvent {
	t.Helper()
	got, err := readStream(t, c, stream, kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, 100)
	require.NoError(t, err)
	return got
}

func revisions(evs []*kdb.RecordedEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.EventNumber
	}
	return out
}

func TestRuleMetadataHidesFromStreamReads(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	srv := Start(t, Options{Clock: clk.Now})
	c := newClient(t, srv)
	// Revisions 0–2 recorded an hour ago, 3–5 now.
	appendEvents(t, c, "Meta-1", kdb.NoStream{}, events(3)...)
	clk.Advance(time.Hour)
	appendEvents(t, c, "Meta-1", kdb.StreamRevision{Value: 2}, events(3)...)

	for _, tc := range []struct {
		name                 string
		set                  func(*kdb.StreamMetadata)
		forwards, backwards  []uint64
		fromRevision4Forward []uint64
	}{
		{"TruncateBefore", func(m *kdb.StreamMetadata) { m.SetTruncateBefore(2) }, []uint64{2, 3, 4, 5}, []uint64{5, 4, 3, 2}, []uint64{4, 5}},
		{"TruncateBeforePastTheEnd", func(m *kdb.StreamMetadata) { m.SetTruncateBefore(10) }, []uint64{}, []uint64{}, []uint64{}},
		{"MaxCount", func(m *kdb.StreamMetadata) { m.SetMaxCount(2) }, []uint64{4, 5}, []uint64{5, 4}, []uint64{4, 5}},
		{"MaxCountAndTruncateBeforeTakeTheHigher", func(m *kdb.StreamMetadata) { m.SetMaxCount(5); m.SetTruncateBefore(3) }, []uint64{3, 4, 5}, []uint64{5, 4, 3}, []uint64{4, 5}},
		{"MaxAge", func(m *kdb.StreamMetadata) { m.SetMaxAge(30 * time.Minute) }, []uint64{3, 4, 5}, []uint64{5, 4, 3}, []uint64{4, 5}},
		{"MaxAgeAndMaxCount", func(m *kdb.StreamMetadata) { m.SetMaxAge(30 * time.Minute); m.SetMaxCount(1) }, []uint64{5}, []uint64{5}, []uint64{5}},
		{"MaxAgeExpiresEverything", func(m *kdb.StreamMetadata) { m.SetMaxAge(time.Second) }, nil, nil, nil},
		// StreamMetadata.FromJsonReader drops non-positive values.
		{"MaxCountZeroIsIgnored", func(m *kdb.StreamMetadata) { m.SetMaxCount(0) }, []uint64{0, 1, 2, 3, 4, 5}, []uint64{5, 4, 3, 2, 1, 0}, []uint64{4, 5}},
		{"MaxAgeZeroIsIgnored", func(m *kdb.StreamMetadata) { m.SetMaxAge(0) }, []uint64{0, 1, 2, 3, 4, 5}, []uint64{5, 4, 3, 2, 1, 0}, []uint64{4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m kdb.StreamMetadata
			tc.set(&m)
			if tc.name == "MaxAgeExpiresEverything" {
				clk.Advance(2 * time.Second)
			}
			setMetadata(t, c, "Meta-1", m)
			fw, err := readStream(t, c, "Meta-1", kdb.ReadStreamOptions{}, 100)
			require.NoError(t, err, "an existing stream with every event hidden reads as empty, not as missing")
			assert.Equal(t, len(tc.forwards), len(fw), "forwards: %v", revisions(fw))
			if len(tc.forwards) > 0 {
				assert.Equal(t, tc.forwards, revisions(fw), "forwards")
			}
			bw := readBackwards(t, c, "Meta-1")
			if len(tc.backwards) > 0 {
				assert.Equal(t, tc.backwards, revisions(bw), "backwards")
			} else {
				assert.Empty(t, bw, "backwards")
			}
			from, err := readStream(t, c, "Meta-1", kdb.ReadStreamOptions{From: kdb.Revision(4)}, 100)
			require.NoError(t, err)
			if len(tc.fromRevision4Forward) > 0 {
				assert.Equal(t, tc.fromRevision4Forward, revisions(from), "forwards from revision 4")
			} else {
				assert.Empty(t, from, "forwards from revision 4")
			}
			// $all ignores stream metadata: every event is still there.
			n := 0
			for _, ev := range readAll(t, c, kdb.ReadAllOptions{}, 1000) {
				if ev.StreamID == "Meta-1" {
					n++
				}
			}
			assert.Equal(t, 6, n, "$all keeps the events metadata hides")
		})
	}
}

func TestRuleMetadataMaxCountFollowsAppends(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	var m kdb.StreamMetadata
	m.SetMaxCount(2)
	setMetadata(t, c, "Capped-1", m) // before the stream has events
	all := events(4)
	for i, e := range all {
		appendEvents(t, c, "Capped-1", kdb.Any{}, e)
		got, err := readStream(t, c, "Capped-1", kdb.ReadStreamOptions{}, 10)
		require.NoError(t, err)
		assert.Equal(t, ids(all[max(0, i-1):i+1]), recordedIDs(got), "after %d appends: the last two", i+1)
	}
	w := appendEvents(t, c, "Capped-1", kdb.StreamRevision{Value: 3}, jsonEvent("Next"))
	assert.Equal(t, uint64(4), w.NextExpectedVersion, "$maxCount hides events, revisions go on")
}

func TestRuleMetadataStreamSubscriptionStartsAtTheLowestReadable(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	all := events(4)
	appendEvents(t, c, "TB-1", kdb.NoStream{}, all...)
	var m kdb.StreamMetadata
	m.SetTruncateBefore(3)
	setMetadata(t, c, "TB-1", m)
	sub := subscribe(t)(c.SubscribeToStream(context.Background(), "TB-1", kdb.SubscribeToStreamOptions{From: kdb.Start{}}))
	got := eventsOf(sub.untilCaughtUp())
	assert.Equal(t, []uuid.UUID{all[3].EventID}, recordedIDs(got), "catch-up reads the stream as a stream read does")
	live := jsonEvent("Live")
	appendEvents(t, c, "TB-1", kdb.Any{}, live)
	assert.Equal(t, live.EventID, sub.nextEvent().EventID)
}

func TestRuleMetadataTruncateBeforeMaxIsASoftDelete(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	appendEvents(t, c, "Gone-1", kdb.NoStream{}, events(2)...)
	var m kdb.StreamMetadata
	m.SetMaxCount(5)
	setMetadata(t, c, "Gone-1", m)
	_, err := c.DeleteStream(context.Background(), "Gone-1", kdb.DeleteStreamOptions{})
	require.NoError(t, err)
	meta, err := c.GetStreamMetadata(context.Background(), "Gone-1", kdb.ReadStreamOptions{})
	require.NoError(t, err)
	assert.Nil(t, meta.MaxCount(), "a delete replaces the whole metadata")
	require.NotNil(t, meta.TruncateBefore())
	// 2^63−1 on the wire; the client parses JSON numbers as float64.
	assert.GreaterOrEqual(t, *meta.TruncateBefore(), uint64(1<<63-1))
	// Writing other metadata replaces $tb too: the stream is back, with
	// the events no scavenge has removed yet.
	m = kdb.StreamMetadata{}
	m.SetMaxCount(1)
	setMetadata(t, c, "Gone-1", m)
	got, err := readStream(t, c, "Gone-1", kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	assert.Equal(t, []uint64{1}, revisions(got), "metadata without $tb undeletes, old events included")
}
