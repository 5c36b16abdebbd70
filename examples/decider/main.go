// Command decider sells concert tickets with package decider: the domain is
// a Decider (the state of a concert, its events, and what a booking decides),
// and a decider.Handler loads, decides and appends.
//
//  1. a concert with 40 seats goes on sale, and 8 box offices sell tickets at
//     once, one or two seats per booking, until it is sold out; every
//     booking that lost a race was decided again on the newer state, so the
//     concert never oversells and no sale is lost;
//  2. a snapshot is saved every 10 events: loading the concert reads only
//     the events after the latest one;
//  3. a refund made for a web request records the request's correlation ID
//     and the command's ID in its event's metadata;
//  4. a refund of more seats than were sold is refused, and nothing is
//     appended.
//
// docs/decider.md walks through the same program. By default it runs on a
// memory store; --url picks another (the store must be empty):
//
//	go run ./examples/decider
//	go run ./examples/decider --url sqlite:///tmp/concerts.db
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/decider"

	// Drivers register their URL scheme when imported.
	_ "github.com/eventkit/eventstore/drivers/memory"
	_ "github.com/eventkit/eventstore/drivers/postgres"
	_ "github.com/eventkit/eventstore/drivers/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "decider:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("decider", flag.ContinueOnError)
	storeURL := flags.String("url", "memory://", "event store URL")
	if err := flags.Parse(args); err != nil {
		return err
	}
	store, err := eventstore.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintf(out, "opened %s\n", eventstore.RedactURL(*storeURL))

	reg, err := Events()
	if err != nil {
		return err
	}
	// Eight box offices selling at once make this a hot stream: allow more
	// attempts than the default 20 before a booking gives up.
	concerts, err := decider.New(store, reg, Concerts, decider.Options{SnapshotEvery: 10, MaxAttempts: 100})
	if err != nil {
		return err
	}
	const concert = "Concert-42"
	if v, err := store.StreamVersion(ctx, concert); err != nil || v > 0 {
		return errors.Join(err, fmt.Errorf("%s already has events: run on an empty store", concert))
	}

	// 1. On sale, then eight box offices sell at once.
	if _, err := concerts.Handle(ctx, concert, Schedule{Seats: 40, Price: 25_00}); err != nil {
		return err
	}
	sales, err := sell(ctx, concerts, concert, 8)
	if err != nil {
		return err
	}
	st, err := concerts.Load(ctx, concert)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "1. 8 box offices sold %d seats in %d bookings; %d bookings were refused: sold out\n",
		sales.seats, sales.bookings, sales.refused)
	fmt.Fprintf(out, "   %d bookings lost a race and were decided again\n", sales.retried)
	fmt.Fprintf(out, "   the concert: %d of %d seats sold, takings %s\n", st.Value.Sold, st.Value.Seats, money(st.Value.Takings))
	if sales.seats != st.Value.Sold || st.Value.Sold != st.Value.Seats {
		return fmt.Errorf("sold %d seats by the box offices' count, %d by the concert's", sales.seats, st.Value.Sold)
	}

	// 2. Snapshots: the load above started from one.
	fmt.Fprintf(out, "2. loaded at version %d from the snapshot at version %d, reading %d events\n",
		st.Version, st.SnapshotVersion, st.EventsRead)

	// 3. A command that carries its IDs; its events record them.
	res, err := concerts.Handle(ctx, concert, Refund{
		Meta:  decider.Meta{ID: "refund-7", CorrelationID: "request-81f3"},
		Seats: 2,
	})
	if err != nil {
		return err
	}
	for ev, err := range store.ReadStream(ctx, concert, eventstore.ReadStreamOptions{From: res.Append.FirstVersion()}) {
		if err != nil {
			return err
		}
		cause, _ := eventstore.CausationID(ev.Metadata)
		corr, _ := eventstore.CorrelationID(ev.Metadata)
		fmt.Fprintf(out, "3. version %d: %s, caused by %q, correlated with %q\n", ev.Version, ev.Type, cause, corr)
	}

	// 4. A command that breaks a rule is refused, and nothing is appended.
	_, err = concerts.Handle(ctx, concert, Refund{Seats: 100})
	if !errors.Is(err, ErrNotSold) {
		return fmt.Errorf("want %v, got %v", ErrNotSold, err)
	}
	fmt.Fprintf(out, "4. refused: %v\n", err)
	return nil
}

// ---- The domain: a concert's events, state, commands and decider ----

