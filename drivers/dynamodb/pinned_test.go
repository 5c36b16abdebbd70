package dynamodb_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIndexedConditionWithoutLease: in an indexed table, drivers that do
// not hold the orderer's lease (one opened with orderer=off, one whose
// orderer finds the lease held elsewhere) make conditional appends: they
// place them themselves, without the lease (see pinned.go). Racing the
// lease holder for one name, exactly one of them registers it; the lease
// holder goes on placing its appends after the head moved under it, and
// the log stays dense.
func TestIndexedConditionWithoutLease(t *testing.T) {
	t.Parallel()
	client := newClient(t, nil)
	ctx := t.Context()
	hopts := indexedOptions()
	hopts.OrdererLease = 30 * time.Second // held throughout, however loaded the machine
	holder, hd := newStore(t, client, hopts)
	require.Eventually(t, func() bool { return dynamodb.HoldsLease(hd) }, 30*time.Second, 10*time.Millisecond, "the first driver takes the lease")

	stores := map[string]*eventstore.Store{"holder": holder}
	drivers := map[string]*dynamodb.Driver{"holder": hd}
	for _, name := range []string{"orderer=off", "lease held elsewhere"} {
		opts := indexedOptions()
		opts.NoOrderer = name == "orderer=off"
		d, err := dynamodb.New(ctx, client, hd.Table(), opts)
		require.NoError(t, err)
		s := eventstore.New(d, eventstore.Options{})
		t.Cleanup(func() { s.Close() })
		stores[name], drivers[name] = s, d
	}
	register := func(s *eventstore.Store, user, name string) error {
		ev := eventstore.NewEvent("Registered", []byte(`{}`))
		ev.Tags = []string{"username:" + name}
		_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
			Records: []eventstore.Record{{Stream: user, Event: ev}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{
				{Types: []string{"Registered"}, Tags: []string{"username:" + name}},
			}}},
		})
		return err
	}

	for _, name := range []string{"orderer=off", "lease held elsewhere"} {
		require.NoError(t, register(stores[name], "User-"+name, name), "a conditional append from %s", name)
		assert.Equal(t, uint64(1), dynamodb.PinnedAppends(drivers[name]), "%s: placed without the lease", name)
		err := register(holder, "User-holder-"+name, name)
		assert.True(t, errors.Is(err, eventstore.ErrAppendConditionFailed), "the holder registering %q too: %v", name, err)
	}

	// Rounds of racers, two per driver, for one name each round; the
	// holder's plain appends in between.
	const rounds, perDriver = 4, 2
	for round := range rounds {
		name := fmt.Sprint("race", round)
		var wg sync.WaitGroup
		var mu sync.Mutex // protects won
		won := 0
		for who, s := range stores {
			for i := range perDriver {
				wg.Go(func() {
					err := register(s, fmt.Sprintf("User-%s-%d-%d", who, round, i), name)
					if err != nil && !errors.Is(err, eventstore.ErrAppendConditionFailed) {
						t.Errorf("%s: %v", who, err)
					}
					if err == nil {
						mu.Lock()
						won++
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		assert.Equal(t, 1, won, "round %d: winners of one name", round)
		_, err := holder.Append(ctx, fmt.Sprint("Order-", round), eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
		require.NoError(t, err, "the holder's append after the head moved under it")
	}
	assert.Positive(t, dynamodb.DirectAppends(hd), "the holder placed appends directly")

	got := readAllAfter(t, holder, eventstore.Position{})
	for i, ev := range got {
		assert.Equal(t, eventstore.Position{Commit: uint64(i + 1)}, ev.Position, "dense log: %v", describe(got))
	}
	assert.Len(t, got, 2+2*rounds, "two names, and per round a winner and the holder's append: %v", describe(got))
}
