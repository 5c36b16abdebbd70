package dynamodb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/internal/errkind"
	"github.com/google/uuid"
)

// The indexed log layout (LogIndexed). An append (grouped with others of
// the process by the committer) is one TransactWriteItems of its event items (conditional puts, without a position), the check that
// the stream is at the expected version, and one inbox item: a log entry
// without a position, in one of inboxShards partitions chosen at random,
// keyed by its arrival time and a random number. No item is written by
// every append, so appends from any number of processes do not contend.
//
// The orderer, run by one driver of the table at a time under a lease (the
// lease item "$lease#$orderer", as consumer-group leases are), places the
// appends of the inbox in the log: it reads the inbox partitions, takes the
// appends whose stream's previous version is already placed (per-stream
// order), in arrival order, and writes, in one TransactWriteItems,
//
//  1. a check that it still holds the lease at its generation, unexpired by
//     its clock (fencing: an orderer that lost its lease writes nothing);
//  2. the head of the log ("$loghead"), moved from the next free position
//     it read to the one after the appends, on condition that it is still
//     where it was read;
//  3. one log entry covering all the appends it places, at consecutive
//     positions from the old head, each append's events contiguous (the
//     entry of an import of several runs, one run per append);
//  4. the deletion of each append's inbox item, on condition that it
//     exists;
//  5. the position of each event, set on its item on condition that it
//     has none yet.
//
// Progress (the inbox deletions, the head) and the positions are written
// together, so a restarted or new orderer never places an append twice and
// never leaves one out; log entries are written one transaction after the
// other, each starting where the previous one ended, so the log is dense and
// readers read it exactly as in the head layout, stopping at the first
// position no visible entry covers.

// inboxShards is how many partitions hold the inbox of an indexed table:
// each takes about 1,000 write units per second, and an append's inbox
// item costs 2 to put and 2 to delete (transactional writes). Part of the
// layout: never change.
const inboxShards = 8

// The orderer's lease.
const (
	ordererGroup = "$orderer"
	ordererKey   = "log"
)

// inboxPK returns the partition key of an inbox shard.
func inboxPK(shard int) string { return inboxPrefix + strconv.Itoa(shard) }

// newArrival returns an inbox item's sort key: the time in microseconds
// and three random digits, so that the orderer takes appends roughly in
// the order they were made, and two appends rarely share a key (the put is
// conditional; the loser draws again).
func newArrival() uint64 { return uint64(time.Now().UnixMicro())*1000 + rand.Uint64N(1000) }

// inboxItem encodes the inbox item of r: its log entry, without a
// position. In a table of item layout 2 it is also in the index of
// unplaced events (see unplaced.go).
func (d *Driver) inboxItem(r *request, shard int, arrival uint64) map[string]types.AttributeValue {
	item := entryItem(0, arrival, r.runs)
	item[attrPK] = str(inboxPK(shard))
	item[attrBytes] = num(uint64(r.size))
	if d.unplaced {
		item[attrUnplacedShard] = num(uint64(shard))
		item[attrUnplacedArrival] = num(arrival)
	}
	return item
}

// submit writes r through the committer and, in an indexed table, waits
// for its position.
func (d *Driver) submit(ctx context.Context, r *request) outcome {
	var o outcome
	if d.canPutUnplaced(r) {
		o = d.putUnplaced(ctx, r) // see unplaced.go
	} else {
		o = d.committer.submit(ctx, r)
	}
	if !d.indexed || o.err != nil || o.conflict || o.last > 0 || d.async {
		return o // o.last: placed directly (see place.go); async: no wait
	}
	last := r.runs[len(r.runs)-1]
	o.last, o.err = d.awaitWritten(ctx, last.stream, last.first+uint64(len(last.events))-1)
	if o.last > 0 {
		d.notify() // also when another process's orderer placed it
	}
	return o
}

// awaitPlaced waits until the event at version of stream has a position,
// at most d.orderTimeout, and returns it; 0 when the time passed first (or
// the driver does not wait). It reads the event's position with a strongly
// consistent GetItem, again after each pass of the driver's own orderer
// and at least every 50 ms.
func (d *Driver) awaitPlaced(ctx context.Context, stream string, version uint64) (uint64, error) {
	return d.await(ctx, stream, version, false)
}

