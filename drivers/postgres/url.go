package postgres

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/redact"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The URL schemes this driver registers with [eventstore.Open].
const (
	Scheme      = "postgres"
	SchemeAlias = "postgresql" // the other scheme libpq accepts
)

func init() {
	for _, s := range []string{Scheme, SchemeAlias} {
		eventstore.Register(s, openURL)
	}
}

// Our query parameters. Every other parameter is pgx's: libpq's (sslmode,
// connect_timeout, application_name…), pgxpool's (pool_max_conns…), or a
// server setting sent at connect (search_path, statement_timeout…).
const (
	paramSchema    = "schema"
	paramMustExist = eventstore.MustExistParam
	paramPageSize  = "page_size"
)

// ourParams lists the parameters the driver takes out of the URL; a
// parameter with the reserved "eventstore_" prefix that is not listed is
// rejected as a likely typo of ours rather than sent to the server.
var ourParams = map[string]bool{paramSchema: true, paramMustExist: true, paramPageSize: true}

const reservedPrefix = "eventstore_"

// paramConnectTimeout is libpq's connect timeout in seconds, which pgx
// reads from the URL, a keyword/value string or PGCONNECT_TIMEOUT.
const paramConnectTimeout = "connect_timeout"

// kvConnectTimeout finds connect_timeout in a keyword/value string.
var kvConnectTimeout = regexp.MustCompile(`(^|\s)connect_timeout\s*=`)

// paramMaxConns is pgxpool's cap on the pool's connections.
const paramMaxConns = "pool_max_conns"

// kvMaxConns finds pool_max_conns in a keyword/value string.
var kvMaxConns = regexp.MustCompile(`(^|\s)pool_max_conns\s*=`)

