// Command quickstart is a tour of the event store through a small bank.
//
// Each account is a stream ("Account-alice") of events: AccountOpened,
// MoneyDeposited and MoneyWithdrawn. The program
//
//  1. opens a store by URL,
//  2. opens accounts and moves money with typed events (package codec) and
//     commands run by a decider (package decider), which appends with
//     expected versions,
//  3. shows two tellers racing on one account: the conflict is detected and
//     the loser retries, as the decider does by itself,
//  4. rebuilds an account by reading its stream, then faster from a snapshot,
//  5. keeps a projection of every balance, fed by a subscription that catches
//     up with the log and then sees a new event live.
//
// It needs no set-up: by default it uses a SQLite file in a temporary
// directory, removed at exit. Switching backend is switching URL; nothing else
// changes (the store must be empty):
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart --url memory://
//	EVENTSTORE_URL=postgres://localhost/events go run ./examples/quickstart
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"time"

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
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	storeURL := flags.String("url", "",
		"event store URL (default $EVENTSTORE_URL, else a SQLite file in a temporary directory)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	// Not the flag's default: the usage text would print it, password and all.
	if *storeURL == "" {
		*storeURL = os.Getenv("EVENTSTORE_URL")
	}
	if *storeURL == "" {
		dir, err := os.MkdirTemp("", "quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*storeURL = "sqlite://" + filepath.ToSlash(filepath.Join(dir, "events.db"))
	}

	// 1. Open the store. The URL's scheme picks the driver.
	store, err := eventstore.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer store.Close()
	step(out, 1, "opened %s", eventstore.RedactURL(*storeURL))

	// 2. Open two accounts and move some money. Every change goes through
	// Execute: load the account, decide, append at the version we loaded.
	bank, err := NewBank(store)
	if err != nil {
		return err
	}
	if v, err := store.StreamVersion(ctx, streamID("alice")); err != nil || v > 0 {
		return cmp.Or(err, fmt.Errorf("%s already has events: run the quickstart on an empty store", streamID("alice")))
	}
	for _, acc := range []struct{ id, owner string }{{"alice", "Alice"}, {"bob", "Bob"}} {
		if _, err := bank.Execute(ctx, acc.id, OpenAccount(acc.owner)); err != nil {
			return err
		}
	}
	for month := range 12 {
		if _, err := bank.Execute(ctx, "alice", Deposit(3000_00)); err != nil {
			return err
		}
		if _, err := bank.Execute(ctx, "alice", Withdraw(int64(1500_00+month*10_00))); err != nil {
			return err
		}
	}
	if _, err := bank.Execute(ctx, "bob", Deposit(200_00)); err != nil {
		return err
	}
	step(out, 2, "opened 2 accounts; alice's salary came in and her rent went out for 12 months")
	// A command that breaks a rule appends nothing.
	_, err = bank.Execute(ctx, "bob", Withdraw(1000_00))
	if !errors.Is(err, ErrInsufficientFunds) {
		return fmt.Errorf("want %v, got %v", ErrInsufficientFunds, err)
	}
	fmt.Fprintf(out, "   refused: %v\n", err)

	// 3. Two tellers serve Bob at once. Both load his account at the same
	// version; the first append wins, the second is rejected because the
	// stream moved on, and nothing of it is written.
	tellerA, err := bank.Load(ctx, "bob")
	if err != nil {
		return err
	}
	tellerB, err := bank.Load(ctx, "bob")
	if err != nil {
		return err
	}
	if _, err := bank.Append(ctx, tellerA, Deposit(50_00)); err != nil {
		return err
	}
	_, err = bank.Append(ctx, tellerB, Withdraw(150_00))
	var conflict *eventstore.WrongExpectedVersionError
	if !errors.As(err, &conflict) {
		return fmt.Errorf("want a conflict, got %v", err)
	}
	step(out, 3, "teller B loaded %s at version %d, teller A appended first: conflict (want %s, have %d)",
		conflict.Stream, tellerB.Version, conflict.Expected, conflict.Actual)
	// Teller B retries the whole command: reload, decide again, append.
	// Execute (package decider) does exactly this whenever it meets a conflict.
	if _, err := bank.Execute(ctx, "bob", Withdraw(150_00)); err != nil {
		return err
	}
	bob, err := bank.Load(ctx, "bob")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   teller B retried: %s has %s at version %d\n", bob.ID, money(bob.Balance), bob.Version)

	// 4. Rebuild Alice's account by reading her stream from the start, save
	// a snapshot of it, and rebuild again from the snapshot: only the events
	// after the snapshot's version are read.
	alice, read, err := bank.Rebuild(ctx, "alice", false)
	if err != nil {
		return err
	}
	if err := bank.SaveSnapshot(ctx, alice); err != nil {
		return err
	}
	var last eventstore.AppendResult // of the newest event in the store
	for _, c := range []Command{Deposit(120_00), Withdraw(20_00)} {
		if last, err = bank.Execute(ctx, "alice", c); err != nil {
			return err
		}
	}
	full, fullRead, err := bank.Rebuild(ctx, "alice", false)
	if err != nil {
		return err
	}
	fast, fastRead, err := bank.Rebuild(ctx, "alice", true)
	if err != nil {
		return err
	}
	if fast != full {
		return fmt.Errorf("rebuilt from the snapshot %+v, from the events %+v", fast, full)
	}
	step(out, 4, "rebuilt %s: %d events read from the start; snapshot saved at version %d",
		alice.ID, read, alice.Version)
	fmt.Fprintf(out, "   after 2 more events: %d events read without the snapshot, %d with it; both give %s at version %d\n",
		fullRead, fastRead, money(fast.Balance), fast.Version)

	// 5. A projection keeps every balance up to date from a subscription:
	// it catches up with the events already stored, then receives new ones
	// live. It runs in its own goroutine until we cancel it.
	balances := NewBalances()
	subCtx, cancelSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- store.Subscribe(subCtx, eventstore.SubscribeOptions{
			Filter: eventstore.Filter{Categories: []string{"Account"}},
		}, balances.Handle)
	}()
	// stopProjection stops the subscription and waits for it to return. It
	// runs once, here or on an early return.
	stopProjection := sync.OnceValue(func() error {
		cancelSub()
		if err := <-subDone; !errors.Is(err, context.Canceled) {
			return fmt.Errorf("projection: %w", err)
		}
		return nil
	})
	defer stopProjection()

	if err := balances.WaitFor(ctx, last.Position); err != nil {
		return err
	}
	step(out, 5, "projection caught up to position %s: %s", last.Position, balances)

	// A new event while the subscription is live.
	res, err := bank.Append(ctx, bob, Deposit(75_00))
	if err != nil {
		return err
	}
	if err := balances.WaitFor(ctx, res.Position); err != nil {
		return err
	}
	fmt.Fprintf(out, "   live deposit to bob at position %s seen: %s\n", res.Position, balances)

	if err := stopProjection(); err != nil {
		return err
	}

	fmt.Fprintln(out, "final balances:")
	for _, id := range balances.Accounts() {
		fmt.Fprintf(out, "   %-14s %12s\n", id, money(balances.Balance(id)))
	}
	return nil
}

