// Command dcb shows business rules that span more than one stream, kept
// with multi-stream appends and Dynamic Consistency Boundaries (DCB):
//
//  1. unique usernames: a registration appends only if no event tagged with
//     the name exists anywhere in the log (a condition with a zero After),
//     and of eight clients racing for one name exactly one gets it;
//  2. a transfer between two accounts: one atomic append to both streams,
//     each at the version the decision read; a transfer decided on stale
//     balances fails whole and is decided again;
//  3. course capacity: ten students race for three seats; each decision
//     reads the course's enrolments by query and appends only if none was
//     added after the last one it saw, so the course never overfills.
//
// docs/dcb.md walks through the same three rules. By default it runs on a
// memory store; --url picks another whose driver supports multi-stream
// appends and reads by query (the store must be empty):
//
//	go run ./examples/dcb
//	go run ./examples/dcb --url memory://
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"

	"github.com/eventkit/eventstore"

	// Drivers register their URL scheme when imported.
	_ "github.com/eventkit/eventstore/drivers/memory"
	_ "github.com/eventkit/eventstore/drivers/postgres"
	_ "github.com/eventkit/eventstore/drivers/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dcb:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("dcb", flag.ContinueOnError)
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
	if err := usernames(ctx, store, out); err != nil {
		return fmt.Errorf("unique usernames: %w", err)
	}
	if err := transfers(ctx, store, out); err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	if err := courses(ctx, store, out); err != nil {
		return fmt.Errorf("course capacity: %w", err)
	}
	return nil
}

// ErrUsernameTaken is what Register returns for a name already registered.
var ErrUsernameTaken = errors.New("username taken")

// Register appends UserRegistered to the user's stream, tagged with the
// username, if no event with that tag and type exists anywhere in the log.
func Register(ctx context.Context, store *eventstore.Store, userID, username string) error {
	tag := "username:" + username
	ev := eventstore.NewEvent("UserRegistered", []byte(strconv.Quote(username)))
	ev.Tags = []string{tag}
	_, err := store.AppendMulti(ctx, eventstore.MultiAppend{
		Records: []eventstore.Record{{Stream: "User-" + userID, Event: ev}},
		Expect:  []eventstore.StreamExpectation{{Stream: "User-" + userID, Expected: eventstore.NoStream}},
		// A zero After: a matching event anywhere in the log fails the append.
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{
			{Types: []string{"UserRegistered"}, Tags: []string{tag}},
		}}},
	})
	if errors.Is(err, eventstore.ErrAppendConditionFailed) {
		return fmt.Errorf("%q: %w", username, ErrUsernameTaken)
	}
	return err
}

func usernames(ctx context.Context, store *eventstore.Store, out io.Writer) error {
	fmt.Fprintln(out, "1. unique usernames")
	for _, r := range []struct{ user, name string }{{"1", "ada"}, {"2", "ada"}, {"3", "bob"}} {
		err := Register(ctx, store, r.user, r.name)
		switch {
		case err == nil:
			fmt.Fprintf(out, "   user %s registered %q\n", r.user, r.name)
		case errors.Is(err, ErrUsernameTaken):
			fmt.Fprintf(out, "   user %s refused: %v\n", r.user, err)
		default:
			return err
		}
	}
	// Eight clients race for one name: the condition is checked where the
	// write happens, so exactly one wins.
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { errs[i] = Register(ctx, store, "eve-"+strconv.Itoa(i), "eve") })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrUsernameTaken):
			return err
		}
	}
	fmt.Fprintf(out, "   %d clients raced for %q: %d registered it, %d were refused\n", racers, "eve", won, racers-won)
	return nil
}

// Account is the state of an account stream, as of Version.
type Account struct {
	ID      string
	Balance int
	Version uint64
}

// LoadAccount reads an account's stream.
func LoadAccount(ctx context.Context, store *eventstore.Store, id string) (Account, error) {
	acc := Account{ID: id}
	for ev, err := range store.ReadStream(ctx, "Account-"+id, eventstore.ReadStreamOptions{}) {
		if err != nil {
			return Account{}, err
		}
		amount, err := strconv.Atoi(string(ev.Data))
		if err != nil {
			return Account{}, fmt.Errorf("%s version %d: %w", ev.StreamID, ev.Version, err)
		}
		switch ev.Type {
		case "Deposited", "Credited":
			acc.Balance += amount
		case "Debited":
			acc.Balance -= amount
		}
		acc.Version = ev.Version
	}
	return acc, nil
}

// ErrInsufficientFunds is what a transfer returns when the source account
// cannot cover it.
var ErrInsufficientFunds = errors.New("insufficient funds")

// TransferOnce decides a transfer on from and to as loaded and appends its
// two events atomically, expecting both streams at the loaded versions.
func TransferOnce(ctx context.Context, store *eventstore.Store, from, to Account, amount int) error {
	if from.Balance < amount {
		return fmt.Errorf("%s has %d, wants to send %d: %w", from.ID, from.Balance, amount, ErrInsufficientFunds)
	}
	data := []byte(strconv.Itoa(amount))
	_, err := store.AppendMulti(ctx, eventstore.MultiAppend{
		Records: []eventstore.Record{
			{Stream: "Account-" + from.ID, Event: eventstore.NewEvent("Debited", data)},
			{Stream: "Account-" + to.ID, Event: eventstore.NewEvent("Credited", data)},
		},
		Expect: []eventstore.StreamExpectation{
			{Stream: "Account-" + from.ID, Expected: eventstore.Exact(from.Version)},
			{Stream: "Account-" + to.ID, Expected: eventstore.Exact(to.Version)},
		},
	})
	return err
}

