package sqlite

import (
	"context"
	"slices"
	"sync"

	"github.com/eventkit/eventstore/driver"
)

// Group commit. Appends in this process wait for the one write connection;
// whichever of them gets it writes every append then waiting, in one
// transaction with one commit, so concurrent appenders share the WAL sync
// that bounds small appends. Each append of a group runs after a SAVEPOINT,
// exactly as it would alone (its own version check, retry recognition and
// result), and one that fails is rolled back to its savepoint without
// touching the others. A group of one is a plain write transaction.
//
// Nothing waits for a group to fill: the leader takes what is queued when
// it gets the connection, so a lone appender pays nothing, and appenders
// that queue behind a commit in flight share the next one.

// appendQueue holds the appends waiting for the write connection.
type appendQueue struct {
	mu      sync.Mutex // protects waiting
	waiting []*pendingAppend
}

// pendingAppend is one Append, or one AppendMulti, waiting for, or in, a
// group.
type pendingAppend struct {
	ctx      context.Context
	req      driver.AppendRequest       // an Append's
	multi    *driver.MultiAppendRequest // an AppendMulti's, or nil
	events   int                        // how many
	size     int                        // bytes of data and metadata
	res      driver.AppendResult
	multiRes driver.MultiAppendResult
	written  bool
	err      error
	done     chan struct{} // closed once the results, written and err are set
}

// run writes p in the open write transaction on w and records its outcome.
func (p *pendingAppend) run(d *Driver, w *writer) {
	if p.multi != nil {
		p.multiRes, p.written, p.err = multiAppendTx(p.ctx, w, *p.multi)
		return
	}
	p.res, p.written, p.err = d.appendTx(p.ctx, w, p.req)
}

// fail records err as p's outcome: nothing written.
func (p *pendingAppend) fail(err error) {
	p.err, p.res, p.multiRes, p.written = err, driver.AppendResult{}, driver.MultiAppendResult{}, false
}

// position is the position of p's last event, once written.
func (p *pendingAppend) position() int64 {
	if p.multi != nil {
		return int64(p.multiRes.Position.Commit)
	}
	return int64(p.res.Position.Commit)
}

// enqueue queues p, takes its turn and returns once p's outcome is known;
// a done ctx takes p out of the queue if no group has taken it yet.
func (d *Driver) enqueue(p *pendingAppend) error {
	d.appends.push(p)
	for !p.finished() {
		select {
		case d.writeSem <- struct{}{}:
			// Lead a group: this append's, unless an earlier group took
			// it; if the group was full without it, wait again.
			d.commitWaiting()
		case <-p.done:
		case <-p.ctx.Done():
			if d.appends.remove(p) {
				return p.ctx.Err()
			}
			// A group has it: its outcome is known soon, and is the truth.
			<-p.done
		}
	}
	return p.err
}

// A group is bounded like one append (see maxAppendEvents): it holds the
// file's write lock, which other processes wait for.
const (
	maxGroupEvents = maxAppendEvents
	maxGroupSize   = maxAppendSize
)

// finished reports whether p's outcome is known.
func (p *pendingAppend) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (q *appendQueue) push(p *pendingAppend) {
	q.mu.Lock()
	q.waiting = append(q.waiting, p)
	q.mu.Unlock()
}

// remove takes p out of the queue and reports whether it was still there
// (no group has taken it).
func (q *appendQueue) remove(p *pendingAppend) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.waiting, p)
	if i < 0 {
		return false
	}
	q.waiting = slices.Delete(q.waiting, i, i+1)
	return true
}

// take removes and returns the oldest waiting appends, as many as fit in a
// group (at least one, if any wait).
func (q *appendQueue) take() []*pendingAppend {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, events, size := 0, 0, 0
	for _, p := range q.waiting {
		if n > 0 && (events+p.events > maxGroupEvents || size+p.size > maxGroupSize) {
			break
		}
		n, events, size = n+1, events+p.events, size+p.size
	}
	group := slices.Clone(q.waiting[:n])
	q.waiting = slices.Delete(q.waiting, 0, n)
	return group
}

// commitWaiting writes the waiting appends as one group and delivers each
// one's outcome. The caller holds writeSem, which it gives back.
func (d *Driver) commitWaiting() {
	defer d.giveWriter()
	group := d.appends.take()
	defer func() {
		for _, p := range group {
			close(p.done)
		}
	}()
	switch len(group) {
	case 0: // an earlier group took them
		return
	case 1:
		p := group[0]
		w, err := d.heldWriter(p.ctx)
		if err == nil {
			err = d.writeTx(p.ctx, w, func(w *writer) error {
				p.run(d, w)
				return p.err
			})
		}
		if err != nil {
			p.fail(err)
		}
		if err == nil && p.written {
			d.watch.appended(p.position())
		}
		return
	}
	// The group's own statements must not fail because one appender gave
	// up: they run without cancellation (begin is bounded by BusyTimeout);
	// each append checks its own ctx before it runs and again before the
	// commit.
	ctx := context.WithoutCancel(group[0].ctx)
	live := group
	for len(live) > 0 {
		w, err := d.heldWriter(ctx)
		if err == nil {
			err = d.begin(ctx, w)
		}
		if err == nil {
			live, err = d.writeGroup(ctx, w, live)
		}
		if err != nil {
			for _, p := range live {
				p.fail(err)
			}
			return
		}
	}
}

// writeGroup runs the appends of group in the open write transaction on w,
// each in a savepoint, and commits them. An append whose ctx is done when
// it would start fails with ctx's error. One that fails is rolled back to
// its savepoint and gets its error; the others go on. An append whose ctx
// is done by the time of the commit must not be written (a done context
// rolls back, as when it appends alone): then the transaction is rolled
// back, those appends fail, and writeGroup returns the others to be written
// again in a new transaction. An error that leaves the transaction unusable
// rolls it back and is returned, for every append of the group.
func (d *Driver) writeGroup(ctx context.Context, w *writer, group []*pendingAppend) (again []*pendingAppend, err error) {
	for _, p := range group {
		p.fail(p.ctx.Err())
		if p.err != nil {
			continue
		}
		if _, err := w.savepoint.ExecContext(ctx); err != nil {
			d.abort(ctx, w)
			return group, err
		}
		p.run(d, w)
		if p.err == nil {
			continue
		}
		// Undo this append only. If that fails, or SQLite has rolled the
		// whole transaction back (an I/O error, a full disk), nothing of
		// the group is written.
		if _, err := w.rollbackTo.ExecContext(ctx); err != nil || !w.inTx() {
			if err == nil {
				err = p.err
			}
			d.abort(ctx, w)
			return group, err
		}
	}
	again = group[:0:0]
	gaveUp := false
	for _, p := range group {
		if p.ctx.Err() == nil {
			again = append(again, p)
		} else if p.err == nil {
			p.fail(p.ctx.Err())
			gaveUp = true
		}
	}
	if gaveUp {
		d.abort(ctx, w)
		return again, nil
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		d.abort(ctx, w)
		return group, err
	}
	var last int64
	for _, p := range group {
		if p.err == nil && p.written {
			last = max(last, p.position())
		}
	}
	if last > 0 {
		d.watch.appended(last)
	}
	return nil, nil
}
