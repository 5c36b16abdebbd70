package conformance

// Shared benchmark workloads. A driver's bench_test.go runs each one against
// a Store and against a raw-client twin doing the same work in the same run,
// as sibling sub-benchmarks:
//
//	func BenchmarkAppend(b *testing.B) {
//		b.Run("batch=100/store", func(b *testing.B) {
//			conformance.RunAppend(b, 100, 1, conformance.StoreAppend(newStore(b)))
//		})
//		b.Run("batch=100/raw", func(b *testing.B) {
//			conformance.RunAppend(b, 100, 1, newRaw(b).append)
//		})
//	}
//
// Every b.Loop iteration does a fixed amount of work (several appends, a
// whole read), so `-benchtime 1x` still measures something. Throughput is
// reported as events/s, live latency as p50-ms and p99-ms.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// BenchData is the payload of every benchmark event: a small JSON document
// of a typical size (82 bytes).
var BenchData = []byte(`{"orderId":"0f8fad5b-d9cb-469f-a165-70867728950e","total":4200,"currency":"EUR"}`)

// BenchEventType is the type of every benchmark event.
const BenchEventType = "OrderPlaced"

// BenchEvents returns n JSON events with fresh IDs, type BenchEventType and
// data BenchData.
func BenchEvents(n int) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent(BenchEventType, BenchData)
	}
	return evs
}