// awaitWritten is awaitPlaced for an event its append has just written:
// no orderer can have placed it yet, so it looks first after freshWait,
// then at intervals growing by half, up to freshMax (appends of other
// processes are placed a pass or two later: a look at once, and another
// after 1 and 3 ms, would be spent requests; a pass of the orderer takes
// a few round trips, so a look every 50 ms found most positions tens of
// milliseconds late).
func (d *Driver) awaitWritten(ctx context.Context, stream string, version uint64) (uint64, error) {
	return d.await(ctx, stream, version, true)
}

// freshWait is how long awaitWritten waits before its first look, and
// freshMax the longest between two of its looks.
const (
	freshWait = 4 * time.Millisecond
	freshMax  = 20 * time.Millisecond
)

func (d *Driver) await(ctx context.Context, stream string, version uint64, fresh bool) (uint64, error) {
	if d.orderTimeout < 0 {
		return 0, nil
	}
	deadline := time.Now().Add(d.orderTimeout)
	sv := streamVersion{stream, version}
	// While this driver's orderer holds the lease it says what it placed:
	// no request until then.
	local := d.orderer != nil && d.orderer.holding.Load()
	first, most := time.Millisecond, 50*time.Millisecond
	grow := func(w time.Duration) time.Duration { return w * 2 }
	switch {
	case local:
		first = 50 * time.Millisecond // woken by the pass that places it
	case fresh:
		first, local, most = freshWait, true, freshMax // no look before the first wait
		grow = func(w time.Duration) time.Duration { return w * 3 / 2 }
	}
	for wait := first; ; wait = min(grow(wait), most) {
		placed, at := d.placedSignal()
		if p, ok := at[sv]; ok {
			return p, nil
		}
		if !local {
			p, err := d.positionOf(ctx, stream, version)
			if err != nil || p > 0 {
				return p, err
			}
		}
		local = false
		left := time.Until(deadline)
		if left <= 0 {
			return 0, nil
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-placed:
			if _, at := d.placedSignal(); at[sv] > 0 {
				t.Stop()
				return at[sv], nil
			}
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
		t.Stop()
	}
}

// positionOf returns the position of an event, 0 while it has none.
func (d *Driver) positionOf(ctx context.Context, stream string, version uint64) (uint64, error) {
	var out *awsdynamodb.GetItemOutput
	err := d.call(ctx, "GetItem", func(ctx context.Context) error {
		var err error
		out, err = d.client.GetItem(ctx, &awsdynamodb.GetItemInput{
			TableName: aws.String(d.table), Key: key(stream, version), ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String(attrPos),
		}, noRetry)
		return err
	})
	if err != nil {
		return 0, wrapNative(err)
	}
	if _, ok := out.Item[attrPos]; !ok {
		return 0, nil
	}
	return getNum(out.Item, attrPos)
}

// placedSignal returns a channel closed after the next pass of the
// driver's orderer that places events, and the position of the last event
// of each append the last such pass placed.
func (d *Driver) placedSignal() (<-chan struct{}, map[streamVersion]uint64) {
	d.placedMu.Lock()
	defer d.placedMu.Unlock()
	return d.placedCh, d.placedAt
}

// signalPlaced wakes the appends waiting for their positions, with the
// positions of the last events of the appends just placed.
func (d *Driver) signalPlaced(at map[streamVersion]uint64) {
	d.placedMu.Lock()
	defer d.placedMu.Unlock()
	close(d.placedCh)
	d.placedCh, d.placedAt = make(chan struct{}), at
}

// offerOrderer hands an append just written to the driver's orderer, if
// it runs one and holds the lease, and wakes it: it places the append
// without waiting for its next read of the inbox.
func (d *Driver) offerOrderer(r *request, shard int, arrival uint64) {
	o := d.orderer
	if o == nil || !o.holding.Load() {
		return
	}
	e, err := decodeLogEntry(d.inboxItem(r, shard, arrival))
	if err != nil {
		return // the inbox has it: the next read finds it
	}
	o.offer(candidate{shard: shard, arrival: arrival, entry: e, bytes: uint64(r.size)})
}

// offer hands the orderer a candidate written by this driver and wakes it.
func (o *orderer) offer(c candidate) {
	o.mu.Lock()
	o.offered = append(o.offered, c)
	o.mu.Unlock()
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// orderer owns the goroutine that orders an indexed table's log while
// this driver holds the orderer's lease.
type orderer struct {
	d     *Driver
	owner string
	lease time.Duration
	poll  time.Duration
	kick  chan struct{}

	ctx    context.Context // done when the driver closes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// holding is set while the orderer holds the lease (by its clock).
	holding atomic.Bool

	mu      sync.Mutex  // protects offered
	offered []candidate // appends of this driver, written since the last pass

	// Owned by the run goroutine.
	lastRead time.Time // of the inbox
	// scanFrom is where the next Scan of the index of unplaced events
	// starts (nil: at its beginning; see readUnplaced).
	scanFrom map[string]types.AttributeValue
	recent   map[inboxKey]bool // inbox entries the last pass placed

	// hmu is held while the head of the log is written (a pass's
	// transaction, an append placed directly; see place.go) and protects
	// the fields below. Only the run goroutine writes gen and expires;
	// it reads them without the lock.
	hmu     sync.Mutex
	gen     uint64    // the lease's generation while held, else 0
	expires time.Time // when the lease expires, by this process's clock
	next    uint64    // the next free position; 0 when it must be read
	// placedTo is, per stream, the last version this driver placed (by a
	// pass or directly; up to maxPlacedTo streams): a position once given
	// is never taken back, so neither previousPlaced nor the direct
	// placement's check need look at those versions again.
	placedTo map[string]uint64
}

func startOrderer(d *Driver, opts Options) *orderer {
	o := &orderer{d: d, owner: ordererOwner(), lease: opts.OrdererLease, poll: opts.OrderPoll, kick: make(chan struct{}, 1)}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.wg.Go(o.run)
	return o
}

// stop stops the orderer and releases its lease, so that another driver
// takes over at once.
func (o *orderer) stop() {
	o.cancel()
	o.wg.Wait()
	if o.gen != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = o.d.ReleaseLease(ctx, ordererGroup, ordererKey, o.owner, o.gen)
	}
}

// ordererOwner names this driver's orderer in the lease: "PID@HOST/" and a
// random suffix, so an operator (and the crash test) can tell which process
// orders the log.
func ordererOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s/%s", os.Getpid(), host, uuid.NewString()[:8])
}

