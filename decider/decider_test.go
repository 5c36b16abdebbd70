package decider_test

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/decider"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/errkind"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---- A bank account: the domain under test ----

type Opened struct {
	Owner string `json:"owner"`
}

type Deposited struct {
	Amount int64 `json:"amount"`
}

type Withdrawn struct {
	Amount int64 `json:"amount"`
}

type Account struct {
	Open    bool  `json:"open"`
	Balance int64 `json:"balance"`
}

// Commands embed decider.Meta, so they carry their IDs.
type (
	OpenAccount struct {
		decider.Meta
		Owner string
	}
	Deposit struct {
		decider.Meta
		Amount int64
	}
	Withdraw struct {
		decider.Meta
		Amount int64
	}
)

var errInsufficientFunds = errors.New("insufficient funds")

var account = decider.Decider[Account, any]{
	Evolve: func(a Account, ev any) Account {
		switch e := ev.(type) {
		case Opened:
			a.Open = true
		case Deposited:
			a.Balance += e.Amount
		case Withdrawn:
			a.Balance -= e.Amount
		}
		return a
	},
	Decide: func(a Account, cmd any) ([]any, error) {
		switch c := cmd.(type) {
		case OpenAccount:
			if a.Open {
				return nil, nil // already open: nothing to do
			}
			return []any{Opened{Owner: c.Owner}}, nil
		case Deposit:
			if !a.Open {
				return nil, errors.New("account not open")
			}
			return []any{Deposited{Amount: c.Amount}}, nil
		case Withdraw:
			if a.Balance < c.Amount {
				return nil, fmt.Errorf("withdraw %d from %d: %w", c.Amount, a.Balance, errInsufficientFunds)
			}
			return []any{Withdrawn{Amount: c.Amount}}, nil
		}
		return nil, fmt.Errorf("unknown command %T", cmd)
	},
}

func registry(t testing.TB) *codec.Registry {
	t.Helper()
	reg := codec.New()
	require.NoError(t, codec.Register[Opened](reg, "AccountOpened"))
	require.NoError(t, codec.Register[Deposited](reg, "MoneyDeposited"))
	require.NoError(t, codec.Register[Withdrawn](reg, "MoneyWithdrawn"))
	return reg
}

func newHandler(t testing.TB, s *eventstore.Store, opts decider.Options) *decider.Handler[Account, any] {
	t.Helper()
	h, err := decider.New(s, registry(t), account, opts)
	require.NoError(t, err)
	return h
}

// replay returns the balance after each event of stream, read without the
// decider.
func replay(t testing.TB, s *eventstore.Store, reg *codec.Registry, stream string) (balances []int64, msgs []codec.Message) {
	t.Helper()
	var bal int64
	for m, err := range reg.ReadStream(t.Context(), s, stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		switch e := m.Value.(type) {
		case Deposited:
			bal += e.Amount
		case Withdrawn:
			bal -= e.Amount
		}
		balances = append(balances, bal)
		msgs = append(msgs, m)
	}
	return balances, msgs
}

// ---- Tests ----