// BenchStream returns a fresh stream ID in category cat.
func BenchStream(cat string) string { return cat + "-" + randomHex() }

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// AppendFunc appends events to stream, which must be at version expected
// (0: a new stream), all or none.
type AppendFunc func(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error

// ReadStreamFunc reads a whole stream forwards and returns how many events
// it read.
type ReadStreamFunc func(ctx context.Context, stream string) (int, error)

// ReadAllFunc reads the whole global log forwards and returns how many
// events it read.
type ReadAllFunc func(ctx context.Context) (int, error)

// StoreAppend appends through a Store.
func StoreAppend(s *eventstore.Store) AppendFunc {
	return func(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
		_, err := s.Append(ctx, stream, eventstore.Exact(expected), events...)
		return err
	}
}

// StoreReadStream reads through a Store.
func StoreReadStream(s *eventstore.Store) ReadStreamFunc {
	return func(ctx context.Context, stream string) (int, error) {
		n := 0
		for _, err := range s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
}

// StoreReadAll reads through a Store.
func StoreReadAll(s *eventstore.Store) ReadAllFunc {
	return func(ctx context.Context) (int, error) {
		n := 0
		for _, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
}

// reportThroughput reports events/s over the benchmark's elapsed time.
func reportThroughput(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// RunAppend measures appends of batch events each, from clients goroutines
// at once, each appending to its own new stream at exact expected versions.
// One iteration is 1,000 events per client (at most 100 appends per client).
func RunAppend(b *testing.B, batch, clients int, appendFn AppendFunc) {
	appends := min(100, max(1, 1000/batch))
	events := 0
	for b.Loop() {
		var wg sync.WaitGroup
		for range clients {
			stream := BenchStream("Bench")
			wg.Go(func() {
				for i := range appends {
					if err := appendFn(b.Context(), stream, uint64(i*batch), BenchEvents(batch)); err != nil {
						b.Errorf("append %d of %d events to %s: %v", i, batch, stream, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		events += clients * appends * batch
	}
	reportThroughput(b, events)
}

// seed appends n events to stream in batches of at most maxBatch.
func seed(b *testing.B, appendFn AppendFunc, stream string, n, maxBatch int) {
	b.Helper()
	for v := 0; v < n; {
		k := min(maxBatch, n-v)
		if err := appendFn(b.Context(), stream, uint64(v), BenchEvents(k)); err != nil {
			b.Fatalf("seed %s at version %d: %v", stream, v, err)
		}
		v += k
	}
}

// RunReadStream seeds a stream of n events (untimed, in appends of at most
// maxBatch) and measures reading it whole; one iteration is one read.
func RunReadStream(b *testing.B, n, maxBatch int, appendFn AppendFunc, read ReadStreamFunc) {
	stream := BenchStream("Bench")
	seed(b, appendFn, stream, n, maxBatch)
	events := 0
	for b.Loop() {
		got, err := read(b.Context(), stream)
		if err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("read %d events of a stream of %d", got, n)
		}
		events += got
	}
	reportThroughput(b, events)
}

// RunReadAll seeds n events in streams of 1,000 (untimed, in appends of at
// most maxBatch) into an empty store and measures reading the whole log;
// one iteration is one read.
func RunReadAll(b *testing.B, n, maxBatch int, appendFn AppendFunc, read ReadAllFunc) {
	for done := 0; done < n; done += 1000 {
		seed(b, appendFn, BenchStream("Bench"), min(1000, n-done), maxBatch)
	}
	events := 0
	for b.Loop() {
		got, err := read(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("read %d events of a log of %d", got, n)
		}
		events += got
	}
	reportThroughput(b, events)
}

// LiveEventsPerOp is how many events one iteration of RunLive appends and
// waits for.
const LiveEventsPerOp = 50

// RunLive measures live delivery: for each event it appends one event to
// stream with appendFn and waits until delivered receives a value, which a
// subscriber already running (live on stream) must send once per event
// handled, and close if it stops. It reports the percentiles of the time from calling append to
// the handler, p50-ms and p99-ms.
func RunLive(b *testing.B, stream string, appendFn AppendFunc, delivered <-chan struct{}) {
	var lat []time.Duration
	version := uint64(0)
	for b.Loop() {
		for range LiveEventsPerOp {
			start := time.Now()
			if err := appendFn(b.Context(), stream, version, BenchEvents(1)); err != nil {
				b.Fatal(err)
			}
			version++
			select {
			case _, ok := <-delivered:
				if !ok {
					b.Fatalf("the subscriber stopped before event %d", version)
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("event %d was not delivered within 10s", version)
			}
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.5) - 1
		return float64(lat[min(max(i, 0), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkAppend runs [RunAppend] against a Store.
func BenchmarkAppend(b *testing.B, s *eventstore.Store, batch, clients int) {
	RunAppend(b, batch, clients, StoreAppend(s))
}

// BenchmarkReadStream runs [RunReadStream] against a Store.
func BenchmarkReadStream(b *testing.B, s *eventstore.Store, n int) {
	RunReadStream(b, n, maxBatch(s), StoreAppend(s), StoreReadStream(s))
}

// BenchmarkReadAll runs [RunReadAll] against a Store, which must be empty.
func BenchmarkReadAll(b *testing.B, s *eventstore.Store, n int) {
	RunReadAll(b, n, maxBatch(s), StoreAppend(s), StoreReadAll(s))
}

// maxBatch is the largest seeding append a store takes, up to 1,000 events.
func maxBatch(s *eventstore.Store) int {
	if m := s.Limits().MaxAppendEvents; m > 0 && m < 1000 {
		return m
	}
	return 1000
}

// BenchmarkLive runs [RunLive] against a Store: a subscription filtered on
// a fresh category, so it is live at once however much the store holds.
func BenchmarkLive(b *testing.B, s *eventstore.Store) { BenchmarkLiveWithWriters(b, s, 1) }

// BenchmarkLiveWithWriters runs [RunLiveWithWriters] against a Store: the
// subscription of BenchmarkLive, and writers-1 other writers appending
// through the same Store.
func BenchmarkLiveWithWriters(b *testing.B, s *eventstore.Store, writers int) {
	stream, delivered := liveSubscription(b, s)
	RunLiveWithWriters(b, writers, stream, StoreAppend(s), StoreAppend(s), delivered)
}

// RunLiveWithWriters is [RunLive] while writers-1 other writers append
// single events with busyAppend, each to a stream of its own (category
// "Busy"), as fast as they can: the latency of live delivery under write
// load. The subscriber behind delivered must send only stream's events.
func RunLiveWithWriters(b *testing.B, writers int, stream string, appendFn, busyAppend AppendFunc, delivered <-chan struct{}) {
	ctx, stop := context.WithCancel(b.Context())
	var busy sync.WaitGroup
	for range writers - 1 {
		busy.Go(func() {
			stream := BenchStream("Busy")
			for v := uint64(0); ctx.Err() == nil; v++ {
				if err := busyAppend(ctx, stream, v, BenchEvents(1)); err != nil && ctx.Err() == nil {
					b.Errorf("background writer: %v", err)
					return
				}
			}
		})
	}
	defer func() { stop(); busy.Wait() }()
	RunLive(b, stream, appendFn, delivered)
}

// liveSubscription starts a subscription of s to a fresh category, stopped
// at cleanup, and returns a stream of that category and the channel its
// handler sends a value on for each event, as RunLive wants.
func liveSubscription(b *testing.B, s *eventstore.Store) (string, <-chan struct{}) {
	stream := BenchStream("Live" + randomHex())
	ctx, cancel := context.WithCancel(b.Context())
	delivered := make(chan struct{})
	subErr := make(chan error, 1)
	go func() {
		defer close(delivered)
		opts := eventstore.SubscribeOptions{Filter: eventstore.Filter{Categories: []string{eventstore.Category(stream)}}}
		subErr <- s.Subscribe(ctx, opts, func(ctx context.Context, _ eventstore.RecordedEvent) error {
			select {
			case delivered <- struct{}{}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	b.Cleanup(func() {
		cancel()
		if err := <-subErr; !errors.Is(err, context.Canceled) {
			b.Errorf("subscription: %v", err)
		}
	})
	return stream, delivered
}

// BenchmarkCatchUp compares a subscription's catch-up with a plain read of
// the same log, on a Store that must be empty: it seeds n events in streams
// of 1,000, then each iteration reads the whole log once with ReadAll and
// once with a Subscribe from the start (stopped by OnCaughtUp). It reports
// both rates and catchup/readall, their ratio (1 means catch-up costs
// nothing over reading).
func BenchmarkCatchUp(b *testing.B, s *eventstore.Store, n int) {
	appendFn := StoreAppend(s)
	for done := 0; done < n; done += 1000 {
		seed(b, appendFn, BenchStream("Bench"), min(1000, n-done), maxBatch(s))
	}
	read := StoreReadAll(s)
	var readTime, subTime time.Duration
	for b.Loop() {
		start := time.Now()
		if got, err := read(b.Context()); err != nil || got != n {
			b.Fatalf("ReadAll: %d of %d events, %v", got, n, err)
		}
		readTime += time.Since(start)
		start = time.Now()
		ctx, cancel := context.WithCancel(b.Context())
		handled := 0
		opts := eventstore.SubscribeOptions{BatchSize: 512, OnCaughtUp: func(eventstore.SubscriptionState) { cancel() }}
		err := s.Subscribe(ctx, opts, func(context.Context, eventstore.RecordedEvent) error { handled++; return nil })
		subTime += time.Since(start)
		cancel()
		if !errors.Is(err, context.Canceled) || handled != n {
			b.Fatalf("Subscribe: %d of %d events, %v", handled, n, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/readTime.Seconds(), "readall-events/s")
	b.ReportMetric(float64(n*b.N)/subTime.Seconds(), "catchup-events/s")
	b.ReportMetric(readTime.Seconds()/subTime.Seconds(), "catchup/readall")
}

// BenchmarkFilteredCatchUp measures a subscription to a category that is one
// event in every share of the log, on a Store that must be empty: it seeds n
// events (the rare category spread through them), then each iteration
// catches up from the start. It reports the matches delivered per second and
// the log events passed over per second.
func BenchmarkFilteredCatchUp(b *testing.B, s *eventstore.Store, n, share int) {
	appendFn := StoreAppend(s)
	rare := BenchStream("Rare")
	matches, version := 0, uint64(0)
	for done := 0; done < n; done += share {
		batch := min(share-1, n-done-1)
		if batch > 0 {
			seed(b, appendFn, BenchStream("Common"), batch, maxBatch(s))
		}
		if err := appendFn(b.Context(), rare, version, BenchEvents(1)); err != nil {
			b.Fatal(err)
		}
		version++
		matches++
	}
	opts := eventstore.SubscribeOptions{BatchSize: 512, Filter: eventstore.Filter{Categories: []string{eventstore.Category(rare)}}}
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		ctx, cancel := context.WithCancel(b.Context())
		handled := 0
		opts.OnCaughtUp = func(eventstore.SubscriptionState) { cancel() }
		err := s.Subscribe(ctx, opts, func(context.Context, eventstore.RecordedEvent) error { handled++; return nil })
		elapsed += time.Since(start)
		cancel()
		if !errors.Is(err, context.Canceled) || handled != matches {
			b.Fatalf("Subscribe: %d of %d matches, %v", handled, matches, err)
		}
	}
	b.ReportMetric(float64(matches*b.N)/elapsed.Seconds(), "matches/s")
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "log-events/s")
}

// BenchmarkIdleSubscriptions measures what idle filtered subscriptions cost
// while other categories are written: it starts subs durable subscriptions,
// each to a category nobody writes, then each iteration appends one event
// to another category. It reports the process's CPU time per append
// (cpu-us/append: user plus system, all goroutines) and the append latency;
// run it with subs=0 in the same run for the baseline.
func BenchmarkIdleSubscriptions(b *testing.B, s *eventstore.Store, subs int) {
	RunIdleSubscriptions(b, s, subs)
}

// Counter is a cumulative count that a benchmark reports per operation:
// how much Read grew over the timed loop, divided by b.N, as metric Unit
// (a server's queries or CPU time, say).
type Counter struct {
	Unit string
	Read func() float64
}

// RunIdleSubscriptions is [BenchmarkIdleSubscriptions], also reporting each
// of counters per append.
func RunIdleSubscriptions(b *testing.B, s *eventstore.Store, subs int, counters ...Counter) {
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	for i := range subs {
		wg.Go(func() {
			opts := eventstore.SubscribeOptions{Name: fmt.Sprintf("idle-%d-%s", i, randomHex()),
				Filter: eventstore.Filter{Categories: []string{"Idle" + randomHex()}}}
			err := s.Subscribe(ctx, opts, func(context.Context, eventstore.RecordedEvent) error { return nil })
			if !errors.Is(err, context.Canceled) {
				b.Errorf("idle subscription: %v", err)
			}
		})
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
	stream := BenchStream("Busy")
	appendFn := StoreAppend(s)
	time.Sleep(100 * time.Millisecond) // let the subscriptions start
	start := make([]float64, len(counters))
	for i, c := range counters {
		start[i] = c.Read()
	}
	cpu0 := cpuTime()
	version := uint64(0)
	for b.Loop() {
		if err := appendFn(b.Context(), stream, version, BenchEvents(1)); err != nil {
			b.Fatal(err)
		}
		version++
	}
	// Let the wake-ups of the last appends run before measuring.
	time.Sleep(50 * time.Millisecond)
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/append")
	for i, c := range counters {
		b.ReportMetric((c.Read()-start[i])/float64(b.N), c.Unit)
	}
}

// Contender is one side of [RunInterleaved]: its name (its rate is
// reported as NAME-ev/s) and one round of the workload, which returns how
// many events it handled.
type Contender struct {
	Name  string
	Round func(ctx context.Context) (int, error)
}

// RunInterleaved times contenders in turns, so that they see the same
// machine: on a shared machine whose fsync rate drifts by 2–3× from one
// minute to the next, sibling sub-benchmarks run a minute apart compare the
// weather as much as the code. After warmups rounds of each (plans settle,
// caches fill), each iteration runs one round of every contender, starting
// with a different one each time, and times each round on its own. It
// reports each contender's events/s over all its rounds, and returns every
// iteration's rates (events/s, in the order of cs) for the caller's ratios
// ([MedianPercent]).
func RunInterleaved(b *testing.B, warmups int, cs []Contender) [][]float64 {
	for _, c := range cs {
		for range warmups {
			if _, err := c.Round(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	}
	events := make([]int, len(cs))
	elapsed := make([]time.Duration, len(cs))
	var rates [][]float64
	k := 0
	for b.Loop() {
		rate := make([]float64, len(cs))
		for j := range cs {
			i := (j + k) % len(cs)
			start := time.Now()
			n, err := cs[i].Round(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			d := time.Since(start)
			events[i] += n
			elapsed[i] += d
			rate[i] = float64(n) / d.Seconds()
		}
		rates = append(rates, rate)
		k++
	}
	for i, c := range cs {
		b.ReportMetric(float64(events[i])/elapsed[i].Seconds(), c.Name+"-ev/s")
	}
	b.ReportMetric(0, "ns/op")
	return rates
}

// MedianPercent returns the median over the iterations of RunInterleaved's
// rates of contender a's rate as a percentage of contender b's.
func MedianPercent(rates [][]float64, a, b int) float64 {
	xs := make([]float64, len(rates))
	for i, r := range rates {
		xs[i] = 100 * r[a] / r[b]
	}
	slices.Sort(xs)
	n := len(xs)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// ConcurrentAppends returns a round for [RunInterleaved]: clients
// goroutines each append appends batches of batch events to a new stream of
// its own with appendFn, at exact expected versions.
func ConcurrentAppends(appendFn AppendFunc, batch, clients, appends int) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			stream := BenchStream("Bench")
			wg.Go(func() {
				for i := range appends {
					if err := appendFn(ctx, stream, uint64(i*batch), BenchEvents(batch)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return clients * appends * batch, <-errs
	}
}