// errLeaseLost reports that the orderer's transaction failed its lease
// check: another driver orders the log now.
var errLeaseLost = errors.New("dynamodb: the orderer's lease was lost")

func (o *orderer) run() {
	idle := busyPoll
	var worked time.Time // when a pass last placed events
	failures := 0
	for o.ctx.Err() == nil {
		if o.gen == 0 || time.Until(o.expires) < o.lease*2/3 {
			wait, err := o.acquire()
			if err != nil || wait > 0 {
				if err != nil && o.ctx.Err() == nil {
					o.d.logger.Warn("dynamodb: orderer: lease", "driver", "dynamodb", "table", o.d.table, "error", err)
					wait = o.lease / 4
				}
				o.sleep(wait, false)
				continue
			}
		}
		n, err := o.pass()
		switch {
		case errors.Is(err, errLeaseLost):
			o.hmu.Lock()
			o.gen = 0
			o.hmu.Unlock()
			o.holding.Store(false)
			continue
		case err != nil:
			if o.ctx.Err() != nil {
				return
			}
			failures++
			o.d.logger.Warn("dynamodb: orderer: pass failed", "driver", "dynamodb", "table", o.d.table, "attempt", failures, "error", err)
			o.hmu.Lock()
			o.next = 0
			o.hmu.Unlock()
			_ = backoff.Wait(o.ctx, min(failures, 8))
			continue
		case n > 0:
			failures, idle, worked = 0, busyPoll, time.Now()
			continue
		}
		failures = 0
		o.sleep(min(idle, time.Until(o.expires)-o.lease*2/3), true)
		if time.Since(worked) > busySpell {
			idle = min(idle*2, o.poll)
		}
	}
}

// While appends keep coming, the orderer looks at the inbox every busyPoll
// when it finds it empty; busySpell after the last pass that placed
// something it backs off, doubling up to Options.OrderPoll.
// A pass woken by appends of this driver, which it is handed, reads the
// inbox for those of other processes only if it has not for busyRead (or
// Options.OrderPoll, when shorter).
const (
	busyPoll  = 5 * time.Millisecond
	busySpell = time.Second
	busyRead  = 10 * time.Millisecond
)