// TestConcurrentCommandsConverge: 8 goroutines deposit and withdraw on one
// account at once. Every command is decided on the state it was appended
// after, so the balance never goes below zero, and no accepted command is
// lost: the final balance is the sum of the accepted ones. Snapshots are
// saved meanwhile, and loads start from them.
func TestConcurrentCommandsConverge(t *testing.T) {
	const goroutines, perGoroutine = 8, 10
	for _, b := range storetest.All() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel() // the backends are mostly waited on
			s := b.Open(t)
			h := newHandler(t, s, decider.Options{MaxAttempts: 1000, SnapshotEvery: 10})
			ctx := t.Context()
			const stream = "Account-race"
			_, err := h.Handle(ctx, stream, OpenAccount{Owner: "Ada"})
			require.NoError(t, err)

			type outcome struct {
				id     string
				amount int64 // signed: withdrawals negative
			}
			var (
				mu        sync.Mutex // protects accepted and refused
				accepted  []outcome
				refused   int
				wg        sync.WaitGroup
				gate      = make(chan struct{})
				errs      = make(chan error, goroutines*perGoroutine)
				conflicts int
				most      int // attempts of one command, at most
			)
			for g := range goroutines {
				wg.Go(func() {
					<-gate
					rnd := mathrand.New(mathrand.NewPCG(uint64(g), 1))
					for i := range perGoroutine {
						meta := decider.Meta{ID: fmt.Sprintf("cmd-%d-%d", g, i)}
						amount := 1 + rnd.Int64N(100)
						var cmd any = Deposit{Meta: meta, Amount: amount}
						if i%2 == 1 { // as many withdrawals as deposits: some are refused
							cmd, amount = Withdraw{Meta: meta, Amount: amount}, -amount
						}
						res, err := h.Handle(ctx, stream, cmd)
						mu.Lock()
						switch {
						case err == nil:
							accepted = append(accepted, outcome{meta.ID, amount})
							conflicts += res.Attempts - 1
							most = max(most, res.Attempts)
						case errors.Is(err, errInsufficientFunds):
							refused++
						default:
							errs <- err
						}
						mu.Unlock()
					}
				})
			}
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			require.Len(t, accepted, goroutines*perGoroutine-refused)
			t.Logf("%d accepted, %d refused, %d conflicts retried, at most %d attempts for one command",
				len(accepted), refused, conflicts, most)

			var sum int64
			ids := map[string]int64{}
			for _, o := range accepted {
				sum += o.amount
				ids[o.id] = o.amount
			}
			balances, msgs := replay(t, s, registry(t), stream)
			require.Len(t, msgs, 1+len(accepted), "one event per accepted command, and the opening")
			for i, bal := range balances {
				require.GreaterOrEqual(t, bal, int64(0), "balance after version %d", i+1)
			}
			assert.Equal(t, sum, balances[len(balances)-1], "final balance = sum of accepted commands")
			for _, m := range msgs[1:] {
				cause, ok := eventstore.CausationID(m.Event.Metadata)
				require.True(t, ok, "version %d has a causation ID", m.Event.Version)
				amount, ok := ids[cause]
				require.True(t, ok, "version %d caused by accepted command %q, once", m.Event.Version, cause)
				delete(ids, cause)
				switch e := m.Value.(type) {
				case Deposited:
					assert.Equal(t, amount, e.Amount)
				case Withdrawn:
					assert.Equal(t, amount, -e.Amount)
				}
			}
			st, err := h.Load(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, Account{Open: true, Balance: sum}, st.Value)
			assert.Equal(t, uint64(len(msgs)), st.Version)
			assert.Greater(t, st.SnapshotVersion, st.Version-10, "a snapshot every 10 events")
			assert.Equal(t, int(st.Version-st.SnapshotVersion), st.EventsRead)
		})
	}
}

// TestConflictRetriesExhausted: another writer appends between every load
// and append, so each attempt conflicts; after MaxAttempts the typed error
// is returned, matching ErrWrongExpectedVersion, and nothing of the command
// is written.
func TestConflictRetriesExhausted(t *testing.T) {
	for _, b := range storetest.All() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ctx := t.Context()
			reg := registry(t)
			const stream = "Account-busy"
			interloper, err := decider.New(s, reg, account, decider.Options{})
			require.NoError(t, err)
			_, err = interloper.Handle(ctx, stream, OpenAccount{Owner: "Ada"})
			require.NoError(t, err)

			// A Decide that lets another command in before it answers.
			busy := account
			decided := 0
			busy.Decide = func(a Account, cmd any) ([]any, error) {
				decided++
				if _, err := interloper.Handle(ctx, stream, Deposit{Amount: 1}); err != nil {
					return nil, err
				}
				return account.Decide(a, cmd)
			}
			h, err := decider.New(s, reg, busy, decider.Options{MaxAttempts: 3})
			require.NoError(t, err)
			res, err := h.Handle(ctx, stream, Deposit{Meta: decider.Meta{ID: "mine"}, Amount: 100})

			var conflict *decider.ConflictError
			require.ErrorAs(t, err, &conflict)
			assert.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
			var wrong *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, err, &wrong)
			assert.Equal(t, stream, conflict.Stream)
			assert.Equal(t, 3, conflict.Attempts)
			assert.Equal(t, 3, decided)
			assert.Equal(t, 3, res.Attempts)
			assert.Equal(t, eventstore.Exact(3), wrong.Expected, "the last attempt had read the first two deposits")

			balances, msgs := replay(t, s, reg, stream)
			assert.Len(t, msgs, 4, "the opening and the three interlopers' deposits")
			assert.Equal(t, int64(3), balances[len(balances)-1])
			for _, m := range msgs {
				cause, _ := eventstore.CausationID(m.Event.Metadata)
				assert.NotEqual(t, "mine", cause)
			}
		})
	}
}

