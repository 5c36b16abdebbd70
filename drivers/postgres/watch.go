package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Watch implements [driver.Watcher]. An append wakes the watchers of
// its own driver as soon as it commits; other processes learn of it through
// LISTEN/NOTIFY. Each driver keeps one dedicated connection (outside the
// pool) that LISTENs on the schema's channel, and a notifier that sends, at
// most every 5 ms, the highest transaction ID appended since its last
// notification.
//
// Any role may NOTIFY any channel, so a notification is only a hint to look:
// one the driver cannot parse is ignored, and the listener then checks the
// log itself, at most once every checkGap however many notifications
// arrive, and wakes the watchers only when events became readable since it
// last woke them (the highest tx_id below the visibility fence grew). A
// flood of notifications thus costs at most one small query per checkGap on
// the listening connection, and no read by the subscriptions. While a
// notified transaction is not yet below the fence (an older append to the
// store is still open), the listener re-checks with back-off up to 50 ms.
//
// The first Watch starts the listener and returns once it listens (or fails:
// the Store then polls). When the connection is lost the listener wakes every
// watcher, reconnects with back-off and wakes them again once it listens, so
// events appended meanwhile are read; the subscriptions' poll covers the gap.
func (d *Driver) Watch(ctx context.Context) (<-chan struct{}, error) {
	return d.listener.watch(ctx)
}

// Listener timings.
const (
	// checkGap is the least time between two checks of the log by the
	// listener, which bounds what a flood of notifications costs.
	checkGap         = 5 * time.Millisecond
	fenceRecheckMax  = 50 * time.Millisecond
	ownCheckDelay    = 10 * time.Millisecond
	reconnectBackoff = 100 * time.Millisecond
	reconnectMax     = 5 * time.Second
)

// listener owns the listening connection and the watchers' channels.
type listener struct {
	d      *Driver
	ctx    context.Context // done when the driver closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the listening goroutine

	// check is the listener's look at the log: the fence, the horizon and
	// the highest tx_id below the fence (see serve).
	check string
	// readable is the highest tx_id below the fence when the watchers were
	// last woken by a check. Owned by the listening goroutine.
	readable int64

	mu       sync.Mutex // protects everything below
	watchers map[chan struct{}]struct{}
	closed   bool
	start    *listenStart // the running listener's first LISTEN; nil when none runs
	pid      uint32       // backend PID of the listening connection, 0 when none
}

// listenStart is the outcome of a listener's first LISTEN, which the Watch
// calls made while it connects wait for. Each start of the listener has its
// own, so a Watch that waited for a failed start fails too, even after a
// later Watch has started the listener again.
type listenStart struct {
	done chan struct{} // closed once the first LISTEN succeeded or failed
	err  error         // why it failed; set before done is closed
}

func (l *listener) init(d *Driver) {
	l.d = d
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.watchers = map[chan struct{}]struct{}{}
	l.check = d.sql.snapshot + `
FROM t)
SELECT s.fence, s.horizon, coalesce((SELECT max(tx_id) FROM ` + quoteIdent(d.schema) + `.events WHERE tx_id < s.fence), 0) FROM s`
}

func (l *listener) watch(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("postgres: watch: driver is closed")
	}
	start := l.start
	if start == nil {
		start = &listenStart{done: make(chan struct{})}
		l.start = start
		l.wg.Go(func() { l.run(start) })
	}
	l.mu.Unlock()

	select {
	case <-start.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if start.err != nil {
		return nil, start.err // run has let a later Watch try again
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watchers[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		delete(l.watchers, ch)
		l.mu.Unlock()
	})
	return ch, nil
}