// ---- The domain: accounts and commands ----

// Event types, and the JSON payloads they carry. Amounts are in cents.
const (
	Opened    = "AccountOpened"
	Deposited = "MoneyDeposited"
	Withdrawn = "MoneyWithdrawn"
)

type openedData struct {
	Owner string `json:"owner"`
}

type amountData struct {
	Amount int64 `json:"amount"`
}

// The Go types of the events, registered with the codec under the names
// above (see NewBank): commands return them, Evolve receives them.
type (
	AccountOpened  openedData
	MoneyDeposited amountData
	MoneyWithdrawn amountData
)

// Account is the state of one account, rebuilt from its events.
type Account struct {
	ID      string // the stream ID, "Account-<id>"
	Owner   string
	Balance int64  // cents
	Version uint64 // the stream version this state reflects
}

// Evolve returns the account after one event of its stream.
func (a Account) Evolve(ev any) Account {
	switch e := ev.(type) {
	case AccountOpened:
		a.Owner = e.Owner
	case MoneyDeposited:
		a.Balance += e.Amount
	case MoneyWithdrawn:
		a.Balance -= e.Amount
	}
	a.Version++
	return a
}

// Command decides, from the current state, which event to append, or refuses.
type Command func(Account) (any, error)

// ErrInsufficientFunds refuses a withdrawal larger than the balance.
var ErrInsufficientFunds = errors.New("insufficient funds")

// OpenAccount opens an account that is not open yet.
func OpenAccount(owner string) Command {
	return func(a Account) (any, error) {
		if a.Version > 0 {
			return nil, errors.New("already open")
		}
		return AccountOpened{Owner: owner}, nil
	}
}

// Deposit adds money to an open account.
func Deposit(cents int64) Command {
	return func(a Account) (any, error) {
		if a.Version == 0 {
			return nil, errors.New("not open")
		}
		return MoneyDeposited{Amount: cents}, nil
	}
}

// Withdraw takes money from an account that has enough.
func Withdraw(cents int64) Command {
	return func(a Account) (any, error) {
		if a.Balance < cents {
			return nil, fmt.Errorf("withdraw %s: %w (balance %s)", money(cents), ErrInsufficientFunds, money(a.Balance))
		}
		return MoneyWithdrawn{Amount: cents}, nil
	}
}

// ---- The application service: loading, appending, snapshots ----

// Bank runs commands against accounts stored in an event store.
type Bank struct {
	store    *eventstore.Store
	events   *codec.Registry                    // Go types ↔ stored events
	accounts *decider.Handler[Account, Command] // load, decide, append
}

