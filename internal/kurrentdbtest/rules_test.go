package kurrentdbtest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// One test per rule of shared/kurrentdb-semantics.md §12, each through the
// official client (v1.4.1) and, where the client hides the wire, a plain
// gRPC client.

func TestRule01PlaintextKeepaliveAndMessageSize(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	// 5 MiB: over grpc-go's default 4 MiB receive limit, under the server's.
	big := kdb.EventData{EventID: uuid.New(), EventType: "Big", ContentType: kdb.ContentTypeBinary, Data: bytes.Repeat([]byte{7}, 5<<20)}
	appendEvents(t, c, "Big-1", kdb.NoStream{}, big)
	got, err := readStream(t, c, "Big-1", kdb.ReadStreamOptions{}, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, big.Data, got[0].Data)

	t.Run("SubscriptionOutlivesKeepalivePings", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: holds a subscription idle for 40 s")
		}
		t.Parallel()
		sub := subscribe(t)(c.SubscribeToAll(context.Background(), kdb.SubscribeToAllOptions{From: kdb.End{}}))
		sub.untilCaughtUp()
		// The client pings every 10 s. Under grpc-go's default policy the
		// server would answer the third ping with GOAWAY (too_many_pings),
		// about 30 s in, and the subscription would drop.
		idle := time.NewTimer(40 * time.Second)
		defer idle.Stop()
		select {
		case ev := <-sub.ch:
			t.Fatalf("an idle subscription got a message (dropped?): %+v", ev.SubscriptionDropped)
		case <-idle.C:
		}
		e := jsonEvent("After")
		appendEvents(t, c, "Idle-1", kdb.Any{}, e)
		assert.Equal(t, e.EventID, sub.nextEvent().EventID)
	})
}

func TestRule02ServerFeaturesOptional(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version string
		want    kdb.ServerVersion
	}{
		{"", kdb.ServerVersion{}}, // not served: the client goes on without it
		{"25.1.0", kdb.ServerVersion{Major: 25, Minor: 1, Patch: 0}},
		{"24.10.2-rc.1", kdb.ServerVersion{Major: 24, Minor: 10, Patch: 2}},
	} {
		t.Run("Version"+tc.version, func(t *testing.T) {
			srv := Start(t, Options{ServerVersion: tc.version})
			c := newClient(t, srv)
			appendEvents(t, c, "Order-1", kdb.NoStream{}, jsonEvent("Placed"))
			v, err := c.GetServerVersion()
			require.NoError(t, err)
			assert.Equal(t, tc.want, *v)
		})
	}
}

func TestRule03AppendOptionsFirstAndRequiredMetadata(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{NoSeed: true})
	raw := rawClient(t, srv)
	md := map[string]string{"type": "Placed", "content-type": "application/json"}

	_, _, err := rawAppend(t, raw, proposedMsg(uuid.New(), md, nil))
	assert.Equal(t, codes.Unknown, status.Code(err), "events before the options: %v", err)

	_, _, err = rawAppend(t, raw, optionsMsg("S-1", &api.AppendReq_Options{}))
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "no expected revision: %v", err)

	for _, missing := range []string{"type", "content-type"} {
		m := map[string]string{"type": "Placed", "content-type": "application/json"}
		delete(m, missing)
		_, trailer, err := rawAppend(t, raw, optionsMsg("S-1", anyOptions()), proposedMsg(uuid.New(), m, nil))
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "without %s: %v", missing, err)
		assert.Equal(t, []string{"missing-required-metadata-property"}, trailer.Get("exception"), "without %s", missing)
	}

	_, _, err = rawAppend(t, raw, optionsMsg("S-1", anyOptions()), proposedMsg(uuid.New(), map[string]string{"type": "", "content-type": "application/json"}, nil))
	assert.Equal(t, codes.Unknown, status.Code(err), "empty type: %v", err)
	_, _, err = rawAppend(t, raw, optionsMsg("S-1", anyOptions()), proposedMsg(uuid.Nil, md, nil))
	assert.Equal(t, codes.Unknown, status.Code(err), "empty GUID: %v", err)

	c := newClient(t, srv)
	assert.Empty(t, readAll(t, c, kdb.ReadAllOptions{}, 100), "rejected appends wrote something")
}

func TestRule04ExpectedStates(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	ctx := context.Background()
	type outcome int
	const (
		ok outcome = iota
		wev
		deleted
	)
	states := []struct {
		name    string
		prepare func(stream string)
		cases   map[string]outcome
	}{
		{"New", func(string) {}, map[string]outcome{"any": ok, "no_stream": ok, "stream_exists": wev, "revision0": wev, "revision1": wev}},
		{"TwoEvents", func(s string) { appendEvents(t, c, s, kdb.NoStream{}, events(2)...) },
			map[string]outcome{"any": ok, "no_stream": wev, "stream_exists": ok, "revision0": wev, "revision1": ok}},
		{"MetadataOnly", func(s string) {
			var m kdb.StreamMetadata
			m.SetMaxAge(time.Hour)
			_, err := c.SetStreamMetadata(ctx, s, kdb.AppendToStreamOptions{}, m)
			require.NoError(t, err)
		}, map[string]outcome{"any": ok, "no_stream": ok, "stream_exists": ok, "revision0": wev, "revision1": wev}},
		{"SoftDeleted", func(s string) {
			appendEvents(t, c, s, kdb.NoStream{}, events(2)...)
			_, err := c.DeleteStream(ctx, s, kdb.DeleteStreamOptions{})
			require.NoError(t, err)
		}, map[string]outcome{"any": ok, "no_stream": ok, "stream_exists": deleted, "revision0": wev, "revision1": ok}},
	}
	expectations := map[string]kdb.StreamState{
		"any": kdb.Any{}, "no_stream": kdb.NoStream{}, "stream_exists": kdb.StreamExists{},
		"revision0": kdb.StreamRevision{Value: 0}, "revision1": kdb.StreamRevision{Value: 1},
	}
	for _, st := range states {
		for exp, want := range st.cases {
			stream := fmt.Sprintf("%s-%s", st.name, exp)
			st.prepare(stream)
			_, err := c.AppendToStream(ctx, stream, kdb.AppendToStreamOptions{StreamState: expectations[exp]}, jsonEvent("Next"))
			switch want {
			case ok:
				assert.NoError(t, err, "%s stream, expecting %s", st.name, exp)
			case wev:
				if assert.Error(t, err, "%s stream, expecting %s", st.name, exp) {
					assert.Equal(t, kdb.ErrorCodeWrongExpectedVersion, errorCode(t, err), "%s stream, expecting %s: %v", st.name, exp, err)
				}
			case deleted:
				if assert.Error(t, err, "%s stream, expecting %s", st.name, exp) {
					assert.Equal(t, kdb.ErrorCodeStreamDeleted, errorCode(t, err), "%s stream, expecting %s: %v", st.name, exp, err)
				}
			}
		}
	}
}

