package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/eventkit/eventstore"
)

// stats is what evs stats reports.
type stats struct {
	Events       int             `json:"events"`
	Streams      int             `json:"streams"`
	LastPosition string          `json:"last_position"` // "0/0" when the log is empty
	Categories   []categoryStats `json:"categories"`    // by name
}

type categoryStats struct {
	Category string `json:"category"`
	Streams  int    `json:"streams"`
	Events   int    `json:"events"`
}

// setupStats: evs stats. It reads the whole log once; the counts are exact
// as of the end of that read.
func setupStats(*flag.FlagSet) runFunc {
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		return withExistingStore(ctx, e, cf.url, func(s *eventstore.Store) error {
			st, err := collectStats(ctx, s)
			if err != nil {
				return err
			}
			if cf.json {
				return newJSONEncoder(e.stdout).Encode(st)
			}
			return printStats(e, st)
		})
	}
}

func collectStats(ctx context.Context, s *eventstore.Store) (stats, error) {
	var (
		st      stats
		last    eventstore.Position
		streams = map[string]bool{}
		cats    = map[string]*categoryStats{}
	)
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			return stats{}, err
		}
		st.Events++
		last = ev.Position
		c := cats[ev.Category()]
		if c == nil {
			c = &categoryStats{Category: ev.Category()}
			cats[ev.Category()] = c
		}
		c.Events++
		if !streams[ev.StreamID] {
			streams[ev.StreamID] = true
			c.Streams++
		}
	}
	st.Streams = len(streams)
	st.LastPosition = last.String()
	st.Categories = make([]categoryStats, 0, len(cats))
	for _, name := range slices.Sorted(maps.Keys(cats)) {
		st.Categories = append(st.Categories, *cats[name])
	}
	return st, nil
}

func printStats(e *env, st stats) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "events\t%d\n", st.Events)
	fmt.Fprintf(tw, "streams\t%d\n", st.Streams)
	fmt.Fprintf(tw, "categories\t%d\n", len(st.Categories))
	fmt.Fprintf(tw, "last position\t%s\n", st.LastPosition)
	if len(st.Categories) > 0 {
		fmt.Fprintf(tw, "\ncategory\tstreams\tevents\n")
		for _, c := range st.Categories {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", quoteIfNeeded(c.Category), c.Streams, c.Events)
		}
	}
	return tw.Flush()
}
