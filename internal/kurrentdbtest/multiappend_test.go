package kurrentdbtest

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	v2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Rules of the v2 multi-stream appends (shared/multi-stream-append.md §2),
// one test each, through the official client's AppendRecords and
// MultiStreamAppend and, for what it hides, a plain gRPC client.

const (
	v25 = "25.1.0" // AppendSession only
	v26 = "26.1.0" // AppendSession and AppendRecords
)

func appendRecord(stream string, ev kdb.EventData) kdb.AppendRecord {
	return kdb.AppendRecord{Stream: stream, Record: ev}
}

func checkState(stream string, state kdb.StreamState) kdb.ConsistencyCheck {
	return kdb.StreamStateCheck{Stream: stream, ExpectedState: state}
}

// violations returns the consistency violations of an AppendRecords error.
func violations(t testing.TB, err error) []kdb.ConsistencyViolation {
	t.Helper()
	require.Equal(t, kdb.ErrorCodeAppendConsistencyViolation, errorCode(t, err), "err: %v", err)
	var ve *kdb.AppendConsistencyViolationError
	require.True(t, errors.As(err, &ve), "want an *AppendConsistencyViolationError, got %v", err)
	return ve.Violations
}

// rawState is how the client shows a raw actual state it has no constant
// for (−5 deleted, −6 tombstoned).
func rawState(n int64) kdb.StreamState { return kdb.StreamRevision{Value: uint64(n)} }

func allIDs(t testing.TB, c *kdb.Client) []uuid.UUID {
	t.Helper()
	return recordedIDs(readAll(t, c, kdb.ReadAllOptions{}, math.MaxInt32))
}

func TestMultiRule01AdvertisedByVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version                string
		session, records, grpc bool
	}{
		{"", false, false, false},
		{"25.0.1", false, false, false},
		{v25, true, false, true},
		{v26, true, true, true},
		{"27.0.0", true, true, true},
	} {
		t.Run("Version"+tc.version, func(t *testing.T) {
			t.Parallel()
			srv := Start(t, Options{ServerVersion: tc.version, NoSeed: true})
			c := newClient(t, srv)
			ctx := context.Background()
			_, err := c.MultiStreamAppend(ctx, slices.Values([]kdb.AppendStreamRequest{
				{StreamName: "A-1", Events: slices.Values(events(1)), ExpectedStreamState: kdb.NoStream{}},
			}))
			if tc.session {
				require.NoError(t, err)
			} else {
				assert.Equal(t, kdb.ErrorCodeUnsupportedFeature, errorCode(t, err), "MultiStreamAppend")
			}
			_, err = c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("B-1", jsonEvent("X"))})
			if tc.records {
				require.NoError(t, err)
			} else {
				assert.Equal(t, kdb.ErrorCodeUnsupportedFeature, errorCode(t, err), "AppendRecords")
			}
			// Called anyway: the service or the method is missing.
			conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			defer conn.Close()
			_, err = v2.NewStreamsServiceClient(conn).AppendRecords(ctx, &v2.AppendRecordsRequest{})
			if tc.records {
				assert.Equal(t, codes.InvalidArgument, status.Code(err), "no records")
			} else {
				assert.Equal(t, codes.Unimplemented, status.Code(err))
			}
		})
	}
}

func TestMultiRule02AllOrNothing(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v26})
	c := newClient(t, srv)
	ctx := context.Background()
	appendEvents(t, c, "Acct-1", kdb.NoStream{}, events(2)...)
	before := allIDs(t, c)
	for name, checks := range map[string][]kdb.ConsistencyCheck{
		"written stream fails":    {checkState("Acct-1", kdb.StreamRevision{Value: 0})},
		"check-only stream fails": {checkState("Acct-1", kdb.StreamRevision{Value: 1}), checkState("Other-1", kdb.StreamExists{})},
	} {
		_, err := c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("Acct-1", jsonEvent("Out")), appendRecord("Acct-2", jsonEvent("In"))}, checks...)
		violations(t, err)
		assert.Equal(t, before, allIDs(t, c), "%s: nothing written", name)
	}
	_, err := readStream(t, c, "Acct-2", kdb.ReadStreamOptions{}, 10)
	assert.Equal(t, kdb.ErrorCodeResourceNotFound, errorCode(t, err))
}