// maxPassTxns bounds the transactions of one pass: after one read of the
// inbox (or the index) and one round of BatchGetItem, a pass places what
// it read in up to this many transactions in a row, so that a backlog is
// placed at a transaction per round trip instead of a read, a BatchGetItem
// and a transaction.
const maxPassTxns = 8

// sleep waits for d or the driver's closing, and with kickable for a kick
// (an append through this driver; a driver that does not hold the lease
// ignores them, or each append would cost a lease request).
func (o *orderer) sleep(d time.Duration, kickable bool) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	kick := o.kick
	if !kickable {
		kick = nil
	}
	select {
	case <-t.C:
	case <-kick:
	case <-o.ctx.Done():
	}
}

// acquire takes or renews the lease. It returns how long to wait before
// trying again when another driver holds it.
func (o *orderer) acquire() (time.Duration, error) {
	start := time.Now()
	l, ok, err := o.d.AcquireLease(o.ctx, ordererGroup, ordererKey, o.owner, o.lease)
	o.hmu.Lock()
	defer o.hmu.Unlock()
	if err != nil || !ok {
		o.gen = 0
		o.holding.Store(false)
	}
	if err != nil {
		return 0, err
	}
	if !ok {
		// Try again when the holder's lease expires, by this clock (a
		// holder renews well before), and at least every quarter lease.
		return max(min(time.Until(l.Expires)+time.Millisecond, o.lease/4), time.Millisecond), nil
	}
	if l.Generation != o.gen {
		o.next = 0 // another orderer may have moved the head meanwhile
	}
	o.gen, o.expires = l.Generation, start.Add(o.lease)
	o.holding.Store(true)
	return 0, nil
}

// candidate is an append (or import) waiting in the inbox, or a
// single-event append's event marked unplaced (see unplaced.go).
type candidate struct {
	shard   int // of the inbox; inboxShards + the index partition when unplaced
	arrival uint64
	entry   logEntry // start is the arrival key
	bytes   uint64
	// unplaced is set for an event found in the index of unplaced events:
	// no inbox item to delete.
	unplaced bool
}

// items returns how many items placing c takes in the orderer's
// transaction: its events' position updates and its inbox item's deletion.
func (c candidate) items() int {
	if c.unplaced {
		return int(c.entry.count)
	}
	return 1 + int(c.entry.count)
}

// readInbox reads every inbox shard (strongly consistent, in parallel), up
// to 100 items each, and returns the appends in arrival order.
func (o *orderer) readInbox() ([]candidate, error) {
	d := o.d
	var mu sync.Mutex // protects cands and firstErr
	var cands []candidate
	var firstErr error
	var wg sync.WaitGroup
	for shard := range inboxShards {
		wg.Go(func() {
			out, err := d.query(o.ctx, &awsdynamodb.QueryInput{
				KeyConditionExpression:    aws.String("pk = :i"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":i": str(inboxPK(shard))},
				Limit:                     aws.Int32(maxTxnItems),
			})
			var got []candidate
			for i := 0; err == nil && i < len(out.Items); i++ {
				item := out.Items[i]
				var c candidate
				c.shard = shard
				if c.entry, err = decodeLogEntry(item); err != nil {
					break
				}
				c.arrival = c.entry.start
				if c.bytes, err = getNum(item, attrBytes); err != nil {
					break
				}
				got = append(got, c)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("inbox %d: %w", shard, err)
			}
			cands = append(cands, got...)
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.arrival, b.arrival), cmp.Compare(a.shard, b.shard))
	})
	return cands, nil
}

// inboxKey names an inbox entry.
type inboxKey struct {
	shard   int
	arrival uint64
}

// mergeOffered adds to cands, the inbox as read, the appends offered by
// this driver that it does not hold (written after the read) and that the
// last pass did not place (offered after it read them), in arrival order.
func mergeOffered(cands, offered []candidate, recent map[inboxKey]bool) []candidate {
	if len(offered) == 0 {
		return cands
	}
	have := map[inboxKey]bool{}
	for _, c := range cands {
		have[inboxKey{c.shard, c.arrival}] = true
	}
	for _, c := range offered {
		k := inboxKey{c.shard, c.arrival}
		if !have[k] && !recent[k] {
			have[k] = true
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.arrival, b.arrival), cmp.Compare(a.shard, b.shard))
	})
	return cands
}