// TestSnapshots: with SnapshotEvery 5, snapshots are saved as the stream
// grows and loads read only the events after the latest one; the state
// equals a full replay. A handler with another SnapshotSchema ignores them.
func TestSnapshots(t *testing.T) {
	for _, b := range storetest.All() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ctx := t.Context()
			const stream = "Account-snap"
			h := newHandler(t, s, decider.Options{SnapshotEvery: 5})
			type step struct {
				snapshot     bool   // a snapshot was saved after this command
				loadedFrom   uint64 // the snapshot the command's load started from
				eventsRead   int
				version      uint64
				balanceAfter int64
			}
			want := []step{
				{false, 0, 0, 1, 0}, // open
				{false, 0, 1, 2, 10},
				{false, 0, 2, 3, 20},
				{false, 0, 3, 4, 30},
				{true, 0, 4, 5, 40}, // 5 past version 0
				{false, 5, 0, 6, 50},
				{false, 5, 1, 7, 60},
				{false, 5, 2, 8, 70},
				{false, 5, 3, 9, 80},
				{true, 5, 4, 10, 90}, // 5 past the snapshot at 5
				{false, 10, 0, 11, 100},
			}
			for i, w := range want {
				var cmd any = Deposit{Amount: 10}
				if i == 0 {
					cmd = OpenAccount{Owner: "Ada"}
				}
				res, err := h.Handle(ctx, stream, cmd)
				require.NoError(t, err)
				got := step{res.Snapshot, res.SnapshotVersion, res.EventsRead, res.Version, res.State.Balance}
				require.Equal(t, w, got, "command %d", i+1)
			}
			snap, ok, err := s.LoadSnapshot(ctx, stream)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, uint64(10), snap.Version)
			assert.JSONEq(t, `{"format":"decider/1","schema":1,"state":{"open":true,"balance":90}}`, string(snap.Data))

			st, err := h.Load(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, decider.State[Account]{Value: Account{true, 100}, Version: 11, SnapshotVersion: 10, EventsRead: 1}, st)

			// No snapshots used: the same state from all 11 events.
			balances, _ := replay(t, s, registry(t), stream)
			assert.Equal(t, balances[len(balances)-1], st.Value.Balance)

			// A new state schema ignores the old snapshot, then replaces it.
			h2 := newHandler(t, s, decider.Options{SnapshotEvery: 5, SnapshotSchema: 2})
			st, err = h2.Load(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, decider.State[Account]{Value: Account{true, 100}, Version: 11, EventsRead: 11}, st)
			res, err := h2.Handle(ctx, stream, Deposit{Amount: 10})
			require.NoError(t, err)
			assert.True(t, res.Snapshot, "12 events past version 0")
			st, err = h2.Load(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, decider.State[Account]{Value: Account{true, 110}, Version: 12, SnapshotVersion: 12}, st)
		})
	}
}

