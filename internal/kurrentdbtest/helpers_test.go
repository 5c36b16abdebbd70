package kurrentdbtest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// patience bounds every wait; only a failing test waits that long.
const patience = 10 * time.Second

// newClient returns the official client connected to srv.
func newClient(t testing.TB, srv *Server) *kdb.Client {
	t.Helper()
	cfg, err := kdb.ParseConnectionString(srv.URL())
	require.NoError(t, err)
	cfg.Logger = kdb.NoopLogging()
	c, err := kdb.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// rawClient returns a plain gRPC client of the Streams service, for what
// the official client hides (trailers, message kinds, raw fields).
func rawClient(t testing.TB, srv *Server) api.StreamsClient {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return api.NewStreamsClient(conn)
}

func jsonEvent(typ string) kdb.EventData {
	return kdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: kdb.ContentTypeJson, Data: []byte(`{"a":1}`)}
}

func events(n int) []kdb.EventData {
	evs := make([]kdb.EventData, n)
	for i := range evs {
		evs[i] = jsonEvent("Happened")
	}
	return evs
}

func ids(evs []kdb.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

func recordedIDs(evs []*kdb.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

// appendEvents appends with the client and fails the test on error.
func appendEvents(t testing.TB, c *kdb.Client, stream string, state kdb.StreamState, evs ...kdb.EventData) *kdb.WriteResult {
	t.Helper()
	res, err := c.AppendToStream(context.Background(), stream, kdb.AppendToStreamOptions{StreamState: state}, evs...)
	require.NoError(t, err, "append %d events to %q", len(evs), stream)
	return res
}

// errorCode returns the code of a client error.
func errorCode(t testing.TB, err error) kdb.ErrorCode {
	t.Helper()
	var e *kdb.Error
	require.True(t, errors.As(err, &e), "want a *kurrentdb.Error, got %T: %v", err, err)
	return e.Code()
}

// readStream reads a stream forwards with the client; a missing stream
// returns the client's error.
func readStream(t testing.TB, c *kdb.Client, stream string, opts kdb.ReadStreamOptions, count uint64) ([]*kdb.RecordedEvent, error) {
	t.Helper()
	rs, err := c.ReadStream(context.Background(), stream, opts, count)
	require.NoError(t, err)
	defer rs.Close()
	var out []*kdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev.Event)
	}
}

// readAll reads $all with the client.
func readAll(t testing.TB, c *kdb.Client, opts kdb.ReadAllOptions, count uint64) []*kdb.RecordedEvent {
	t.Helper()
	rs, err := c.ReadAll(context.Background(), opts, count)
	require.NoError(t, err)
	defer rs.Close()
	var out []*kdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, ev.Event)
	}
}

// rawAppend sends an append by hand and returns the response, the
// trailers and the error.
func rawAppend(t testing.TB, raw api.StreamsClient, msgs ...*api.AppendReq) (*api.AppendResp, metadata.MD, error) {
	t.Helper()
	var trailer metadata.MD
	call, err := raw.Append(context.Background(), grpc.Trailer(&trailer))
	require.NoError(t, err)
	for _, m := range msgs {
		if err := call.Send(m); err != nil {
			break // the server answered early; CloseAndRecv has its status
		}
	}
	resp, err := call.CloseAndRecv()
	return resp, trailer, err
}

func optionsMsg(stream string, expected *api.AppendReq_Options) *api.AppendReq {
	expected.StreamIdentifier = &shared.StreamIdentifier{StreamName: []byte(stream)}
	return &api.AppendReq{Content: &api.AppendReq_Options_{Options: expected}}
}

func anyOptions() *api.AppendReq_Options {
	return &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}}}
}

func proposedMsg(id uuid.UUID, md map[string]string, data []byte) *api.AppendReq {
	return &api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: &api.AppendReq_ProposedMessage{
		Id: structuredUUID(id), Metadata: md, Data: data,
	}}}
}

