package eventstore

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// SubscriptionState is what a running subscription reports about itself;
// see [Store.Subscriptions]. [Store.Lag] tells how far it is behind.
type SubscriptionState struct {
	Name  string // the subscription's name; "" when it keeps no checkpoint
	Group Group
	// Member is a SubscribeGroup member's name, and Partitions the
	// partitions it holds now, sorted.
	Member     string
	Partitions []int
	Filter     Filter
	Started    time.Time
	// Position is the last event the subscription handled, or passed over
	// because its group member does not receive it; zero before the first.
	// The saved checkpoint is at or before it.
	Position Position
	// Handled counts the events given to the handler by this Subscribe call.
	Handled uint64
	// CaughtUp is true once the subscription has read to the end of the log;
	// it stays true. Live is true while its last read reached the end, so
	// it waits for new events.
	CaughtUp bool
	Live     bool
	// Retries counts the transient failures retried; LastError is the last
	// of them (nil when there was none), at LastErrorAt.
	Retries     int
	LastError   error
	LastErrorAt time.Time
}

// subState is the state a running subscription shares with
// Store.Subscriptions.
type subState struct {
	mu sync.Mutex
	st SubscriptionState
	// readFrom is where the subscription's last read of the log began (for
	// a group member, the lowest position of its partitions): the
	// eventstore.subscription.lag metrics count from it.
	readFrom Position
	// checkpointAt is when the subscription last saved a checkpoint; zero
	// before it did.
	checkpointAt time.Time
}

// metricsState is what the subscription gauges read.
func (s *subState) metricsState() (st SubscriptionState, readFrom Position, checkpointAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st, s.readFrom, s.checkpointAt
}

func (s *subState) setReadFrom(p Position) {
	s.mu.Lock()
	s.readFrom = p
	s.mu.Unlock()
}

func (s *subState) checkpointSaved() {
	s.mu.Lock()
	s.checkpointAt = time.Now()
	s.mu.Unlock()
}

func (s *subState) get() SubscriptionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *subState) update(f func(st *SubscriptionState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.st)
}

// Subscriptions returns the state of the subscriptions running on this
// Store, sorted by name and group member. It reads nothing from the driver.
func (s *Store) Subscriptions() []SubscriptionState {
	s.subMu.Lock()
	out := make([]SubscriptionState, 0, len(s.running))
	for _, sub := range s.running {
		out = append(out, sub.state.get())
	}
	s.subMu.Unlock()
	slices.SortFunc(out, func(a, b SubscriptionState) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Group.Member, b.Group.Member), cmp.Compare(a.Member, b.Member), a.Started.Compare(b.Started))
	})
	return out
}
