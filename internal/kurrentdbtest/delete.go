package kurrentdbtest

import (
	"context"
	"fmt"
	"strconv"

	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Delete is Streams.Delete, a soft delete: it writes {"$tb": max} to the
// stream's metadata. Reads then find no stream; a later append recreates it
// and its revisions continue.
func (svc *streamsService) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	o := req.GetOptions()
	pos, err := svc.remove(ctx, string(o.GetStreamIdentifier().GetStreamName()), o.GetExpectedStreamRevision(), true)
	if err != nil {
		return nil, err
	}
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}

// Tombstone is Streams.Tombstone, a hard delete: a $streamDeleted record
// ends the stream for good.
func (svc *streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	o := req.GetOptions()
	pos, err := svc.remove(ctx, string(o.GetStreamIdentifier().GetStreamName()), o.GetExpectedStreamRevision(), false)
	if err != nil {
		return nil, err
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}

// remove checks the expectation of a delete (soft) or tombstone and writes
// its record, returning the record's position.
func (svc *streamsService) remove(ctx context.Context, name string, revision any, soft bool) (uint64, error) {
	expected, err := deleteExpected(revision)
	if err != nil {
		return 0, err
	}
	s := svc.log
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkDelete(ctx, name, expected, soft); err != nil {
		return 0, err
	}
	if soft {
		return s.softDelete(name).pos, nil
	}
	return s.tombstone(name).pos, nil
}

// deleteExpected reads the expectation of a delete or tombstone request,
// whose oneof types differ only by name.
func deleteExpected(e any) (int64, error) {
	switch e := e.(type) {
	case *api.DeleteReq_Options_Revision:
		return revisionExpected(e.Revision)
	case *api.TombstoneReq_Options_Revision:
		return revisionExpected(e.Revision)
	case *api.DeleteReq_Options_NoStream, *api.TombstoneReq_Options_NoStream:
		return expectNoStream, nil
	case *api.DeleteReq_Options_Any, *api.TombstoneReq_Options_Any:
		return expectAny, nil
	case *api.DeleteReq_Options_StreamExists, *api.TombstoneReq_Options_StreamExists:
		return expectStreamExists, nil
	}
	return 0, status.Error(codes.InvalidArgument, "expected_stream_revision is not set")
}

// checkDelete checks a delete's expectation. A soft delete of a stream
// that never existed (no events, no metadata) fails like a wrong expected
// version; a tombstone of one is allowed.
func (s *store) checkDelete(ctx context.Context, name string, expected int64, soft bool) error {
	st := s.streams[name]
	if st != nil && st.tombstone != nil {
		return streamDeleted(ctx, name)
	}
	cur := st.last()
	_, hasMeta := s.metadataOf(name)
	ok := true
	switch {
	case soft && cur < 0 && !hasMeta:
		ok = false
	case expected == expectAny:
	case expected == expectNoStream:
		ok = cur < 0
	case expected == expectStreamExists:
		ok = cur >= 0
	default:
		ok = expected == cur
	}
	if ok {
		return nil
	}
	return withTrailer(ctx, codes.FailedPrecondition,
		fmt.Sprintf("Append failed due to WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d", name, expected, cur),
		"exception", "wrong-expected-version",
		"stream-name", name,
		"expected-version", strconv.FormatInt(expected, 10),
		"actual-version", strconv.FormatInt(cur, 10))
}
