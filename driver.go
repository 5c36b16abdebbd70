package eventstore

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/redact"
)

// MustExistParam is the URL query parameter every driver takes: with
// must_exist=true, [Open] fails with [ErrStoreNotFound] instead of creating
// a store that does not exist. The values are "true" and "false" (the default).
const MustExistParam = "must_exist"

var registry struct {
	mu      sync.RWMutex // protects openers
	openers map[string]driver.Opener
}

// Register makes a driver available to [Open] under a URL scheme. Drivers call
// it from init (see package [driver]). Schemes are matched case-insensitively. It panics if opener is
// nil or the scheme is already registered.
func Register(scheme string, opener driver.Opener) {
	if opener == nil {
		panic("eventstore: Register opener is nil")
	}
	scheme = strings.ToLower(scheme)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.openers == nil {
		registry.openers = map[string]driver.Opener{}
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

// OpenWith is [Open] with Store options. The driver logs through
// opts.Logger too.
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
	d, err := opener(ctx, u, driver.OpenOptions{Logger: loggerOrDiscard(opts.Logger)})
	if err != nil {
		return nil, fmt.Errorf("eventstore: open %s: %w", redact.URL(rawURL), err)
	}
	return newStore(d, opts, scheme), nil
}