// Transfer loads both accounts, decides and appends, and does it again when
// either account moved in between.
func Transfer(ctx context.Context, store *eventstore.Store, from, to string, amount int) error {
	for {
		a, err := LoadAccount(ctx, store, from)
		if err != nil {
			return err
		}
		b, err := LoadAccount(ctx, store, to)
		if err != nil {
			return err
		}
		err = TransferOnce(ctx, store, a, b, amount)
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return err
		}
	}
}

func transfers(ctx context.Context, store *eventstore.Store, out io.Writer) error {
	fmt.Fprintln(out, "2. a transfer between two accounts")
	for _, d := range []struct {
		id     string
		amount int
	}{{"alice", 100}, {"bob", 20}} {
		if _, err := store.Append(ctx, "Account-"+d.id, eventstore.NoStream, eventstore.NewEvent("Deposited", []byte(strconv.Itoa(d.amount)))); err != nil {
			return err
		}
	}
	alice, err := LoadAccount(ctx, store, "alice")
	if err != nil {
		return err
	}
	bob, err := LoadAccount(ctx, store, "bob")
	if err != nil {
		return err
	}
	// Someone else moves 70 from alice to bob first.
	if err := Transfer(ctx, store, "alice", "bob", 70); err != nil {
		return err
	}
	// The decision made on the balances loaded before is stale: both
	// streams moved, and the error names both; nothing was written.
	err = TransferOnce(ctx, store, alice, bob, 50)
	var conflict *eventstore.AppendConflictError
	if !errors.As(err, &conflict) {
		return fmt.Errorf("want a conflict, got %v", err)
	}
	for _, s := range conflict.Streams {
		fmt.Fprintf(out, "   stale transfer refused: %s expected at %s, is at %d\n", s.Stream, s.Expected, s.Actual)
	}
	// Decided again on fresh balances, alice cannot cover it any more.
	err = Transfer(ctx, store, "alice", "bob", 50)
	if !errors.Is(err, ErrInsufficientFunds) {
		return fmt.Errorf("want %v, got %v", ErrInsufficientFunds, err)
	}
	fmt.Fprintf(out, "   decided again: %v\n", err)
	for _, id := range []string{"alice", "bob"} {
		acc, err := LoadAccount(ctx, store, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   %s: %d\n", id, acc.Balance)
	}
	return nil
}

// ErrCourseFull is what Enrol returns once a course has no seat left.
var ErrCourseFull = errors.New("course full")

// Enrol enrols student in course if it has fewer than capacity students.
// The decision reads the course's enrolments by query; the append fails if
// an enrolment was added after the last one it saw, and is decided again.
func Enrol(ctx context.Context, store *eventstore.Store, course, student string, capacity int) error {
	q := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"StudentEnrolled"}, Tags: []string{"course:" + course}}}}
	for {
		var enrolled int
		var after eventstore.Position
		for ev, err := range store.ReadQuery(ctx, q, eventstore.ReadQueryOptions{}) {
			if err != nil {
				return err
			}
			enrolled, after = enrolled+1, ev.Position
		}
		if enrolled >= capacity {
			return fmt.Errorf("%s: %w (%d of %d seats taken)", course, ErrCourseFull, enrolled, capacity)
		}
		ev := eventstore.NewEvent("StudentEnrolled", []byte(strconv.Quote(student)))
		ev.Tags = []string{"course:" + course, "student:" + student}
		_, err := store.AppendMulti(ctx, eventstore.MultiAppend{
			Records:   []eventstore.Record{{Stream: "Student-" + student, Event: ev}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
		})
		if !errors.Is(err, eventstore.ErrAppendConditionFailed) {
			return err
		}
	}
}

func courses(ctx context.Context, store *eventstore.Store, out io.Writer) error {
	fmt.Fprintln(out, "3. course capacity")
	const students, capacity = 10, 3
	errs := make([]error, students)
	var wg sync.WaitGroup
	for i := range students {
		wg.Go(func() { errs[i] = Enrol(ctx, store, "go101", "s"+strconv.Itoa(i), capacity) })
	}
	wg.Wait()
	full := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrCourseFull):
			full++
		case err != nil:
			return err
		}
	}
	enrolled := 0
	q := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"StudentEnrolled"}, Tags: []string{"course:go101"}}}}
	for ev, err := range store.ReadQuery(ctx, q, eventstore.ReadQueryOptions{}) {
		if err != nil {
			return err
		}
		if !slices.Contains(ev.Tags, "student:"+string(ev.Data[1:len(ev.Data)-1])) {
			return fmt.Errorf("%s version %d: tags %q do not name its student", ev.StreamID, ev.Version, ev.Tags)
		}
		enrolled++
	}
	fmt.Fprintf(out, "   %d students raced for %d seats: %d enrolled, %d found the course full\n", students, capacity, enrolled, full)
	return nil
}