func openURL(ctx context.Context, u *url.URL, o driver.OpenOptions) (driver.Driver, error) {
	d, err := Open(ctx, u.String(), Options{Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// parseConfig splits our parameters off a connection string and parses the
// rest with pgxpool, then sets the connect timeout (see
// [Options.ConnectTimeout]) and the pool's size ([Options.MaxConns]). A URL's query must parse strictly: one that
// url.ParseQuery refuses (a ';' separator, a bad %-escape) or that repeats a
// parameter is rejected, since a lenient parser would drop pairs (sslmode
// among them). Errors never contain the password: pgx's own parse errors
// redact it, and ours quote only the redacted URL, or nothing of it.
func parseConfig(connString string, opts *Options) (*pgxpool.Config, error) {
	timeoutSet := kvConnectTimeout.MatchString(connString)
	maxConnsSet := kvMaxConns.MatchString(connString)
	if u, err := url.Parse(connString); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			// The error (and the query) may quote part of a password.
			why := "a bad %-escape"
			if strings.Contains(u.RawQuery, ";") {
				why = "';' is not a separator, use '&'"
			}
			return nil, fmt.Errorf("%w: malformed URL query: %s", eventstore.ErrInvalidArgument, why)
		}
		for k, vs := range q {
			switch {
			case len(vs) != 1:
				return nil, fmt.Errorf("%w: %s: parameter %q given %d times", eventstore.ErrInvalidArgument, redact.String(u), k, len(vs))
			case !ourParams[k] && strings.HasPrefix(strings.ToLower(k), reservedPrefix):
				return nil, fmt.Errorf("%w: %s: unknown parameter %q (known: %s, %s, %s)", eventstore.ErrInvalidArgument, redact.String(u), k, paramSchema, paramMustExist, paramPageSize)
			}
		}
		if q.Has(paramSchema) {
			s := q.Get(paramSchema)
			if opts.Schema != "" && opts.Schema != s {
				return nil, fmt.Errorf("%w: schema %q in the URL and %q in the options", eventstore.ErrInvalidArgument, s, opts.Schema)
			}
			if err := ValidateSchema(s); err != nil {
				return nil, err
			}
			opts.Schema = s
		}
		if q.Has(paramMustExist) {
			switch v := q.Get(paramMustExist); v {
			case "true":
				opts.MustExist = true
			case "false":
			default:
				return nil, fmt.Errorf("%w: %s=%q: want true or false", eventstore.ErrInvalidArgument, paramMustExist, v)
			}
		}
		if q.Has(paramPageSize) {
			v := q.Get(paramPageSize)
			n, err := strconv.Atoi(v)
			switch {
			case err != nil || n < 1:
				return nil, fmt.Errorf("%w: %s=%q: want a whole number of at least 1", eventstore.ErrInvalidArgument, paramPageSize, v)
			case opts.PageSize != 0 && opts.PageSize != n:
				return nil, fmt.Errorf("%w: %s=%d in the URL and PageSize %d in the options", eventstore.ErrInvalidArgument, paramPageSize, n, opts.PageSize)
			}
			opts.PageSize = n
		}
		for k := range ourParams {
			q.Del(k)
		}
		timeoutSet = q.Has(paramConnectTimeout)
		maxConnsSet = q.Has(paramMaxConns)
		// Every pair of a strictly parsed query survives Encode.
		u.RawQuery = q.Encode()
		connString = u.String()
	}
	_, timeoutInEnv := os.LookupEnv("PGCONNECT_TIMEOUT")
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's parse errors redact the password themselves.
		return nil, fmt.Errorf("%w: %w", eventstore.ErrInvalidArgument, err)
	}
	cc := cfg.ConnConfig
	// Every statement of the driver is a handful of index lookups; JIT only
	// adds compile time, and on a log of ~10M events the planner's row
	// estimates for a read-all page pass jit_above_cost and each page took
	// 84 ms instead of 2 (docs/benchmarks.md, "At scale"). A jit in the URL
	// wins.
	if _, set := cc.RuntimeParams["jit"]; !set {
		cc.RuntimeParams["jit"] = "off"
	}
	switch {
	case opts.ConnectTimeout < 0:
		cc.ConnectTimeout = 0
	case opts.ConnectTimeout > 0:
		if timeoutSet && cc.ConnectTimeout != opts.ConnectTimeout {
			return nil, fmt.Errorf("%w: connect timeout %s in the connection string and %s in the options", eventstore.ErrInvalidArgument, cc.ConnectTimeout, opts.ConnectTimeout)
		}
		cc.ConnectTimeout = opts.ConnectTimeout
	case !timeoutSet && !timeoutInEnv:
		cc.ConnectTimeout = DefaultConnectTimeout
	}
	switch {
	case opts.MaxConns < 0:
		return nil, fmt.Errorf("%w: MaxConns %d: want at least 1, or 0 for the default", eventstore.ErrInvalidArgument, opts.MaxConns)
	case opts.MaxConns > 0:
		if maxConnsSet && cfg.MaxConns != opts.MaxConns {
			return nil, fmt.Errorf("%w: %s=%d in the connection string and MaxConns %d in the options", eventstore.ErrInvalidArgument, paramMaxConns, cfg.MaxConns, opts.MaxConns)
		}
		cfg.MaxConns = opts.MaxConns
	case !maxConnsSet:
		// pool_min_conns alone raises the cap to it rather than fail.
		cfg.MaxConns = max(DefaultMaxConns, cfg.MinConns)
	}
	return cfg, nil
}

// checkTimeout returns how long opening may wait for the schema check on a
// pool: the connect timeout of opts, else of the pool, else the default; 0
// for none.
func checkTimeout(opts Options, pool *pgxpool.Pool) time.Duration {
	switch {
	case opts.ConnectTimeout < 0:
		return 0
	case opts.ConnectTimeout > 0:
		return opts.ConnectTimeout
	}
	if t := pool.Config().ConnConfig.ConnectTimeout; t > 0 {
		return t
	}
	return DefaultConnectTimeout
}