// NewBank registers the event types and the accounts' decider.
func NewBank(store *eventstore.Store) (*Bank, error) {
	events := codec.New()
	err := errors.Join(
		codec.Register[AccountOpened](events, Opened),
		codec.Register[MoneyDeposited](events, Deposited),
		codec.Register[MoneyWithdrawn](events, Withdrawn))
	if err != nil {
		return nil, err
	}
	accounts, err := decider.New(store, events, decider.Decider[Account, Command]{
		Evolve: Account.Evolve,
		Decide: func(a Account, c Command) ([]any, error) {
			ev, err := c(a)
			if err != nil {
				return nil, err
			}
			return []any{ev}, nil
		},
	}, decider.Options{})
	if err != nil {
		return nil, err
	}
	return &Bank{store: store, events: events, accounts: accounts}, nil
}

func streamID(id string) string { return "Account-" + id }

// Load rebuilds an account from its events.
func (b *Bank) Load(ctx context.Context, id string) (Account, error) {
	st, err := b.accounts.Load(ctx, streamID(id))
	st.Value.ID = streamID(id)
	return st.Value, err
}

// Rebuild rebuilds an account by hand and says how many events it read. With
// useSnapshot it starts from the latest snapshot instead of the first event.
func (b *Bank) Rebuild(ctx context.Context, id string, useSnapshot bool) (Account, int, error) {
	a := Account{ID: streamID(id)}
	if useSnapshot {
		snap, ok, err := b.store.LoadSnapshot(ctx, a.ID)
		if err != nil {
			return Account{}, 0, err
		}
		if ok {
			if err := json.Unmarshal(snap.Data, &a); err != nil {
				return Account{}, 0, err
			}
		}
	}
	// From is inclusive: read the events after the state we have, decoded
	// into their Go types.
	n := 0
	for m, err := range b.events.ReadStream(ctx, b.store, a.ID, eventstore.ReadStreamOptions{From: a.Version + 1}) {
		if err != nil {
			return Account{}, 0, err
		}
		a = a.Evolve(m.Value)
		n++
	}
	return a, n, nil
}

// SaveSnapshot stores the account's state as of its version.
func (b *Bank) SaveSnapshot(ctx context.Context, a Account) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return b.store.SaveSnapshot(ctx, a.ID, eventstore.Snapshot{Version: a.Version, Data: data})
}

// Append runs c against the state a and appends its event, expecting the
// stream to be still at a.Version. If someone appended in between, it fails
// with an error matching eventstore.ErrWrongExpectedVersion and writes nothing.
func (b *Bank) Append(ctx context.Context, a Account, c Command) (eventstore.AppendResult, error) {
	v, err := c(a)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	ev, err := b.events.Encode(ctx, a.ID, v)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return b.store.Append(ctx, a.ID, eventstore.Exact(a.Version), ev)
}

// Execute runs c on an account with the accounts' decider: load, decide,
// append at the version loaded, and when another writer got there first,
// read the new events and decide again. A refused command appends nothing.
func (b *Bank) Execute(ctx context.Context, id string, c Command) (eventstore.AppendResult, error) {
	res, err := b.accounts.Handle(ctx, streamID(id), c)
	return res.Append, err
}

// ---- The read side: a projection of balances ----

// Balances is a projection: the balance of every account, kept up to date by
// a subscription. It lives in memory, so it subscribes from the start on each
// run (no Name, no checkpoint). A projection stored in a database would use a
// named subscription, which resumes after its checkpoint.
type Balances struct {
	mu       sync.Mutex // protects everything below
	balances map[string]int64
	last     eventstore.Position // of the last event handled
	changed  chan struct{}       // signalled after each event, capacity 1
}

// NewBalances returns an empty projection.
func NewBalances() *Balances {
	return &Balances{balances: map[string]int64{}, changed: make(chan struct{}, 1)}
}

// Handle is the subscription's handler.
func (p *Balances) Handle(_ context.Context, ev eventstore.RecordedEvent) error {
	var d amountData
	if ev.Type == Deposited || ev.Type == Withdrawn {
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
	}
	p.mu.Lock()
	switch ev.Type {
	case Opened:
		p.balances[ev.StreamID] = 0
	case Deposited:
		p.balances[ev.StreamID] += d.Amount
	case Withdrawn:
		p.balances[ev.StreamID] -= d.Amount
	}
	p.last = ev.Position
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
	return nil
}

// WaitFor waits until the projection has handled the event at pos, giving up
// after ten seconds.
func (p *Balances) WaitFor(ctx context.Context, pos eventstore.Position) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		p.mu.Lock()
		done := !p.last.Less(pos)
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-p.changed:
		case <-ctx.Done():
			return fmt.Errorf("projection did not reach position %s: %w", pos, ctx.Err())
		}
	}
}

// Accounts returns the stream IDs of the accounts, sorted.
func (p *Balances) Accounts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.balances))
	for id := range p.balances {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Balance returns the balance of an account's stream.
func (p *Balances) Balance(streamID string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.balances[streamID]
}

func (p *Balances) String() string {
	s := ""
	for i, id := range p.Accounts() {
		if i > 0 {
			s += ", "
		}
		s += id + " " + money(p.Balance(id))
	}
	return s
}

// ---- Helpers ----

// money formats cents as units and hundredths.
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

func step(out io.Writer, n int, format string, args ...any) {
	fmt.Fprintf(out, "%d. "+format+"\n", append([]any{n}, args...)...)
}