func TestRule05WrongExpectedVersionIsAnOKResponse(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	raw := rawClient(t, srv)
	appendEvents(t, c, "Order-1", kdb.NoStream{}, events(2)...)
	md := map[string]string{"type": "Placed", "content-type": "application/json"}

	resp, _, err := rawAppend(t, raw, optionsMsg("Order-1", &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}}),
		proposedMsg(uuid.New(), md, nil))
	require.NoError(t, err)
	w := resp.GetWrongExpectedVersion()
	require.NotNil(t, w)
	assert.NotNil(t, w.GetExpectedNoStream())
	assert.Equal(t, uint64(math.MaxUint64), w.GetExpectedRevision_20_6_0())
	assert.Equal(t, uint64(1), w.GetCurrentRevision())
	assert.Equal(t, uint64(1), w.GetCurrentRevision_20_6_0())

	resp, _, err = rawAppend(t, raw, optionsMsg("Missing-1", &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_Revision{Revision: 5}}),
		proposedMsg(uuid.New(), md, nil))
	require.NoError(t, err)
	w = resp.GetWrongExpectedVersion()
	require.NotNil(t, w)
	assert.Equal(t, uint64(5), w.GetExpectedRevision())
	assert.NotNil(t, w.GetCurrentNoStream())
	assert.NotNil(t, w.GetNoStream_20_6_0())

	_, err = c.AppendToStream(context.Background(), "Order-1", kdb.AppendToStreamOptions{StreamState: kdb.StreamRevision{Value: 0}}, jsonEvent("Late"))
	require.Error(t, err)
	assert.Equal(t, kdb.ErrorCodeWrongExpectedVersion, errorCode(t, err))
	assert.Contains(t, err.Error(), "expecting '0' but got '1'")
}

func TestRule06SuccessReportsLastRevisionAndPosition(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	appendEvents(t, c, "Other-1", kdb.NoStream{}, events(2)...)
	evs := events(3)
	res := appendEvents(t, c, "Order-1", kdb.NoStream{}, evs...)
	assert.Equal(t, uint64(2), res.NextExpectedVersion, "the revision of the last event written")
	assert.Equal(t, res.CommitPosition, res.PreparePosition)
	got := readAll(t, c, kdb.ReadAllOptions{From: kdb.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition}}, 10)
	require.NotEmpty(t, got)
	assert.Equal(t, evs[2].EventID, got[0].EventID, "reading $all from the result's position starts with the last event written")
}

func TestRule07StrongIdempotency(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	ctx := context.Background()
	appendAt := func(stream string, state kdb.StreamState, evs ...kdb.EventData) (*kdb.WriteResult, error) {
		return c.AppendToStream(ctx, stream, kdb.AppendToStreamOptions{StreamState: state}, evs...)
	}
	count := func(stream string) int {
		got, err := readStream(t, c, stream, kdb.ReadStreamOptions{}, 1000)
		require.NoError(t, err)
		return len(got)
	}

	t.Run("NoStreamRetryAfterLaterAppends", func(t *testing.T) {
		batch := events(3)
		orig := appendEvents(t, c, "Strong-1", kdb.NoStream{}, batch...)
		appendEvents(t, c, "Strong-1", kdb.StreamRevision{Value: 2}, events(2)...)
		res, err := appendAt("Strong-1", kdb.NoStream{}, batch...)
		require.NoError(t, err)
		assert.Equal(t, orig, res, "the original result")
		assert.Equal(t, 5, count("Strong-1"), "nothing written")
	})
	t.Run("RevisionRetryAfterLaterAppends", func(t *testing.T) {
		appendEvents(t, c, "Strong-2", kdb.NoStream{}, events(2)...)
		batch := events(2)
		orig := appendEvents(t, c, "Strong-2", kdb.StreamRevision{Value: 1}, batch...)
		appendEvents(t, c, "Strong-2", kdb.Any{}, events(3)...)
		res, err := appendAt("Strong-2", kdb.StreamRevision{Value: 1}, batch...)
		require.NoError(t, err)
		assert.Equal(t, orig, res)
		res, err = appendAt("Strong-2", kdb.StreamRevision{Value: 1}, batch[0]) // the first events of a batch
		require.NoError(t, err)
		assert.Equal(t, uint64(2), res.NextExpectedVersion)
		assert.Equal(t, 7, count("Strong-2"))
	})
	t.Run("FirstIDDiffers", func(t *testing.T) {
		batch := events(2)
		appendEvents(t, c, "Strong-3", kdb.NoStream{}, batch...)
		_, err := appendAt("Strong-3", kdb.NoStream{}, jsonEvent("Other"), batch[1])
		require.Error(t, err)
		assert.Equal(t, kdb.ErrorCodeWrongExpectedVersion, errorCode(t, err))
	})
	t.Run("LaterIDDiffersOrPastTheEnd", func(t *testing.T) {
		batch := events(2)
		appendEvents(t, c, "Strong-4", kdb.NoStream{}, batch...)
		for _, retry := range [][]kdb.EventData{{batch[0], jsonEvent("Other")}, {batch[0], batch[1], jsonEvent("Extra")}} {
			_, err := appendAt("Strong-4", kdb.NoStream{}, retry...)
			require.Error(t, err)
			assert.Equal(t, kdb.ErrorCodeWrongExpectedVersion, errorCode(t, err))
		}
		assert.Equal(t, 2, count("Strong-4"))
	})
	t.Run("SameIDsAtTheCurrentEndAreWrittenAgain", func(t *testing.T) {
		batch := events(2)
		appendEvents(t, c, "Strong-5", kdb.NoStream{}, batch...)
		res := appendEvents(t, c, "Strong-5", kdb.StreamRevision{Value: 1}, batch...)
		assert.Equal(t, uint64(3), res.NextExpectedVersion)
		got, err := readStream(t, c, "Strong-5", kdb.ReadStreamOptions{}, 10)
		require.NoError(t, err)
		assert.Equal(t, append(ids(batch), ids(batch)...), recordedIDs(got))
	})
}

