package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Server limits the driver assumes unless Options say otherwise.
const (
	// DefaultMaxAppendSize is the server's MaxAppendSize that the driver
	// assumes: 1 MiB, the default of KurrentDB 24.10 and 25.0 (25.1 and
	// later default to 256 MiB; set Options.MaxAppendSize to match).
	DefaultMaxAppendSize = 1 << 20
	// DefaultMaxAppendEventSize is the server's MaxAppendEventSize the
	// driver assumes: 16 MiB, the default of KurrentDB 25.1 and later
	// (earlier servers have no per-event limit).
	DefaultMaxAppendEventSize = 16 << 20
	// maxMessageSize is the largest gRPC message the server accepts, and
	// each event travels in one.
	maxMessageSize = 16_767_216
	// eventOverhead is what the driver keeps free in each event besides
	// data and metadata: the server counts an event's type twice (UTF-16,
	// at most 255 units), a snapshot adds its version, and the message has
	// framing.
	eventOverhead = 1024
)

// DefaultConnectTimeout is the default [Options.ConnectTimeout].
const DefaultConnectTimeout = 10 * time.Second

// Options configures a [Driver]. The zero value suits a single store on a
// server with default limits.
type Options struct {
	// Namespace keeps this store's streams apart from others on the same
	// server: its streams are stored as Namespace+"/"+stream, and it reads
	// and subscribes only to streams with that prefix. Empty means no
	// prefix: the store sees every user stream on the server. A namespace
	// is 1–64 letters, digits, '.', '_' or '-'. It is a naming convention,
	// not an isolation boundary: any client with access to the server
	// (another store in another namespace, or none) can read and write
	// every namespace's streams.
	Namespace string
	// MaxAppendSize and MaxAppendEventSize are the server's limits
	// (--max-append-size and --max-append-event-size), in bytes, counted as
	// the server counts them: data, metadata and twice the UTF-16 length of
	// the event type. Appends over them are rejected before anything is
	// sent. Zero means DefaultMaxAppendSize and DefaultMaxAppendEventSize;
	// other values must be above 1 KiB.
	MaxAppendSize      int
	MaxAppendEventSize int
	// MustExist (URL parameter must_exist=true) asks [Open] for an
	// existing store only. The driver never creates anything when it
	// opens, and Open always checks that the server answers, so this adds
	// no check of its own: a KurrentDB store is the server, and a
	// namespace exists as soon as it is named (an empty one is an empty
	// store), so Open never reports [eventstore.ErrStoreNotFound]. A
	// server that does not answer is a connection error, with or without
	// MustExist.
	MustExist bool
	// ConnectTimeout (URL parameter connect_timeout, in whole seconds)
	// bounds [Open]'s round trip to the server: finding it, the gRPC
	// handshake and asking its version. Zero means [DefaultConnectTimeout].
	// Later calls are bounded by their contexts (and appends by the
	// client's defaultDeadline); see the package documentation.
	ConnectTimeout time.Duration
	// Logger receives what an operator acts on: the client rebuilt after
	// it gave up on the server, a live subscription resubscribing. Nil
	// discards.
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.Namespace != "" {
		if err := ValidateNamespace(o.Namespace); err != nil {
			return err
		}
	}
	if o.ConnectTimeout < 0 {
		return fmt.Errorf("kurrentdb: %w: negative ConnectTimeout %s", eventstore.ErrInvalidArgument, o.ConnectTimeout)
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	for _, n := range []int{o.MaxAppendSize, o.MaxAppendEventSize} {
		if n != 0 && n <= eventOverhead {
			return fmt.Errorf("kurrentdb: %w: size limit %d: want more than %d bytes", eventstore.ErrInvalidArgument, n, eventOverhead)
		}
	}
	if o.MaxAppendSize == 0 {
		o.MaxAppendSize = DefaultMaxAppendSize
	}
	if o.MaxAppendEventSize == 0 {
		o.MaxAppendEventSize = DefaultMaxAppendEventSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ValidateNamespace reports whether ns can be a namespace: 1–64 bytes of
// ASCII letters, digits, '.', '_' and '-'. The error matches
// [eventstore.ErrInvalidArgument].
func ValidateNamespace(ns string) error {
	ok := len(ns) > 0 && len(ns) <= 64
	for _, c := range ns {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("kurrentdb: %w: namespace %q: want 1 to 64 ASCII letters, digits, '.', '_' or '-'", eventstore.ErrInvalidArgument, ns)
	}
	return nil
}

// Driver is the KurrentDB driver. Create it with [Open] or [New] and pass it
// to [eventstore.New], or open a "kurrentdb://" URL with [eventstore.Open].
type Driver struct {
	opts   Options
	prefix string // Namespace + "/", or ""
	// cfg builds clients; nil when the caller passed the client, which the
	// driver then neither rebuilds nor closes.
	cfg     *kdb.Configuration
	ids     *idCache
	deleted deletedStreams // streams this driver deleted (see retention.go)

	startMu sync.Mutex       // protects start
	start   *driver.Position // of the namespace's first event, once seen

	mu     sync.Mutex // protects conn and closed
	conn   *conn      // the client in use
	closed bool

	bg   context.Context    // done when Close begins; ends the driver's goroutines
	stop context.CancelFunc // cancels bg
	wg   sync.WaitGroup     // watch goroutines and client health checks
}

var (
	_ driver.Driver            = (*Driver)(nil)
	_ driver.Watcher           = (*Driver)(nil)
	_ driver.LimitReporter     = (*Driver)(nil)
	_ driver.Aser              = (*Driver)(nil)
	_ driver.CheckpointManager = (*Driver)(nil)
	_ driver.ScanReader        = (*Driver)(nil)
)

// New returns a driver over a client the application built. The driver
// never closes it, and cannot rebuild it: once the client gives up on an
// unreachable server (kurrentdb.ErrorCodeConnectionClosed) every call
// fails until the application replaces the driver. Set the client's
// Configuration.Logger (kurrentdb.NoopLogging()) before building it: the
// client's default logger prints. New does not contact the server, so
// Options.MustExist and Options.ConnectTimeout have no effect on it.
func New(client *kdb.Client, opts Options) (*Driver, error) {
	if client == nil {
		return nil, fmt.Errorf("kurrentdb: %w: nil client", eventstore.ErrInvalidArgument)
	}
	return newDriver(client, nil, opts)
}

// Open returns a driver for a connection string: a "kurrentdb://" URL, or
// any scheme the client accepts, with the driver's own parameters (see the
// package documentation); the URL's parameters take precedence over opts,
// and a namespace in both must be the same. Open makes one round trip to
// the server (it finds the server and reads its version), bounded by ctx
// and [Options.ConnectTimeout], and fails if the server does not answer:
// the error matches context.DeadlineExceeded when nothing answered in
// time. It writes nothing. The driver owns the client it builds: it closes
// it, and replaces it when the client gives up after losing the server.
func Open(ctx context.Context, connString string, opts Options) (*Driver, error) {
	cfg, err := parseConnString(connString, &opts)
	if err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	d, err := newDriver(client, cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := d.ping(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// ping makes the driver's first call, bounded by Options.ConnectTimeout:
// the client finds the server and asks its version (ServerFeatures; a
// server without that service answers Unimplemented, which also counts).
// On failure it releases the client, unless the call is still inside it:
// the client then stops on its own when its discovery ends (closing it
// under the call would race with it; see client.go).
func (d *Driver) ping(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, d.opts.ConnectTimeout)
	defer cancel()
	cn := d.current()
	_, err := run(tctx, cn, func(c *kdb.Client) (*kdb.ServerVersion, error) { return c.GetServerVersion() })
	if err == nil {
		return nil
	}
	d.stop()
	server := serverName(d.cfg)
	abandoned := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	if !abandoned {
		cn.client.Close()
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("kurrentdb: open %s: %w", server, ctx.Err())
	case abandoned:
		return fmt.Errorf("kurrentdb: open %s: no answer from the server within %s (connect_timeout): %w",
			server, d.opts.ConnectTimeout, context.DeadlineExceeded)
	case hasCode(err, kdb.ErrorCodeDeadlineExceeded):
		// Every discovery attempt timed out (gossipTimeout).
		return fmt.Errorf("kurrentdb: open %s: no answer from the server: %w: %w", server, context.DeadlineExceeded, err)
	}
	return fmt.Errorf("kurrentdb: open %s: the server cannot be reached: %w", server, err)
}

// serverName names the server(s) of a configuration for an error: the
// address, or the gossip seeds. It holds no credentials.
func serverName(cfg *kdb.Configuration) string {
	if len(cfg.GossipSeeds) == 0 {
		return cfg.Address
	}
	seeds := make([]string, len(cfg.GossipSeeds))
	for i, s := range cfg.GossipSeeds {
		seeds[i] = s.String()
	}
	return strings.Join(seeds, ",")
}

// NewFromConfig is [Open] for a configuration the application built,
// except that it does not contact the server (it has no context to bound
// the call with), so Options.MustExist and Options.ConnectTimeout have no
// effect on it: the first call connects. The driver keeps a copy of cfg,
// replaces its Logger with a no-op one, and owns the clients it builds
// from it.
func NewFromConfig(cfg *kdb.Configuration, opts Options) (*Driver, error) {
	if cfg == nil {
		return nil, fmt.Errorf("kurrentdb: %w: nil configuration", eventstore.ErrInvalidArgument)
	}
	c := *cfg
	client, err := newClient(&c)
	if err != nil {
		return nil, err
	}
	return newDriver(client, &c, opts)
}

func newClient(cfg *kdb.Configuration) (*kdb.Client, error) {
	cfg.Logger = kdb.NoopLogging() // library code never prints
	c := *cfg                      // the client keeps the pointer it gets
	client, err := kdb.NewClient(&c)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: %w: %w", eventstore.ErrInvalidArgument, err)
	}
	return client, nil
}

func newDriver(client *kdb.Client, cfg *kdb.Configuration, opts Options) (*Driver, error) {
	if err := opts.validate(); err != nil {
		if cfg != nil {
			client.Close()
		}
		return nil, err
	}
	d := &Driver{opts: opts, cfg: cfg, conn: newConn(client), ids: newIDCache(idCacheLimit)}
	if opts.Namespace != "" {
		d.prefix = opts.Namespace + "/"
	}
	d.bg, d.stop = context.WithCancel(context.Background())
	return d, nil
}

// Limits implements [driver.LimitReporter]. An event may hold up to the
// smallest of the server's limits, less a margin for its type and framing;
// an append up to MaxAppendSize bytes of data and metadata (the driver also
// counts event types, as the server does, before sending).
func (d *Driver) Limits() driver.Limits {
	return driver.Limits{
		MaxEventSize:  min(d.opts.MaxAppendEventSize, d.opts.MaxAppendSize, maxMessageSize) - eventOverhead,
		MaxAppendSize: d.opts.MaxAppendSize,
	}
}

// As implements [driver.Aser]: a **kurrentdb.Client target receives
// the client in use (clients rebuilt by the driver replace one another).
func (d *Driver) As(target any) bool {
	p, ok := target.(**kdb.Client)
	if !ok || p == nil {
		return false
	}
	*p = d.current().client
	return true
}

// Close stops the driver's live subscriptions and closes the client if
// the driver built it, once calls their callers gave up on have left it. A
// client that last found the server unavailable has stopped on its own, or
// is about to, and is left alone: closing it could race with calls stuck
// inside it (see client.go).
func (d *Driver) Close() error {
	d.stop()
	d.wg.Wait()
	d.mu.Lock()
	closed, cn := d.closed, d.conn
	d.closed = true
	d.mu.Unlock()
	if closed || d.cfg == nil {
		return nil
	}
	return cn.close()
}

// Internal streams: snapshots and subscription checkpoints live in
// KurrentDB under names that start with the namespace prefix and then a
// control character (U+001F), which no stream ID may contain, so they can
// never collide with a user's stream and are hidden from reads.
const internalMark = "\x1f"

// streamName is the KurrentDB stream that holds a user stream.
func (d *Driver) streamName(stream string) string { return d.prefix + stream }

// SnapshotStream returns the KurrentDB stream that holds the snapshots of
// stream in a store with the given namespace ("" for none).
func SnapshotStream(namespace, stream string) string {
	return nsPrefix(namespace) + internalMark + "snapshot:" + stream
}

// CheckpointStream returns the KurrentDB stream that holds the checkpoint
// of a subscription (see [eventstore.CheckpointName]) in a store with the
// given namespace ("" for none).
func CheckpointStream(namespace, name string) string {
	return nsPrefix(namespace) + internalMark + "checkpoint:" + name
}

func nsPrefix(namespace string) string {
	if namespace == "" {
		return ""
	}
	return namespace + "/"
}

// userStream returns the user stream ID a KurrentDB stream holds, and
// false for streams that are not this store's user streams: other
// namespaces, internal streams, system streams ("$…") and any name that
// is not a valid stream ID.
func (d *Driver) userStream(name string) (string, bool) {
	id, ok := strings.CutPrefix(name, d.prefix)
	return id, ok && eventstore.ValidateStreamID(id) == nil
}

// SystemName implements [driver.SystemNamer]: kurrentdb.
func (d *Driver) SystemName() string { return "kurrentdb" }
