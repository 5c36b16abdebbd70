package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/eventkit/eventstore"
)

// setupTail: evs tail [--category C]... [--type T]... [--from POSITION |
// --from-end] [--limit N] [--backwards] [--no-follow].
func setupTail(fs *flag.FlagSet) runFunc {
	var (
		categories, types            listFlag
		from                         positionFlag
		fromEnd, noFollow, backwards bool
		limit                        int
	)
	fs.Var(&categories, "category", "print only events of streams in `CATEGORY` (repeatable: any of them)")
	fs.Var(&types, "type", "print only events of `TYPE` (repeatable: any of them)")
	fs.Var(&from, "from", "start after `POSITION` (exclusive, like a checkpoint; with --backwards: before it; default: the start of the log, or its end with --backwards)")
	fs.BoolVar(&fromEnd, "from-end", false, "print only events appended from now on")
	fs.IntVar(&limit, "limit", 0, "print at most `N` events, then exit (default: no limit)")
	fs.BoolVar(&backwards, "backwards", false, "print the stored events from the newest to the oldest and exit (implies --no-follow)")
	fs.BoolVar(&noFollow, "no-follow", false, "print the events stored now and exit instead of following the log")
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		if limit < 0 {
			return usagef("invalid --limit %d: want 0 (no limit) or more", limit)
		}
		if fromEnd && from.set {
			return usagef("--from and --from-end exclude each other")
		}
		if fromEnd && (noFollow || backwards) {
			return usagef("--from-end with --no-follow or --backwards prints nothing")
		}
		filter := eventstore.Filter{Categories: categories, EventTypes: types}
		return withExistingStore(ctx, e, cf.url, func(s *eventstore.Store) error {
			if noFollow || backwards {
				opts := eventstore.ReadAllOptions{After: from.pos, Backwards: backwards, Limit: limit, Filter: filter}
				if backwards {
					opts.After, opts.Before = eventstore.Position{}, from.pos
				}
				return printLog(ctx, e, cf, s, opts)
			}
			return follow(ctx, e, cf, s, limit, eventstore.SubscribeOptions{After: from.pos, FromEnd: fromEnd, Filter: filter})
		})
	}
}

// printLog prints the events of the global log that opts selects.
func printLog(ctx context.Context, e *env, cf commonFlags, s *eventstore.Store, opts eventstore.ReadAllOptions) error {
	out := bufio.NewWriter(e.stdout)
	p := newEventPrinter(out, cf.json)
	for ev, err := range s.ReadAll(ctx, opts) {
		if err != nil {
			out.Flush()
			return err
		}
		if err := p.print(ev); err != nil {
			return err
		}
	}
	return out.Flush()
}

// errLimitReached ends a follow that printed --limit events.
var errLimitReached = errors.New("limit reached")

// follow prints the log from opts' start, then each event as it is appended,
// until limit events are printed (0: no limit) or ctx is done (Ctrl-C or
// SIGTERM: an interruptedError). It subscribes without a name: nothing is
// saved in the store.
func follow(ctx context.Context, e *env, cf commonFlags, s *eventstore.Store, limit int, opts eventstore.SubscribeOptions) error {
	// Events go out unbuffered, one Write each, so a reader sees every event
	// as soon as it is handled.
	p := newEventPrinter(e.stdout, cf.json)
	start := "the start of the log"
	switch {
	case opts.FromEnd:
		start = "the end of the log"
	case !opts.After.IsZero():
		start = "position " + opts.After.String()
	}
	fmt.Fprintf(e.stderr, "evs tail: following %s from %s (Ctrl-C to stop)\n", displayURL(cf.url), start)
	n := 0
	err := s.Subscribe(ctx, opts, func(_ context.Context, ev eventstore.RecordedEvent) error {
		if err := p.print(ev); err != nil {
			return err
		}
		if n++; limit > 0 && n >= limit {
			return errLimitReached
		}
		return nil
	})
	switch {
	case errors.Is(err, errLimitReached):
		return nil
	case ctx.Err() != nil:
		return &interruptedError{fmt.Sprintf(" after %s", plural(n, "event", "events"))}
	}
	return err
}