func TestMultiRule03InterleavedContiguousInRequestOrder(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v26})
	c := newClient(t, srv)
	appendEvents(t, c, "A-1", kdb.NoStream{}, events(1)...)
	evs := events(4)
	res, err := c.AppendRecords(context.Background(), []kdb.AppendRecord{
		appendRecord("A-1", evs[0]), appendRecord("B-1", evs[1]), appendRecord("A-1", evs[2]), appendRecord("C-1", evs[3]),
	}, checkState("A-1", kdb.StreamRevision{Value: 0}), checkState("B-1", kdb.NoStream{}))
	require.NoError(t, err)
	all := readAll(t, c, kdb.ReadAllOptions{}, math.MaxInt32)
	tail := all[len(all)-4:]
	assert.Equal(t, ids(evs), recordedIDs(tail), "the records end $all, in the request's order")
	for i := 1; i < len(tail); i++ {
		assert.Greater(t, tail[i].Position.Commit, tail[i-1].Position.Commit)
		assert.Equal(t, tail[i].Position.Commit, tail[i].Position.Prepare)
	}
	assert.Equal(t, int64(tail[3].Position.Commit), res.Position, "the position is the last record's")
	revs := map[string]int64{}
	for _, r := range res.Responses {
		revs[r.Stream] = r.StreamRevision
	}
	assert.Equal(t, map[string]int64{"A-1": 2, "B-1": 0, "C-1": 0}, revs, "one revision per written stream; check-only streams absent")
	assert.Equal(t, []uint64{1, 0, 2, 0}, []uint64{tail[0].EventNumber, tail[1].EventNumber, tail[2].EventNumber, tail[3].EventNumber})
}

func TestMultiRule04EveryViolationNamed(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v26})
	c := newClient(t, srv)
	ctx := context.Background()
	appendEvents(t, c, "V-1", kdb.NoStream{}, events(3)...)
	appendEvents(t, c, "V-2", kdb.NoStream{}, events(1)...)
	_, err := c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("V-1", jsonEvent("X")), appendRecord("V-3", jsonEvent("X"))},
		checkState("V-1", kdb.StreamRevision{Value: 7}), // fails: at 2
		checkState("V-2", kdb.NoStream{}),               // fails: at 0, check only
		checkState("V-3", kdb.NoStream{}),               // passes
		checkState("V-4", kdb.StreamExists{}),           // fails: missing, check only
	)
	assert.Equal(t, []kdb.ConsistencyViolation{
		{CheckIndex: 0, Stream: "V-1", ExpectedState: kdb.StreamRevision{Value: 7}, ActualState: kdb.StreamRevision{Value: 2}},
		{CheckIndex: 1, Stream: "V-2", ExpectedState: kdb.NoStream{}, ActualState: kdb.StreamRevision{Value: 0}},
		{CheckIndex: 3, Stream: "V-4", ExpectedState: kdb.StreamExists{}, ActualState: kdb.NoStream{}},
	}, violations(t, err))

	// Requests the validator rejects before anything is checked.
	for name, call := range map[string]func() error{
		"Any in a check": func() error {
			_, err := c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("V-5", jsonEvent("X"))}, checkState("V-5", kdb.Any{}))
			return err
		},
		"a stream checked twice (case-insensitively)": func() error {
			_, err := c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("V-5", jsonEvent("X"))}, checkState("V-5", kdb.NoStream{}), checkState("v-5", kdb.NoStream{}))
			return err
		},
		"a type the schema name rule rejects": func() error {
			_, err := c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("V-5", jsonEvent("Has space"))})
			return err
		},
	} {
		err := call()
		require.Error(t, err, name)
		assert.Equal(t, codes.InvalidArgument, status.Code(errors.Unwrap(err)), "%s: %v", name, err)
	}
	_, err = readStream(t, c, "V-5", kdb.ReadStreamOptions{}, 10)
	assert.Equal(t, kdb.ErrorCodeResourceNotFound, errorCode(t, err), "nothing written")
}

