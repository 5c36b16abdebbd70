package dynamodb

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Options configures a [Driver]. The zero value is ready to use.
type Options struct {
	// CreateTable creates the table with the driver's key schema (see the
	// package documentation) when it does not exist, and waits until it is
	// ACTIVE. Without it a missing table is an error matching
	// [eventstore.ErrStoreNotFound]. MustExist overrides it.
	CreateTable bool
	// MustExist (URL parameter must_exist=true) opens an existing store
	// only, and writes nothing while opening: a missing table, or a table
	// no driver has set up yet (without its layout item; see the package
	// documentation), is an error matching [eventstore.ErrStoreNotFound],
	// even with CreateTable, and is left as it is.
	MustExist bool
	// ConnectTimeout bounds the driver's first request (DescribeTable,
	// with its retries), so that an endpoint that accepts connections but
	// never answers fails [Open] and [New] after ConnectTimeout. The client
	// [Open] builds also uses it as the timeout to dial, for the TLS
	// handshake, and for the start of every response; a request that meets
	// it fails with an error matching context.DeadlineExceeded and is not
	// retried. Zero means [DefaultConnectTimeout]. URL parameter
	// connect_timeout, in whole seconds.
	ConnectTimeout time.Duration
	// MaxAttempts is how many times one DynamoDB request is tried when the
	// service throttles it (ProvisionedThroughputExceeded, ThrottlingError),
	// cancels a transaction for a TransactionConflict, or fails with a 5xx
	// or a broken connection. Between tries the driver backs off
	// exponentially with jitter. Zero means [DefaultMaxAttempts].
	MaxAttempts int
	// Logger receives what an operator acts on (requests being retried).
	// Nil discards.
	Logger *slog.Logger

	// Log chooses the layout of the global log (URL parameter log, head or
	// indexed) for a table the driver sets up. The layout is a property of
	// the table, recorded in its layout item: on an existing table the zero
	// value means the table's layout, and a layout that contradicts it is
	// an error matching [eventstore.ErrInvalidArgument], returned before
	// anything is written. For a new table the zero value means [LogHead].
	// See [LogLayout] and docs/dynamodb.md.
	Log LogLayout
	// NoOrderer (URL parameter orderer=off) keeps this driver from running
	// the orderer of an indexed table (see [LogIndexed]): it appends and
	// reads, and another process orders the log, for example one that
	// opens the table with the orderer on and does nothing else. Ignored
	// for a head table.
	NoOrderer bool
	// OrdererLease is how long the orderer's lease lasts: a crashed
	// orderer is replaced by another driver within it (plus the time that
	// driver waits between tries, a quarter of it). Zero means
	// [DefaultOrdererLease]. The clocks of the processes must agree within
	// a margin much smaller than it (see "Consumer-group leases" in
	// docs/dynamodb.md).
	OrdererLease time.Duration
	// OrderTimeout is how long an append (or import) to an indexed table
	// waits for the orderer to give its events their positions. When it
	// passes, the append succeeds with a zero [driver.AppendResult]
	// Position: its events are written and the orderer places them when it
	// runs again. Zero means [DefaultOrderTimeout]; negative means do not
	// wait (the Position is then always zero).
	OrderTimeout time.Duration
	// AsyncPositions (URL parameter position=async) makes appends to an
	// indexed table return once their events are written, without waiting
	// for the orderer to place them in the log: a single-event append is
	// one conditional PutItem (the lease holder's too), and its
	// [driver.AppendResult] Position is zero unless it was known at once
	// (an append of several events the lease holder placed directly). A
	// stream read sees the events at once, with a zero Position until they
	// are placed; ReadAll and subscriptions see them once the orderer has
	// placed them, never skipping one. The log then trails the appends by
	// the orderer's delay (docs/dynamodb.md, "Positions after the append").
	// For appends from many processes. The default waits (up to
	// OrderTimeout); a negative OrderTimeout, the older knob, also never
	// waits, but keeps the lease holder's direct placement and makes
	// removals of unplaced events fail at once. Ignored for a head table.
	AsyncPositions bool
	// OrderPoll is the longest the orderer waits between two looks at the
	// inbox when it finds nothing: appends through this driver wake it at
	// once, appends by other processes are found by the poll, which starts
	// at 2 ms after a pass that placed something and doubles up to
	// OrderPoll. Zero means [DefaultOrderPoll].
	OrderPoll time.Duration

	// logBucketSize overrides the positions per log partition when the
	// driver creates the table's layout item; tests use it to cross
	// partition boundaries often. Zero means defaultLogBucketSize.
	logBucketSize uint64
	// noTagIndex makes the driver set a new table up without the tag
	// index, as a driver from before it did; tests compare the two.
	noTagIndex bool
}

// The defaults of the orderer's options.
const (
	DefaultOrdererLease = 5 * time.Second
	DefaultOrderTimeout = 10 * time.Second
	DefaultOrderPoll    = 100 * time.Millisecond
)

// DefaultMaxAttempts is the default [Options.MaxAttempts].
const DefaultMaxAttempts = 10

