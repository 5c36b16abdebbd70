package eventstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventstore/driver"
)

// Consumer group defaults.
const (
	DefaultPartitions    = 16
	DefaultLeaseDuration = 10 * time.Second
	// MaxPartitions bounds GroupOptions.Partitions.
	MaxPartitions = 1024
)

// GroupOptions configures one member of a consumer group; see
// [Store.SubscribeGroup].
type GroupOptions struct {
	// SubscribeOptions as for Subscribe, with these differences: Name, the
	// group's name, is required; Group must be zero; After and FromEnd say
	// where a partition starts that has no checkpoint yet; OnCaughtUp is
	// called the first time the member has read to the end of the log while
	// it held at least one partition.
	SubscribeOptions
	// Member names this member, unique within the group (a pod or host
	// name and process). Empty: a random name. A member restarted under the
	// same name takes its partitions back at once instead of waiting for
	// its old leases to expire. Same rules as a subscription name.
	Member string
	// Partitions is how many parts the group's streams are split into, by
	// a hash of the stream ID ([GroupMember]); each part is handled by one
	// member at a time, so it bounds how many members do useful work. Zero
	// means [DefaultPartitions]; at most [MaxPartitions]. Every member of a
	// group must use the same value; see docs/subscriptions.md for changing it.
	Partitions int
	// LeaseDuration is how long a member holds its partitions without
	// renewing them; it renews every third of it. A member that stops
	// renewing (crashed, cut off from the store) loses its partitions to
	// the others after at most this long, and stops handling them itself
	// before then. A handler call must take well under a third of it. Zero
	// means [DefaultLeaseDuration].
	LeaseDuration time.Duration
}

// SubscribeGroup runs one member of a consumer group: members sharing
// opts.Name split the group's streams between them, each stream handled by
// one member at a time, in order. Members may join and leave at any time,
// in any process: the streams are hashed into opts.Partitions parts, and
// each part is leased by one member through leases kept in the store. When
// a member joins, stops or dies (its leases expire), the parts are dealt
// again over the members alive, and a part goes on from its own
// checkpoint, saved with its lease.
//
// A member that lost a lease (it was slow to renew it, or cut off from the
// store) stops handling that part before another member may take it, and
// its checkpoint saves are refused from then on ([ErrLeaseLost], fencing
// by the lease's generation), so it cannot move a checkpoint the new
// holder owns. Delivery is at least once: the events of a part handled
// since its last saved checkpoint are delivered again to its next holder.
//
// It blocks like [Store.Subscribe], and on return saves its parts'
// checkpoints and releases its leases, so the other members take them over
// at once. Drivers without [driver.Leaser] return [ErrNotSupported].
func (s *Store) SubscribeGroup(ctx context.Context, opts GroupOptions, h Handler) error {
	what := fmt.Sprintf("group %q member %q", opts.Name, opts.Member)
	err := func() error {
		switch {
		case opts.Name == "":
			return invalid(ErrInvalidArgument, "a consumer group needs a name")
		case opts.Group != (Group{}):
			return invalid(ErrInvalidArgument, "Group is for fixed consumer groups of Subscribe; SubscribeGroup deals partitions itself")
		case h == nil:
			return invalid(ErrInvalidArgument, "nil handler")
		case opts.Partitions < 0 || opts.Partitions > MaxPartitions:
			return invalid(ErrInvalidArgument, "partitions %d not within 1 to %d", opts.Partitions, MaxPartitions)
		case opts.LeaseDuration < 0:
			return invalid(ErrInvalidArgument, "negative lease duration %s", opts.LeaseDuration)
		case opts.LeaseDuration > 0 && opts.LeaseDuration < 30*time.Millisecond:
			return invalid(ErrInvalidArgument, "lease duration %s under 30ms", opts.LeaseDuration)
		}
		if opts.Member != "" {
			return validateName(ErrInvalidArgument, "member name", opts.Member)
		}
		return nil
	}()
	if err != nil {
		return fmt.Errorf("eventstore: %s: %w", what, err)
	}
	if opts.Member == "" {
		var b [6]byte
		rand.Read(b[:])
		opts.Member = "member-" + hex.EncodeToString(b[:])
	}
	if opts.Partitions == 0 {
		opts.Partitions = DefaultPartitions
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	m := &member{opts: opts, owned: map[int]*partition{}, changed: make(chan struct{}, 1)}
	return s.track(ctx, "group member", opts.SubscribeOptions, h, func(ctx context.Context, sub *subscription) error {
		if s.leaser == nil {
			return ErrNotSupported
		}
		m.subscription = sub
		sub.state.update(func(st *SubscriptionState) { st.Member = opts.Member })
		return m.run(ctx)
	})
}

// member is one running SubscribeGroup call.
type member struct {
	*subscription
	opts GroupOptions

	// mu guards owned. The coordinator adds the partitions it was granted
	// and marks those to give back; the delivery loop moves positions,
	// saves them and releases.
	mu    sync.Mutex
	owned map[int]*partition
	// changed wakes the delivery loop when a partition was added or is to
	// be given back.
	changed chan struct{}
}

// partition is a partition the member holds.
type partition struct {
	key        string
	generation uint64
	// validUntil is when, by this process's clock, the member stops
	// handling the partition unless it renewed the lease: a third of the
	// lease duration before the earliest the store lets another member
	// take it.
	validUntil time.Time
	pos        Position // handled through; the next read starts after it
	saved      Position // the checkpoint stored with the lease
	hasSaved   bool
	lastSaved  time.Time
	giveBack   bool // another member is due to take it: release it
}

func (m *member) leaseKey(i int) string { return fmt.Sprintf("partition/%d/%d", m.opts.Partitions, i) }

func (m *member) memberKey() string { return "member/" + m.opts.Member }

func (m *member) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *member) run(ctx context.Context) error {
	dctx, stopDelivery := context.WithCancelCause(ctx)
	defer stopDelivery(nil)
	cctx, stopCoordinator := context.WithCancel(ctx)
	coordinated := make(chan struct{})
	go func() {
		defer close(coordinated)
		if err := m.coordinate(cctx); err != nil {
			stopDelivery(err)
		}
	}()
	err := m.deliver(dctx)
	stopCoordinator()
	<-coordinated
	if cause := context.Cause(dctx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the coordinator failed for good
	}
	m.leave()
	return err
}

