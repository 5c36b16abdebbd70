package kurrentdb

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/eventkit/eventstore"
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

// Options configures a [Driver]. The zero value suits a single store on a
// server with default limits.
type Options struct {
	// Namespace keeps this store apart from others on the same server: its
	// streams are stored as Namespace+"/"+stream, and it reads and
	// subscribes only to streams with that prefix. Empty means no prefix:
	// the store sees every user stream on the server. A namespace is 1–64
	// letters, digits, '.', '_' or '-'.
	Namespace string
	// MaxAppendSize and MaxAppendEventSize are the server's limits
	// (--max-append-size and --max-append-event-size), in bytes, counted as
	// the server counts them: data, metadata and twice the UTF-16 length of
	// the event type. Appends over them are rejected before anything is
	// sent. Zero means DefaultMaxAppendSize and DefaultMaxAppendEventSize;
	// other values must be above 1 KiB.
	MaxAppendSize      int
	MaxAppendEventSize int
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
	cfg *kdb.Configuration
	ids *idCache

	startMu sync.Mutex           // protects start
	start   *eventstore.Position // of the namespace's first event, once seen

	mu     sync.Mutex // protects conn and closed
	conn   *conn      // the client in use
	closed bool

	bg   context.Context    // done when Close begins; ends the driver's goroutines
	stop context.CancelFunc // cancels bg
	wg   sync.WaitGroup     // watch goroutines and client health checks
}

var (
	_ eventstore.Driver        = (*Driver)(nil)
	_ eventstore.Watcher       = (*Driver)(nil)
	_ eventstore.LimitReporter = (*Driver)(nil)
	_ eventstore.Aser          = (*Driver)(nil)
)

// New returns a driver over a client the application built. The driver
// never closes it, and cannot rebuild it: once the client gives up on an
// unreachable server (kurrentdb.ErrorCodeConnectionClosed) every call
// fails until the application replaces the driver. Set the client's
// Configuration.Logger (kurrentdb.NoopLogging()) before building it: the
// client's default logger prints.
func New(client *kdb.Client, opts Options) (*Driver, error) {
	if client == nil {
		return nil, fmt.Errorf("kurrentdb: %w: nil client", eventstore.ErrInvalidArgument)
	}
	return newDriver(client, nil, opts)
}

// Open returns a driver for a connection string: a "kurrentdb://" URL, or
// any scheme the client accepts, with the driver's own parameters (see the
// package documentation). It does not dial: the first call connects. The
// driver owns the client it builds: it closes it, and replaces it when the
// client gives up after losing the server.
func Open(ctx context.Context, connString string, opts Options) (*Driver, error) {
	cfg, err := parseConnString(connString, &opts)
	if err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return newDriver(client, cfg, opts)
}

// NewFromConfig is [Open] for a configuration the application built. The
// driver keeps a copy, replaces its Logger with a no-op one, and owns the
// clients it builds from it.
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

// Limits implements [eventstore.LimitReporter]. An event may hold up to the
// smallest of the server's limits, less a margin for its type and framing;
// an append up to MaxAppendSize bytes of data and metadata (the driver also
// counts event types, as the server does, before sending).
func (d *Driver) Limits() eventstore.Limits {
	return eventstore.Limits{
		MaxEventSize:  min(d.opts.MaxAppendEventSize, d.opts.MaxAppendSize, maxMessageSize) - eventOverhead,
		MaxAppendSize: d.opts.MaxAppendSize,
	}
}

// As implements [eventstore.Aser]: a **kurrentdb.Client target receives
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
