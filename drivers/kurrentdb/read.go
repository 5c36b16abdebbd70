package kurrentdb

import (
	"context"
	"errors"
	"io"

	"github.com/eventkit/eventstore/driver"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// ReadStream implements [driver.Driver]. A stream KurrentDB does not
// know reads as empty.
func (d *Driver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	opts := kdb.ReadStreamOptions{Direction: kdb.Forwards, From: kdb.Revision(revisionOf(q.From))}
	if q.Backwards {
		opts.Direction = kdb.Backwards
		if q.From == 0 {
			opts.From = kdb.End{}
		}
	}
	evs, err := d.readStream(ctx, d.streamName(q.Stream), opts, uint64(q.Limit))
	if err != nil {
		return nil, wrapError(ctx, err)
	}
	out := make([]driver.RecordedEvent, len(evs))
	for i, ev := range evs {
		out[i] = convert(ev, q.Stream)
	}
	return out, nil
}

// StreamVersion implements [driver.Driver]: it reads the last event.
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	evs, err := d.readStream(ctx, d.streamName(stream), kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	if err != nil {
		return 0, wrapError(ctx, err)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	return versionOf(evs[0].EventNumber), nil
}

// readStream reads up to count events of a KurrentDB stream; a stream the
// server does not find has none.
func (d *Driver) readStream(ctx context.Context, name string, opts kdb.ReadStreamOptions, count uint64) ([]*kdb.RecordedEvent, error) {
	return call(ctx, d, true, func(c *kdb.Client) ([]*kdb.RecordedEvent, error) {
		rs, err := c.ReadStream(ctx, name, opts, count)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		evs, err := drain(rs, count)
		if hasCode(err, kdb.ErrorCodeResourceNotFound) {
			return nil, nil
		}
		return evs, err
	})
}

// readAll reads up to count events of $all.
func (d *Driver) readAll(ctx context.Context, opts kdb.ReadAllOptions, count uint64) ([]*kdb.RecordedEvent, error) {
	return call(ctx, d, true, func(c *kdb.Client) ([]*kdb.RecordedEvent, error) {
		rs, err := c.ReadAll(ctx, opts, count)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		return drain(rs, count)
	})
}

func drain(rs *kdb.ReadStream, count uint64) ([]*kdb.RecordedEvent, error) {
	evs := make([]*kdb.RecordedEvent, 0, min(count, 512))
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return nil, err
		}
		if ev.Event != nil {
			evs = append(evs, ev.Event)
		}
	}
}

// ReadAll implements [driver.Driver].
//
// KurrentDB's $all also holds system events and other stores' streams,
// which the driver skips, reading on until it has Limit events or reaches
// the end. Forwards reads with a filter, or in a namespace, run on the
// server as a filtered subscription of $all (stream-name prefixes for
// categories and the namespace, event-type prefixes otherwise), ended at
// caught-up; what a prefix cannot decide exactly (category "Order" is a
// prefix of "Orders-1") is filtered here. Backwards reads filter here.
func (d *Driver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	var out []driver.RecordedEvent
	var err error
	switch f := d.serverFilter(q.Filter); {
	case q.Backwards:
		out, err = d.readAllBackwards(ctx, q)
	case f != nil:
		out, err = d.readAllFiltered(ctx, q, f)
	default:
		out, err = d.readAllForwards(ctx, q)
	}
	return out, wrapError(ctx, err)
}

// keep converts an event of $all and reports whether the query wants it.
func (d *Driver) keep(ev *kdb.RecordedEvent, f driver.Filter) (driver.RecordedEvent, bool) {
	r, ok := d.recorded(ev)
	return r, ok && f.Matches(r)
}

// readAllForwards reads $all in pages. A read includes the event at the
// position it starts from, which the previous page has seen.
func (d *Driver) readAllForwards(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	var out []driver.RecordedEvent
	after := q.After
	for {
		count := uint64(max(q.Limit-len(out)+1, 32))
		evs, err := d.readAll(ctx, kdb.ReadAllOptions{Direction: kdb.Forwards, From: allPosition(after)}, count)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			p := positionOf(ev.Position)
			if p.Compare(after) <= 0 {
				continue
			}
			after = p
			if !q.Before.IsZero() && p.Compare(q.Before) >= 0 {
				return out, nil
			}
			if r, ok := d.keep(ev, q.Filter); ok {
				out = append(out, r)
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
		if uint64(len(evs)) < count {
			return out, nil // the end of the log
		}
	}
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
	var out []driver.RecordedEvent
	var from kdb.AllPosition = kdb.End{}
	if !q.Before.IsZero() {
		from = allPosition(q.Before)
	}
	// Events are filtered here: when many may be skipped, read big pages.
	page := 32
	if d.prefix != "" || !q.Filter.IsEmpty() {
		page = 1024
	}
	for {
		count := uint64(max(q.Limit-len(out), page))
		evs, err := d.readAll(ctx, kdb.ReadAllOptions{Direction: kdb.Backwards, From: from}, count)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if done(positionOf(ev.Position)) {
				return out, nil
			}
			from = ev.Position
			if r, ok := d.keep(ev, q.Filter); ok {
				out = append(out, r)
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
		if uint64(len(evs)) < count {
			return out, nil // the start of the log
		}
	}
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
// bound stop early.
const filterWindow = 256

// readAllFiltered reads $all forwards through a filtered subscription,
// which the server evaluates: it starts after q.After (exclusive) and
// ends at q.Limit events, at q.Before, or when it has caught up with the
// end of the log.
func (d *Driver) readAllFiltered(ctx context.Context, q driver.AllQuery, f *kdb.SubscriptionFilter) ([]driver.RecordedEvent, error) {
	return call(ctx, d, true, func(c *kdb.Client) ([]driver.RecordedEvent, error) {
		sub, err := c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{
			From: allPosition(q.After), Filter: f, MaxSearchWindow: filterWindow, CheckpointInterval: 1,
		})
		if err != nil {
			return nil, err
		}
		defer sub.Close()
		var out []driver.RecordedEvent
		past := func(p kdb.Position) bool { return !q.Before.IsZero() && positionOf(p).Compare(q.Before) >= 0 }
		for {
			ev := sub.Recv()
			switch {
			case ev.SubscriptionDropped != nil:
				return nil, droppedError(ev.SubscriptionDropped.Error)
			case ev.EventAppeared != nil:
				rec := ev.EventAppeared.Event
				if rec == nil {
					continue
				}
				if past(rec.Position) {
					return out, nil
				}
				if r, ok := d.keep(rec, q.Filter); ok {
					out = append(out, r)
					if len(out) == q.Limit {
						return out, nil
					}
				}
			case ev.CheckPointReached != nil:
				if past(*ev.CheckPointReached) {
					return out, nil
				}
			case ev.FellBehind != nil:
			default:
				// Caught up with the end of the log. Servers 24.2 to 25.0
				// send caught_up without fields, which the client reports
				// as an event with every field nil.
				return out, nil
			}
		}
	})
}