// coordinate renews the member's leases every third of the lease duration
// and deals the partitions over the members alive, until ctx ends or a
// lease call fails for good.
func (m *member) coordinate(ctx context.Context) error {
	every := m.opts.LeaseDuration / 3
	for {
		waiting, err := m.deal(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !errors.Is(err, ErrTransient):
			return fmt.Errorf("leases: %w", err)
		case err != nil:
			m.state.update(func(st *SubscriptionState) { st.Retries, st.LastError, st.LastErrorAt = st.Retries+1, err, time.Now() })
			m.store.tel.retried(ctx, "leases")
			m.store.logger.Warn("consumer group member could not renew its leases; trying again",
				"group", m.opts.Name, "member", m.opts.Member, "error", err)
		}
		next := every
		if waiting {
			next = every / 4 // a partition dealt to it is still another's: ask again soon
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// deal renews the member's lease, reads the group's leases, and for each
// partition dealt to this member takes it when free, and gives back those
// dealt to another. Partition i goes to the (i mod n)-th of the n members
// alive, sorted by name; all members compute the same from the same leases,
// and the leases settle any disagreement while they change.
func (m *member) deal(ctx context.Context) (waiting bool, err error) {
	s, l, ttl := m.store, m.store.leaser, m.opts.LeaseDuration
	call := func(f func() error) error { return s.do(ctx, f) }
	if err := call(func() error {
		_, _, err := l.AcquireLease(ctx, m.opts.Name, m.memberKey(), m.opts.Member, ttl)
		return err
	}); err != nil {
		return false, err
	}
	var leases []driver.Lease
	var now time.Time
	if err := call(func() (err error) { leases, now, err = l.Leases(ctx, m.opts.Name); return err }); err != nil {
		return false, err
	}
	var alive []string
	stored := map[string]driver.Lease{}
	for _, ls := range leases {
		if name, ok := strings.CutPrefix(ls.Key, "member/"); ok && ls.Owner != "" && now.Before(ls.Expires) {
			alive = append(alive, name)
		}
		stored[ls.Key] = ls
	}
	if !slices.Contains(alive, m.opts.Member) {
		alive = append(alive, m.opts.Member) // its lease may be read before it was written
	}
	slices.Sort(alive)
	me := slices.Index(alive, m.opts.Member)
	for i := range m.opts.Partitions {
		mine := i%len(alive) == me
		key := m.leaseKey(i)
		m.mu.Lock()
		p := m.owned[i]
		if p != nil && !mine && !p.giveBack {
			p.giveBack = true
			m.signal()
		}
		m.mu.Unlock()
		if p == nil && !mine {
			continue
		}
		if ls, ok := stored[key]; p == nil && ok && ls.Owner != "" && ls.Owner != m.opts.Member && now.Before(ls.Expires) {
			waiting = true
			continue // still another member's: ask again next time
		}
		start := time.Now()
		var got driver.Lease
		var granted bool
		if err := call(func() (err error) {
			got, granted, err = l.AcquireLease(ctx, m.opts.Name, key, m.opts.Member, ttl)
			return err
		}); err != nil {
			return false, err
		}
		if p == nil {
			if !granted {
				waiting = true
				continue
			}
			from, err := m.startOf(ctx, got, leases)
			if err != nil {
				return false, err
			}
			m.mu.Lock()
			m.owned[i] = &partition{key: key, generation: got.Generation, validUntil: start.Add(ttl - ttl/3),
				pos: from, saved: Position(got.Position), hasSaved: got.HasPosition}
			m.mu.Unlock()
			m.signal()
			continue
		}
		m.mu.Lock()
		if !granted || got.Generation != p.generation {
			if m.owned[i] == p {
				delete(m.owned, i) // lost it: another member holds it now
			}
			s.logger.Warn("consumer group member lost a partition", "group", m.opts.Name, "member", m.opts.Member, "partition", key)
		} else {
			p.validUntil = start.Add(ttl - ttl/3)
		}
		m.mu.Unlock()
	}
	m.publish()
	return waiting, nil
}

// startOf returns where a partition just granted goes on: its checkpoint;
// without one, the lowest checkpoint of the group under another partition
// count when every partition of that count has one (the group was
// resized: at least once, nothing skipped); else opts.After, or with
// FromEnd the end of the log, saved at once.
func (m *member) startOf(ctx context.Context, got driver.Lease, leases []driver.Lease) (Position, error) {
	if got.HasPosition {
		return Position(got.Position), nil
	}
	type count struct {
		n, seen int
		low     Position
	}
	counts := map[int]*count{}
	for _, ls := range leases {
		rest, ok := strings.CutPrefix(ls.Key, "partition/")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '/'), 0)])
		if err != nil || n == m.opts.Partitions {
			continue
		}
		c := counts[n]
		if c == nil {
			c = &count{n: n, low: Position(ls.Position)}
			counts[n] = c
		}
		if !ls.HasPosition {
			c.seen = -1 << 30 // one without a checkpoint: this count cannot say
			continue
		}
		c.seen++
		if Position(ls.Position).Less(c.low) {
			c.low = Position(ls.Position)
		}
	}
	var from Position
	found := false
	for _, c := range counts {
		if c.seen != c.n {
			found = false
			break
		}
		if !found || c.low.Less(from) {
			from, found = c.low, true
		}
	}
	if found {
		return from, nil
	}
	if !m.opts.FromEnd {
		return m.opts.After, nil
	}
	s := m.store
	var end Position
	err := s.do(ctx, func() (err error) {
		if end, err = s.endOfLog(ctx); err != nil {
			return err
		}
		return s.leaser.SaveLeasePosition(ctx, m.opts.Name, got.Key, m.opts.Member, got.Generation, driver.Position(end))
	})
	return end, err
}

