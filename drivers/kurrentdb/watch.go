package kurrentdb

import (
	"context"
	"time"

	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Back-off between attempts to subscribe again after a live subscription
// dropped.
const (
	resubscribeFirst = 50 * time.Millisecond
	resubscribeMax   = 2 * time.Second
)

// Watch implements [driver.Watcher] with KurrentDB's native
// subscription to $all, from its end (in a namespace, filtered to the
// namespace's streams): every event it delivers signals the channel, and
// the subscription engine then reads what is new.
//
// When the subscription drops (the server restarted, the connection
// broke), the driver subscribes again with back-off, building a new
// client if the old one gave up, and then signals once, so events appended
// meanwhile are read: nothing is lost, and since the engine reads after
// its own checkpoint, nothing is delivered twice. The subscription ends
// when ctx is done or the driver closes.
func (d *Driver) Watch(ctx context.Context) (<-chan struct{}, error) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.bg, cancel)
	sub, err := d.subscribeLive(ctx)
	if err != nil {
		stop()
		cancel()
		return nil, wrapError(ctx, err)
	}
	ch := make(chan struct{}, 1)
	d.wg.Go(func() {
		defer cancel()
		defer stop()
		d.watch(ctx, sub, ch)
	})
	return ch, nil
}

func (d *Driver) subscribeLive(ctx context.Context) (*kdb.Subscription, error) {
	opts := kdb.SubscribeToAllOptions{From: kdb.End{}}
	if d.prefix != "" {
		opts.Filter = &kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{d.prefix}}
		opts.MaxSearchWindow, opts.CheckpointInterval = filterWindow, 1
	}
	return call(ctx, d, true, func(c *kdb.Client) (*kdb.Subscription, error) { return c.SubscribeToAll(ctx, opts) })
}

// watch signals ch for each live event until ctx is done.
func (d *Driver) watch(ctx context.Context, sub *kdb.Subscription, ch chan<- struct{}) {
	signal := func() {
		select {
		case ch <- struct{}{}:
		default: // a signal is pending: they coalesce
		}
	}
	for {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			signal()
		case ev.SubscriptionDropped != nil:
			sub.Close()
			if ctx.Err() != nil {
				return
			}
			d.opts.Logger.Warn("live subscription dropped, subscribing again", "driver", "kurrentdb", "error", ev.SubscriptionDropped.Error)
			if sub = d.resubscribe(ctx); sub == nil {
				return
			}
			signal()
		}
	}
}

// resubscribe subscribes again, backing off between failures, until it
// succeeds or ctx is done (then it returns nil).
func (d *Driver) resubscribe(ctx context.Context) *kdb.Subscription {
	wait := resubscribeFirst
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if sub, err := d.subscribeLive(ctx); err == nil {
			return sub
		}
		wait = min(2*wait, resubscribeMax)
	}
}