// TestSnapshotSerializer: a state serializer that is not JSON is stored in
// base64 and read back.
func TestSnapshotSerializer(t *testing.T) {
	s := storetest.Memory(t)
	ctx := t.Context()
	h := newHandler(t, s, decider.Options{SnapshotEvery: 1, StateSerializer: reversed{}})
	_, err := h.Handle(ctx, "Account-1", OpenAccount{Owner: "Ada"})
	require.NoError(t, err)
	_, err = h.Handle(ctx, "Account-1", Deposit{Amount: 7})
	require.NoError(t, err)
	snap, ok, err := s.LoadSnapshot(ctx, "Account-1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Contains(t, string(snap.Data), `"encoding":"base64"`)
	st, err := h.Load(ctx, "Account-1")
	require.NoError(t, err)
	assert.Equal(t, decider.State[Account]{Value: Account{true, 7}, Version: 2, SnapshotVersion: 2}, st)
}

// Every codec.Serializer serves as a state serializer.
var _ decider.Serializer = codec.Serializer(codec.JSON{})

// reversed is JSON written backwards: not JSON.
type reversed struct{}

func (reversed) Marshal(v any) ([]byte, error) {
	b, err := codec.JSON{}.Marshal(v)
	return reverse(b), err
}

func (reversed) Unmarshal(data []byte, v any) error {
	return codec.JSON{}.Unmarshal(reverse(data), v)
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}

// TestSnapshotForeignOrBroken: a snapshot saved by other code is ignored; one
// in this package's format whose state no longer decodes is an error.
func TestSnapshotForeignOrBroken(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr bool
	}{
		{"foreign", `{"balance":1000000}`, false},
		{"not json", `\x00\x01`, false},
		{"other schema", `{"format":"decider/1","schema":7,"state":"whatever"}`, false},
		{"state does not decode", `{"format":"decider/1","schema":1,"state":"whatever"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storetest.Memory(t)
			ctx := t.Context()
			h := newHandler(t, s, decider.Options{})
			_, err := h.Handle(ctx, "Account-1", OpenAccount{Owner: "Ada"})
			require.NoError(t, err)
			require.NoError(t, s.SaveSnapshot(ctx, "Account-1", eventstore.Snapshot{Version: 1, Data: []byte(tc.data)}))
			st, err := h.Load(ctx, "Account-1")
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "SnapshotSchema")
				_, err = h.Handle(ctx, "Account-1", Deposit{Amount: 1})
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, decider.State[Account]{Value: Account{Open: true}, Version: 1, EventsRead: 1}, st)
		})
	}
}

// TestDecideError: a refused command is returned as Decide's error and
// appends nothing; a command with nothing to do appends nothing either.
func TestDecideError(t *testing.T) {
	for _, b := range storetest.All() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ctx := t.Context()
			h := newHandler(t, s, decider.Options{})
			const stream = "Account-poor"

			_, err := h.Handle(ctx, stream, Deposit{Amount: 5})
			require.ErrorContains(t, err, "account not open")
			v, err := s.StreamVersion(ctx, stream)
			require.NoError(t, err)
			assert.Zero(t, v, "nothing appended to a new stream")

			_, err = h.Handle(ctx, stream, OpenAccount{Owner: "Ada"})
			require.NoError(t, err)
			res, err := h.Handle(ctx, stream, Withdraw{Amount: 5})
			require.ErrorIs(t, err, errInsufficientFunds)
			assert.Equal(t, `decider: handle "Account-poor": withdraw 5 from 0: insufficient funds`, err.Error())
			assert.Equal(t, 1, res.Attempts)
			assert.Empty(t, res.Events)

			res, err = h.Handle(ctx, stream, OpenAccount{Owner: "Ada"}) // already open
			require.NoError(t, err)
			assert.Empty(t, res.Events)
			assert.Equal(t, uint64(1), res.Version)

			v, err = s.StreamVersion(ctx, stream)
			require.NoError(t, err)
			assert.Equal(t, uint64(1), v, "only the opening was appended")
		})
	}
}

// TestCorrelation: every event a command produces records the command's ID
// as its causation ID and the command's correlation ID (or its ID when it
// has none) as its correlation ID; a command without IDs is given one.
func TestCorrelation(t *testing.T) {
	twoDeposits := account
	twoDeposits.Decide = func(a Account, cmd any) ([]any, error) {
		if d, ok := cmd.(Deposit); ok {
			return []any{Deposited{Amount: d.Amount}, Deposited{Amount: d.Amount}}, nil
		}
		return account.Decide(a, cmd)
	}
	tests := []struct {
		name            string
		meta            decider.Meta
		wantCorrelation string // "" means the command's ID
	}{
		{"both", decider.Meta{ID: "cmd-2", CorrelationID: "request-1"}, "request-1"},
		{"id only", decider.Meta{ID: "cmd-3"}, "cmd-3"},
		{"none", decider.Meta{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storetest.Memory(t)
			ctx := t.Context()
			reg := registry(t)
			h, err := decider.New(s, reg, twoDeposits, decider.Options{})
			require.NoError(t, err)
			_, err = h.Handle(ctx, "Account-1", OpenAccount{Owner: "Ada"})
			require.NoError(t, err)
			res, err := h.Handle(ctx, "Account-1", Deposit{Meta: tc.meta, Amount: 3})
			require.NoError(t, err)
			require.NotEmpty(t, res.Meta.ID)
			if tc.meta.ID != "" {
				assert.Equal(t, tc.meta.ID, res.Meta.ID)
			} else {
				_, err := uuid.Parse(res.Meta.ID)
				assert.NoError(t, err, "a generated command ID is a UUID")
			}
			wantCorr := tc.wantCorrelation
			if wantCorr == "" {
				wantCorr = res.Meta.ID
			}
			assert.Equal(t, wantCorr, res.Meta.CorrelationID)
			require.Len(t, res.Append.EventIDs, 2)

			_, msgs := replay(t, s, reg, "Account-1")
			require.Len(t, msgs, 3)
			for _, m := range msgs[1:] {
				cause, ok := eventstore.CausationID(m.Event.Metadata)
				assert.True(t, ok)
				assert.Equal(t, res.Meta.ID, cause)
				corr, ok := eventstore.CorrelationID(m.Event.Metadata)
				assert.True(t, ok)
				assert.Equal(t, wantCorr, corr)
				assert.Equal(t, Deposited{Amount: 3}, m.Value, "the codec's own metadata is kept")
			}
			assert.Equal(t, res.Append.EventIDs, []uuid.UUID{msgs[1].Event.ID, msgs[2].Event.ID})
		})
	}
}

// lossyDriver is the memory driver whose appends numbered in lose (from 1)
// are written but answered with a transient error, as when a connection
// drops before the reply arrives, and whose appends numbered in drop fail
// with a transient error unwritten, after another writer's event (interlope)
// was appended to the stream.
type lossyDriver struct {
	*memory.Driver
	lose, drop map[int]bool
	interlope  driver.Event

	mu      sync.Mutex // protects appends
	appends int
}

func (d *lossyDriver) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	d.mu.Lock()
	d.appends++
	n := d.appends
	d.mu.Unlock()
	if d.drop[n] {
		other := req
		other.Expected = driver.Expect(driver.ExpectAny, 0)
		other.Events = []driver.Event{d.interlope}
		if _, err := d.Driver.Append(ctx, other); err != nil {
			return driver.AppendResult{}, err
		}
		return driver.AppendResult{}, errkind.Transient(errors.New("connection refused"))
	}
	res, err := d.Driver.Append(ctx, req)
	if err == nil && d.lose[n] {
		return driver.AppendResult{}, errkind.Transient(errors.New("connection reset before the reply"))
	}
	return res, err
}

// TestTransientAppendSentAgain: an append answered with a transient error is
// sent again with the same event IDs, which the store recognises: the
// events are written once.
func TestTransientAppendSentAgain(t *testing.T) {
	tests := []struct {
		name       string
		lose       map[int]bool
		retries    int
		wantErr    bool
		wantEvents int
	}{
		{"lost once", map[int]bool{2: true}, 0, false, 2},
		{"lost twice", map[int]bool{2: true, 3: true}, 0, false, 2},
		{"no resends", map[int]bool{2: true}, -1, true, 2},
		{"resends spent", map[int]bool{2: true, 3: true}, 1, true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &lossyDriver{Driver: memory.New(), lose: tc.lose}
			s := eventstore.New(d, eventstore.Options{})
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			h := newHandler(t, s, decider.Options{TransientRetries: tc.retries})
			_, err := h.Handle(ctx, "Account-1", OpenAccount{Owner: "Ada"})
			require.NoError(t, err)
			res, err := h.Handle(ctx, "Account-1", Deposit{Amount: 4})
			if tc.wantErr {
				require.ErrorIs(t, err, eventstore.ErrTransient)
			} else {
				require.NoError(t, err)
				assert.Equal(t, 1, res.Attempts)
				assert.Equal(t, uint64(2), res.Version)
				assert.Equal(t, int64(4), res.State.Balance)
			}
			_, msgs := replay(t, s, registry(t), "Account-1")
			assert.Len(t, msgs, tc.wantEvents, "the deposit is written once")
		})
	}
}

// TestTransientAppendThenConflict: an append that failed transiently without
// being written, while another writer appended, is sent again, conflicts,
// and is decided again on the new state with new event IDs.
func TestTransientAppendThenConflict(t *testing.T) {
	ctx := t.Context()
	reg := registry(t)
	other, err := reg.Encode(ctx, "Account-1", Withdrawn{Amount: 8})
	require.NoError(t, err)
	d := &lossyDriver{
		Driver:    memory.New(),
		drop:      map[int]bool{3: true},
		interlope: driver.Event{ID: uuid.New(), Type: other.Type, Data: other.Data, Metadata: other.Metadata},
	}
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	h, err := decider.New(s, reg, account, decider.Options{})
	require.NoError(t, err)
	_, err = h.Handle(ctx, "Account-1", OpenAccount{Owner: "Ada"})
	require.NoError(t, err)
	_, err = h.Handle(ctx, "Account-1", Deposit{Amount: 10})
	require.NoError(t, err)

	// Append 3 fails unwritten after the other writer's withdrawal of 8;
	// append 4 resends it and conflicts; the decision on the new balance (2)
	// refuses the withdrawal of 5.
	res, err := h.Handle(ctx, "Account-1", Withdraw{Amount: 5})
	require.ErrorIs(t, err, errInsufficientFunds)
	assert.Equal(t, 2, res.Attempts)
	balances, msgs := replay(t, s, reg, "Account-1")
	assert.Len(t, msgs, 3, "the opening, the deposit and the other writer's withdrawal")
	assert.Equal(t, int64(2), balances[len(balances)-1])

	res, err = h.Handle(ctx, "Account-1", Withdraw{Amount: 2})
	require.NoError(t, err)
	assert.Equal(t, Account{Open: true, Balance: 0}, res.State)
	assert.Equal(t, uint64(4), res.Version)
}

// TestUpcastOnLoad: the state is built from events as the codec decodes
// them, so an event stored at an old schema version reaches Evolve upcast.
func TestUpcastOnLoad(t *testing.T) {
	s := storetest.Memory(t)
	ctx := t.Context()
	// Version 1 of MoneyDeposited had the amount in whole units, in "units".
	_, err := s.Append(ctx, "Account-1", eventstore.NoStream,
		eventstore.NewEvent("AccountOpened", []byte(`{"owner":"Ada"}`)),
		eventstore.NewEvent("MoneyDeposited", []byte(`{"units":3}`)))
	require.NoError(t, err)

	reg := codec.New()
	require.NoError(t, codec.Register[Opened](reg, "AccountOpened"))
	require.NoError(t, codec.Register[Deposited](reg, "MoneyDeposited", codec.SchemaVersion(2)))
	require.NoError(t, codec.Register[Withdrawn](reg, "MoneyWithdrawn"))
	type depositedV1 struct {
		Units int64 `json:"units"`
	}
	require.NoError(t, reg.Upcast("MoneyDeposited", 1, codec.UpcastJSON(func(old depositedV1) (Deposited, error) {
		return Deposited{Amount: old.Units * 100}, nil
	})))
	h, err := decider.New(s, reg, account, decider.Options{})
	require.NoError(t, err)
	res, err := h.Handle(ctx, "Account-1", Withdraw{Amount: 250})
	require.NoError(t, err)
	assert.Equal(t, Account{Open: true, Balance: 50}, res.State)
}

func TestNewInvalid(t *testing.T) {
	s := storetest.Memory(t)
	reg := registry(t)
	noDecide := account
	noDecide.Decide = nil
	tests := []struct {
		name string
		new  func() error
	}{
		{"nil store", func() error { _, err := decider.New(nil, reg, account, decider.Options{}); return err }},
		{"nil registry", func() error { _, err := decider.New(s, nil, account, decider.Options{}); return err }},
		{"nil decide", func() error { _, err := decider.New(s, reg, noDecide, decider.Options{}); return err }},
		{"negative attempts", func() error {
			_, err := decider.New(s, reg, account, decider.Options{MaxAttempts: -1})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, tc.new(), eventstore.ErrInvalidArgument)
		})
	}
}

// TestSnapshotBeyondStream: a snapshot newer than the stream (left from a
// stream deleted and written again) makes the append conflict with a
// stream shorter than the state; Handle then rebuilds the state from the
// events alone instead of trusting the snapshot.
func TestSnapshotBeyondStream(t *testing.T) {
	d := memory.New()
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	h := newHandler(t, s, decider.Options{})
	_, err := h.Handle(ctx, "Account-1", OpenAccount{Owner: "Ada"})
	require.NoError(t, err)
	// The Store refuses a snapshot past the stream's version; the driver
	// keeps whatever it is given.
	stale := `{"format":"decider/1","schema":1,"state":{"open":true,"balance":1000}}`
	require.NoError(t, d.SaveSnapshot(ctx, "Account-1", driver.Snapshot{Version: 10, Data: []byte(stale)}))

	res, err := h.Handle(ctx, "Account-1", Withdraw{Amount: 500})
	require.ErrorIs(t, err, errInsufficientFunds, "decided on the events, not on the stale snapshot")
	assert.Equal(t, 2, res.Attempts)
	res, err = h.Handle(ctx, "Account-1", Deposit{Amount: 5})
	require.NoError(t, err)
	assert.Equal(t, Account{Open: true, Balance: 5}, res.State)
	assert.Equal(t, uint64(2), res.Version)
}