// publish copies the partitions held into the subscription's state.
func (m *member) publish() {
	m.mu.Lock()
	held := make([]int, 0, len(m.owned))
	for i := range m.owned {
		held = append(held, i)
	}
	m.mu.Unlock()
	slices.Sort(held)
	m.state.update(func(st *SubscriptionState) { st.Partitions = held })
}

// held is a partition as the delivery loop saw it when it read a page.
type held struct {
	generation uint64
	from       Position // its events up to here are handled
	live       bool     // still held and valid: its events are handled
	handled    int
}

// deliver reads the log from the lowest position of the partitions held
// and hands each event of a held partition to the handler, until ctx ends
// or the handler fails.
func (m *member) deliver(ctx context.Context) error {
	wake := m.watch(ctx)
	var page map[int]*held
	after := func() Position {
		for {
			m.mu.Lock()
			page = map[int]*held{}
			var from Position
			for i, p := range m.owned {
				if p.giveBack {
					continue
				}
				if len(page) == 0 || p.pos.Less(from) {
					from = p.pos
				}
				page[i] = &held{generation: p.generation, from: p.pos, live: true}
			}
			m.mu.Unlock()
			if len(page) > 0 {
				return from
			}
			// Nothing held: wait for the coordinator, then give back
			// what it asked for.
			if err := m.settle(ctx, nil); err != nil {
				return Position{}
			}
			select {
			case <-ctx.Done():
				return Position{} // the read fails with ctx's error
			case <-m.changed:
			}
		}
	}
	return m.follow(ctx, wake, m.changed, after, func(ctx context.Context, events []driver.RecordedEvent, scanned Position) (bool, error) {
		reached := scanned
		if n := len(events); n > 0 {
			reached = later(reached, Position(events[n-1].Position))
		}
		for k, dev := range events {
			ev := recordedFromDriver(dev)
			i := GroupMember(ev.StreamID, m.opts.Partitions)
			p := page[i]
			if p == nil || !p.live || !p.from.Less(ev.Position) {
				continue
			}
			if !m.stillHeld(i, p.generation) {
				p.live = false
				continue
			}
			if err := m.handle(ctx, ev); err != nil {
				m.advance(page, events[k:], reached)
				return false, err
			}
			p.from, p.handled = ev.Position, p.handled+1
			m.state.update(func(st *SubscriptionState) { st.Position, st.Handled = ev.Position, st.Handled+1 })
			if ctx.Err() != nil {
				m.advance(page, events[k+1:], reached)
				return false, ctx.Err()
			}
		}
		m.advance(page, nil, reached)
		return false, m.settle(ctx, page)
	})
}