func TestMultiRule05DeletedAndTombstonedStreams(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v26})
	c := newClient(t, srv)
	ctx := context.Background()
	appendEvents(t, c, "Hard-1", kdb.NoStream{}, events(1)...)
	_, err := c.TombstoneStream(ctx, "Hard-1", kdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	appendEvents(t, c, "Soft-1", kdb.NoStream{}, events(2)...)
	_, err = c.DeleteStream(ctx, "Soft-1", kdb.DeleteStreamOptions{})
	require.NoError(t, err)

	// Writing to a tombstoned stream fails whatever the expectation.
	_, err = c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("Hard-1", jsonEvent("X"))})
	assert.Equal(t, []kdb.ConsistencyViolation{{CheckIndex: 0, Stream: "Hard-1", ExpectedState: kdb.Any{}, ActualState: rawState(actualTombstoned)}}, violations(t, err))
	// Checking one: no_stream and tombstoned pass, exists fails.
	for _, state := range []kdb.StreamState{kdb.NoStream{}, rawState(expectTombstoned)} {
		_, err = c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("Else-1", jsonEvent("X"))}, checkState("Hard-1", state))
		require.NoError(t, err, "check %v of a tombstoned stream", state)
	}
	_, err = c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("Else-1", jsonEvent("X"))}, checkState("Hard-1", kdb.StreamExists{}))
	assert.Equal(t, rawState(actualTombstoned), violations(t, err)[0].ActualState)

	// A soft-deleted stream: exists fails as deleted, tombstoned reports
	// the last revision, deleted passes and the write recreates it with
	// revisions continuing.
	_, err = c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("Else-1", jsonEvent("X"))}, checkState("Soft-1", kdb.StreamExists{}))
	assert.Equal(t, rawState(actualDeleted), violations(t, err)[0].ActualState)
	_, err = c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("Else-1", jsonEvent("X"))}, checkState("Soft-1", rawState(expectTombstoned)))
	assert.Equal(t, kdb.StreamRevision{Value: 1}, violations(t, err)[0].ActualState)
	_, err = c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("Else-1", jsonEvent("X"))}, checkState("Else-1", rawState(expectDeleted)))
	assert.Equal(t, kdb.StreamRevision{Value: 1}, violations(t, err)[0].ActualState, "deleted expected of a live stream")
	again := jsonEvent("Again")
	res, err := c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("Soft-1", again)}, checkState("Soft-1", rawState(expectDeleted)))
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.Responses[0].StreamRevision, "revisions continue")
	got, err := readStream(t, c, "Soft-1", kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	assert.Equal(t, []uuid.UUID{again.EventID}, recordedIDs(got), "the old events stay hidden")
}

func TestMultiRule06SizeLimits(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v26, MaxAppendEventSize: 2000, MaxAppendSize: 5000})
	c := newClient(t, srv)
	ctx := context.Background()
	before := allIDs(t, c)
	big := jsonEvent("Big")
	big.Data = []byte(`"` + strings.Repeat("x", 2000) + `"`)
	_, err := c.AppendRecords(ctx, []kdb.AppendRecord{appendRecord("S-1", jsonEvent("Small")), appendRecord("S-2", big)})
	assert.Equal(t, kdb.ErrorCodeAppendRecordSizeExceeded, errorCode(t, err), "err: %v", err)
	var rs *kdb.AppendRecordSizeExceededError
	require.True(t, errors.As(err, &rs))
	assert.Equal(t, "S-2", rs.Stream)
	assert.Equal(t, big.EventID.String(), rs.RecordId)
	assert.Equal(t, int32(2000), rs.MaxSize)

	var recs []kdb.AppendRecord
	for i := range 4 {
		ev := jsonEvent("Mid")
		ev.Data = []byte(`"` + strings.Repeat("y", 1500) + `"`)
		recs = append(recs, appendRecord([]string{"S-1", "S-2"}[i%2], ev))
	}
	_, err = c.AppendRecords(ctx, recs)
	assert.Equal(t, kdb.ErrorCodeAppendTransactionSizeExceeded, errorCode(t, err))
	assert.Equal(t, before, allIDs(t, c), "nothing written")
}