func TestRule08WeakIdempotency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, state := range []kdb.StreamState{kdb.Any{}, kdb.StreamExists{}} {
		t.Run(fmt.Sprintf("%T", state), func(t *testing.T) {
			srv := Start(t, Options{IdempotencyCacheSize: 8, NoSeed: true})
			c := newClient(t, srv)
			appendAt := func(stream string, evs ...kdb.EventData) (*kdb.WriteResult, error) {
				return c.AppendToStream(ctx, stream, kdb.AppendToStreamOptions{StreamState: state}, evs...)
			}
			appendEvents(t, c, "Weak-1", kdb.NoStream{}, jsonEvent("First"))
			batch := events(3)
			orig, err := appendAt("Weak-1", batch...)
			require.NoError(t, err)

			// Hit: the original result, nothing written.
			res, err := appendAt("Weak-1", batch...)
			require.NoError(t, err)
			assert.Equal(t, orig, res)
			// Partial: found, then not found.
			_, err = appendAt("Weak-1", batch[0], jsonEvent("New"))
			require.Error(t, err)
			assert.Equal(t, kdb.ErrorCodeWrongExpectedVersion, errorCode(t, err))
			got, err := readStream(t, c, "Weak-1", kdb.ReadStreamOptions{}, 100)
			require.NoError(t, err)
			assert.Len(t, got, 4)

			// Miss: 8 later IDs push the batch out of the cache (FIFO).
			appendEvents(t, c, "Weak-2", kdb.NoStream{}, events(8)...)
			res, err = appendAt("Weak-1", batch...)
			require.NoError(t, err)
			assert.Equal(t, uint64(6), res.NextExpectedVersion, "written again")

			// A restart empties the cache.
			again := events(2)
			_, err = appendAt("Weak-1", again...)
			require.NoError(t, err)
			require.NoError(t, srv.Restart())
			res, err = appendAt("Weak-1", again...)
			for attempt := 0; attempt < 3 && err != nil && errorCode(t, err) != kdb.ErrorCodeWrongExpectedVersion; attempt++ {
				// The call raced the client noticing the old connection
				// closed (Unavailable, or EOF on the request stream); the
				// client rediscovers on the next call. A retry is safe: had
				// the attempt reached the new server, its IDs are cached
				// again and the retry returns the same result.
				res, err = appendAt("Weak-1", again...)
			}
			require.NoError(t, err)
			assert.Equal(t, uint64(10), res.NextExpectedVersion, "written again after a restart")
		})
	}
}

func TestRule09ZeroEventAppend(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{NoSeed: true})
	c := newClient(t, srv)
	raw := rawClient(t, srv)
	ctx := context.Background()
	noStream := &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}}

	r1, _, err := rawAppend(t, raw, optionsMsg("Empty-1", noStream))
	require.NoError(t, err)
	require.NotNil(t, r1.GetSuccess())
	assert.NotNil(t, r1.GetSuccess().GetNoStream(), "current revision: no_stream")
	r2, _, err := rawAppend(t, raw, optionsMsg("Empty-1", noStream))
	require.NoError(t, err)
	assert.Less(t, r1.GetSuccess().GetPosition().GetCommitPosition(), r2.GetSuccess().GetPosition().GetCommitPosition(), "the log position advances")
	res, err := c.AppendToStream(ctx, "Empty-1", kdb.AppendToStreamOptions{StreamState: kdb.NoStream{}})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.NextExpectedVersion, "the client reports no_stream as 1")
	assert.Empty(t, readAll(t, c, kdb.ReadAllOptions{}, 10), "no event in $all")

	appendEvents(t, c, "Empty-2", kdb.NoStream{}, events(2)...)
	r3, _, err := rawAppend(t, raw, optionsMsg("Empty-2", &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_Revision{Revision: 1}}))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), r3.GetSuccess().GetCurrentRevision())
	_, err = c.AppendToStream(ctx, "Empty-2", kdb.AppendToStreamOptions{StreamState: kdb.StreamRevision{Value: 0}})
	require.Error(t, err, "a zero-event append is still a check")
	assert.Equal(t, kdb.ErrorCodeWrongExpectedVersion, errorCode(t, err))

	// It undeletes a soft-deleted stream: reads find it again, empty.
	_, err = c.DeleteStream(ctx, "Empty-2", kdb.DeleteStreamOptions{})
	require.NoError(t, err)
	_, err = readStream(t, c, "Empty-2", kdb.ReadStreamOptions{}, 10)
	require.Equal(t, kdb.ErrorCodeResourceNotFound, errorCode(t, err))
	_, err = c.AppendToStream(ctx, "Empty-2", kdb.AppendToStreamOptions{StreamState: kdb.Any{}})
	require.NoError(t, err)
	got, err := readStream(t, c, "Empty-2", kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestRule10SizeLimits(t *testing.T) {
	t.Parallel()
	md := map[string]string{"type": "Big", "content-type": "application/octet-stream"}
	// An event counts data, metadata and the type twice: "Big" is 6 bytes.
	t.Run("Configured", func(t *testing.T) {
		srv := Start(t, Options{MaxAppendEventSize: 1000, MaxAppendSize: 2500, NoSeed: true})
		raw := rawClient(t, srv)
		c := newClient(t, srv)
		id := uuid.New()
		_, trailer, err := rawAppend(t, raw, optionsMsg("Big-1", anyOptions()), proposedMsg(id, md, make([]byte, 1000-6+1)))
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		assert.Equal(t, []string{"maximum-append-event-size-exceeded"}, trailer.Get("exception"))
		assert.Equal(t, []string{"1000"}, trailer.Get("maximum-append-event-size"))
		assert.Equal(t, []string{id.String()}, trailer.Get("event-id"))
		assert.Equal(t, []string{"1001"}, trailer.Get("proposed-append-event-size"))

		_, err = c.AppendToStream(context.Background(), "Big-1", kdb.AppendToStreamOptions{}, kdb.EventData{EventType: "Big", Data: make([]byte, 1000-6)})
		require.NoError(t, err, "an event exactly at the limit")

		msgs := []*api.AppendReq{optionsMsg("Big-2", anyOptions())}
		for range 3 {
			msgs = append(msgs, proposedMsg(uuid.New(), md, make([]byte, 900)))
		}
		_, trailer, err = rawAppend(t, raw, msgs...)
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		assert.Equal(t, []string{"maximum-append-size-exceeded"}, trailer.Get("exception"))
		assert.Equal(t, []string{"2500"}, trailer.Get("maximum-append-size"))

		_, err = c.AppendToStream(context.Background(), "Big-2", kdb.AppendToStreamOptions{},
			kdb.EventData{EventType: "Big", Data: make([]byte, 900)}, kdb.EventData{EventType: "Big", Data: make([]byte, 900)}, kdb.EventData{EventType: "Big", Data: make([]byte, 900)})
		require.Error(t, err)
		assert.Equal(t, kdb.ErrorCodeUnknown, errorCode(t, err), "the client reports limits as Unknown")
		got, err := readStream(t, c, "Big-2", kdb.ReadStreamOptions{}, 10)
		assert.Equal(t, kdb.ErrorCodeResourceNotFound, errorCode(t, err), "nothing written: %d events", len(got))
	})
	t.Run("OldAndNewDefaults", func(t *testing.T) {
		twoMiB := kdb.EventData{EventType: "Big", Data: make([]byte, 2<<20)}
		current := newClient(t, Start(t, Options{}))
		_, err := current.AppendToStream(context.Background(), "Big-1", kdb.AppendToStreamOptions{}, twoMiB)
		assert.NoError(t, err, "25.1 defaults: 16 MiB per event, 256 MiB per append")
		old := newClient(t, Start(t, Options{MaxAppendSize: 1 << 20, MaxAppendEventSize: -1}))
		_, err = old.AppendToStream(context.Background(), "Big-1", kdb.AppendToStreamOptions{}, twoMiB)
		assert.Error(t, err, "24.10 defaults: 1 MiB per append")
	})
	t.Run("MessageSize", func(t *testing.T) {
		srv := Start(t, Options{NoSeed: true})
		_, _, err := rawAppend(t, rawClient(t, srv), optionsMsg("Big-1", anyOptions()), proposedMsg(uuid.New(), md, make([]byte, MaxMessageSize)))
		assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	})
}

func TestRule11PositionsIncreaseWithGaps(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ChunkSize: 4096})
	c := newClient(t, srv)
	for i := range 10 {
		evs := events(1 + i%3)
		evs[0].Data = bytes.Repeat([]byte("x"), 100*i)
		appendEvents(t, c, fmt.Sprintf("Pos-%d", i%4), kdb.Any{}, evs...)
	}
	require.NoError(t, srv.Restart())
	c = newClient(t, srv)
	appendEvents(t, c, "Pos-9", kdb.Any{}, events(2)...)

	all := readAll(t, c, kdb.ReadAllOptions{}, 1000)
	require.Greater(t, len(all), 20)
	gaps, chunkStarts := 0, 0
	for i, ev := range all {
		assert.Equal(t, ev.Position.Commit, ev.Position.Prepare, "commit == prepare")
		if i > 0 {
			prev := all[i-1].Position.Commit
			require.Greater(t, ev.Position.Commit, prev, "strictly increasing, never reused")
			if ev.Position.Commit > prev+1 {
				gaps++
			}
		}
		if ev.Position.Commit%4096 == 0 && ev.Position.Commit > 0 {
			chunkStarts++
		}
		if strings.HasPrefix(ev.StreamID, "Pos-") {
			got, err := readStream(t, c, ev.StreamID, kdb.ReadStreamOptions{From: kdb.Revision(ev.EventNumber)}, 1)
			require.NoError(t, err)
			assert.Equal(t, ev.Position, got[0].Position, "the same position in a stream read")
		}
	}
	assert.Equal(t, len(all)-1, gaps, "positions are byte offsets: never dense")
	assert.Positive(t, chunkStarts, "a write that does not fit in a chunk starts the next one")
}

