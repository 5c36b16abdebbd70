package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/eventkit/eventstore"
)

// subscriptionInfo is one line of evs subscriptions.
type subscriptionInfo struct {
	Name     string `json:"name"`
	Position string `json:"position"`
	// Behind counts the events after the checkpoint, up to
	// eventstore.MaxLagCount; BehindAtLeast is true when it stopped there.
	Behind        int  `json:"behind"`
	BehindAtLeast bool `json:"behind_at_least,omitempty"`
	// Oldest is when the oldest event behind was recorded (recordedAtLayout);
	// empty when none is.
	Oldest string `json:"oldest,omitempty"`
}

// groupLeaseInfo is one line of evs subscriptions group NAME.
type groupLeaseInfo struct {
	Lease      string `json:"lease"`
	Owner      string `json:"owner,omitempty"`
	Held       bool   `json:"held"`
	Expires    string `json:"expires,omitempty"`
	Generation uint64 `json:"generation"`
	Checkpoint string `json:"checkpoint,omitempty"`
}

// setupSubscriptions: evs subscriptions [list | set NAME POSITION | delete
// NAME | group NAME | delete-group NAME].
func setupSubscriptions(*flag.FlagSet) runFunc {
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		verb := "list"
		if len(args) > 0 {
			verb, args = args[0], args[1:]
		}
		want := map[string]int{"list": 0, "set": 2, "delete": 1, "group": 1, "delete-group": 1}
		n, known := want[verb]
		switch {
		case !known:
			return usagef("unknown subcommand %q (known: list, set, delete, group, delete-group)", verb)
		case len(args) != n:
			return usagef("subscriptions %s takes %d argument(s), got %d", verb, n, len(args))
		}
		return withExistingStore(ctx, e, cf.url, func(s *eventstore.Store) error {
			switch verb {
			case "set":
				pos, err := eventstore.ParsePosition(args[1])
				if err != nil {
					return usagef("position %q: want COMMIT/PREPARE, as evs tail prints it", args[1])
				}
				if err := s.SetCheckpoint(ctx, args[0], pos); err != nil {
					return err
				}
				return report(e, cf, "checkpoint %s set to %s", args[0], pos)
			case "delete":
				if err := s.DeleteCheckpoint(ctx, args[0]); err != nil {
					return err
				}
				return report(e, cf, "checkpoint %s deleted", args[0])
			case "delete-group":
				if err := s.DeleteGroup(ctx, args[0]); err != nil {
					return err
				}
				return report(e, cf, "consumer group %s deleted", args[0])
			case "group":
				return printGroup(ctx, e, cf, s, args[0])
			}
			infos, err := listSubscriptions(ctx, s)
			if err != nil {
				return err
			}
			if cf.json {
				return newJSONEncoder(e.stdout).Encode(infos)
			}
			return printSubscriptions(e, infos)
		})
	}
}

// report prints what a set or delete did: a line of text, or with --json
// the line as {"result": …}.
func report(e *env, cf commonFlags, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cf.json {
		return newJSONEncoder(e.stdout).Encode(struct {
			Result string `json:"result"`
		}{msg})
	}
	_, err := fmt.Fprintln(e.stdout, msg)
	return err
}

// listSubscriptions returns every stored checkpoint with how far it is
// behind the log.
func listSubscriptions(ctx context.Context, s *eventstore.Store) ([]subscriptionInfo, error) {
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	infos := make([]subscriptionInfo, 0, len(cps))
	for _, c := range cps {
		lag, err := s.Lag(ctx, c.Position, eventstore.Filter{})
		if err != nil {
			return nil, err
		}
		info := subscriptionInfo{Name: c.Name, Position: c.Position.String(), Behind: lag.Events, BehindAtLeast: lag.AtLeast}
		if !lag.Oldest.IsZero() {
			info.Oldest = lag.Oldest.UTC().Format(recordedAtLayout)
		}
		infos = append(infos, info)
	}
	return infos, nil
}

func printSubscriptions(e *env, infos []subscriptionInfo) error {
	if len(infos) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no checkpoints")
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "subscription\tposition\tbehind\toldest behind\n")
	for _, in := range infos {
		behind := strconv.Itoa(in.Behind)
		if in.BehindAtLeast {
			behind = "≥" + behind
		}
		oldest := in.Oldest
		if oldest == "" {
			oldest = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", quoteIfNeeded(in.Name), in.Position, behind, oldest)
	}
	return tw.Flush()
}

// printGroup prints the leases of a consumer group: its members, who holds
// each partition, and each partition's checkpoint.
func printGroup(ctx context.Context, e *env, cf commonFlags, s *eventstore.Store, name string) error {
	leases, err := s.GroupLeases(ctx, name)
	if err != nil {
		return err
	}
	infos := make([]groupLeaseInfo, len(leases))
	for i, l := range leases {
		infos[i] = groupLeaseInfo{Lease: l.Key, Owner: l.Owner, Held: l.Held, Generation: l.Generation}
		if !l.Expires.IsZero() {
			infos[i].Expires = l.Expires.UTC().Format(recordedAtLayout)
		}
		if l.HasCheckpoint {
			infos[i].Checkpoint = l.Checkpoint.String()
		}
	}
	if cf.json {
		return newJSONEncoder(e.stdout).Encode(infos)
	}
	if len(infos) == 0 {
		_, err := fmt.Fprintf(e.stdout, "no leases for consumer group %s\n", quoteIfNeeded(name))
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "lease\towner\theld\texpires\tcheckpoint\n")
	for _, in := range infos {
		owner, expires, cp := in.Owner, in.Expires, in.Checkpoint
		for _, v := range []*string{&owner, &expires, &cp} {
			if *v == "" {
				*v = "-"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\n", quoteIfNeeded(in.Lease), quoteIfNeeded(owner), in.Held, expires, cp)
	}
	return tw.Flush()
}
