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
// --from-end] [--no-follow].
func setupTail(fs *flag.FlagSet) runFunc {
	var (
		categories, types listFlag
		from              positionFlag
		fromEnd, noFollow bool
	)
	fs.Var(&categories, "category", "print only events of streams in `CATEGORY` (repeatable: any of them)")
	fs.Var(&types, "type", "print only events of `TYPE` (repeatable: any of them)")
	fs.Var(&from, "from", "start after `POSITION` (exclusive, like a checkpoint; default: the start of the log)")
	fs.BoolVar(&fromEnd, "from-end", false, "print only events appended from now on")
	fs.BoolVar(&noFollow, "no-follow", false, "print the events stored now and exit instead of following the log")
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		if fromEnd && from.set {
			return usagef("--from and --from-end exclude each other")
		}
		if fromEnd && noFollow {
			return usagef("--from-end with --no-follow prints nothing")
		}
		filter := eventstore.Filter{Categories: categories, EventTypes: types}
		return withStore(ctx, cf.url, func(s *eventstore.Store) error {
			if noFollow {
				return printLog(ctx, e, cf, s, eventstore.ReadAllOptions{After: from.pos, Filter: filter})
			}
			return follow(ctx, e, cf, s, eventstore.SubscribeOptions{After: from.pos, FromEnd: fromEnd, Filter: filter})
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

// follow prints the log from opts' start, then each event as it is appended,
// until ctx is done (Ctrl-C or SIGTERM), which is a normal end. It subscribes
// without a name: nothing is saved in the store.
func follow(ctx context.Context, e *env, cf commonFlags, s *eventstore.Store, opts eventstore.SubscribeOptions) error {
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
	err := s.Subscribe(ctx, opts, func(_ context.Context, ev eventstore.RecordedEvent) error {
		return p.print(ev)
	})
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}
