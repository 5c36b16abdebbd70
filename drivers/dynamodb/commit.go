package dynamodb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/errkind"
	"github.com/google/uuid"
)

// The committer writes appends to the table. (In an indexed table it
// groups appends the same way, each with an inbox entry in place of the log
// entry and its events without positions; see order.go. An inbox key taken
// by another append is drawn again, like a lost race for the head.)
//
// Each append is one
// TransactWriteItems that puts the append's log entry keyed by the next free
// position, checks that the stream is at the expected version, and puts the
// event items (each conditional on attribute_not_exists, so two writers can
// never take the same version). The last log entry is what a writer reads to
// find the next free position (its start plus its count): the log is its own
// counter, and positions are dense and in commit order.
//
// The log entry is keyed by its first position and put on condition
// attribute_not_exists: every entry starts where the one before it ends, so a
// writer whose idea of the head is stale computes a start that an entry
// already has, and fails, however many events either append holds. (Keyed by
// the last position, appends of different sizes starting at the same
// position would both succeed and overlap.)
//
// Every append to a table contends for the head of the log, so a driver
// sends one transaction at a time: a single goroutine takes the appends
// queued while the previous transaction was in flight and commits them
// together (group commit), up to DynamoDB's 100 items and 4 MB per
// transaction, one append per stream. Writers in other processes race for
// the same positions; the loser finds the new head and tries again.
//
// An import (see Import) is a request of several runs, possibly of several
// streams, with one log entry for all of them. take treats it like an
// append that touches all its streams: it joins a group only if no other
// request of the group writes one of them, and it is never split, so its
// events share the fate of one transaction; a cancellation reason on any of
// its items settles the whole import, and the group's other requests are
// sent again without it.

// request is one append or import handed to the committer: runs of events
// to write at consecutive positions, all or none.
type request struct {
	// runs are consecutive events of one stream each, in position order:
	// one for an append; an import has one per stretch of its events that
	// belong to one stream, and a stream may have several.
	runs []run
	// streams are the distinct streams of runs.
	streams []string
	count   int // events in all runs
	// check asks the transaction to check that version first-1 of an
	// append's run exists. Appends that read the stream's version do not
	// need it: a version, once seen, never goes away. Imports read it
	// before they are submitted (see Import).
	check    bool
	actions  int // transaction items: the log entry, the checks, the events
	size     int // estimated bytes of those items
	tagBytes int // bytes of the events' tags in the log entry

	// checks are a multi-stream append's condition checks on the streams
	// it only checks (see multiappend.go), after the log entry.
	checks []types.TransactWriteItem
	// pin, when not 0, is the position the request's first event must
	// take at the latest (a conditional append's condition was checked on
	// the log below it): it is sent first in its group, and fails with
	// outcome.moved when the log's head is past it.
	pin uint64

	// plain is set for an Append's request (not an import's or a
	// multi-stream append's): one event of it may be written alone as one
	// PutItem (see unplaced.go).
	plain bool
	// prev, when not nil, is the read of version first-1 of a checked
	// append, started early (see prefetchPrevious).
	prev *previousRead

	// shard and arrival key the inbox entry of an append to an indexed
	// table (arrival 0: not drawn yet).
	shard   int
	arrival uint64

	state atomic.Int32 // reqPending → reqTaken (by the committer) or reqAbandoned (by the caller)
	done  chan outcome // buffered: the committer never blocks on it
}

// run is events to write at versions first, first+1, … of stream.
type run struct {
	stream string
	first  uint64
	events []driver.Event
	// at is the recorded time of every event of an append; an import
	// gives each event its own in times.
	at    time.Time
	times []time.Time
	// metaTypes holds the metadata content type of each event of an
	// import whose metadata is not all JSON; nil means all JSON.
	metaTypes []driver.ContentType
	// overFence lets the first event replace the fence of a deleted
	// stream (see fence.go): its writer read the stream as deleted.
	overFence bool
}

// metadataType returns the metadata content type of the run's i-th event.
func (r run) metadataType(i int) driver.ContentType {
	if r.metaTypes != nil {
		return r.metaTypes[i]
	}
	return driver.JSON
}