func TestMultiRule07IdempotentRetry(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v26})
	c := newClient(t, srv)
	ctx := context.Background()
	appendEvents(t, c, "R-1", kdb.NoStream{}, events(1)...)
	evs := events(3)
	recs := []kdb.AppendRecord{appendRecord("R-1", evs[0]), appendRecord("R-2", evs[1]), appendRecord("R-1", evs[2])}
	checks := []kdb.ConsistencyCheck{checkState("R-1", kdb.StreamRevision{Value: 0}), checkState("R-2", kdb.NoStream{})}
	orig, err := c.AppendRecords(ctx, recs, checks...)
	require.NoError(t, err)
	sorted := func(rs []kdb.AppendResponse) []kdb.AppendResponse {
		return slices.SortedFunc(slices.Values(rs), func(a, b kdb.AppendResponse) int { return strings.Compare(a.Stream, b.Stream) })
	}
	retry := func(doing string) {
		t.Helper()
		before := allIDs(t, c)
		res, err := c.AppendRecords(ctx, recs, checks...)
		require.NoError(t, err, doing)
		assert.Equal(t, orig.Position, res.Position, doing)
		assert.Equal(t, sorted(orig.Responses), sorted(res.Responses), doing)
		assert.Equal(t, before, allIDs(t, c), "%s: nothing written", doing)
	}
	retry("at once")
	appendEvents(t, c, "R-1", kdb.StreamRevision{Value: 2}, events(1)...)
	retry("after another append to R-1")
	srv.ClearIdempotencyCache()
	retry("after a restart: exact expectations are checked in the index")

	// Idempotent streams beside a failed one are reported too.
	_, err = c.AppendRecords(ctx, append(slices.Clone(recs), appendRecord("R-3", jsonEvent("X"))),
		append(slices.Clone(checks), checkState("R-3", kdb.StreamExists{}))...)
	assert.Equal(t, []kdb.ConsistencyViolation{
		{CheckIndex: 0, Stream: "R-1", ExpectedState: kdb.StreamRevision{Value: 0}, ActualState: kdb.StreamRevision{Value: 3}},
		{CheckIndex: 1, Stream: "R-2", ExpectedState: kdb.NoStream{}, ActualState: kdb.StreamRevision{Value: 0}},
		{CheckIndex: 2, Stream: "R-3", ExpectedState: kdb.StreamExists{}, ActualState: kdb.NoStream{}},
	}, violations(t, err))

	// With Any (no check) the retry is recognised from the bounded cache
	// only: after it is cleared the events are written again.
	anyRecs := []kdb.AppendRecord{appendRecord("R-4", jsonEvent("X")), appendRecord("R-5", jsonEvent("X"))}
	first, err := c.AppendRecords(ctx, anyRecs)
	require.NoError(t, err)
	again, err := c.AppendRecords(ctx, anyRecs)
	require.NoError(t, err)
	assert.Equal(t, first.Position, again.Position, "weak idempotency from the cache")
	srv.ClearIdempotencyCache()
	dup, err := c.AppendRecords(ctx, anyRecs)
	require.NoError(t, err)
	assert.Greater(t, dup.Position, first.Position, "written again once the cache forgot")
}

