package kurrentdbtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// streamsService serves event_store.client.streams.Streams.
type streamsService struct {
	api.UnimplementedStreamsServer
	log *store
}

var empty = &shared.Empty{}

// Append is Streams.Append: an options message, then the events; the
// server checks and writes them once the client has sent them all, and
// answers once. Size limits are checked while the events arrive.
func (svc *streamsService) Append(call grpc.ClientStreamingServer[api.AppendReq, api.AppendResp]) error {
	ctx := call.Context()
	svc.log.mu.Lock()
	hold := svc.log.hold
	svc.log.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	first, err := call.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.Unknown, "Options Expected")
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	var expected int64
	switch e := opts.ExpectedStreamRevision.(type) {
	case *api.AppendReq_Options_Revision:
		var err error
		if expected, err = revisionExpected(e.Revision); err != nil {
			return err
		}
	case *api.AppendReq_Options_NoStream:
		expected = expectNoStream
	case *api.AppendReq_Options_Any:
		expected = expectAny
	case *api.AppendReq_Options_StreamExists:
		expected = expectStreamExists
	default:
		return status.Error(codes.InvalidArgument, "expected_stream_revision is not set")
	}
	if stream == "" {
		return status.Error(codes.InvalidArgument, "stream_identifier is empty")
	}

	lim := svc.log.opts
	var events []proposed
	total := 0
	for {
		req, err := call.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err // the client went away: nothing is written
		}
		m := req.GetProposedMessage()
		if m == nil {
			return status.Error(codes.Unknown, "Proposed Message Expected")
		}
		p, err := parseProposed(ctx, m)
		if err != nil {
			return err
		}
		size := p.size()
		if lim.MaxAppendEventSize >= 0 && size > lim.MaxAppendEventSize {
			return withTrailer(ctx, codes.InvalidArgument,
				fmt.Sprintf("Event with Id: %s, Size: %d, exceeds Maximum Append Event Size of %d.", p.id, size, lim.MaxAppendEventSize),
				"exception", "maximum-append-event-size-exceeded",
				"maximum-append-event-size", strconv.Itoa(lim.MaxAppendEventSize),
				"event-id", p.id.String(),
				"proposed-append-event-size", strconv.Itoa(size))
		}
		total += size
		if lim.MaxAppendSize >= 0 && total > lim.MaxAppendSize {
			return withTrailer(ctx, codes.InvalidArgument,
				fmt.Sprintf("Maximum Append Size of %d Exceeded.", lim.MaxAppendSize),
				"exception", "maximum-append-size-exceeded",
				"maximum-append-size", strconv.Itoa(lim.MaxAppendSize))
		}
		events = append(events, p)
	}

	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.id
	}
	s := svc.log
	s.mu.Lock()
	res := s.check(stream, expected, ids)
	var resp *api.AppendResp
	switch res.decision {
	case decideDeleted:
		s.mu.Unlock()
		return streamDeleted(ctx, stream)
	case decideWrongVersion, decideCorrupted:
		s.mu.Unlock()
		resp = wrongExpectedVersion(expected, res.current)
	case decideIdempotent:
		pos := s.streams[stream].events[res.last].pos
		s.mu.Unlock()
		resp = success(res.last, pos)
	default:
		last, pos := s.write(stream, res, events)
		s.mu.Unlock()
		resp = success(last, pos)
	}
	return call.SendAndClose(resp)
}

// parseProposed checks the required metadata and the event ID.
func parseProposed(ctx context.Context, m *api.AppendReq_ProposedMessage) (proposed, error) {
	for _, key := range []string{"type", "content-type"} {
		if _, ok := m.Metadata[key]; !ok {
			return proposed{}, withTrailer(ctx, codes.InvalidArgument,
				fmt.Sprintf("Required Metadata Property '%s' is missing", key),
				"exception", "missing-required-metadata-property",
				"required-metadata-properties", "type,content-type")
		}
	}
	id, err := parseUUID(m.GetId())
	if err != nil {
		return proposed{}, status.Errorf(codes.Unknown, "invalid event id: %v", err)
	}
	// The server's Event constructor throws ArgumentException for these.
	if id == uuid.Nil {
		return proposed{}, status.Error(codes.Unknown, "Empty Guid is not allowed\nParameter name: eventId")
	}
	typ := m.Metadata["type"]
	if typ == "" {
		return proposed{}, status.Error(codes.Unknown, "eventType should be non-empty string.\nParameter name: eventType")
	}
	return proposed{
		id: id, typ: typ, json: m.Metadata["content-type"] == "application/json",
		data: m.GetData(), meta: m.GetCustomMetadata(),
	}, nil
}

func parseUUID(u *shared.UUID) (uuid.UUID, error) {
	if u == nil {
		return uuid.Nil, nil
	}
	if st := u.GetStructured(); st != nil {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], uint64(st.MostSignificantBits))
		binary.BigEndian.PutUint64(b[8:], uint64(st.LeastSignificantBits))
		return uuid.UUID(b), nil
	}
	return uuid.Parse(u.GetString_())
}

func structuredUUID(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func success(last int64, pos uint64) *api.AppendResp {
	s := &api.AppendResp_Success{
		PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: pos, PreparePosition: pos}},
	}
	if last < 0 {
		s.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: empty}
	} else {
		s.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(last)}
	}
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: s}}
}

// wrongExpectedVersion is the answer to a failed check: status OK, the
// expectation echoed and the stream's last revision, in both the current
// fields and the 20.6.0 ones.
func wrongExpectedVersion(expected, current int64) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if current < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: empty}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: empty}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(current)}
	}
	switch expected {
	case expectAny:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: empty}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: empty}
	case expectStreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: empty}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: empty}
	case expectNoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: empty}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: math.MaxUint64}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected)}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(expected)}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

// withTrailer returns a status error and sets the trailers the server sends
// with it (key, value pairs); the client reads "exception" from them.
func withTrailer(ctx context.Context, code codes.Code, msg string, kv ...string) error {
	_ = grpc.SetTrailer(ctx, metadata.Pairs(kv...))
	return status.Error(code, msg)
}

// streamDeleted is the server's answer about a tombstoned stream. Without
// the stream-name trailer the client panics.
func streamDeleted(ctx context.Context, stream string) error {
	return withTrailer(ctx, codes.FailedPrecondition, fmt.Sprintf("Event stream '%s' is deleted.", stream),
		"exception", "stream-deleted", "stream-name", stream)
}

// revisionExpected reads an expected revision as the server does: it casts
// the uint64 to a signed 64-bit expected version, so 2^64−1, 2^64−2 and
// 2^64−4 mean no stream, any and stream exists, and its write message
// throws on any other negative value (-3 is ExpectedVersion.Invalid); the
// exception reaches the client as an Unknown status.
func revisionExpected(r uint64) (int64, error) {
	v := int64(r)
	if v < expectStreamExists || v == expectInvalid {
		return 0, status.Error(codes.Unknown, "Exception was thrown by handler.")
	}
	return v, nil
}
