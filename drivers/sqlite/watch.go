package sqlite

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventstore"
)

// watchState wakes live subscriptions. Appends through the driver signal
// every watcher as soon as they commit. Writes by other processes (or other
// drivers on the same file) are found by a poller that reads MAX(position)
// every WatchInterval; it runs only while at least one watcher waits.
type watchState struct {
	last atomic.Int64 // position of the last append this driver committed

	mu       sync.Mutex // protects everything below
	watchers map[chan struct{}]struct{}
	stop     context.CancelFunc // stops the running poller; nil when none runs
	closed   bool

	wg sync.WaitGroup // the poller goroutines
}

// Watch implements [driver.Watcher]. The channel receives a value after
// this driver commits an append, and within about WatchInterval after another
// process does.
func (d *Driver) Watch(ctx context.Context) (<-chan struct{}, error) {
	ws := &d.watch
	ch := make(chan struct{}, 1)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return nil, eventstore.ErrClosed
	}
	ws.watchers[ch] = struct{}{}
	if ws.stop == nil {
		pctx, stop := context.WithCancel(context.Background())
		ws.stop = stop
		ws.wg.Go(func() { d.poll(pctx) })
	}
	context.AfterFunc(ctx, func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		delete(ws.watchers, ch)
		if len(ws.watchers) == 0 && ws.stop != nil {
			ws.stop()
			ws.stop = nil
		}
	})
	return ch, nil
}

// appended records a committed append and wakes every watcher.
func (ws *watchState) appended(pos int64) {
	for {
		old := ws.last.Load()
		if pos <= old || ws.last.CompareAndSwap(old, pos) {
			break
		}
	}
	ws.notify()
}

func (ws *watchState) notify() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for ch := range ws.watchers {
		select {
		case ch <- struct{}{}:
		default: // a signal is already pending
		}
	}
}

// poll wakes the watchers when the log's last position moves past what this
// driver appended itself. Its first check always signals, covering events
// committed between a subscription's catch-up read and the poller's start.
// A failed check is retried at the next tick; the subscription engine's own
// poll backs it up.
func (d *Driver) poll(ctx context.Context) {
	t := time.NewTicker(d.opts.WatchInterval)
	defer t.Stop()
	seen := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var head int64
		if err := d.read.maxPosition.QueryRowContext(ctx).Scan(&head); err != nil {
			continue
		}
		if head != seen && (seen < 0 || head > d.watch.last.Load()) {
			d.watch.notify()
		}
		seen = head
	}
}

// close stops the poller and refuses new watchers.
func (ws *watchState) close() {
	ws.mu.Lock()
	ws.closed = true
	if ws.stop != nil {
		ws.stop()
		ws.stop = nil
	}
	ws.mu.Unlock()
	ws.wg.Wait()
}