// rawRead sends a read by hand and returns every message, the trailers and
// the final error.
func rawRead(t testing.TB, raw api.StreamsClient, req *api.ReadReq) ([]*api.ReadResp, metadata.MD, error) {
	t.Helper()
	var trailer metadata.MD
	call, err := raw.Read(context.Background(), req, grpc.Trailer(&trailer))
	require.NoError(t, err)
	var out []*api.ReadResp
	for {
		m, err := call.Recv()
		if errors.Is(err, io.EOF) {
			return out, trailer, nil
		}
		if err != nil {
			return out, trailer, err
		}
		out = append(out, m)
	}
}

// streamReadReq is a read of a stream as the client sends it.
func streamReadReq(stream string, from *api.ReadReq_Options_StreamOptions, dir api.ReadReq_Options_ReadDirection, count uint64) *api.ReadReq {
	from.StreamIdentifier = &shared.StreamIdentifier{StreamName: []byte(stream)}
	return &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption:  &api.ReadReq_Options_Stream{Stream: from},
		ReadDirection: dir,
		CountOption:   &api.ReadReq_Options_Count{Count: count},
		FilterOption:  &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:    &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}}
}

func fromStart() *api.ReadReq_Options_StreamOptions {
	return &api.ReadReq_Options_StreamOptions{RevisionOption: &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}}}
}

// subscription wraps a client subscription with a deadline on each message.
type subscription struct {
	t   testing.TB
	sub *kdb.Subscription
	ch  chan *kdb.SubscriptionEvent
}

// subscribe takes what a Subscribe call returned:
// subscribe(t)(c.SubscribeToAll(ctx, opts)).
func subscribe(t testing.TB) func(*kdb.Subscription, error) *subscription {
	return func(sub *kdb.Subscription, err error) *subscription {
		t.Helper()
		return watchSubscription(t, sub, err)
	}
}

func watchSubscription(t testing.TB, sub *kdb.Subscription, err error) *subscription {
	t.Helper()
	require.NoError(t, err)
	s := &subscription{t: t, sub: sub, ch: make(chan *kdb.SubscriptionEvent)}
	done := make(chan struct{})
	go func() {
		defer close(s.ch)
		for {
			ev := sub.Recv()
			select {
			case s.ch <- ev:
			case <-done:
				return
			}
			if ev.SubscriptionDropped != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { sub.Close(); close(done) })
	return s
}

// next returns the next message of the subscription.
func (s *subscription) next() *kdb.SubscriptionEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.ch:
		require.True(s.t, ok, "the subscription ended")
		return ev
	case <-time.After(patience):
		s.t.Fatalf("no subscription message within %s", patience)
		return nil
	}
}

// nextEvent skips checkpoints and caught-up messages and returns the next event.
func (s *subscription) nextEvent() *kdb.RecordedEvent {
	s.t.Helper()
	for {
		ev := s.next()
		require.Nil(s.t, ev.SubscriptionDropped, "dropped")
		if ev.EventAppeared != nil {
			return ev.EventAppeared.Event
		}
	}
}

// until returns the messages up to and including the first caught-up one.
func (s *subscription) untilCaughtUp() []*kdb.SubscriptionEvent {
	s.t.Helper()
	var out []*kdb.SubscriptionEvent
	for {
		ev := s.next()
		out = append(out, ev)
		require.Nil(s.t, ev.SubscriptionDropped, "dropped")
		if ev.CaughtUp != nil || (ev.EventAppeared == nil && ev.CheckPointReached == nil && ev.FellBehind == nil) {
			return out
		}
	}
}

func eventsOf(msgs []*kdb.SubscriptionEvent) []*kdb.RecordedEvent {
	var out []*kdb.RecordedEvent
	for _, m := range msgs {
		if m.EventAppeared != nil {
			out = append(out, m.EventAppeared.Event)
		}
	}
	return out
}
