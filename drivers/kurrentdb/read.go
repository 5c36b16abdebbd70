package kurrentdb

import (
	"context"
	"errors"
	"io"

	"github.com/eventkit/eventstore/driver"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// ReadStream implements [driver.Driver]. A stream KurrentDB does not
// know reads as empty. The read stops receiving, and closes the server's
// stream, once the page is full (q.Limit events, or q.MaxBytes bytes).
func (d *Driver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	opts := kdb.ReadStreamOptions{Direction: kdb.Forwards, From: kdb.Revision(revisionOf(q.From))}
	if q.Backwards {
		opts.Direction = kdb.Backwards
		if q.From == 0 {
			opts.From = kdb.End{}
		}
	}
	out, err := call(ctx, d, true, func(c *kdb.Client) ([]driver.RecordedEvent, error) {
		page := driver.NewPage(q.Limit, q.MaxBytes)
		err := eachInStream(ctx, c, d.streamName(q.Stream), opts, uint64(q.Limit), func(ev *kdb.RecordedEvent) bool {
			return !page.Add(convert(ev, q.Stream))
		})
		return page.Events, err
	})
	return out, wrapError(ctx, err)
}

// StreamVersion implements [driver.Driver]: it reads the last event. A
// stream the server does not find (never written, or soft-deleted) is at
// version 0; one whose events its metadata hides all is at the version
// hiddenVersion finds (see retention.go).
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	name := d.streamName(stream)
	v, err := call(ctx, d, true, func(c *kdb.Client) (uint64, error) {
		ev, found, err := probeStream(ctx, c, name)
		switch {
		case err != nil || !found:
			return 0, err
		case ev == nil:
			return d.hiddenVersion(ctx, c, name)
		}
		return versionOf(ev.EventNumber), nil
	})
	return v, wrapError(ctx, err)
}

// readStream reads up to count events of a KurrentDB stream; a stream the
// server does not find has none.
func (d *Driver) readStream(ctx context.Context, name string, opts kdb.ReadStreamOptions, count uint64) ([]*kdb.RecordedEvent, error) {
	return call(ctx, d, true, func(c *kdb.Client) ([]*kdb.RecordedEvent, error) {
		evs := make([]*kdb.RecordedEvent, 0, min(count, 512))
		err := eachInStream(ctx, c, name, opts, count, func(ev *kdb.RecordedEvent) bool {
			evs = append(evs, ev)
			return true
		})
		return evs, err
	})
}

// eachInStream reads up to count events of a KurrentDB stream and hands
// them to fn in order until fn returns false; then it closes the read, so
// the rest is never received. A stream the server does not find has none.
func eachInStream(ctx context.Context, c *kdb.Client, name string, opts kdb.ReadStreamOptions, count uint64, fn func(*kdb.RecordedEvent) bool) error {
	rs, err := c.ReadStream(ctx, name, opts, count)
	if err != nil {
		return err
	}
	defer rs.Close()
	_, err = recvEach(rs, fn)
	if hasCode(err, kdb.ErrorCodeResourceNotFound) {
		return nil
	}
	return err
}

// eachInAll reads up to count events of $all and hands them to fn in order
// until fn returns false; then it closes the read. It returns how many
// events it received.
func eachInAll(ctx context.Context, c *kdb.Client, opts kdb.ReadAllOptions, count uint64, fn func(*kdb.RecordedEvent) bool) (uint64, error) {
	rs, err := c.ReadAll(ctx, opts, count)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	return recvEach(rs, fn)
}

// recvEach receives the events of a read until it ends or fn returns
// false, and returns how many it received.
func recvEach(rs *kdb.ReadStream, fn func(*kdb.RecordedEvent) bool) (uint64, error) {
	var n uint64
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		if ev.Event != nil && !fn(ev.Event) {
			return n, nil
		}
	}
}