func TestRule12RecordedEventFields(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{NoSeed: true})
	c := newClient(t, srv)
	raw := rawClient(t, srv)
	binary := kdb.EventData{EventID: uuid.New(), EventType: "Bin", ContentType: kdb.ContentTypeBinary, Data: []byte("\x00\xff\x00"), Metadata: []byte(`{ "b":1,"a" :2}`)}
	js := kdb.EventData{EventID: uuid.New(), EventType: "Js", ContentType: kdb.ContentTypeJson, Data: []byte(` {"z":1, "a":[ ]} `)}
	before := time.Now()
	appendEvents(t, c, "Fields-1", kdb.NoStream{}, binary, js)
	after := time.Now()

	msgs, _, err := rawRead(t, raw, streamReadReq("Fields-1", fromStart(), api.ReadReq_Options_Forwards, 10))
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	for i, want := range []kdb.EventData{binary, js} {
		rec := msgs[i].GetEvent().GetEvent()
		require.NotNil(t, rec)
		ct := "application/octet-stream"
		if want.ContentType == kdb.ContentTypeJson {
			ct = "application/json"
		}
		assert.Len(t, rec.Metadata, 3, "exactly type, created, content-type")
		assert.Equal(t, want.EventType, rec.Metadata["type"])
		assert.Equal(t, ct, rec.Metadata["content-type"])
		ticks, err := strconv.ParseInt(rec.Metadata["created"], 10, 64)
		require.NoError(t, err, "created is decimal ticks")
		created := time.Unix(0, ticks*100)
		assert.False(t, created.Before(before.Add(-time.Millisecond)) || created.After(after.Add(time.Millisecond)), "created %s", created)
		assert.Equal(t, want.Data, rec.Data)
		assert.Equal(t, string(want.Metadata), string(rec.CustomMetadata))
		require.NotNil(t, rec.Id.GetStructured(), "structured UUID")
		id, err := parseUUID(rec.Id)
		require.NoError(t, err)
		assert.Equal(t, want.EventID, id)
	}
	req := streamReadReq("Fields-1", fromStart(), api.ReadReq_Options_Forwards, 1)
	req.Options.UuidOption = &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}}
	msgs, _, err = rawRead(t, raw, req)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Equal(t, binary.EventID.String(), msgs[0].GetEvent().GetEvent().GetId().GetString_())
}