// DefaultConnectTimeout is the default [Options.ConnectTimeout].
const DefaultConnectTimeout = 10 * time.Second

// validate checks o and fills in its defaults.
func (o *Options) validate() error {
	if o.MaxAttempts < 0 {
		return fmt.Errorf("dynamodb: open: %w: negative MaxAttempts %d", eventstore.ErrInvalidArgument, o.MaxAttempts)
	}
	if o.ConnectTimeout < 0 {
		return fmt.Errorf("dynamodb: open: %w: negative ConnectTimeout %s", eventstore.ErrInvalidArgument, o.ConnectTimeout)
	}
	if o.OrdererLease < 0 || o.OrderPoll < 0 {
		return fmt.Errorf("dynamodb: open: %w: negative OrdererLease or OrderPoll", eventstore.ErrInvalidArgument)
	}
	switch o.Log {
	case "", LogHead, LogIndexed:
	default:
		return fmt.Errorf("dynamodb: open: %w: log layout %q: want %q or %q", eventstore.ErrInvalidArgument, o.Log, LogHead, LogIndexed)
	}
	if o.OrdererLease == 0 {
		o.OrdererLease = DefaultOrdererLease
	}
	if o.OrderTimeout == 0 {
		o.OrderTimeout = DefaultOrderTimeout
	}
	if o.OrderPoll == 0 {
		o.OrderPoll = DefaultOrderPoll
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.logBucketSize == 0 {
		o.logBucketSize = defaultLogBucketSize
	}
	return nil
}

// Driver is the DynamoDB driver. Create one with [New] or [Open] (or
// [eventstore.Open] with a dynamodb:// URL) and pass it to [eventstore.New].
// It is safe for concurrent use.
type Driver struct {
	client *awsdynamodb.Client
	table  string
	logger *slog.Logger
	// bucketSize is the number of positions per log partition, read from
	// the table's layout item.
	bucketSize  uint64
	maxAttempts int
	// closeClient, when set, releases what Open created.
	closeClient func()

	// bucketHint is a log partition known to hold items (or 0): where the
	// search for the head of the log starts. It only grows.
	bucketHint atomic.Uint64
	// directAppends counts the appends placed directly (see place.go).
	directAppends atomic.Uint64
	// pinnedAppends counts the conditional appends placed without the
	// orderer's lease (see pinned.go).
	pinnedAppends atomic.Uint64
	// known is what the driver knows of the streams it appended to (see
	// known.go).
	known knownStreams
	// unplacedPuts counts the appends written as one PutItem (see
	// unplaced.go).
	unplacedPuts atomic.Uint64

	committer committer
	cuts      cutCache
	removed   removedCache // streams with removed events (see retention.go)
	// condMu serialises this driver's conditional appends from their
	// condition scan to their commit (see AppendMulti).
	condMu sync.Mutex

	// indexed is set for a table of the indexed log layout: appends write
	// their events and an inbox item, and the orderer places them in the
	// log (see order.go).
	indexed bool
	// hasUnplaced is set when the table has the global index of unplaced
	// events; unplaced when the table's item layout uses it (see
	// unplaced.go).
	hasUnplaced, unplaced bool
	orderer               *orderer // nil without one (a head table, NoOrderer)
	orderTimeout          time.Duration
	// async is set with Options.AsyncPositions: appends do not wait for
	// their positions (see unplaced.go).
	async bool

	placedMu sync.Mutex    // protects placedCh and placedAt
	placedCh chan struct{} // closed (and replaced) after each pass of the local orderer that placed events
	placedAt map[streamVersion]uint64

	// checkpointsCopied is set once the table's layout item records that
	// every checkpoint of the earlier layout has been copied: listing the
	// checkpoints then needs no scan. copying holds the one token of the
	// copy, so that concurrent listings scan the table once.
	checkpointsCopied atomic.Bool
	copying           chan struct{}

	// tagIndex is set for a table that has had the tag index since it
	// was set up (see tagindex.go).
	tagIndex bool

	mu       sync.Mutex // protects watchers
	watchers map[chan struct{}]struct{}

	closeOnce sync.Once
	// retryHook, when set by tests, is called before each retried request.
	retryHook func(op string, err error)
	// settleHook, when set by tests, is called each time a writer finds
	// tag items missing below its position (see window.go).
	settleHook atomic.Pointer[func(next uint64, missing int)]
	// noSettle, set by benchmarks, turns settling off (the driver as it
	// was before; see window.go).
	noSettle atomic.Bool
	// beforePut, when set by tests, is called before the PutItem of a
	// single-event append (see unplaced.go), after its read of the
	// previous version.
	beforePut func(stream string)
	// stopSweep, when set by tests, stops the sweeps of the streams it
	// reports right after their commit, as a crash would.
	stopSweep atomic.Pointer[func(stream string) bool]
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Watcher       = (*Driver)(nil)
	_ driver.Aser          = (*Driver)(nil)
	_ driver.LimitReporter = (*Driver)(nil)

	_ driver.CheckpointManager = (*Driver)(nil)
	_ driver.ScanReader        = (*Driver)(nil)
	_ driver.Leaser            = (*Driver)(nil)
	_ driver.CheckpointTxer    = (*Driver)(nil)
)

// New returns a driver that keeps the store in an existing table of client,
// or creates it with opts.CreateTable. The client is not closed by the
// driver: the caller keeps owning it. New checks the table's key schema and
// writes the table's layout item on first use (not with MustExist); it
// fails if the service does not answer within opts.ConnectTimeout, if the
// table is missing (without CreateTable; an error matching
// [eventstore.ErrStoreNotFound]) or has another schema. The driver's requests use its own retry policy ([Options.MaxAttempts])
// instead of the client's retryer, so their bounds hold and transaction
// conflicts are retried too.
func New(ctx context.Context, client *awsdynamodb.Client, table string, opts Options) (*Driver, error) {
	if client == nil {
		return nil, fmt.Errorf("dynamodb: new: %w: nil client", eventstore.ErrInvalidArgument)
	}
	return newDriver(ctx, client, table, opts, nil)
}

func newDriver(ctx context.Context, client *awsdynamodb.Client, table string, opts Options, closeClient func()) (*Driver, error) {
	if err := ValidateTableName(table); err != nil {
		return nil, fmt.Errorf("dynamodb: open: %w", err)
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	d := &Driver{
		client:      client,
		table:       table,
		logger:      opts.Logger,
		maxAttempts: opts.MaxAttempts,
		closeClient: closeClient,
		watchers:    map[chan struct{}]struct{}{},
		copying:     make(chan struct{}, 1),
	}
	if err := d.ensureTable(ctx, opts); err != nil {
		return nil, fmt.Errorf("dynamodb: open table %q: %w", table, err)
	}
	lay, err := d.ensureLayout(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: open table %q: %w", table, err)
	}
	d.bucketSize = lay.bucketSize
	d.checkpointsCopied.Store(lay.checkpointsCopied)
	d.indexed = lay.log == LogIndexed
	d.tagIndex = lay.tagIndex
	d.unplaced = lay.unplaced
	d.orderTimeout = opts.OrderTimeout
	d.async = d.indexed && opts.AsyncPositions
	d.placedCh = make(chan struct{})
	d.committer.start(d)
	if d.indexed && !opts.NoOrderer {
		d.orderer = startOrderer(d, opts)
	}
	return d, nil
}

// Table returns the name of the driver's table.
func (d *Driver) Table() string { return d.table }

// Log returns the layout of the table's global log, as its layout item
// records it.
func (d *Driver) Log() LogLayout {
	if d.indexed {
		return LogIndexed
	}
	return LogHead
}

// As implements [driver.Aser]: a **dynamodb.Client target (of
// github.com/aws/aws-sdk-go-v2/service/dynamodb) receives the client.
func (d *Driver) As(target any) bool {
	if c, ok := target.(**awsdynamodb.Client); ok && c != nil {
		*c = d.client
		return true
	}
	return false
}

// Limits implements [driver.LimitReporter] with DynamoDB's own limits:
// an event is one item of at most 400 KB, an append is one transaction of at
// most 100 items and 4 MB. Each event's item also holds its keys, type and
// bookkeeping, and an append adds one item to the global log (and checks the
// item before it), so the limits reported are below the service's.
func (d *Driver) Limits() driver.Limits {
	if d.indexed {
		// The orderer's transaction holds, besides an append's events,
		// the lease check, the head, the log entry and the inbox item.
		return driver.Limits{
			MaxEventSize:    maxEventBytes,
			MaxAppendEvents: maxTxnItems - 4,
			MaxAppendSize:   maxTxnSize - maxTxnItems*eventItemOverhead - maxLogItemSize,
		}
	}
	return driver.Limits{
		MaxEventSize:    maxEventBytes,
		MaxAppendEvents: maxTxnItems - 2,
		MaxAppendSize:   maxTxnSize - maxTxnItems*eventItemOverhead - maxLogItemSize,
	}
}

// Watch implements [driver.Watcher]: every append through this driver
// signals every watcher once it has committed. Appends by other drivers or
// processes are not signalled; subscriptions find them by polling
// (SubscribeOptions.PollInterval).
func (d *Driver) Watch(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.watchers[ch] = struct{}{}
	d.mu.Unlock()
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		delete(d.watchers, ch)
		d.mu.Unlock()
	})
	return ch, nil
}

// notify signals every watcher without blocking.
func (d *Driver) notify() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ch := range d.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Close stops the driver's committer and, when the driver created its client
// ([Open]), releases the client's idle connections. A client passed to [New]
// is left alone. It is idempotent.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		if d.orderer != nil {
			d.orderer.stop()
		}
		d.committer.stop()
		if d.closeClient != nil {
			d.closeClient()
		}
	})
	return nil
}

// noRetry makes one SDK call a single attempt: the driver retries itself
// (see [Driver.call]), with bounds that must not multiply with the client's.
func noRetry(o *awsdynamodb.Options) {
	o.Retryer = aws.NopRetryer{}
	o.RetryMaxAttempts = 0
}

// SystemName implements [driver.SystemNamer]: aws.dynamodb.
func (d *Driver) SystemName() string { return "aws.dynamodb" }
