package postgres

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/redact"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schemes are the URL schemes this driver registers with [eventstore.Open].
var Schemes = []string{"postgres", "postgresql"}

func init() {
	for _, s := range Schemes {
		eventstore.Register(s, openURL)
	}
}

// Our query parameters. Every other parameter is pgx's: libpq's (sslmode,
// connect_timeout, application_name…), pgxpool's (pool_max_conns…), or a
// server setting sent at connect (search_path, statement_timeout…).
const paramSchema = "schema"

// ourParams lists the parameters the driver takes out of the URL; a
// parameter with the reserved "eventstore_" prefix that is not listed is
// rejected as a likely typo of ours rather than sent to the server.
var ourParams = map[string]bool{paramSchema: true}

const reservedPrefix = "eventstore_"

func openURL(ctx context.Context, u *url.URL) (eventstore.Driver, error) {
	d, err := Open(ctx, u.String(), Options{})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// parseConfig splits our parameters off a connection string and parses the
// rest with pgxpool. Errors never contain the password: pgx's own parse
// errors redact it, and ours quote only the redacted URL.
func parseConfig(connString string, opts *Options) (*pgxpool.Config, error) {
	if u, err := url.Parse(connString); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		for k, vs := range q {
			switch {
			case ourParams[k]:
				if len(vs) != 1 {
					return nil, fmt.Errorf("%w: %s: parameter %q given %d times", eventstore.ErrInvalidArgument, redact.String(u), k, len(vs))
				}
			case strings.HasPrefix(strings.ToLower(k), reservedPrefix):
				return nil, fmt.Errorf("%w: %s: unknown parameter %q (known: %s)", eventstore.ErrInvalidArgument, redact.String(u), k, paramSchema)
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
			q.Del(paramSchema)
		}
		u.RawQuery = q.Encode()
		connString = u.String()
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's parse errors redact the password themselves.
		return nil, fmt.Errorf("%w: %w", eventstore.ErrInvalidArgument, err)
	}
	return cfg, nil
}
