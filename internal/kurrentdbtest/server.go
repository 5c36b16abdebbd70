// Package kurrentdbtest is an in-process stand-in for a KurrentDB server: a
// gRPC server implementing the server side of the v1 Streams service
// (event_store.client.streams.Streams) that github.com/kurrent-io/KurrentDB-Client-Go
// talks to, over an in-memory log.
//
// It exists because no KurrentDB server can run where CI runs. It follows
// the behaviour written down, with sources, in shared/kurrentdb-semantics.md:
// 0-based revisions, the expected-state checks with the server's error
// details, strong (index) and weak (bounded FIFO cache) idempotency,
// (commit, prepare) positions with gaps, filtered reads and subscriptions with
// checkpoints, confirmation and caught-up messages, soft deletes and
// tombstones, stream metadata ($maxCount, $maxAge, $tb), and the system events a
// fresh node holds, and the v2 multi-stream appends (AppendSession,
// AppendRecords) of the versions that have them. Where it and a real server
// disagree, the server is right.
//
// It is test support: it keeps everything in memory and trusts its caller.
package kurrentdbtest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	sf "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	v2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Server limits and defaults, as in the real server.
const (
	// MaxMessageSize is the largest gRPC message the Streams service
	// accepts: TFConsts.EffectiveMaxLogRecordSize, 16 MiB − 10,000 bytes.
	MaxMessageSize = 16_767_216
	// DefaultMaxAppendSize and DefaultMaxAppendEventSize are the defaults of
	// KurrentDB 25.1 and later. Servers 24.10 and 25.0 default to 1 MiB per
	// append and no per-event limit.
	DefaultMaxAppendSize      = 256 << 20
	DefaultMaxAppendEventSize = 16 << 20
	// DefaultIdempotencyCacheSize approximates how many event IDs the
	// server's 8 MiB committed-events cache holds.
	DefaultIdempotencyCacheSize = 100_000
	// DefaultChunkSize is the size of a transaction-log chunk: a write that
	// does not fit in the rest of a chunk starts at the next one.
	DefaultChunkSize = 256 << 20
)

// Options configures a Server. The zero value is a current server with its
// default limits.
type Options struct {
	// MaxAppendSize and MaxAppendEventSize are the server's size limits in
	// bytes (an event counts its data, its metadata and twice the UTF-16
	// length of its type). Zero means the defaults; -1 means no limit.
	MaxAppendSize      int
	MaxAppendEventSize int
	// IdempotencyCacheSize is how many event IDs the weak idempotency cache
	// (for appends expecting any or stream_exists) remembers, oldest
	// evicted first. Zero means DefaultIdempotencyCacheSize.
	IdempotencyCacheSize int
	// ServerVersion, when set, serves ServerFeatures.GetSupportedMethods
	// with this version ("25.1.0"); empty leaves that service unregistered,
	// as on servers before 21.10, and the client goes on without it. It
	// also decides the multi-stream appends the double serves and
	// advertises (kurrentdb.protocol.v2.streams.StreamsService):
	// AppendSession from "25.1", AppendRecords from "26.1".
	ServerVersion string
	// EmptyCaughtUp sends caught_up without fields, as servers 24.2 to 25.0
	// do; the client then reports a SubscriptionEvent with every field nil.
	EmptyCaughtUp bool
	// NoSeed starts with an empty log instead of the system events a fresh
	// node holds ($settings, stream metadata, a link, a tombstone, an epoch).
	NoSeed bool
	// ChunkSize is the transaction-log chunk size; zero means
	// DefaultChunkSize. Tests lower it to see positions jump.
	ChunkSize uint64
	// Clock, when set, is the server's clock: the recorded time of every
	// record written and the "now" that $maxAge counts back from. Tests set
	// it to age events without waiting. Nil means time.Now.
	Clock func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxAppendSize == 0 {
		o.MaxAppendSize = DefaultMaxAppendSize
	}
	if o.MaxAppendEventSize == 0 {
		o.MaxAppendEventSize = DefaultMaxAppendEventSize
	}
	if o.IdempotencyCacheSize == 0 {
		o.IdempotencyCacheSize = DefaultIdempotencyCacheSize
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	return o
}

// Server is a running double. Its log survives Stop and Restart, as a
// server's database survives a restart; its idempotency cache does not.
type Server struct {
	opts Options
	log  *store

	mu   sync.Mutex // protects addr, grpc and lis
	addr string     // host:port, fixed at the first Start
	grpc *grpc.Server
}

// New returns a stopped server with an empty (or seeded) log.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{opts: opts, log: newStore(opts)}
	if !opts.NoSeed {
		s.log.seed()
	}
	return s
}