func TestRule13MissingStreamReadsAsStreamNotFound(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	raw := rawClient(t, srv)
	appendEvents(t, c, "Deleted-1", kdb.NoStream{}, events(2)...)
	_, err := c.DeleteStream(context.Background(), "Deleted-1", kdb.DeleteStreamOptions{})
	require.NoError(t, err)
	appendEvents(t, c, "Live-1", kdb.NoStream{}, events(3)...)

	for _, stream := range []string{"Never-1", "Deleted-1"} {
		msgs, _, err := rawRead(t, raw, streamReadReq(stream, fromStart(), api.ReadReq_Options_Forwards, 10))
		require.NoError(t, err, "status OK")
		require.Len(t, msgs, 1, stream)
		assert.Equal(t, stream, string(msgs[0].GetStreamNotFound().GetStreamIdentifier().GetStreamName()))
		_, err = readStream(t, c, stream, kdb.ReadStreamOptions{}, 10)
		assert.Equal(t, kdb.ErrorCodeResourceNotFound, errorCode(t, err))
	}
	// Reads carry events only (the client panics on anything else).
	for _, req := range []*api.ReadReq{
		streamReadReq("Live-1", fromStart(), api.ReadReq_Options_Forwards, 10),
		{Options: &api.ReadReq_Options{
			StreamOption:  &api.ReadReq_Options_All{All: &api.ReadReq_Options_AllOptions{AllOption: &api.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
			CountOption:   &api.ReadReq_Options_Count{Count: 100},
			FilterOption:  &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
			UuidOption:    &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
			ReadDirection: api.ReadReq_Options_Forwards,
		}},
	} {
		msgs, _, err := rawRead(t, raw, req)
		require.NoError(t, err)
		require.NotEmpty(t, msgs)
		for _, m := range msgs {
			assert.IsType(t, &api.ReadResp_Event{}, m.Content)
		}
	}
}

func TestRule14ReadBoundsAndCombinations(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	raw := rawClient(t, srv)
	evs := events(5)
	appendEvents(t, c, "Bounds-1", kdb.NoStream{}, evs...)

	got, err := readStream(t, c, "Bounds-1", kdb.ReadStreamOptions{From: kdb.Revision(2)}, 10)
	require.NoError(t, err)
	assert.Equal(t, ids(evs[2:]), recordedIDs(got), "forwards from revision 2, inclusive")
	got, err = readStream(t, c, "Bounds-1", kdb.ReadStreamOptions{From: kdb.Revision(2), Direction: kdb.Backwards}, 10)
	require.NoError(t, err)
	assert.Equal(t, []uuid.UUID{evs[2].EventID, evs[1].EventID, evs[0].EventID}, recordedIDs(got), "backwards from revision 2, inclusive")
	got, err = readStream(t, c, "Bounds-1", kdb.ReadStreamOptions{From: kdb.End{}, Direction: kdb.Backwards}, 2)
	require.NoError(t, err)
	assert.Equal(t, []uuid.UUID{evs[4].EventID, evs[3].EventID}, recordedIDs(got), "count")
	got, err = readStream(t, c, "Bounds-1", kdb.ReadStreamOptions{From: kdb.Revision(9)}, 10)
	require.NoError(t, err, "past the end: nothing, no error")
	assert.Empty(t, got)

	all := readAll(t, c, kdb.ReadAllOptions{}, 100)
	mid := all[len(all)-3]
	fwd := readAll(t, c, kdb.ReadAllOptions{From: mid.Position}, 100)
	assert.Equal(t, recordedIDs(all[len(all)-3:]), recordedIDs(fwd), "$all forwards: inclusive")
	back := readAll(t, c, kdb.ReadAllOptions{From: mid.Position, Direction: kdb.Backwards}, 2)
	assert.Equal(t, []uuid.UUID{all[len(all)-4].EventID, all[len(all)-5].EventID}, recordedIDs(back), "$all backwards: exclusive, count")

	subscription := &api.ReadReq_Options_Subscription{Subscription: &api.ReadReq_Options_SubscriptionOptions{}}
	backwardsSub := streamReadReq("Bounds-1", fromStart(), api.ReadReq_Options_Backwards, 1)
	backwardsSub.Options.CountOption = subscription
	filteredStream := streamReadReq("Bounds-1", fromStart(), api.ReadReq_Options_Forwards, 1)
	filteredStream.Options.FilterOption = &api.ReadReq_Options_Filter{Filter: &api.ReadReq_Options_FilterOptions{
		Filter: &api.ReadReq_Options_FilterOptions_EventType{EventType: &api.ReadReq_Options_FilterOptions_Expression{Prefix: []string{"H"}}},
	}}
	noUUID := streamReadReq("Bounds-1", fromStart(), api.ReadReq_Options_Forwards, 1)
	noUUID.Options.UuidOption = nil
	for name, req := range map[string]*api.ReadReq{"BackwardsSubscription": backwardsSub, "FilteredStreamRead": filteredStream, "NoUUIDOption": noUUID} {
		_, _, err := rawRead(t, raw, req)
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", name, err)
	}
}

func TestRule15Subscriptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("Stream", func(t *testing.T) {
		srv := Start(t, Options{})
		c := newClient(t, srv)
		evs := events(3)
		appendEvents(t, c, "Sub-1", kdb.NoStream{}, evs...)
		sub := subscribe(t)(c.SubscribeToStream(ctx, "Sub-1", kdb.SubscribeToStreamOptions{From: kdb.Revision(0)}))
		msgs := sub.untilCaughtUp()
		assert.Equal(t, ids(evs[1:]), recordedIDs(eventsOf(msgs)), "start exclusive: after revision 0")
		cu := msgs[len(msgs)-1].CaughtUp
		require.NotNil(t, cu, "caught_up with a timestamp")
		assert.False(t, cu.Date.IsZero())
		require.NotNil(t, cu.StreamRevision)
		assert.Equal(t, uint64(2), *cu.StreamRevision)
		live := jsonEvent("Live")
		appendEvents(t, c, "Sub-1", kdb.Any{}, live)
		assert.Equal(t, live.EventID, sub.nextEvent().EventID)
	})
	t.Run("All", func(t *testing.T) {
		srv := Start(t, Options{})
		c := newClient(t, srv)
		appendEvents(t, c, "Sub-1", kdb.NoStream{}, events(3)...)
		all := readAll(t, c, kdb.ReadAllOptions{}, 100)
		from := all[len(all)-2]
		sub := subscribe(t)(c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{From: from.Position}))
		msgs := sub.untilCaughtUp()
		assert.Equal(t, recordedIDs(all[len(all)-1:]), recordedIDs(eventsOf(msgs)), "start exclusive: after the position")
		cu := msgs[len(msgs)-1].CaughtUp
		require.NotNil(t, cu)
		require.NotNil(t, cu.Position)
		assert.Equal(t, all[len(all)-1].Position, *cu.Position)
		for i := range 3 {
			live := jsonEvent("Live")
			appendEvents(t, c, fmt.Sprintf("Live-%d", i), kdb.Any{}, live)
			assert.Equal(t, live.EventID, sub.nextEvent().EventID, "live, in commit order")
		}
	})
	t.Run("EmptyCaughtUp", func(t *testing.T) {
		srv := Start(t, Options{EmptyCaughtUp: true})
		c := newClient(t, srv)
		sub := subscribe(t)(c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{From: kdb.Start{}}))
		msgs := sub.untilCaughtUp()
		last := msgs[len(msgs)-1]
		assert.Equal(t, kdb.SubscriptionEvent{}, *last, "servers 24.2 to 25.0: every field nil")
	})
}

