package eventstore

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventstore/internal/redact"
)

// Driver is what a storage backend implements. Applications do not call it:
// they call a [Store], which validates every argument, fills defaults and
// wraps errors before a Driver method runs, so a driver may assume valid input.
// After the Store has called Close it calls no other method except As.
//
// The conformance package checks that a driver keeps this contract.
type Driver interface {
	// Append writes req.Events to req.Stream atomically if req.Expected
	// matches. On a mismatch it returns a *WrongExpectedVersionError and
	// writes nothing. A retry of an append that already succeeded (same
	// expectation, same event IDs in order, see docs/semantics.md) returns the
	// original result and writes nothing. Result.EventIDs may be left nil.
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)
	// ReadStream returns up to q.Limit events of one stream starting at
	// q.From. A stream with no events yields an empty page, not an error.
	// Fewer than q.Limit events means no more follow (for both reads): the
	// Store ends the read there.
	ReadStream(ctx context.Context, q StreamQuery) ([]RecordedEvent, error)
	// ReadAll returns up to q.Limit events of the global log in the range and
	// direction of q that match q.Filter. Once a caller has seen position P,
	// an event that becomes visible later must have a position after P.
	ReadAll(ctx context.Context, q AllQuery) ([]RecordedEvent, error)
	// StreamVersion returns the version of a stream, 0 if it has no events.
	StreamVersion(ctx context.Context, stream string) (uint64, error)
	// SaveSnapshot stores snap for stream unless a snapshot with a higher
	// version is stored. The Store has checked the stream has that version.
	SaveSnapshot(ctx context.Context, stream string, snap Snapshot) error
	// LoadSnapshot returns the stored snapshot; ok is false when there is none.
	LoadSnapshot(ctx context.Context, stream string) (snap Snapshot, ok bool, err error)
	// SaveCheckpoint durably stores pos under a subscription name.
	SaveCheckpoint(ctx context.Context, name string, pos Position) error
	// LoadCheckpoint returns the checkpoint; ok is false when there is none.
	LoadCheckpoint(ctx context.Context, name string) (pos Position, ok bool, err error)
	// Close releases what the driver opened itself.
	Close() error
}

// AppendRequest is a validated append: the stream and type rules hold, there
// is at least one event, every event has a non-zero unique ID, and the limits
// the driver reported are kept.
type AppendRequest struct {
	Stream   string
	Expected ExpectedVersion
	Events   []Event
	// RecordedAt is the time to record, UTC at microsecond precision. A driver
	// whose server stamps events itself may use the server's time instead.
	RecordedAt time.Time
}

// StreamQuery is one page of a stream read.
type StreamQuery struct {
	Stream string
	// From is the first version returned (inclusive). Forwards it is at least
	// 1; backwards, 0 means from the last event.
	From      uint64
	Limit     int // at least 1
	Backwards bool
}

// AllQuery is one page of a global-log read: events strictly between After
// and Before (a zero Before means no upper bound) matching Filter, in
// position order (newest first when Backwards), at most Limit of them.
type AllQuery struct {
	After     Position
	Before    Position
	Backwards bool
	Limit     int // at least 1
	Filter    Filter
}

// Watcher is an optional Driver capability: the driver signals when new
// events may be visible, so subscriptions wake at once. Without it the
// subscription engine polls with back-off up to the PollInterval.
type Watcher interface {
	// Watch returns a channel that receives a value after events may have
	// been appended (signals may coalesce; spurious ones are fine). The
	// channel stops receiving when ctx is done. A driver that can signal no
	// more (a lost connection) may close it: the subscription then polls.
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// LimitReporter is an optional Driver capability that states the backend's
// own limits. The Store checks them before calling Append, so a batch over a
// limit is rejected whole with ErrEventTooLarge or ErrBatchTooLarge. Without it
// only the Store's own limits apply.
type LimitReporter interface {
	Limits() Limits
}

// Aser is an optional Driver capability giving access to the native client;
// see [Store.As].
type Aser interface {
	As(target any) bool
}

// MustExistParam is the URL query parameter every driver takes: with
// must_exist=true, [Open] fails with [ErrStoreNotFound] instead of creating
// a store that does not exist. The values are "true" and "false" (the default).
const MustExistParam = "must_exist"

// Opener opens a driver from a URL whose scheme it was registered for.
type Opener func(ctx context.Context, u *url.URL) (Driver, error)

var registry struct {
	mu      sync.RWMutex // protects openers
	openers map[string]Opener
}

// Register makes a driver available to [Open] under a URL scheme. Drivers call
// it from init. Schemes are matched case-insensitively. It panics if opener is
// nil or the scheme is already registered.
func Register(scheme string, opener Opener) {
	if opener == nil {
		panic("eventstore: Register opener is nil")
	}
	scheme = strings.ToLower(scheme)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.openers == nil {
		registry.openers = map[string]Opener{}
	}
	if _, dup := registry.openers[scheme]; dup {
		panic("eventstore: Register called twice for scheme " + scheme)
	}
	registry.openers[scheme] = opener
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	s := make([]string, 0, len(registry.openers))
	for k := range registry.openers {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// Open opens a Store from a URL such as "sqlite:///var/data/events.db" or
// "memory://". The driver's package must be imported (often as
// `import _ ".../drivers/sqlite"`). An unknown scheme gives an error listing
// the registered ones. Passwords never appear in its errors.
//
// Every driver takes the query parameter must_exist=true ([MustExistParam]):
// the store is opened only if it already exists (its file, schema, table…),
// nothing is created, and a missing store is an error matching
// [ErrStoreNotFound]. Without it a driver may create what it needs (see each
// driver's documentation). Tools that only read, such as a migration's
// source, should set it.
//
// A URL with a '#' is rejected with an error matching [ErrInvalidArgument]:
// no store URL has a fragment, so a '#' in a password or a value must be
// written %23.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return OpenWith(ctx, rawURL, Options{})
}

// RedactURL returns a store URL fit for a log line or an error: the
// password and the values of secret-looking query parameters (any name
// containing pass, pwd, secret, token, key, credential, auth or signature,
// in any case) become "xxxxx". A string that does not parse strictly is
// reduced to its scheme ("postgres:xxxxx"): a keyword/value connection
// string, a query with a ';' or a bad '%' escape, a '#' anywhere, or an
// '@' after the host (a password with an unescaped '/', '?' or '#' that the
// parser would split). Open's errors already go through it.
func RedactURL(rawURL string) string { return redact.URL(rawURL) }

// OpenWith is [Open] with Store options.
func OpenWith(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("eventstore: open %s: %w: malformed URL", redact.URL(rawURL), ErrInvalidArgument)
	}
	if strings.Contains(rawURL, "#") {
		// No store URL has a fragment, and parsers disagree about '#':
		// pgx reads it as part of the query or the database name, so a
		// password after it would be printed in the driver's errors.
		return nil, fmt.Errorf("eventstore: open %s: %w: the URL has a '#': write it as %%23", redact.URL(rawURL), ErrInvalidArgument)
	}
	scheme := strings.ToLower(u.Scheme)
	registry.mu.RLock()
	opener := registry.openers[scheme]
	registry.mu.RUnlock()
	if opener == nil {
		return nil, fmt.Errorf("eventstore: open %s: %w: unknown scheme %q (registered: %s)",
			redact.URL(rawURL), ErrInvalidArgument, u.Scheme, strings.Join(Schemes(), ", "))
	}
	d, err := opener(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("eventstore: open %s: %w", redact.URL(rawURL), err)
	}
	return New(d, opts), nil
}
