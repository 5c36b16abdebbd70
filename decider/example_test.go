package decider_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/decider"
)

// A counter that may not go past a maximum: the events, the state, the
// commands and the decider.
type (
	Incremented struct{ By int }
	Counter     struct{ Value int }
	Increment   struct {
		decider.Meta // the command's IDs, recorded in its events
		By           int
	}
)

var errTooHigh = errors.New("over the maximum")

func Example() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "memory://") // or "sqlite:events.db", "postgres://…"
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	reg := codec.New()
	if err := codec.Register[Incremented](reg, "Incremented"); err != nil {
		log.Fatal(err)
	}

	counter := decider.Decider[Counter, Increment]{
		Evolve: func(c Counter, ev any) Counter {
			if e, ok := ev.(Incremented); ok {
				c.Value += e.By
			}
			return c
		},
		Decide: func(c Counter, cmd Increment) ([]any, error) {
			if c.Value+cmd.By > 10 {
				return nil, fmt.Errorf("%d + %d: %w", c.Value, cmd.By, errTooHigh)
			}
			return []any{Incremented{By: cmd.By}}, nil
		},
	}
	h, err := decider.New(store, reg, counter, decider.Options{SnapshotEvery: 2})
	if err != nil {
		log.Fatal(err)
	}

	for _, by := range []int{4, 5, 3} {
		res, err := h.Handle(ctx, "Counter-1", Increment{By: by})
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Printf("version %d: %d (snapshot saved: %t)\n", res.Version, res.State.Value, res.Snapshot)
	}

	// The command's IDs are in the event's metadata.
	res, _ := h.Handle(ctx, "Counter-1", Increment{Meta: decider.Meta{ID: "cmd-7", CorrelationID: "request-1"}, By: 1})
	for ev, err := range store.ReadStream(ctx, "Counter-1", eventstore.ReadStreamOptions{From: res.Version}) {
		if err != nil {
			log.Fatal(err)
		}
		cause, _ := eventstore.CausationID(ev.Metadata)
		corr, _ := eventstore.CorrelationID(ev.Metadata)
		fmt.Printf("version %d: %s caused by %s in %s\n", ev.Version, ev.Type, cause, corr)
	}
	// Output:
	// version 1: 4 (snapshot saved: false)
	// version 2: 9 (snapshot saved: true)
	// refused: decider: handle "Counter-1": 9 + 3: over the maximum
	// version 3: Incremented caused by cmd-7 in request-1
}