// ReadAll implements [driver.Driver].
//
// KurrentDB's $all also holds system events and other stores' streams,
// which the driver skips, reading on until the page is full (q.Limit
// events or q.MaxBytes bytes) or it reaches the end; it stops receiving
// once the page is full. Forwards reads with a filter, or in a namespace,
// run on the server as a filtered subscription of $all (stream-name
// prefixes for categories and the namespace, event-type prefixes
// otherwise), ended at caught-up; what a prefix cannot decide exactly
// (category "Order" is a prefix of "Orders-1") is filtered here. Backwards
// reads filter here.
func (d *Driver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	var page driver.ScanPage
	var err error
	switch f := d.serverFilter(q.Filter); {
	case q.Backwards:
		page.Events, err = d.readAllBackwards(ctx, q)
	case f != nil:
		page, err = d.readAllFiltered(ctx, q, f, false)
	default:
		page, err = d.readAllForwards(ctx, q, 0)
	}
	return page.Events, wrapError(ctx, err)
}

// scanBound is about how many events of $all ReadAllScan examines per
// page: the events it receives plus, for a filtered read, filterWindow
// for each checkpoint the server sends.
const scanBound = 4096

// ReadAllScan implements [driver.ScanReader]: a forwards read like
// ReadAll that examines about scanBound events at most and says how far
// it got.
//
// A filtered read (or one in a namespace) is a filtered subscription of
// $all, whose checkpoints (one per filterWindow events the server
// considered) give Scanned while the server passes over events the filter
// does not keep; the server guarantees that a subscription resumed after a
// checkpoint misses nothing. Its catch-up checkpoints trail the events it
// considered by up to one window, so before subscribing the driver reads
// the position of the last event of $all: the subscription has examined
// every event up to it once it reports caught-up, and Scanned becomes that
// position. An unfiltered read (no namespace, no filter) reads $all and
// scans every event it receives.
func (d *Driver) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	var page driver.ScanPage
	var err error
	if f := d.serverFilter(q.Filter); f != nil {
		page, err = d.readAllFiltered(ctx, q, f, true)
	} else {
		page, err = d.readAllForwards(ctx, q, scanBound)
	}
	return page, wrapError(ctx, err)
}

// keep converts an event of $all and reports whether the query wants it:
// an event of the store that matches f and that its stream's metadata does
// not hide (see visibility in retention.go).
func (d *Driver) keep(ctx context.Context, c *kdb.Client, vis *visibility, ev *kdb.RecordedEvent, f driver.Filter) (driver.RecordedEvent, bool, error) {
	r, ok := d.recorded(ev)
	if !ok || !f.Matches(r) {
		return r, false, nil
	}
	ok, err := vis.kept(ctx, c, ev.StreamID, ev.EventNumber)
	return r, ok, err
}

// readAllForwards reads $all in pages after q.After, examining at most
// bound events (no bound when it is 0). A read includes the event at the
// position it starts from, which the previous page has seen.
func (d *Driver) readAllForwards(ctx context.Context, q driver.AllQuery, bound int) (driver.ScanPage, error) {
	return call(ctx, d, true, func(c *kdb.Client) (driver.ScanPage, error) {
		var res driver.ScanPage
		page := driver.NewPage(q.Limit, q.MaxBytes)
		after, examined, stop := q.After, 0, false
		vis := newVisibility()
		var keepErr error
		for !stop {
			count := uint64(max(q.Limit-len(page.Events)+1, 32))
			n, err := eachInAll(ctx, c, kdb.ReadAllOptions{Direction: kdb.Forwards, From: allPosition(after)}, count, func(ev *kdb.RecordedEvent) bool {
				p := positionOf(ev.Position)
				if p.Compare(after) <= 0 {
					return true
				}
				after = p
				if !q.Before.IsZero() && p.Compare(q.Before) >= 0 {
					res.End, stop = true, true
					return false
				}
				res.Scanned = p
				examined++
				r, ok, err := d.keep(ctx, c, vis, ev, q.Filter)
				if err != nil {
					keepErr, stop = err, true
					return false
				}
				if ok && page.Add(r) {
					stop = true
				}
				stop = stop || (bound > 0 && examined >= bound)
				return !stop
			})
			if err == nil {
				err = keepErr
			}
			if err != nil {
				return driver.ScanPage{}, err
			}
			if !stop && n < count {
				res.End, stop = true, true // the end of the log
			}
		}
		res.Events = page.Events
		return res, nil
	})
}

