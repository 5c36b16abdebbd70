package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/eventkit/eventstore"
)

// setupInit: evs init. Opening a store creates its schema (tables, indexes,
// the SQLite file) when it is missing, so init is Open and Close.
func setupInit(*flag.FlagSet) runFunc {
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		return withStore(ctx, e, cf.url, func(*eventstore.Store) error {
			if cf.json {
				return newJSONEncoder(e.stdout).Encode(struct {
					URL     string `json:"url"`
					Backend string `json:"backend"`
				}{displayURL(cf.url), backend(cf.url)})
			}
			_, err := fmt.Fprintf(e.stdout, "store ready: %s (backend %s)\n", displayURL(cf.url), backend(cf.url))
			return err
		})
	}
}