func TestRule16FilteredSubscriptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := Start(t, Options{NoSeed: true})
	c := newClient(t, srv)
	appendEvents(t, c, "Order-1", kdb.NoStream{}, jsonEvent("Placed"), jsonEvent("Shipped"))
	appendEvents(t, c, "Orders-1", kdb.NoStream{}, jsonEvent("Placed"))
	appendEvents(t, c, "Invoice-1", kdb.NoStream{}, jsonEvent("Issued"), jsonEvent("PlacedAgain"))
	all := readAll(t, c, kdb.ReadAllOptions{}, 100)
	require.Len(t, all, 5, "the epoch record is hidden")
	pick := func(idx ...int) []uuid.UUID {
		var out []uuid.UUID
		for _, i := range idx {
			out = append(out, all[i].EventID)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		filter kdb.SubscriptionFilter
		want   []uuid.UUID
	}{
		{"StreamPrefix", kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{"Order"}}, pick(0, 1, 2)},
		{"StreamPrefixes", kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{"Order-", "Inv"}}, pick(0, 1, 3, 4)},
		{"TypePrefix", kdb.SubscriptionFilter{Type: kdb.EventFilterType, Prefixes: []string{"Placed"}}, pick(0, 2, 4)},
		{"TypeRegexUnanchored", kdb.SubscriptionFilter{Type: kdb.EventFilterType, Regex: "ped"}, pick(1)},
		{"StreamRegex", kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Regex: "^Orders?-1$"}, pick(0, 1, 2)},
		{"ExcludeSystemEvents", *kdb.ExcludeSystemEventsFilter(), pick(0, 1, 2, 3, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.filter
			sub := subscribe(t)(c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{From: kdb.Start{}, Filter: &f}))
			assert.Equal(t, tc.want, recordedIDs(eventsOf(sub.untilCaughtUp())))
		})
	}
	t.Run("Checkpoints", func(t *testing.T) {
		f := kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{"Nothing"}}
		sub := subscribe(t)(c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{From: kdb.Start{}, Filter: &f, MaxSearchWindow: 2, CheckpointInterval: 1}))
		var checkpoints []kdb.Position
		for _, m := range sub.untilCaughtUp() {
			if m.CheckPointReached != nil {
				checkpoints = append(checkpoints, *m.CheckPointReached)
			}
		}
		// The epoch record and five events considered, a window of 2: a
		// checkpoint after each page of two, at the start of that page
		// ((0, 0), then where the previous page ended, prepare 0). The one
		// at the end of catch-up repeats the last and is dropped.
		assert.Equal(t, []kdb.Position{{}, {Commit: all[1].Position.Commit}, {Commit: all[3].Position.Commit}}, checkpoints)
		res := appendEvents(t, c, "Live-1", kdb.Any{}, events(2)...)
		m := sub.next()
		require.NotNil(t, m.CheckPointReached, "live checkpoints too")
		assert.Equal(t, kdb.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition}, *m.CheckPointReached,
			"live: at the event that completes the interval")
	})
	t.Run("ResumingFromACheckpointSkipsNothing", func(t *testing.T) {
		t.Parallel()
		srv := Start(t, Options{})
		c := newClient(t, srv)
		for i := range 40 {
			stream := "Common-1"
			if i%9 == 4 {
				stream = "Rare-1"
			}
			appendEvents(t, c, stream, kdb.Any{}, events(1+i%3)...)
		}
		f := kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{"Rare"}}
		opts := kdb.SubscribeToAllOptions{Filter: &f, MaxSearchWindow: 3, CheckpointInterval: 2}
		opts.From = kdb.Start{}
		first := subscribe(t)(c.SubscribeToAll(ctx, opts)).untilCaughtUp()
		matches := eventsOf(first)
		require.Len(t, matches, 4*2, "appends 4, 13, 22 and 31, two events each")
		var last kdb.Position
		n := 0
		for _, m := range first {
			if m.CheckPointReached == nil {
				continue
			}
			cp := *m.CheckPointReached
			require.True(t, last.Commit < cp.Commit || (last.Commit == cp.Commit && last.Prepare < cp.Prepare) || n == 0, "checkpoints increase")
			last, n = cp, n+1
			want := []uuid.UUID{}
			for _, ev := range matches {
				if p := ev.Position; p.Commit > cp.Commit || (p.Commit == cp.Commit && p.Prepare > cp.Prepare) {
					want = append(want, ev.EventID)
				}
			}
			if cp.Commit > 0 {
				// Reads accept it too: a page start is where a record begins.
				got := readAll(t, c, kdb.ReadAllOptions{From: cp}, 1)
				require.Len(t, got, 1)
				assert.Equal(t, cp.Commit, got[0].Position.Commit, "reading $all from checkpoint %v", cp)
			}
			opts.From = cp
			resumed := subscribe(t)(c.SubscribeToAll(ctx, opts)).untilCaughtUp()
			assert.Equal(t, want, recordedIDs(eventsOf(resumed)), "resuming after checkpoint %v", cp)
		}
		assert.Greater(t, n, 5, "a checkpoint every 2×3 events considered")
	})
	t.Run("MultiplierZero", func(t *testing.T) {
		f := kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{"Order"}}
		// The client sends uint32(CheckpointInterval): 1<<32 arrives as 0.
		_, err := c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{From: kdb.Start{}, Filter: &f, MaxSearchWindow: 2, CheckpointInterval: 1 << 32})
		require.Error(t, err)
		assert.Equal(t, kdb.ErrorCodeUnknown, errorCode(t, err))
	})
}

