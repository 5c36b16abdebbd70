package kurrentdb

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// How the driver keeps a working client. The client (v1.4.1) looks for the
// server on its first call and on the call after one that found it
// unavailable. When that discovery fails, the client closes itself for
// good: the call gets the discovery's error, later calls
// ErrorCodeConnectionClosed, and calls that were already waiting to start
// (the client serves them one at a time during a discovery, ignoring their
// contexts) wait forever. So the driver
//
//   - runs each client call in a goroutine of its own and waits for it,
//     for the caller's context, or for the client to be retired, so no
//     caller is stuck with a dead client (a call stuck inside the client
//     is left behind);
//   - after a call finds the server unavailable, checks the client in the
//     background until it has either found the server again or given up;
//   - retires a client that gave up and, when it built the client itself,
//     builds a new one from the same configuration. A retired client is not
//     closed: it has stopped on its own, and closing it would race with
//     the calls stuck inside it (they would panic; run recovers that, for
//     clients the application closes). Close likewise leaves a client that
//     last found the server unavailable, and otherwise waits for calls
//     abandoned by their callers to leave the client before closing it.

// closeWait bounds how long closing a client waits for the calls their
// callers gave up on to leave it: they end with their contexts, unless they
// are stuck in a client that has stopped on its own (a discovery takes
// about a second with the default settings).
const closeWait = 10 * time.Second

// close closes the client once no call is inside it, since closing it
// under a call is a race. A client that last found the server unavailable,
// or that still has calls inside after closeWait, has stopped on its own
// and is left as it is.
func (cn *conn) close() error {
	idle := make(chan struct{})
	go func() {
		cn.ops.Wait()
		close(idle)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-idle:
		if cn.suspect.Load() {
			return nil
		}
		return cn.client.Close()
	case <-t.C:
		return nil
	}
}

// errRetired is what a call waiting on a client gets when the driver
// retires that client.
var errRetired = errors.New("kurrentdb: the client gave up on the server")

// conn is one client and what the driver knows of it.
type conn struct {
	client   *kdb.Client
	retired  chan struct{}  // closed when the driver stops using the client
	once     sync.Once      // closes retired
	checking atomic.Bool    // a health check is running
	suspect  atomic.Bool    // the last call found the server unavailable
	ops      sync.WaitGroup // calls running inside the client
}

func newConn(c *kdb.Client) *conn { return &conn{client: c, retired: make(chan struct{})} }

func (cn *conn) retire() { cn.once.Do(func() { close(cn.retired) }) }

// current returns the client in use.
func (d *Driver) current() *conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn
}

// replace retires a client that gave up and, when the driver builds its
// clients, puts a new one in its place. It reports whether there is a
// client to try again with.
func (d *Driver) replace(cn *conn) bool {
	cn.retire()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return false
	case d.conn != cn:
		return true // replaced already
	case d.cfg == nil:
		// The application's client cannot be rebuilt: later calls go to
		// it again and fail at once with ErrorCodeConnectionClosed.
		d.conn = newConn(cn.client)
		return false
	}
	c := *d.cfg
	client, err := kdb.NewClient(&c)
	if err != nil {
		return false
	}
	d.conn = newConn(client)
	d.opts.Logger.Warn("the KurrentDB client gave up on the server; using a new one", "driver", "kurrentdb")
	return true
}

// callAttempts bounds how often call runs an operation.
const callAttempts = 3

// call runs op with the client in use, and runs it again (a bounded number
// of times) after failures that mean the operation never ran, or that it is
// safe to run twice:
//
//   - ErrorCodeConnectionClosed the driver did not cause: the client gave
//     up on the server; call uses the new client replace builds.
//   - Unavailable, or a client retired under the call, when retry is true:
//     the connection broke or the server restarted, and the client looks
//     for the server again on the next call. Reads pass true, and so do
//     appends the server recognises when they are retried.
func call[T any](ctx context.Context, d *Driver, retry bool, op func(*kdb.Client) (T, error)) (T, error) {
	var v T
	var err error
	for range callAttempts {
		cn := d.current()
		if v, err = run(ctx, cn, op); err == nil {
			return v, nil
		}
		switch {
		case ctx.Err() != nil:
			return v, err
		case hasCode(err, kdb.ErrorCodeConnectionClosed):
			if !d.replace(cn) {
				return v, err
			}
		case unavailable(err) || errors.Is(err, errRetired):
			d.check(cn)
			if !retry {
				return v, err
			}
		default:
			return v, err
		}
	}
	return v, err
}

// run calls op in a goroutine and waits for it, for ctx, or for the client
// to be retired.
func run[T any](ctx context.Context, cn *conn, op func(*kdb.Client) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	cn.ops.Go(func() {
		defer func() {
			// A call stuck inside a client that has stopped panics when
			// the client is closed; that ends it.
			if r := recover(); r != nil {
				if e, ok := r.(runtime.Error); !ok || e.Error() != "send on closed channel" {
					panic(r)
				}
				done <- result{err: errRetired}
			}
		}()
		v, err := op(cn.client)
		if err == nil || !unavailable(err) {
			cn.suspect.Store(false)
		} else {
			cn.suspect.Store(true)
		}
		done <- result{v, err}
	})
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	case <-cn.retired:
		var zero T
		return zero, errRetired
	}
}

// check makes a client that found the server unavailable look for it
// again now, in the background, and replaces the client if it gives up:
// that releases calls waiting on it even when no other call comes. At most
// one check runs per client.
func (d *Driver) check(cn *conn) {
	if !cn.checking.CompareAndSwap(false, true) {
		return
	}
	d.wg.Go(func() {
		defer cn.checking.Store(false)
		// The first call may run the failing discovery; the second then
		// finds the client closed.
		for range 2 {
			_, err := run(d.bg, cn, func(c *kdb.Client) (*kdb.ServerVersion, error) { return c.GetServerVersion() })
			switch {
			case err == nil, d.bg.Err() != nil, errors.Is(err, errRetired):
				return
			case hasCode(err, kdb.ErrorCodeConnectionClosed):
				d.replace(cn)
				return
			}
		}
	})
}
