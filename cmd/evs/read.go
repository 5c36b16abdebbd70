package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"

	"github.com/eventkit/eventstore"
)

// setupRead: evs read STREAM [--from N] [--limit N] [--backwards].
func setupRead(fs *flag.FlagSet) runFunc {
	var opts eventstore.ReadStreamOptions
	fs.Uint64Var(&opts.From, "from", 0, "first `version` to print (default: the first event, or the last with --backwards)")
	fs.IntVar(&opts.Limit, "limit", 0, "print at most `N` events (default: all)")
	fs.BoolVar(&opts.Backwards, "backwards", false, "print from the newest event to the oldest")
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) == 0 {
			return usagef("missing STREAM")
		}
		if len(args) > 1 {
			return usagef("unexpected argument %q", args[1])
		}
		if opts.Limit < 0 {
			return usagef("invalid --limit %d: want 0 (all) or more", opts.Limit)
		}
		stream := args[0]
		if err := eventstore.ValidateStreamID(stream); err != nil {
			return fmt.Errorf("read stream %q: %w", stream, err)
		}
		return withExistingStore(ctx, e, cf.url, func(s *eventstore.Store) error {
			out := bufio.NewWriter(e.stdout)
			p := newEventPrinter(out, cf.json)
			n := 0
			for ev, err := range s.ReadStream(ctx, stream, opts) {
				if err != nil {
					out.Flush() // what was read is still worth printing
					return err
				}
				if err := p.print(ev); err != nil {
					return err
				}
				n++
			}
			if err := out.Flush(); err != nil {
				return err
			}
			if n == 0 {
				where := ""
				if opts.From > 0 {
					where = fmt.Sprintf(" from version %d", opts.From)
				}
				fmt.Fprintf(e.stderr, "evs read: no events in stream %q%s\n", stream, where)
			}
			return nil
		})
	}
}
