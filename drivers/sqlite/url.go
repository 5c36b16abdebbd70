package sqlite

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Scheme is the URL scheme of this driver.
const Scheme = "sqlite"

func init() { eventstore.Register(Scheme, openURL) }

func openURL(ctx context.Context, u *url.URL, _ driver.OpenOptions) (driver.Driver, error) {
	path, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, path, opts)
}

// parseURL reads a database path and options from a URL:
//
//	sqlite:relative/path.db
//	sqlite:///absolute/path.db
//	sqlite:///absolute/path.db?synchronous=normal&busy_timeout=10s
//
// Parameters: synchronous (full or normal), busy_timeout and watch_interval
// (Go durations such as 250ms or 5s), max_read_conns (a positive number) and
// must_exist (true or false). Anything else is rejected, as is a query
// url.ParseQuery refuses (a ';' or a bad %-escape) or a repeated parameter.
func parseURL(u *url.URL) (string, Options, error) {
	var opts Options
	bad := func(format string, args ...any) (string, Options, error) {
		return "", Options{}, fmt.Errorf("sqlite: %w: %s", eventstore.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	if u.User != nil {
		return bad("the URL takes no user or password")
	}
	if u.Host != "" {
		return bad("the URL has a host %q: write sqlite:relative/path.db or sqlite:///absolute/path.db", u.Host)
	}
	if u.Fragment != "" {
		return bad("the URL has a fragment; write # in a path as %%23")
	}
	path := u.Path
	if u.Opaque != "" {
		p, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return bad("malformed path: %v", err)
		}
		path = p
	}
	if err := checkPath(path); err != nil {
		return "", Options{}, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("malformed query: %v", err)
	}
	for key, vals := range q {
		if len(vals) != 1 {
			return bad("parameter %q given %d times", key, len(vals))
		}
		v := vals[0]
		switch key {
		case "synchronous":
			switch strings.ToLower(v) {
			case "full":
				opts.Synchronous = SynchronousFull
			case "normal":
				opts.Synchronous = SynchronousNormal
			default:
				return bad("synchronous=%q: want full or normal", v)
			}
		case "busy_timeout", "watch_interval":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return bad("%s=%q: want a positive duration such as 5s", key, v)
			}
			if key == "busy_timeout" {
				opts.BusyTimeout = d
			} else {
				opts.WatchInterval = d
			}
		case "max_read_conns":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return bad("max_read_conns=%q: want a positive number", v)
			}
			opts.MaxReadConns = n
		case eventstore.MustExistParam:
			switch v {
			case "true":
				opts.MustExist = true
			case "false":
			default:
				return bad("%s=%q: want true or false", key, v)
			}
		default:
			return bad("unknown parameter %q (known: synchronous, busy_timeout, watch_interval, max_read_conns, must_exist)", key)
		}
	}
	return path, opts, nil
}