// wake signals every watcher; a watcher with a signal pending keeps one.
func (l *listener) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// run connects, listens and serves notifications until the driver closes,
// reconnecting with back-off when the connection is lost. It reports the
// first LISTEN through start; if that fails it returns, and the next Watch
// starts another listener.
func (l *listener) run(start *listenStart) {
	first, reconnected := true, false
	wait := reconnectBackoff
	for {
		conn, err := l.connect(l.ctx)
		if first {
			first = false
			l.mu.Lock()
			if err != nil {
				start.err = err
				l.start = nil
			}
			close(start.done)
			l.mu.Unlock()
			if err != nil {
				return
			}
		}
		if err == nil {
			wait = reconnectBackoff
			l.setPID(conn.PgConn().PID())
			if reconnected {
				// Events may have been appended while nobody listened.
				l.wake()
			}
			reconnected = true
			err = l.serve(l.ctx, conn)
			l.setPID(0)
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(cctx)
			cancel()
		}
		if l.ctx.Err() != nil {
			return
		}
		l.d.logger.Warn("postgres: listening connection lost; subscriptions poll until it is back",
			"driver", "postgres", "error", err)
		l.wake()
		t := time.NewTimer(wait)
		select {
		case <-l.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, reconnectMax)
	}
}

func (l *listener) setPID(pid uint32) {
	l.mu.Lock()
	l.pid = pid
	l.mu.Unlock()
}

// connect opens a dedicated connection with the pool's settings and LISTENs.
func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := l.d.pool.Config().ConnConfig.Copy()
	// Time-outs while waiting for notifications must not close the
	// connection: use deadlines, not cancel requests.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, wrapNative(err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+quoteIdent(l.d.sql.channel)); err != nil {
		conn.Close(cctx)
		return nil, wrapNative(err)
	}
	// Drivers notify only while some connection holds this lock
	// (notifySQL): taken after LISTEN, so no notification sent while it is
	// held is missed, and before the watchers read.
	if _, err := conn.Exec(cctx, listenSQL, l.d.sql.channel); err != nil {
		conn.Close(cctx)
		return nil, wrapNative(err)
	}
	return conn, nil
}

// serve waits for notifications and wakes the watchers when events became
// readable. A notification of the driver carries "tx_id/instance": the
// highest transaction ID the sending driver announced, and which driver sent
// it; one that does not parse is ignored. Anyone may send them, so they only
// schedule a check of the log, and the check decides:
//
//   - It wakes the watchers when the highest committed tx_id below the fence
//     (readable) has grown since the last wake-up. By the fence argument
//     every event that becomes readable later has a tx_id at or above the
//     fence of the check before, so above that check's readable: growth is
//     exactly "new events to read".
//   - It ends the wait for a notified transaction once the fence has passed
//     it. Until then it checks again with back-off up to fenceRecheckMax. A
//     notified ID at or above the horizon cannot be a committed transaction
//     (forged, or from a confused sender): it is lowered to below the
//     horizon, so a forged notification costs a few checks, not an endless
//     series.
//
// Checks are at least checkGap apart. This driver's own notifications are
// checked only after ownCheckDelay: its watchers were woken when the append
// committed, and an immediate check would compete with the read that wake-up
// started; the later check catches appends that were held back longer than
// that read waited.
func (l *listener) serve(ctx context.Context, conn *pgx.Conn) error {
	var (
		pending   int64     // highest notified tx_id not yet below the fence; 0: none
		due       time.Time // when to check the log while pending
		wait      time.Duration
		lastCheck time.Time
	)
	for {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if pending != 0 {
			wctx, cancel = context.WithDeadline(ctx, due)
		}
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			tx, from, ok := parseNotification(n.Payload)
			if !ok {
				continue // not the driver's: ignored
			}
			now := time.Now()
			soon := lastCheck.Add(checkGap)
			if from == l.d.instance {
				soon = now.Add(ownCheckDelay)
			}
			if pending == 0 || soon.Before(due) {
				due, wait = soon, checkGap
			}
			pending = max(pending, tx)
			if now.Before(due) {
				continue // checked when the wait runs out
			}
		case pending != 0 && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
		default:
			return err
		}
		var fence, horizon, readable int64
		if err := conn.QueryRow(ctx, l.check).Scan(&fence, &horizon, &readable); err != nil {
			return err
		}
		lastCheck = time.Now()
		if readable > l.readable {
			l.readable = readable
			l.wake()
		}
		pending = min(pending, horizon-1)
		if fence > pending {
			pending = 0
			continue
		}
		due = lastCheck.Add(wait)
		wait = min(wait*2, fenceRecheckMax)
	}
}