func TestMultiRule08AppendSession(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v25})
	c := newClient(t, srv)
	ctx := context.Background()
	appendEvents(t, c, "P-1", kdb.NoStream{}, events(2)...)
	a, b := events(2), events(1)
	res, err := c.MultiStreamAppend(ctx, slices.Values([]kdb.AppendStreamRequest{
		{StreamName: "P-2", Events: slices.Values(a), ExpectedStreamState: kdb.NoStream{}},
		{StreamName: "P-1", Events: slices.Values(b), ExpectedStreamState: kdb.StreamRevision{Value: 1}},
	}))
	require.NoError(t, err)
	assert.Equal(t, []kdb.AppendResponse{{Stream: "P-2", StreamRevision: 1}, {Stream: "P-1", StreamRevision: 2}}, res.Responses)
	all := readAll(t, c, kdb.ReadAllOptions{}, math.MaxInt32)
	assert.Equal(t, append(ids(a), ids(b)...), recordedIDs(all[len(all)-3:]), "grouped by stream in request order")
	assert.Equal(t, int64(all[len(all)-1].Position.Commit), res.Position)

	_, err = c.TombstoneStream(ctx, "P-5", kdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	before := allIDs(t, c)

	// Only the first failed stream is reported.
	_, err = c.MultiStreamAppend(ctx, slices.Values([]kdb.AppendStreamRequest{
		{StreamName: "P-3", Events: slices.Values(events(1)), ExpectedStreamState: kdb.StreamExists{}},
		{StreamName: "P-1", Events: slices.Values(events(1)), ExpectedStreamState: kdb.NoStream{}},
	}))
	assert.Equal(t, kdb.ErrorCodeStreamRevisionConflict, errorCode(t, err))
	var rc *kdb.StreamRevisionConflictError
	require.True(t, errors.As(err, &rc))
	assert.Equal(t, &kdb.StreamRevisionConflictError{Stream: "P-3", ExpectedRevision: kdb.StreamExists{}, ActualRevision: kdb.NoStream{}}, rc)

	// A stream may not come twice.
	_, err = c.MultiStreamAppend(ctx, slices.Values([]kdb.AppendStreamRequest{
		{StreamName: "P-4", Events: slices.Values(events(1)), ExpectedStreamState: kdb.Any{}},
		{StreamName: "p-4", Events: slices.Values(events(1)), ExpectedStreamState: kdb.Any{}},
	}))
	assert.Equal(t, codes.Aborted, status.Code(errors.Unwrap(err)), "err: %v", err)

	_, err = c.MultiStreamAppend(ctx, slices.Values([]kdb.AppendStreamRequest{
		{StreamName: "P-5", Events: slices.Values(events(1)), ExpectedStreamState: kdb.Any{}},
	}))
	assert.Equal(t, kdb.ErrorCodeStreamTombstoned, errorCode(t, err))
	assert.Equal(t, before, allIDs(t, c), "nothing written")
}

func TestMultiRule09RecordsReadThroughV1(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v26})
	c := newClient(t, srv)
	j := jsonEvent("Placed")
	j.Metadata = []byte(`{"b":"2","a":"1"}`)
	bin := kdb.EventData{EventID: uuid.New(), EventType: "Blob", ContentType: kdb.ContentTypeBinary, Data: []byte{0, 1, 2}}
	_, err := c.AppendRecords(context.Background(), []kdb.AppendRecord{appendRecord("M-1", j), appendRecord("M-1", bin)})
	require.NoError(t, err)
	got, err := readStream(t, c, "M-1", kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "application/json", got[0].ContentType)
	assert.Equal(t, "application/octet-stream", got[1].ContentType)
	assert.Equal(t, []byte{0, 1, 2}, got[1].Data, "data byte for byte")
	var meta map[string]string
	require.NoError(t, json.Unmarshal(got[0].UserMetadata, &meta), "metadata %s", got[0].UserMetadata)
	assert.Equal(t, map[string]string{"a": "1", "b": "2", "$schema.name": "Placed", "$schema.format": "Json"}, meta,
		"the properties, rendered as JSON with the schema added")
	meta = nil
	require.NoError(t, json.Unmarshal(got[1].UserMetadata, &meta))
	assert.Equal(t, map[string]string{"$schema.name": "Blob", "$schema.format": "Bytes"}, meta)
	assert.True(t, strings.HasPrefix(string(got[1].UserMetadata), "{ "), "JsonFormatter's spacing: %s", got[1].UserMetadata)
}

func TestMultiRule10StreamsMatchCaseInsensitively(t *testing.T) {
	t.Parallel()
	srv := Start(t, Options{ServerVersion: v26})
	c := newClient(t, srv)
	evs := events(2)
	res, err := c.AppendRecords(context.Background(), []kdb.AppendRecord{appendRecord("Case-1", evs[0]), appendRecord("case-1", evs[1])})
	require.NoError(t, err)
	assert.Equal(t, []kdb.AppendResponse{{Stream: "Case-1", StreamRevision: 1}}, res.Responses, "one stream: the first name given")
	got, err := readStream(t, c, "Case-1", kdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	assert.Equal(t, ids(evs), recordedIDs(got))
}