// advance moves every partition of page that is still live and has no
// event left in rest to reached: the read got its events up to there, and
// records the page in the partitions held.
func (m *member) advance(page map[int]*held, rest []driver.RecordedEvent, reached Position) {
	pending := map[int]bool{}
	for _, dev := range rest {
		pending[GroupMember(dev.StreamID, m.opts.Partitions)] = true
	}
	for i, p := range page {
		if p.live && !pending[i] {
			p.from = later(p.from, reached)
		}
	}
	m.record(page)
}

// stillHeld reports whether the member still holds partition i at
// generation, within its lease.
func (m *member) stillHeld(i int, generation uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.owned[i]
	return p != nil && p.generation == generation && !p.giveBack && time.Now().Before(p.validUntil)
}

// record moves each partition held to where page got it.
func (m *member) record(page map[int]*held) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.owned {
		if h := page[i]; h != nil && h.generation == p.generation && p.pos.Less(h.from) {
			p.pos = h.from
		}
	}
}

// settle saves the checkpoints that moved (those of partitions with events
// handled in page at once, the others at most once per passedOverSave,
// those to give back always), and releases the partitions to give back. A save refused because the lease passed to
// another member drops the partition.
func (m *member) settle(ctx context.Context, page map[int]*held) error {
	type save struct {
		i   int
		p   *partition
		pos Position
	}
	var saves []save
	var giveBack []int
	m.mu.Lock()
	for i, p := range m.owned {
		due := p.giveBack || page[i] != nil && page[i].handled > 0 || time.Since(p.lastSaved) >= passedOverSave
		if due && (!p.hasSaved || p.saved != p.pos) {
			saves = append(saves, save{i, p, p.pos})
		} else if p.giveBack {
			giveBack = append(giveBack, i)
		}
	}
	m.mu.Unlock()
	s := m.store
	for _, sv := range saves {
		err := m.retrying(ctx, "save checkpoint", func() error {
			return s.do(ctx, func() error {
				return s.leaser.SaveLeasePosition(ctx, m.opts.Name, sv.p.key, m.opts.Member, sv.p.generation, driver.Position(sv.pos))
			})
		})
		m.mu.Lock()
		switch {
		case errors.Is(err, ErrLeaseLost):
			if m.owned[sv.i] == sv.p {
				delete(m.owned, sv.i)
			}
			s.logger.Warn("consumer group member lost a partition", "group", m.opts.Name, "member", m.opts.Member, "partition", sv.p.key)
		case err == nil:
			sv.p.saved, sv.p.hasSaved, sv.p.lastSaved = sv.pos, true, time.Now()
			m.state.checkpointSaved()
			if sv.p.giveBack {
				giveBack = append(giveBack, sv.i)
			}
		}
		m.mu.Unlock()
		if err != nil && !errors.Is(err, ErrLeaseLost) {
			return fmt.Errorf("save checkpoint of %s: %w", sv.p.key, err)
		}
	}
	for _, i := range giveBack {
		m.mu.Lock()
		p := m.owned[i]
		delete(m.owned, i)
		m.mu.Unlock()
		if p == nil {
			continue
		}
		err := s.do(ctx, func() error { return s.leaser.ReleaseLease(ctx, m.opts.Name, p.key, m.opts.Member, p.generation) })
		if err != nil {
			// It expires instead.
			s.logger.Warn("consumer group member could not release a partition", "group", m.opts.Name, "member", m.opts.Member, "partition", p.key, "error", err)
		}
	}
	if len(giveBack) > 0 {
		m.publish()
	}
	return nil
}

// leave saves every partition's checkpoint and releases every lease, under
// a deadline of its own: the member's context is done.
func (m *member) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.mu.Lock()
	for _, p := range m.owned {
		p.giveBack = true
	}
	m.mu.Unlock()
	if err := m.settle(ctx, nil); err != nil {
		m.store.logger.Error("consumer group member could not save its checkpoints on leaving", "group", m.opts.Name, "member", m.opts.Member, "error", err)
	}
	s := m.store
	s.do(ctx, func() error {
		leases, _, err := s.leaser.Leases(ctx, m.opts.Name)
		for _, ls := range leases {
			if ls.Key == m.memberKey() && ls.Owner == m.opts.Member {
				err = s.leaser.ReleaseLease(ctx, m.opts.Name, ls.Key, m.opts.Member, ls.Generation)
			}
		}
		return err
	})
}