// parseNotification reads a notification's payload, "tx_id/instance" (or
// "tx_id" alone: the in-transaction notification of BenchmarkNotify). It
// reports false for anything else.
func parseNotification(payload string) (tx int64, from string, ok bool) {
	txText, from, _ := strings.Cut(payload, "/")
	tx, err := strconv.ParseInt(txText, 10, 64)
	if err != nil || tx <= 0 {
		return 0, "", false
	}
	return tx, from, true
}

// listenerPID returns the backend PID of the listening connection, 0 when
// it is not connected. Tests use it to kill the connection.
func (d *Driver) listenerPID() uint32 {
	d.listener.mu.Lock()
	defer d.listener.mu.Unlock()
	return d.listener.pid
}

// notifier sends the wake-up notifications of committed appends from one
// goroutine. Each NOTIFY is a small transaction of its own on the server, so
// it sends at most one every notifyGap, carrying the highest transaction ID
// announced since the previous one: under load many appends share one
// notification. Watchers in this process do not wait for it: announce wakes
// them at once (their read waits for in-flight transactions itself). When
// no driver listens (notifySQL), it sends nothing and looks again only after
// notifyIdleGap, with the highest transaction ID announced meanwhile.
type notifier struct {
	d      *Driver
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu      sync.Mutex // protects pending
	pending int64      // highest tx_id not yet notified; 0: none
}

// notifyGap is the least time between two notifications of one driver.
// BenchmarkNotify measures what a notification per append would cost.
const notifyGap = 5 * time.Millisecond

// notifyIdleGap is the least time between a look for listeners that found
// none and the next notification: it bounds how late a listener that has
// just connected in another process hears of the appends after its first
// read. Until then the notifier costs one statement per notifyIdleGap,
// instead of one per notifyGap while appends go on (BenchmarkNotify).
const notifyIdleGap = 50 * time.Millisecond

func (n *notifier) start(d *Driver) {
	n.d = d
	n.kick = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Go(func() { n.run(ctx) })
}

// announce queues a notification for a committed transaction and wakes this
// process's watchers.
func (n *notifier) announce(txID int64) {
	n.d.listener.wake()
	n.mu.Lock()
	n.pending = max(n.pending, txID)
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) run(ctx context.Context) {
	var next time.Time // the earliest time of the next notification
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		// A notification already taken from the queue is sent even if the
		// driver is closing meanwhile: close waits for it, bounded.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyOnClose)
		if gap := n.send(sctx); gap > 0 {
			next = time.Now().Add(gap)
		}
		cancel()
	}
}

// send sends the queued notification, if any, and returns how long to wait
// before the next one: 0 when none was queued, notifyIdleGap when no driver
// listens, notifyGap otherwise. A failed notification only delays other
// processes' subscribers until their next poll.
func (n *notifier) send(ctx context.Context) time.Duration {
	n.mu.Lock()
	tx := n.pending
	n.pending = 0
	n.mu.Unlock()
	if tx == 0 {
		return 0
	}
	payload := strconv.FormatInt(tx, 10) + "/" + n.d.instance
	var sent bool
	if err := n.d.pool.QueryRow(ctx, n.d.sql.notify, n.d.sql.channel, payload).Scan(nil, &sent); err != nil {
		if ctx.Err() == nil {
			n.d.logger.Debug("postgres: wake-up notification failed", "driver", "postgres", "error", err)
		}
		return notifyGap
	}
	if !sent {
		return notifyIdleGap
	}
	return notifyGap
}

// notifyOnClose bounds the last notification a closing driver sends.
const notifyOnClose = time.Second

// close stops the notifier, then sends a notification still queued under a
// short deadline: a short-lived process (a CLI, a job) that appends and
// closes at once must still wake other processes' subscribers.
func (n *notifier) close() {
	n.cancel()
	n.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), notifyOnClose)
	defer cancel()
	n.send(ctx)
}