// readAllBackwards reads $all newest first. A backwards read excludes the
// event at the position it starts from.
func (d *Driver) readAllBackwards(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	// In a namespace, nothing before its first event is ours: stop there
	// rather than scan the rest of the server's log.
	floor, has, err := d.namespaceStart(ctx)
	if err != nil || !has {
		return nil, err
	}
	done := func(p driver.Position) bool { return p.Compare(q.After) <= 0 || p.Less(floor) }
	// Events are filtered here: when many may be skipped, read big pages.
	size := 32
	if d.prefix != "" || !q.Filter.IsEmpty() {
		size = 1024
	}
	return call(ctx, d, true, func(c *kdb.Client) ([]driver.RecordedEvent, error) {
		page := driver.NewPage(q.Limit, q.MaxBytes)
		vis := newVisibility()
		var keepErr error
		var from kdb.AllPosition = kdb.End{}
		switch {
		case q.Before.Prepare == 0 && q.Before.Commit > 0:
			// A checkpoint's position (p, 0) (see ReadAllScan) is not an
			// event's. The server returns the events that end at or before
			// a position, comparing (end, end) with it, which would leave
			// out the event ending at p: read back from (p, p) instead.
			from = kdb.Position{Commit: q.Before.Commit, Prepare: q.Before.Commit}
		case !q.Before.IsZero():
			from = allPosition(q.Before)
		}
		for stop := false; !stop; {
			count := uint64(max(q.Limit-len(page.Events), size))
			n, err := eachInAll(ctx, c, kdb.ReadAllOptions{Direction: kdb.Backwards, From: from}, count, func(ev *kdb.RecordedEvent) bool {
				if done(positionOf(ev.Position)) {
					stop = true
					return false
				}
				from = ev.Position
				r, ok, err := d.keep(ctx, c, vis, ev, q.Filter)
				if err != nil {
					keepErr, stop = err, true
					return false
				}
				if ok && page.Add(r) {
					stop = true
				}
				return !stop
			})
			if err == nil {
				err = keepErr
			}
			if err != nil {
				return nil, err
			}
			stop = stop || n < count // the start of the log
		}
		return page.Events, nil
	})
}

// namespaceStart returns the position of the first event in the driver's
// namespace (the zero position without a namespace), and false when the
// namespace has none yet. Once found it is kept: events are never removed
// from $all (until a scavenge, after which the kept position is merely low).
func (d *Driver) namespaceStart(ctx context.Context) (driver.Position, bool, error) {
	if d.prefix == "" {
		return driver.Position{}, true, nil
	}
	d.startMu.Lock()
	start := d.start
	d.startMu.Unlock()
	if start != nil {
		return *start, true, nil
	}
	first, err := call(ctx, d, true, func(c *kdb.Client) (*driver.Position, error) {
		sub, err := c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{
			From: kdb.Start{}, Filter: d.serverFilter(driver.Filter{}), MaxSearchWindow: filterWindow, CheckpointInterval: 1,
		})
		if err != nil {
			return nil, err
		}
		defer sub.Close()
		for {
			ev := sub.Recv()
			switch {
			case ev.SubscriptionDropped != nil:
				return nil, droppedError(ev.SubscriptionDropped.Error)
			case ev.EventAppeared != nil && ev.EventAppeared.Event != nil:
				p := positionOf(ev.EventAppeared.Event.Position)
				return &p, nil
			case ev.EventAppeared != nil, ev.CheckPointReached != nil, ev.FellBehind != nil:
			default:
				return nil, nil // caught up: the namespace is empty
			}
		}
	})
	if err != nil || first == nil {
		return driver.Position{}, false, err
	}
	d.startMu.Lock()
	d.start = first
	d.startMu.Unlock()
	return *first, true, nil
}