// streamVersion names one version of a stream.
type streamVersion struct {
	stream  string
	version uint64
}

// pass places what it can of the inbox in one transaction and returns the
// number of events placed.
func (o *orderer) pass() (int, error) {
	d := o.d
	o.mu.Lock()
	offered := o.offered
	o.offered = nil
	o.mu.Unlock()
	var cands []candidate
	if len(offered) == 0 || time.Since(o.lastRead) >= min(o.poll, busyRead) {
		// Appends of other processes are found only in the inbox; those
		// of this driver are offered, and read again only in passing.
		var err error
		if d.unplaced {
			// One Scan of the index, which lists the inbox too; a
			// strongly consistent look at each follows (previousPlaced).
			cands, err = o.readUnplaced()
		} else {
			cands, err = o.readInbox()
		}
		if err != nil {
			return 0, err
		}
		o.lastRead = time.Now()
	}
	cands = mergeOffered(cands, offered, o.recent)
	if len(cands) == 0 {
		return 0, nil
	}
	// From here on the pass owns the head: appends placed directly wait.
	o.hmu.Lock()
	defer o.hmu.Unlock()
	if o.next == 0 {
		next, err := o.readHead()
		if err != nil {
			return 0, err
		}
		o.next = next
	}
	placed, pending, err := o.previousPlaced(cands)
	if err != nil {
		return 0, err
	}
	if d.unplaced {
		// The index lags the table: leave out the events and inbox
		// items it still lists though they are placed (or removed).
		cands = slices.DeleteFunc(cands, func(c candidate) bool {
			if !c.unplaced {
				return !pending[streamVersion{inboxPK(c.shard), c.arrival}]
			}
			r := c.entry.runs[0]
			return !pending[streamVersion{r.stream, r.first}]
		})
		if len(cands) == 0 {
			return 0, nil
		}
	}
	excluded := map[int]bool{} // candidates placed, or whose items failed their conditions
	token := newToken()
	transient := 0
	done, txns := 0, 0                   // events placed by this pass, and its transactions
	lastOf := map[streamVersion]uint64{} // of every run this pass placed
	for {
		sel := o.choose(cands, placed, excluded)
		if len(sel) == 0 {
			return done, nil
		}
		t := o.build(cands, sel)
		_, err := d.client.TransactWriteItems(o.ctx, &awsdynamodb.TransactWriteItemsInput{
			TransactItems: t.items, ClientRequestToken: aws.String(token),
		}, noRetry)
		if err == nil {
			if txns == 0 {
				o.recent = map[inboxKey]bool{}
			}
			for _, i := range sel {
				o.recent[inboxKey{cands[i].shard, cands[i].arrival}] = true
				excluded[i] = true
			}
			for sv, p := range t.lastOf {
				lastOf[sv] = p
				placed[sv] = true // what follows in its stream may go next
				o.remember(sv)
			}
			o.next += t.count
			d.bucketHint.Store(max(d.bucketHint.Load(), (o.next-t.count)/d.bucketSize))
			d.signalPlaced(maps.Clone(lastOf))
			d.notify()
			done += int(t.count)
			if txns++; txns >= maxPassTxns {
				return done, nil
			}
			token, transient = newToken(), 0
			continue
		}
		if o.ctx.Err() != nil {
			return done, o.ctx.Err()
		}
		reasons, cancelled := cancellationReasons(err, len(t.items))
		if !cancelled {
			if classify(err) != classRetry {
				return done, wrapNative(err)
			}
		} else {
			token = newToken()
			retry := false
			for i, cls := range reasons {
				switch {
				case cls == classConflict && i == 0:
					return done, errLeaseLost
				case cls == classConflict && (i == 1 || i == 2):
					// The head moved: another orderer wrote (a lease
					// taken over meanwhile), or this one's earlier
					// transaction did. Read it again.
					o.next = 0
					return done, nil
				case cls == classConflict:
					excluded[t.owner[i]] = true
				case cls == classRetry:
					retry = true
				case cls != classNone:
					return done, wrapNative(err)
				}
			}
			if !retry {
				continue // without the excluded candidates
			}
		}
		transient++
		if transient >= d.maxAttempts {
			return done, wrapNative(errkind.Transient(err))
		}
		d.retrying("TransactWriteItems", transient, err)
		if werr := backoff.Wait(o.ctx, transient); werr != nil {
			return done, werr
		}
	}
}