// recordedAt returns the recorded time of the run's i-th event.
func (r run) recordedAt(i int) time.Time {
	if r.times != nil {
		return r.times[i]
	}
	return r.at
}

const (
	reqPending int32 = iota
	reqTaken
	reqAbandoned
)

// outcome is what became of a request.
type outcome struct {
	last     uint64 // position of the last event, when written
	conflict bool   // the stream was not at version first-1: nothing written
	moved    bool   // the head of the log was not at the request's pin: nothing written
	err      error  // the native cause of a conflict, or the failure
}

func newRequest(stream string, first uint64, check bool, events []driver.Event, at time.Time) *request {
	return newRunsRequest([]run{{stream: stream, first: first, events: events, at: at}}, check)
}

// newRunsRequest returns a request for runs; check applies to a single run.
func newRunsRequest(runs []run, check bool) *request {
	r := &request{runs: runs, check: check, done: make(chan outcome, 1)}
	seen := map[string]bool{}
	for _, rn := range runs {
		if !seen[rn.stream] {
			seen[rn.stream] = true
			r.streams = append(r.streams, rn.stream)
		}
		r.count += len(rn.events)
		for _, e := range rn.events {
			r.size += eventItemSize(e)
		}
		r.tagBytes += eventsTagsBytes(rn.events)
	}
	r.actions = 1 + r.count
	if check {
		r.actions++
	}
	if len(runs) == 1 {
		r.size += logItemSize(runs[0].stream, runs[0].events)
	} else {
		r.size += runsLogItemSize(runs)
	}
	return r
}

// committer owns the goroutine that sends appends.
type committer struct {
	d      *Driver
	in     chan *request
	ctx    context.Context // done when the driver closes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Owned by the run goroutine.
	next    uint64 // the next free position; 0 when it must be looked up
	pending []*request
}

// maxHeadRaces bounds how often one group of appends loses the race for the
// head of the log to other processes before the appends fail.
const maxHeadRaces = 100

func (c *committer) start(d *Driver) {
	c.d = d
	c.in = make(chan *request)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Go(c.run)
}

func (c *committer) stop() {
	c.cancel()
	c.wg.Wait()
}

// submit hands r to the committer and waits for its outcome. When ctx is
// done first the caller gets ctx's error: if r had not been taken yet it is
// dropped, otherwise its transaction commits whole or not at all.
func (c *committer) submit(ctx context.Context, r *request) outcome {
	if err := c.d.addTagCost(r); err != nil { // see tagindex.go
		return outcome{err: err}
	}
	select {
	case c.in <- r:
	case <-ctx.Done():
		return outcome{err: ctx.Err()}
	case <-c.ctx.Done():
		return outcome{err: eventstore.ErrClosed}
	}
	select {
	case o := <-r.done:
		return o
	case <-ctx.Done():
		r.state.CompareAndSwap(reqPending, reqAbandoned)
		return outcome{err: ctx.Err()}
	}
}

func (c *committer) run() {
	for {
		if len(c.pending) == 0 {
			select {
			case r := <-c.in:
				c.pending = append(c.pending, r)
			case <-c.ctx.Done():
				return
			}
		}
	drain:
		for {
			select {
			case r := <-c.in:
				c.pending = append(c.pending, r)
			default:
				break drain
			}
		}
		if c.ctx.Err() != nil {
			for _, r := range c.pending {
				r.done <- outcome{err: eventstore.ErrClosed}
			}
			return
		}
		if group := c.take(); len(group) > 0 {
			c.commit(group)
		}
	}
}