// The events, in cents; registered with the codec by Events.
type (
	Scheduled struct {
		Seats int   `json:"seats"`
		Price int64 `json:"price"`
	}
	Booked struct {
		Seats int   `json:"seats"`
		Price int64 `json:"price"` // per seat
	}
	Refunded struct {
		Seats int   `json:"seats"`
		Price int64 `json:"price"` // per seat
	}
)

// Events returns the registry of the concert's event types.
func Events() (*codec.Registry, error) {
	reg := codec.New()
	return reg, errors.Join(
		codec.Register[Scheduled](reg, "ConcertScheduled"),
		codec.Register[Booked](reg, "SeatsBooked"),
		codec.Register[Refunded](reg, "SeatsRefunded"))
}

// Concert is the state of a concert, as decisions need it.
type Concert struct {
	Seats   int   `json:"seats"` // 0: not scheduled
	Price   int64 `json:"price"`
	Sold    int   `json:"sold"`
	Takings int64 `json:"takings"`
}

// The commands. Each embeds decider.Meta: it may carry its IDs.
type (
	Schedule struct {
		decider.Meta
		Seats int
		Price int64
	}
	Book struct {
		decider.Meta
		Seats int
	}
	Refund struct {
		decider.Meta
		Seats int
	}
)

// Rule violations.
var (
	ErrSoldOut   = errors.New("sold out")
	ErrNotSold   = errors.New("not that many seats sold")
	ErrNotOnSale = errors.New("not on sale")
)

// Concerts is the decider of a concert stream.
var Concerts = decider.Decider[Concert, any]{
	Evolve: func(c Concert, ev any) Concert {
		switch e := ev.(type) {
		case Scheduled:
			c.Seats, c.Price = e.Seats, e.Price
		case Booked:
			c.Sold += e.Seats
			c.Takings += int64(e.Seats) * e.Price
		case Refunded:
			c.Sold -= e.Seats
			c.Takings -= int64(e.Seats) * e.Price
		}
		return c
	},
	Decide: func(c Concert, cmd any) ([]any, error) {
		switch cmd := cmd.(type) {
		case Schedule:
			if c.Seats > 0 {
				return nil, nil // already scheduled: nothing to do
			}
			return []any{Scheduled{Seats: cmd.Seats, Price: cmd.Price}}, nil
		case Book:
			switch {
			case c.Seats == 0:
				return nil, ErrNotOnSale
			case c.Sold+cmd.Seats > c.Seats:
				return nil, fmt.Errorf("book %d with %d left: %w", cmd.Seats, c.Seats-c.Sold, ErrSoldOut)
			}
			return []any{Booked{Seats: cmd.Seats, Price: c.Price}}, nil
		case Refund:
			if cmd.Seats > c.Sold {
				return nil, fmt.Errorf("refund %d of %d sold: %w", cmd.Seats, c.Sold, ErrNotSold)
			}
			return []any{Refunded{Seats: cmd.Seats, Price: c.Price}}, nil
		}
		return nil, fmt.Errorf("unknown command %T", cmd)
	},
}

// ---- The box offices ----

type sales struct {
	bookings, seats, refused int
	retried                  int // decisions made again after a conflict
}

// sell runs offices box offices at once, each booking one or two seats at a
// time until the concert is sold out, and adds up what they sold.
func sell(ctx context.Context, concerts *decider.Handler[Concert, any], concert string, offices int) (sales, error) {
	var (
		mu    sync.Mutex // protects total and errs
		total sales
		errs  []error
		wg    sync.WaitGroup
		gate  = make(chan struct{})
	)
	for office := range offices {
		wg.Go(func() {
			<-gate
			var s sales
			defer func() {
				mu.Lock()
				total.bookings += s.bookings
				total.seats += s.seats
				total.refused += s.refused
				total.retried += s.retried
				mu.Unlock()
			}()
			for i := 0; ; i++ {
				seats := 1 + (office+i)%2
				res, err := concerts.Handle(ctx, concert, Book{Seats: seats})
				s.retried += max(res.Attempts-1, 0)
				switch {
				case err == nil:
					s.bookings++
					s.seats += seats
				case errors.Is(err, ErrSoldOut) && seats == 2:
					s.refused++ // try one seat next
				case errors.Is(err, ErrSoldOut):
					s.refused++
					return
				default:
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	close(gate)
	wg.Wait()
	return total, errors.Join(errs...)
}

// money formats cents as units and hundredths.
func money(cents int64) string {
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}