// readHead returns the next free position of the log from its head item.
func (o *orderer) readHead() (uint64, error) {
	next, err := o.d.readHead(o.ctx) // see pinned.go
	if err != nil {
		return 0, wrapNative(err)
	}
	// Read from the table: the previous holder's last transaction may
	// still be being applied (see window.go).
	return next, o.d.settleBelow(o.ctx, next)
}

// previousPlaced reads, for each stream of the candidates, whether the
// version before the first one a candidate writes to it has a position
// (strongly consistent BatchGetItem, positions only; not for versions this
// orderer placed itself, see placedTo). For a candidate
// found in the index of unplaced events it also reads its own item, and
// returns in pending those still marked unplaced; in a table of item
// layout 2 it also reads the inbox items of the others, in pending (under
// the inbox item's key) when they still exist.
func (o *orderer) previousPlaced(cands []candidate) (placed, pending map[streamVersion]bool, err error) {
	var keys []eventKey
	seen := map[streamVersion]bool{}
	placed = map[streamVersion]bool{}
	for _, c := range cands {
		for _, r := range c.entry.runs {
			k := streamVersion{r.stream, r.first - 1}
			if r.first > 1 && o.placedTo[r.stream] >= r.first-1 {
				placed[k] = true
				continue
			}
			if r.first > 1 && !seen[k] {
				seen[k] = true
				keys = append(keys, eventKey{stream: r.stream, version: r.first - 1})
			}
		}
		switch {
		case c.unplaced:
			// Its own item, to confirm what the index says.
			r := c.entry.runs[0]
			if k := (streamVersion{r.stream, r.first}); !seen[k] {
				seen[k] = true
				keys = append(keys, eventKey{stream: r.stream, version: r.first})
			}
		case o.d.unplaced:
			// Its inbox item, found through the index too.
			keys = append(keys, eventKey{stream: inboxPK(c.shard), version: c.arrival})
		}
	}
	pending = map[streamVersion]bool{}
	items, err := o.batchGetAll(keys)
	if err != nil {
		return nil, nil, err
	}
	for _, item := range items {
		s, err := getStr(item, attrPK)
		if err != nil {
			return nil, nil, err
		}
		v, err := getNum(item, attrSK)
		if err != nil {
			return nil, nil, err
		}
		if _, ok := item[attrUnplacedShard]; ok || strings.HasPrefix(s, inboxPrefix) {
			pending[streamVersion{s, v}] = true
		}
		if _, ok := item[attrPos]; ok {
			placed[streamVersion{s, v}] = true
		}
	}
	return placed, pending, nil
}

// maxPlacedTo bounds the streams an orderer remembers in placedTo; past
// it, it forgets them all.
const maxPlacedTo = 10_000

// remember records that this driver placed version sv.version of
// sv.stream (and so every version before it). The caller holds o.hmu.
func (o *orderer) remember(sv streamVersion) {
	if o.placedTo == nil || len(o.placedTo) >= maxPlacedTo {
		o.placedTo = map[string]uint64{}
	}
	o.placedTo[sv.stream] = max(o.placedTo[sv.stream], sv.version)
}

// maxBatchGets bounds the BatchGetItem requests of one pass in flight at
// once.
const maxBatchGets = 8

// batchGetAll reads keys (positions and the unplaced marker only) with
// BatchGetItem requests of up to 100 keys, up to maxBatchGets of them at
// once, and returns the items found.
func (o *orderer) batchGetAll(keys []eventKey) ([]map[string]types.AttributeValue, error) {
	var mu sync.Mutex // protects all and firstErr
	var all []map[string]types.AttributeValue
	var firstErr error
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxBatchGets)
	for chunk := range slices.Chunk(keys, maxBatchGet) {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			items, err := o.d.batchGet(o.ctx, chunk, "pk, sk, p, ub")
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = wrapNative(err)
			}
			all = append(all, items...)
		})
	}
	wg.Wait()
	return all, firstErr
}