// take removes from the queue the requests of the next transaction, in
// arrival order: as many as fit in one transaction, at most one request per
// stream (two appends to one stream would race for the same versions; an
// import's several runs of one stream are one request). A request is never
// split: an import's runs share one transaction and one fate. Abandoned
// requests are dropped.
func (c *committer) take() []*request {
	var group []*request
	actions, size := 0, 0
	streams := map[string]bool{}
	rest := c.pending[:0]
	for _, r := range c.pending {
		fits := len(group) == 0 ||
			(r.pin == 0 && actions+r.actions <= maxTxnItems && size+r.size <= maxTxnSize && !slices.ContainsFunc(r.streams, func(s string) bool { return streams[s] }))
		if fits && r.state.CompareAndSwap(reqPending, reqTaken) {
			group = append(group, r)
			actions += r.actions
			size += r.size
			for _, s := range r.streams {
				streams[s] = true
			}
			continue
		}
		if r.state.Load() != reqAbandoned {
			rest = append(rest, r)
		}
	}
	clear(c.pending[len(rest):])
	c.pending = rest
	return group
}

// itemRole says what a transaction item does for its request.
type itemRole int

const (
	roleLog   itemRole = iota // the log entry: the positions
	roleCheck                 // the check that the previous version exists
	roleEvent                 // an event item: a version
)

// txn is one TransactWriteItems for a group of requests.
type txn struct {
	items []types.TransactWriteItem
	owner []int      // request index of each item
	role  []itemRole // role of each item
	last  []uint64   // position of each request's last event
}

// build lays out the group's transaction at positions from c.next on.
func (c *committer) build(group []*request) txn {
	d := c.d
	var t txn
	table := aws.String(d.table)
	notExists := aws.String("attribute_not_exists(pk)")
	pos := c.next
	for i, r := range group {
		last := pos + uint64(r.count) - 1
		t.last = append(t.last, last)
		add := func(item types.TransactWriteItem, role itemRole) {
			t.items = append(t.items, item)
			t.owner = append(t.owner, i)
			t.role = append(t.role, role)
		}
		evPos := pos
		if d.indexed {
			// No position: the inbox entry, for the orderer.
			if r.arrival == 0 {
				r.shard, r.arrival = rand.IntN(inboxShards), newArrival()
			}
			evPos = 0
			add(types.TransactWriteItem{Put: &types.Put{TableName: table, ConditionExpression: notExists, Item: d.inboxItem(r, r.shard, r.arrival)}}, roleLog)
		} else {
			for _, item := range d.entryPuts(pos, r.runs) { // with its tag items, see tagindex.go
				add(item, roleLog)
			}
		}
		for _, ck := range r.checks {
			add(ck, roleCheck)
		}
		if r.check {
			add(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
				// Not the stub of a deleted stream (see retention.go).
				TableName: table, ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(dl)"),
				Key: key(r.runs[0].stream, r.runs[0].first-1),
			}}, roleCheck)
		}
		for _, rn := range r.runs {
			for j, e := range rn.events {
				add(types.TransactWriteItem{Put: &types.Put{
					TableName: table, ConditionExpression: rn.putCond(j),
					Item: laterInAppend(eventItem(rn.stream, rn.first+uint64(j), evPos, e, rn.recordedAt(j), rn.metadataType(j)), j),
				}}, roleEvent)
				pos++
				if evPos > 0 {
					evPos++
				}
			}
		}
	}
	return t
}