func TestRule17AllHoldsSystemEvents(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	ctx := context.Background()
	appendEvents(t, c, "Deleted-1", kdb.NoStream{}, jsonEvent("Kept"))
	_, err := c.DeleteStream(ctx, "Deleted-1", kdb.DeleteStreamOptions{})
	require.NoError(t, err)
	appendEvents(t, c, "Truncated-1", kdb.NoStream{}, jsonEvent("Kept"), jsonEvent("Kept"))
	var m kdb.StreamMetadata
	m.SetTruncateBefore(1)
	_, err = c.SetStreamMetadata(ctx, "Truncated-1", kdb.AppendToStreamOptions{}, m)
	require.NoError(t, err)

	streams, types := map[string]bool{}, map[string]bool{}
	kept := 0
	for _, ev := range readAll(t, c, kdb.ReadAllOptions{}, 1000) {
		streams[ev.StreamID], types[ev.EventType] = true, true
		if ev.EventType == "Kept" {
			kept++
		}
	}
	for _, s := range []string{"$settings", "$$Seeded-1", "$ce-Seeded", "$stats-127.0.0.1:2113", "SeededDeleted", "$$Deleted-1", "$$Truncated-1"} {
		assert.True(t, streams[s], "stream %s in $all", s)
	}
	for _, typ := range []string{"$settings", "$metadata", "$>", "$statsCollected", "$streamDeleted"} {
		assert.True(t, types[typ], "type %s in $all", typ)
	}
	assert.False(t, streams["$epoch-information"], "$epoch-information is hidden")
	assert.Equal(t, 3, kept, "$all keeps the events of deleted and truncated streams")
	got, err := readStream(t, c, "Truncated-1", kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	assert.Len(t, got, 1, "truncation hides from stream reads only")
}

func TestRule18Tombstone(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	raw := rawClient(t, srv)
	ctx := context.Background()
	appendEvents(t, c, "Gone-1", kdb.NoStream{}, events(2)...)
	sub := subscribe(t)(c.SubscribeToStream(ctx, "Gone-1", kdb.SubscribeToStreamOptions{From: kdb.Start{}}))
	sub.untilCaughtUp()

	res, err := c.TombstoneStream(ctx, "Gone-1", kdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	assert.NotZero(t, res.Position.Commit, "a tombstone response carries its position")

	ev := sub.nextEvent()
	assert.Equal(t, "$streamDeleted", ev.EventType, "a live subscription gets the tombstone")
	drop := sub.next()
	require.NotNil(t, drop.SubscriptionDropped)
	assert.Equal(t, codes.FailedPrecondition, status.Code(drop.SubscriptionDropped.Error))

	_, err = c.AppendToStream(ctx, "Gone-1", kdb.AppendToStreamOptions{StreamState: kdb.Any{}}, jsonEvent("After"))
	assert.Equal(t, kdb.ErrorCodeStreamDeleted, errorCode(t, err), "append")
	_, err = readStream(t, c, "Gone-1", kdb.ReadStreamOptions{}, 10)
	assert.Equal(t, kdb.ErrorCodeStreamDeleted, errorCode(t, err), "read")
	_, err = c.DeleteStream(ctx, "Gone-1", kdb.DeleteStreamOptions{})
	assert.Equal(t, kdb.ErrorCodeStreamDeleted, errorCode(t, err), "delete")
	_, err = c.SubscribeToStream(ctx, "Gone-1", kdb.SubscribeToStreamOptions{From: kdb.Start{}})
	assert.Equal(t, kdb.ErrorCodeStreamDeleted, errorCode(t, err), "subscribe")

	_, trailer, err := rawRead(t, raw, streamReadReq("Gone-1", fromStart(), api.ReadReq_Options_Forwards, 10))
	assert.Equal(t, codes.FailedPrecondition, status.Code(err))
	assert.Equal(t, []string{"stream-deleted"}, trailer.Get("exception"))
	assert.Equal(t, []string{"Gone-1"}, trailer.Get("stream-name"), "without it the client panics")

	_, err = c.TombstoneStream(ctx, "Never-1", kdb.TombstoneStreamOptions{})
	require.NoError(t, err, "a stream that never existed can be tombstoned")
}

func TestRule19SoftDelete(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	raw := rawClient(t, srv)
	ctx := context.Background()
	appendEvents(t, c, "Soft-1", kdb.NoStream{}, events(3)...)
	res, err := c.DeleteStream(ctx, "Soft-1", kdb.DeleteStreamOptions{StreamState: kdb.StreamRevision{Value: 2}})
	require.NoError(t, err)
	assert.NotZero(t, res.Position.Commit, "a delete response carries its position")
	_, err = readStream(t, c, "Soft-1", kdb.ReadStreamOptions{}, 10)
	assert.Equal(t, kdb.ErrorCodeResourceNotFound, errorCode(t, err))

	again := jsonEvent("Again")
	w := appendEvents(t, c, "Soft-1", kdb.Any{}, again)
	assert.Equal(t, uint64(3), w.NextExpectedVersion, "revisions continue")
	got, err := readStream(t, c, "Soft-1", kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	assert.Equal(t, []uuid.UUID{again.EventID}, recordedIDs(got), "the old events stay hidden")
	meta, err := c.GetStreamMetadata(ctx, "Soft-1", kdb.ReadStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, meta.TruncateBefore())
	assert.Equal(t, uint64(3), *meta.TruncateBefore(), "$tb = the old last revision + 1")

	_, err = c.DeleteStream(ctx, "Never-1", kdb.DeleteStreamOptions{})
	assert.Equal(t, kdb.ErrorCodeUnknown, errorCode(t, err), "the client knows no wrong-expected-version on deletes")
	_, err = raw.Delete(ctx, &api.DeleteReq{Options: &api.DeleteReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("Never-1")},
		ExpectedStreamRevision: &api.DeleteReq_Options_Any{Any: &shared.Empty{}},
	}})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	_, err = c.DeleteStream(ctx, "Soft-1", kdb.DeleteStreamOptions{StreamState: kdb.StreamRevision{Value: 1}})
	assert.Error(t, err, "a wrong expectation")

	// The server's own soft delete is a metadata write with $tb = 2^63−1,
	// and so is any metadata write that sets it (KurrentDB's test
	// soft_deleted_stream_when_recreated_preserves_metadata_except_truncatebefore):
	// the stream reads as missing, and a later append recreates it keeping
	// every other key of that metadata.
	t.Run("ThroughMetadata", func(t *testing.T) {
		appendEvents(t, c, "Meta-1", kdb.NoStream{}, events(2)...)
		var m kdb.StreamMetadata
		m.SetMaxCount(1)
		m.SetTruncateBefore(math.MaxInt64)
		m.AddCustomProperty("owner", "test")
		_, err := c.SetStreamMetadata(ctx, "Meta-1", kdb.AppendToStreamOptions{}, m)
		require.NoError(t, err)
		_, err = readStream(t, c, "Meta-1", kdb.ReadStreamOptions{}, 10)
		assert.Equal(t, kdb.ErrorCodeResourceNotFound, errorCode(t, err))
		_, err = c.AppendToStream(ctx, "Meta-1", kdb.AppendToStreamOptions{StreamState: kdb.StreamExists{}}, jsonEvent("Again"))
		assert.Equal(t, kdb.ErrorCodeStreamDeleted, errorCode(t, err), "stream_exists on a soft-deleted stream")

		again := []kdb.EventData{jsonEvent("Again"), jsonEvent("Again")}
		w := appendEvents(t, c, "Meta-1", kdb.Any{}, again...)
		assert.Equal(t, uint64(3), w.NextExpectedVersion, "revisions continue")
		got, err := readStream(t, c, "Meta-1", kdb.ReadStreamOptions{}, 10)
		require.NoError(t, err)
		assert.Equal(t, []uuid.UUID{again[1].EventID}, recordedIDs(got), "$maxCount 1 kept")
		meta, err := c.GetStreamMetadata(ctx, "Meta-1", kdb.ReadStreamOptions{})
		require.NoError(t, err)
		require.NotNil(t, meta.TruncateBefore())
		assert.Equal(t, uint64(2), *meta.TruncateBefore(), "$tb = the old last revision + 1")
		require.NotNil(t, meta.MaxCount())
		assert.Equal(t, uint64(1), *meta.MaxCount())
		assert.Equal(t, "test", meta.CustomProperty("owner"))
	})
}

func TestRule20StopAndRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := Start(t, Options{})
	c := newClient(t, srv)
	appendEvents(t, c, "Restart-1", kdb.NoStream{}, events(3)...)
	sub := subscribe(t)(c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{From: kdb.Start{}}))
	checkpoint := eventsOf(sub.untilCaughtUp())
	last := checkpoint[len(checkpoint)-1].Position

	srv.Stop()
	drop := sub.next()
	require.NotNil(t, drop.SubscriptionDropped, "Stop drops subscriptions")
	assert.Equal(t, codes.Unavailable, status.Code(drop.SubscriptionDropped.Error))

	require.NoError(t, srv.Restart())
	later := jsonEvent("Later")
	// The data survived. The first call may still race the client noticing
	// the old connection closed (Unavailable or EOF); an exact-revision
	// retry of the same event is idempotent.
	_, err := c.AppendToStream(ctx, "Restart-1", kdb.AppendToStreamOptions{StreamState: kdb.StreamRevision{Value: 2}}, later)
	for attempt := 0; attempt < 3 && err != nil && errorCode(t, err) != kdb.ErrorCodeWrongExpectedVersion; attempt++ {
		_, err = c.AppendToStream(ctx, "Restart-1", kdb.AppendToStreamOptions{StreamState: kdb.StreamRevision{Value: 2}}, later)
	}
	require.NoError(t, err)
	resumed := subscribe(t)(c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{From: last}))
	assert.Equal(t, later.EventID, resumed.nextEvent().EventID, "resuming after the checkpoint")

	t.Run("LongOutageClosesTheClient", func(t *testing.T) {
		srv.Stop()
		var err error
		for range 3 { // Unavailable queues a rediscovery; a failed discovery closes the client
			_, err = c.AppendToStream(ctx, "Restart-1", kdb.AppendToStreamOptions{}, jsonEvent("Lost"))
			if err != nil && errorCode(t, err) == kdb.ErrorCodeConnectionClosed {
				break
			}
		}
		assert.Equal(t, kdb.ErrorCodeConnectionClosed, errorCode(t, err), "%v", err)
		require.NoError(t, srv.Restart())
		_, err = c.AppendToStream(ctx, "Restart-1", kdb.AppendToStreamOptions{}, jsonEvent("Lost"))
		assert.Equal(t, kdb.ErrorCodeConnectionClosed, errorCode(t, err), "the client does not come back")
		fresh := newClient(t, srv)
		appendEvents(t, fresh, "Restart-1", kdb.Any{}, jsonEvent("Back"))
	})
}

