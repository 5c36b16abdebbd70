package kurrentdb_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/testenv"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// The workloads are conformance.Run*, shared with the other drivers. They
// run against a real KurrentDB only (EVENTSTORE_KURRENTDB_URL, `make
// test-kurrentdb`): numbers from the in-process double would measure the
// double. Every store benchmark (…/store) has a twin on the same server in
// the same run, each in a fresh namespace:
//
//   - …/raw: the official client doing the same work directly: appends
//     with the same expected revisions, stream reads in pages of 512 (the
//     Store's page size), $all read as the driver reads a namespace (a
//     subscription filtered on the namespace prefix, until caught up), and
//     a live subscription on the same filter. It shows what the Store and
//     the driver add: validation, the pre-append ID check (free for streams
//     the driver wrote), conversion and filtering.

// bench is a store in a fresh namespace of the test server, and a client
// of the raw twin.
type bench struct {
	ns     string
	store  *eventstore.Store
	client *kdb.Client
}

func newBench(b *testing.B) *bench {
	b.Helper()
	url := testenv.MustHaveKurrentDB(b)
	bn := &bench{ns: newNamespace(), client: nativeClient(b, url)}
	bn.store = newStore(b, url, kurrentdb.Options{Namespace: bn.ns})
	return bn
}

func (bn *bench) name(stream string) string { return bn.ns + "/" + stream }

func (bn *bench) rawAppend(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	var state kdb.StreamState = kdb.NoStream{}
	if expected > 0 {
		state = kdb.StreamRevision{Value: expected - 1}
	}
	data := make([]kdb.EventData, len(events))
	for i, e := range events {
		data[i] = kdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: kdb.ContentTypeJson, Data: e.Data}
	}
	_, err := bn.client.AppendToStream(ctx, bn.name(stream), kdb.AppendToStreamOptions{StreamState: state}, data...)
	return err
}

func (bn *bench) rawReadStream(ctx context.Context, stream string) (int, error) {
	n := 0
	for {
		rs, err := bn.client.ReadStream(ctx, bn.name(stream), kdb.ReadStreamOptions{From: kdb.Revision(uint64(n))}, 512)
		if err != nil {
			return n, err
		}
		page := 0
		for {
			_, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return n, err
			}
			page++
		}
		rs.Close()
		n += page
		if page < 512 {
			return n, nil
		}
	}
}

// subscribe subscribes to the namespace's events from a position.
func (bn *bench) subscribe(ctx context.Context, from kdb.AllPosition) (*kdb.Subscription, error) {
	return bn.client.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{
		From:   from,
		Filter: &kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{bn.ns + "/"}},
	})
}

func (bn *bench) rawReadAll(ctx context.Context) (int, error) {
	sub, err := bn.subscribe(ctx, kdb.Start{})
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	n := 0
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return n, ev.SubscriptionDropped.Error
		case ev.EventAppeared != nil:
			n++
		case ev.CheckPointReached != nil, ev.FellBehind != nil:
		default:
			return n, nil // caught up
		}
	}
}

// rawSubscribe starts the raw twin's live subscriber: one value per event
// on the returned channel, closed when it stops.
func (bn *bench) rawSubscribe(b *testing.B) <-chan struct{} {
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := bn.subscribe(ctx, kdb.End{})
	if err != nil {
		b.Fatal(err)
	}
	delivered := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(delivered)
		for {
			ev := sub.Recv()
			if ev.SubscriptionDropped != nil {
				return
			}
			if ev.EventAppeared != nil {
				select {
				case delivered <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	b.Cleanup(func() { cancel(); sub.Close(); <-done })
	return delivered
}

// twin is one side of a benchmark.
type twin struct {
	name       string
	append     func(bn *bench) conformance.AppendFunc
	readStream func(bn *bench) conformance.ReadStreamFunc
	readAll    func(bn *bench) conformance.ReadAllFunc
}

var twins = []twin{
	{"store",
		func(bn *bench) conformance.AppendFunc { return conformance.StoreAppend(bn.store) },
		func(bn *bench) conformance.ReadStreamFunc { return conformance.StoreReadStream(bn.store) },
		func(bn *bench) conformance.ReadAllFunc { return conformance.StoreReadAll(bn.store) }},
	{"raw",
		func(bn *bench) conformance.AppendFunc { return bn.rawAppend },
		func(bn *bench) conformance.ReadStreamFunc { return bn.rawReadStream },
		func(bn *bench) conformance.ReadAllFunc { return bn.rawReadAll }},
}

func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		for _, tw := range twins {
			b.Run("batch="+strconv.Itoa(batch)+"/"+tw.name, func(b *testing.B) {
				bn := newBench(b)
				conformance.RunAppend(b, batch, 1, tw.append(bn))
			})
		}
	}
}

func BenchmarkReadStream(b *testing.B) {
	for _, tw := range twins {
		b.Run("events=1000/"+tw.name, func(b *testing.B) {
			bn := newBench(b)
			conformance.RunReadStream(b, 1000, 1000, tw.append(bn), tw.readStream(bn))
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	for _, tw := range twins {
		b.Run("events=10000/"+tw.name, func(b *testing.B) {
			bn := newBench(b)
			conformance.RunReadAll(b, 10_000, 1000, tw.append(bn), tw.readAll(bn))
		})
	}
}

// BenchmarkLive: append one event, wait until a live subscriber has handled
// it. The store's subscription is woken by the driver's native subscription
// and then reads the event; the raw twin's subscriber gets it directly.
func BenchmarkLive(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		conformance.BenchmarkLive(b, newBench(b).store)
	})
	b.Run("raw", func(b *testing.B) {
		bn := newBench(b)
		conformance.RunLive(b, conformance.BenchStream("Live"), bn.rawAppend, bn.rawSubscribe(b))
	})
}