// choose returns the candidates (indexes, in arrival order) of the next
// transaction: those whose streams' previous versions are placed, or placed
// by a candidate chosen before them, as many as fit one transaction.
func (o *orderer) choose(cands []candidate, placed map[streamVersion]bool, excluded map[int]bool) []int {
	var sel []int
	chosen := make([]bool, len(cands))
	last := map[string]uint64{} // stream → its last version chosen
	total, events := txnCost{placeItems, maxLogItemSize}, uint64(0)
	tagBytes := 0 // of the log entry, which holds every chosen event's tags
	// Each candidate's items, bytes and tag items (see tagindex.go).
	costs := make([]txnCost, len(cands))
	for i, c := range cands {
		costs[i] = txnCost{c.items(), int(c.bytes)}.plus(o.d.entryTagCost(c.entry))
	}
	for progress := true; progress; {
		progress = false
		for i, c := range cands {
			if chosen[i] || excluded[i] {
				continue
			}
			ctags := entryTagsBytes(c.entry)
			if !total.plus(costs[i]).fits() || events+c.entry.count > maxTxnItems ||
				(len(sel) > 0 && tagBytes+ctags > maxEntryTagsBytes) {
				continue
			}
			next := map[string]uint64{}
			ok := true
			for _, r := range c.entry.runs {
				prev, had := next[r.stream]
				if !had {
					prev, had = last[r.stream]
				}
				switch {
				case r.first == 1 && !had:
				case had && prev == r.first-1:
				case !had && placed[streamVersion{r.stream, r.first - 1}]:
				default:
					ok = false
				}
				next[r.stream] = r.first + r.count - 1
			}
			if !ok {
				continue
			}
			chosen[i], progress = true, true
			sel = append(sel, i)
			for s, v := range next {
				last[s] = v
			}
			total, events = total.plus(costs[i]), events+c.entry.count
			tagBytes += ctags
		}
	}
	return sel
}

// orderTxn is one transaction of the orderer.
type orderTxn struct {
	items []types.TransactWriteItem
	owner []int  // the candidate of each item; -1 for the lease, head and entry
	count uint64 // events placed
	// lastOf is the position of the last event of each run placed.
	lastOf map[streamVersion]uint64
}

// build lays out the transaction placing the chosen candidates sel at
// positions from o.next on.
func (o *orderer) build(cands []candidate, sel []int) orderTxn {
	d := o.d
	table := aws.String(d.table)
	var t orderTxn
	add := func(item types.TransactWriteItem, owner int) {
		t.items = append(t.items, item)
		t.owner = append(t.owner, owner)
	}
	var runs []run
	for _, i := range sel {
		c := cands[i]
		runs = append(runs, entryRuns(c.entry)...)
		t.count += c.entry.count
	}
	for _, item := range append(o.fence(t.count), d.entryPuts(o.next, runs)...) { // see tagindex.go
		add(item, -1)
	}
	pos := o.next
	t.lastOf = map[streamVersion]uint64{}
	for _, i := range sel {
		c := cands[i]
		update := "SET p = :p"
		if c.unplaced {
			update = "SET p = :p REMOVE ub, ua, b" // see unplaced.go
		} else {
			add(types.TransactWriteItem{Delete: &types.Delete{
				TableName: table, Key: key(inboxPK(c.shard), c.arrival), ConditionExpression: aws.String("attribute_exists(pk)"),
			}}, i)
		}
		for _, r := range c.entry.runs {
			for j := range r.count {
				add(types.TransactWriteItem{Update: &types.Update{
					TableName: table, Key: key(r.stream, r.first+j),
					UpdateExpression:          aws.String(update),
					ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(p)"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":p": num(pos)},
				}}, i)
				pos++
			}
			t.lastOf[streamVersion{r.stream, r.first + r.count - 1}] = pos - 1
		}
	}
	return t
}

// fence returns the first two items of a transaction that writes count
// events to the log at o.next: the check that the orderer still holds its
// lease at its generation, unexpired by its clock, and the head of the log
// moved from o.next past the events, on condition that it is still there.
// The caller holds o.hmu.
func (o *orderer) fence(count uint64) []types.TransactWriteItem {
	table := aws.String(o.d.table)
	return []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{
			TableName: table, Key: leaseItemKey(ordererGroup, ordererKey),
			ConditionExpression:      aws.String("#lk = :k AND #o = :o AND #g = :g AND #e > :now"),
			ExpressionAttributeNames: leaseNames("#lk", "#o", "#g", "#e"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":k": str(ordererKey), ":o": str(o.owner), ":g": num(o.gen), ":now": unixNano(time.Now()),
			},
		}},
		o.d.headMove(o.next, count, o.gen), // see pinned.go
	}
}