// serverFilter returns the filter of $all the server can apply for a
// query, or nil when the driver reads $all unfiltered.
func (d *Driver) serverFilter(f driver.Filter) *kdb.SubscriptionFilter {
	switch {
	case len(f.Categories) > 0:
		// Category C holds "C" and "C-…": both start with C.
		prefixes := make([]string, len(f.Categories))
		for i, c := range f.Categories {
			prefixes[i] = d.prefix + c
		}
		return &kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: prefixes}
	case d.prefix != "":
		return &kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{d.prefix}}
	case len(f.EventTypes) > 0:
		return &kdb.SubscriptionFilter{Type: kdb.EventFilterType, Prefixes: f.EventTypes}
	}
	return nil
}

// filterWindow is how many events the server considers between the
// checkpoints of a filtered read; checkpoints let a read with an upper
// bound stop early, and a scan stop after about scanBound events.
const filterWindow = 256

// readAllFiltered reads $all forwards through a filtered subscription,
// which the server evaluates: it starts after q.After (exclusive) and
// ends when the page is full (q.Limit events or q.MaxBytes bytes), at
// q.Before, or when it has caught up with the end of the log. As a scan
// (for ReadAllScan) it also ends after examining about scanBound events,
// and reports how far it got; see ReadAllScan.
func (d *Driver) readAllFiltered(ctx context.Context, q driver.AllQuery, f *kdb.SubscriptionFilter, scan bool) (driver.ScanPage, error) {
	inRange := func(p driver.Position) bool { return q.Before.IsZero() || p.Less(q.Before) }
	return call(ctx, d, true, func(c *kdb.Client) (driver.ScanPage, error) {
		var res driver.ScanPage
		var head driver.Position
		if scan {
			var err error
			if head, err = lastPosition(ctx, c); err != nil {
				return res, err
			}
			if head.Compare(q.After) <= 0 {
				res.End = true // nothing after q.After is visible
				return res, nil
			}
		}
		sub, err := c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{
			From: allPosition(q.After), Filter: f, MaxSearchWindow: filterWindow, CheckpointInterval: 1,
		})
		if err != nil {
			return res, err
		}
		defer sub.Close()
		page := driver.NewPage(q.Limit, q.MaxBytes)
		vis := newVisibility()
		advance := func(p driver.Position) {
			if res.Scanned.Less(p) {
				res.Scanned = p
			}
		}
		examined, checkpoints := 0, 0
		for done := false; !done; {
			ev := sub.Recv()
			switch {
			case ev.SubscriptionDropped != nil:
				return driver.ScanPage{}, droppedError(ev.SubscriptionDropped.Error)
			case ev.EventAppeared != nil && ev.EventAppeared.Event != nil:
				rec := ev.EventAppeared.Event
				if p := positionOf(rec.Position); !inRange(p) {
					res.End, done = true, true
				} else {
					advance(p)
					examined++
					r, ok, err := d.keep(ctx, c, vis, rec, q.Filter)
					if err != nil {
						return driver.ScanPage{}, err
					}
					done = ok && page.Add(r)
				}
			case ev.CheckPointReached != nil:
				// The server has considered every event before a
				// checkpoint, which need not be an event's position.
				if p := positionOf(*ev.CheckPointReached); !inRange(p) {
					res.End, done = true, true
				} else if q.After.Less(p) && res.Scanned.Less(p) {
					advance(p)
					checkpoints++
				}
			case ev.EventAppeared != nil, ev.FellBehind != nil:
			default:
				// Caught up with the end of the log. Servers 24.2 to 25.0
				// send caught_up without fields, which the client reports
				// as an event with every field nil.
				res.End, done = true, true
				if scan && inRange(head) {
					advance(head)
				}
			}
			done = done || (scan && examined+checkpoints*filterWindow >= scanBound)
		}
		res.Events = page.Events
		return res, nil
	})
}

// lastPosition returns the position of the last event of $all, zero when
// there is none. It receives that event whole.
func lastPosition(ctx context.Context, c *kdb.Client) (driver.Position, error) {
	var p driver.Position
	_, err := eachInAll(ctx, c, kdb.ReadAllOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1, func(ev *kdb.RecordedEvent) bool {
		p = positionOf(ev.Position)
		return false
	})
	return p, err
}