// TestExpectedRevisionAboveInt64 sends expected revisions past 2^63−1 by
// hand. The server casts them to a signed expected version: 2^64−1, 2^64−2
// and 2^64−4 act as no stream, any and stream exists; every other one is
// refused (Unknown) and writes nothing.
func TestExpectedRevisionAboveInt64(t *testing.T) {
	srv := Start(t, Options{})
	c := newClient(t, srv)
	raw := rawClient(t, srv)
	appendEvents(t, c, "Big-1", kdb.NoStream{}, events(2)...)
	md := map[string]string{"type": "Placed", "content-type": "application/json"}
	for _, tc := range []struct {
		name      string
		revision  uint64
		refused   bool
		wrongFrom bool // a wrong expected version (no stream on Big-1)
	}{
		{"2^64-3 (Invalid)", math.MaxUint64 - 2, true, false},
		{"2^63", 1 << 63, true, false},
		{"2^64-5", math.MaxUint64 - 4, true, false},
		{"2^64-1 (no stream)", math.MaxUint64, false, true},
		{"2^64-2 (any)", math.MaxUint64 - 1, false, false},
		{"2^64-4 (stream exists)", math.MaxUint64 - 3, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(readAll(t, c, kdb.ReadAllOptions{}, 1000))
			resp, _, err := rawAppend(t, raw, optionsMsg("Big-1", &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_Revision{Revision: tc.revision}}),
				proposedMsg(uuid.New(), md, nil))
			after := len(readAll(t, c, kdb.ReadAllOptions{}, 1000))
			switch {
			case tc.refused:
				assert.Equal(t, codes.Unknown, status.Code(err))
				assert.Equal(t, before, after, "nothing written")
			case tc.wrongFrom:
				require.NoError(t, err)
				assert.NotNil(t, resp.GetWrongExpectedVersion())
				assert.Equal(t, before, after, "nothing written")
			default:
				require.NoError(t, err)
				assert.NotNil(t, resp.GetSuccess())
				assert.Equal(t, before+1, after)
			}
		})
	}
}