// commit writes a group of requests and delivers each one's outcome.
func (c *committer) commit(group []*request) {
	d := c.d
	if d.indexed {
		// The lease holder writes straight into the log (see place.go).
		if group = c.placeDirect(group); len(group) == 0 {
			return
		}
	}
	token := newToken()
	transient, races := 0, 0
	for len(group) > 0 {
		if c.next == 0 && d.indexed {
			c.next = 1 // positions are the orderer's: unused
		}
		if c.next == 0 {
			next, err := d.settledNext(c.ctx) // see window.go
			if err != nil {
				deliver(group, outcome{err: err})
				return
			}
			c.next = next
		}
		if p := group[0].pin; p != 0 && p < c.next {
			// The log moved past what the condition was checked on. (A
			// pin above c.next: the condition was checked past the head,
			// or c.next is stale and the log entry's put fails.)
			group[0].done <- outcome{moved: true}
			group = group[1:]
			continue
		}
		t := c.build(group)
		_, err := d.client.TransactWriteItems(c.ctx, &awsdynamodb.TransactWriteItemsInput{
			TransactItems: t.items, ClientRequestToken: aws.String(token),
		}, noRetry)
		if err == nil && d.indexed {
			for _, r := range group {
				d.offerOrderer(r, r.shard, r.arrival)
				r.done <- outcome{} // the caller waits for its position
			}
			return
		}
		if err == nil {
			for i, r := range group {
				r.done <- outcome{last: t.last[i]}
			}
			lastStart := t.last[len(t.last)-1] - uint64(group[len(group)-1].count) + 1
			d.bucketHint.Store(max(d.bucketHint.Load(), lastStart/d.bucketSize))
			c.next = t.last[len(t.last)-1] + 1
			d.notify()
			return
		}
		reasons, cancelled := cancellationReasons(err, len(t.items))
		if !cancelled {
			switch classify(err) {
			case classRetry:
				// The outcome may be unknown (a 5xx, a broken connection):
				// send the same transaction with the same token, which
				// DynamoDB applies at most once.
				if !c.retryTransient(group, &transient, err, true) {
					return
				}
				continue
			case classInvalid:
				if len(group) > 1 {
					// One append made the group invalid: find out which.
					for _, r := range group {
						c.commit([]*request{r})
					}
					return
				}
			}
			c.next = 0 // the transaction may have been applied
			deliver(group, outcome{err: wrapNative(err)})
			return
		}
		// Cancelled: nothing was written. Sort the requests out by the
		// reasons of their items.
		token = newToken()
		headTaken, retry := false, false
		keep := group[:0]
		verdict := make([]errorClass, len(group))
		for i := range verdict {
			verdict[i] = classNone
		}
		for i, cls := range reasons {
			r := t.owner[i]
			switch {
			case cls == classConflict && t.role[i] == roleLog:
				headTaken = true
			case cls == classRetry:
				retry = true
			case cls != classNone && verdict[r] != classConflict:
				verdict[r] = cls
			}
		}
		for i, r := range group {
			switch verdict[i] {
			case classConflict:
				r.done <- outcome{conflict: true, err: err}
			case classInvalid:
				r.done <- outcome{err: wrapNative(err)}
			case classOther:
				r.done <- outcome{err: wrapNative(err)}
			default:
				keep = append(keep, r)
			}
		}
		clear(group[len(keep):])
		group = keep
		switch {
		case len(group) == 0:
		case len(group) == len(verdict) && !headTaken && !retry:
			// Cancelled without a reason this driver can act on.
			deliver(group, outcome{err: wrapNative(err)})
			return
		case headTaken:
			// Another writer took the head of the log (in an indexed
			// table: an append's inbox key; each draws another).
			c.next = 0
			for _, r := range group {
				r.arrival = 0
			}
			races++
			if races > maxHeadRaces {
				deliver(group, outcome{err: fmt.Errorf("dynamodb: lost the race for the head of the log %d times: %w", races, err)})
				return
			}
			if serr := sleep(c.ctx, rand.N(time.Duration(min(races, 10))*time.Millisecond)); serr != nil {
				deliver(group, outcome{err: eventstore.ErrClosed})
				return
			}
		case retry:
			if !c.retryTransient(group, &transient, err, false) {
				return
			}
		}
	}
}

// retryTransient counts one more transient failure of the group's
// transaction and waits before the next attempt. It returns false when the
// group got its outcome instead: the attempts are used up, or the driver is
// closing. unknown says the transaction may have been applied, so the head
// of the log must be looked up again before anything else is sent.
func (c *committer) retryTransient(group []*request, transient *int, err error, unknown bool) bool {
	*transient++
	if *transient >= c.d.maxAttempts {
		if unknown {
			c.next = 0
		}
		deliver(group, outcome{err: wrapNative(errkind.Transient(err))})
		return false
	}
	c.d.retrying("TransactWriteItems", *transient, err)
	if serr := backoff.Wait(c.ctx, *transient); serr != nil {
		deliver(group, outcome{err: eventstore.ErrClosed})
		return false
	}
	return true
}

func deliver(group []*request, o outcome) {
	for _, r := range group {
		r.done <- o
	}
}

// newToken returns a fresh ClientRequestToken (at most 36 characters).
func newToken() string { return uuid.NewString() }