// Start starts a server on 127.0.0.1 and stops it when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("kurrentdbtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Listen starts serving on addr ("127.0.0.1:0" picks a free port). Later
// calls to Restart reuse the port it got.
func (s *Server) Listen(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpc != nil {
		lis.Close()
		return fmt.Errorf("already serving on %s", s.addr)
	}
	s.addr = lis.Addr().String()
	s.serve(lis)
	return nil
}

func (s *Server) serve(lis net.Listener) {
	g := grpc.NewServer(
		// The client pings every 10 s even without calls; grpc-go's default
		// policy (5 min) would answer with GOAWAY too_many_pings and drop
		// every subscription after about 30 s.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(MaxMessageSize),
	)
	api.RegisterStreamsServer(g, &streamsService{log: s.log})
	if s.opts.ServerVersion != "" {
		sf.RegisterServerFeaturesServer(g, &featuresService{version: s.opts.ServerVersion})
	}
	if hasMethod(s.opts.ServerVersion, appendSessionSince) {
		v2.RegisterStreamsServiceServer(g, &streamsV2{log: s.log, version: s.opts.ServerVersion})
	}
	s.grpc = g
	go g.Serve(lis) // returns when g stops
}

// Addr returns host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns the connection string of the server: plaintext, one node.
func (s *Server) URL() string { return "kurrentdb://" + s.Addr() + "?tls=false" }

// Stop stops serving at once: open calls and subscriptions fail with
// Unavailable. The log is kept. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	g := s.grpc
	s.grpc = nil
	s.mu.Unlock()
	if g != nil {
		g.Stop()
	}
}

// Restart serves the same log on the same port again, with an empty
// idempotency cache, as a restarted node has.
func (s *Server) Restart() error {
	s.Stop()
	s.log.mu.Lock()
	s.log.cache.clear()
	s.log.writeEpoch() // a node writes one whenever it becomes leader
	s.log.mu.Unlock()
	lis, err := net.Listen("tcp", s.Addr())
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", s.Addr(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serve(lis)
	return nil
}

// ReadStats counts the stream reads a Server has answered (reads of one
// stream with a count; not $all, not subscriptions).
type ReadStats struct {
	Reads  uint64 // reads answered, including those of a missing stream
	Events uint64 // events they sent
}

// StreamReadStats returns what stream reads the server has answered since
// it was created. Tests use it to see how much a client reads.
func (s *Server) StreamReadStats() ReadStats {
	return ReadStats{Reads: s.log.streamReads.Load(), Events: s.log.streamEvents.Load()}
}

// ClearIdempotencyCache forgets the event IDs of recent writes, as a leader
// change does.
func (s *Server) ClearIdempotencyCache() {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.cache.clear()
}

// HoldAppends makes every append wait, before it reads its request, until
// release is called, as an overloaded server does: tests use it to see a
// client deadline expire. An append whose caller gives up meanwhile writes
// nothing.
func (s *Server) HoldAppends() (release func()) {
	hold := make(chan struct{})
	s.log.mu.Lock()
	s.log.hold = hold
	s.log.mu.Unlock()
	return sync.OnceFunc(func() {
		s.log.mu.Lock()
		s.log.hold = nil
		s.log.mu.Unlock()
		close(hold)
	})
}

// featuresService answers ServerFeatures.GetSupportedMethods.
type featuresService struct {
	sf.UnimplementedServerFeaturesServer
	version string
}

func (f *featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*sf.SupportedMethods, error) {
	methods := []*sf.SupportedMethod{
		{MethodName: "read", ServiceName: "event_store.client.streams.streams"},
		{MethodName: "append", ServiceName: "event_store.client.streams.streams"},
		{MethodName: "delete", ServiceName: "event_store.client.streams.streams"},
		{MethodName: "tombstone", ServiceName: "event_store.client.streams.streams"},
	}
	// The server lowercases service and method names.
	const v2Service = "kurrentdb.protocol.v2.streams.streamsservice"
	if hasMethod(f.version, appendSessionSince) {
		methods = append(methods, &sf.SupportedMethod{MethodName: "appendsession", ServiceName: v2Service})
	}
	if hasMethod(f.version, appendRecordsSince) {
		methods = append(methods, &sf.SupportedMethod{MethodName: "appendrecords", ServiceName: v2Service})
	}
	return &sf.SupportedMethods{EventStoreServerVersion: f.version, Methods: methods}, nil
}
