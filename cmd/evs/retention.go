package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"github.com/eventkit/eventstore"
)

// setupDeleteStream: evs delete-stream STREAM [--expected E].
func setupDeleteStream(fs *flag.FlagSet) runFunc {
	expected := expectedFlag{v: eventstore.Any}
	fs.Var(&expected, "expected", "expected version of the stream: any, no-stream, stream-exists or a number `N`")
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) != 1 {
			return usagef("want exactly one STREAM, got %d arguments", len(args))
		}
		stream := args[0]
		return withStore(ctx, e, cf.url, func(s *eventstore.Store) error {
			if err := s.DeleteStream(ctx, stream, expected.v); err != nil {
				return err
			}
			return reportRetention(e, cf, "deleted", stream, 0)
		})
	}
}

// setupTruncateStream: evs truncate-stream STREAM --before N.
func setupTruncateStream(fs *flag.FlagSet) runFunc {
	var before string
	fs.StringVar(&before, "before", "", "remove the events with a version below `N` (required)")
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) != 1 {
			return usagef("want exactly one STREAM, got %d arguments", len(args))
		}
		if before == "" {
			return usagef("missing --before")
		}
		n, err := strconv.ParseUint(before, 10, 64)
		if err != nil {
			return usagef("--before %q: want a version, a whole number", before)
		}
		stream := args[0]
		return withStore(ctx, e, cf.url, func(s *eventstore.Store) error {
			if err := s.TruncateStream(ctx, stream, n); err != nil {
				return err
			}
			return reportRetention(e, cf, "truncated", stream, n)
		})
	}
}

// setupApplyRetention: evs apply-retention.
func setupApplyRetention(*flag.FlagSet) runFunc {
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) != 0 {
			return usagef("want no arguments, got %d", len(args))
		}
		return withStore(ctx, e, cf.url, func(s *eventstore.Store) error {
			res, err := s.ApplyRetention(ctx)
			if err != nil {
				return err
			}
			if cf.json {
				return newJSONEncoder(e.stdout).Encode(struct {
					Streams uint64 `json:"streams"`
					Events  uint64 `json:"events"`
				}{res.Streams, res.Events})
			}
			_, err = fmt.Fprintf(e.stdout, "applied the retention of %s: removed %s\n",
				plural(int(res.Streams), "stream", "streams"), plural(int(res.Events), "event", "events"))
			return err
		})
	}
}

// reportRetention prints what delete-stream or truncate-stream did.
func reportRetention(e *env, cf commonFlags, did, stream string, before uint64) error {
	if cf.json {
		return newJSONEncoder(e.stdout).Encode(struct {
			Stream string `json:"stream"`
			Done   string `json:"done"`
			Before uint64 `json:"before,omitempty"`
		}{stream, did, before})
	}
	if before > 0 {
		_, err := fmt.Fprintf(e.stdout, "%s %s before version %d\n", did, quoteIfNeeded(stream), before)
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "%s %s\n", did, quoteIfNeeded(stream))
	return err
}
