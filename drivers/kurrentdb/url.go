package kurrentdb

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/redact"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Scheme is the main URL scheme this driver registers with
// [eventstore.Open]. It registers every scheme the KurrentDB client accepts:
// kurrentdb, kurrent, kdb and esdb, each also with "+discover".
const Scheme = "kurrentdb"

// schemes lists every scheme the driver registers.
func schemes() []string {
	return []string{
		Scheme, Scheme + "+discover", "kurrent", "kurrent+discover",
		"kdb", "kdb+discover", "esdb", "esdb+discover",
	}
}

func init() {
	for _, s := range schemes() {
		eventstore.Register(s, openURL)
	}
}

func openURL(ctx context.Context, u *url.URL, o driver.OpenOptions) (driver.Driver, error) {
	d, err := Open(ctx, u.String(), Options{Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// The driver's own query parameters, matched case-insensitively like the
// client's.
const (
	paramNamespace          = "namespace"
	paramMaxAppendSize      = "maxappendsize"
	paramMaxAppendEventSize = "maxappendeventsize"
	// The parameters every driver takes have the same name everywhere.
	paramMustExist      = eventstore.MustExistParam
	paramConnectTimeout = "connect_timeout"
)

// driverParams lists the driver's own parameters for error messages.
var driverParams = []string{paramNamespace, paramMaxAppendSize, paramMaxAppendEventSize, paramMustExist, paramConnectTimeout}

// clientParams are the client's parameters (lower case), passed on to it.
// The client only logs a parameter it does not know; the driver rejects it.
var clientParams = []string{
	"tls", "tlsverifycert", "tlscafile", "usercertfile", "userkeyfile", "nodepreference",
	"maxdiscoverattempts", "discoveryinterval", "gossiptimeout",
	"keepaliveinterval", "keepalivetimeout", "defaultdeadline",
}

// parseConnString takes the driver's parameters out of a connection string
// into opts and parses the rest with the client. Errors match
// eventstore.ErrInvalidArgument and never show a password: they show the
// URL without its query, and name parameters.
func parseConnString(connString string, opts *Options) (*kdb.Configuration, error) {
	u, err := url.Parse(connString)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: %w: malformed connection string %s", eventstore.ErrInvalidArgument, redact.URL(connString))
	}
	shown := *u
	shown.RawQuery, shown.ForceQuery = "", false
	bad := func(format string, args ...any) error {
		return fmt.Errorf("kurrentdb: %w: %s: %s", eventstore.ErrInvalidArgument, redact.String(&shown), fmt.Sprintf(format, args...))
	}
	if !slices.Contains(schemes(), strings.ToLower(u.Scheme)) {
		return nil, bad("unknown scheme %q (known: %s)", u.Scheme, strings.Join(schemes(), ", "))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	// Strictly: u.Query() would drop a pair holding a ';' or a bad
	// %-escape, and with it a namespace, silently.
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("malformed query (a ';' or a bad %%-escape?)")
	}
	rest := url.Values{}
	var keepAlive *time.Duration
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, bad("parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		switch key := strings.ToLower(k); key {
		case paramNamespace:
			if err := ValidateNamespace(v); err != nil {
				return nil, err
			}
			if opts.Namespace != "" && opts.Namespace != v {
				return nil, bad("namespace %q in the URL and %q in the options", v, opts.Namespace)
			}
			opts.Namespace = v
		case paramMustExist:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, bad("%s %q: want true or false", k, v)
			}
			opts.MustExist = opts.MustExist || b
		case paramConnectTimeout:
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || int64(n) > math.MaxInt64/int64(time.Second) {
				return nil, bad("%s %q: want a positive whole number of seconds", k, v)
			}
			opts.ConnectTimeout = time.Duration(n) * time.Second
		case paramMaxAppendSize, paramMaxAppendEventSize:
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, bad("%s %q: want a positive number of bytes", k, v)
			}
			if key == paramMaxAppendSize {
				opts.MaxAppendSize = n
			} else {
				opts.MaxAppendEventSize = n
			}
		case "keepaliveinterval":
			// Set after parsing: the client logs a warning through its
			// default (printing) logger for values under 10 s.
			n, err := strconv.Atoi(v)
			if err != nil || n < -1 {
				return nil, bad("%s %q: want milliseconds, or -1 to disable", k, v)
			}
			d := time.Duration(n) * time.Millisecond
			if n == -1 {
				d = -1
			}
			keepAlive = &d
		case "defaultdeadline":
			// The client silently takes a bad value as 0 s, which fails
			// every append at once.
			if n, err := strconv.Atoi(v); err != nil || n <= 0 {
				return nil, bad("%s %q: want a positive number of milliseconds", k, v)
			}
			rest.Set(k, v)
		default:
			if !slices.Contains(clientParams, key) {
				return nil, bad("unknown parameter %q (known: %s, %s)", k,
					strings.Join(driverParams, ", "), strings.Join(clientParams, ", "))
			}
			rest.Set(k, v)
		}
	}
	u.RawQuery = rest.Encode()
	cfg, err := kdb.ParseConnectionString(u.String())
	if err != nil {
		return nil, bad("%v", err)
	}
	if keepAlive != nil {
		cfg.KeepAliveInterval = *keepAlive
	}
	return cfg, nil
}
