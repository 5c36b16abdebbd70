package conformance

// Figures at scale: the same workloads against stores whose logs hold 1M
// and 10M events, taking turns, to show what an append or a page costs does
// not grow with the length of the log (`make bench-scale`).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// ScaleVar is the variable that turns the scale benchmarks on: the sizes of
// the logs to compare, in events, separated by commas ("1000000,10000000";
// a k or M suffix multiplies by 1,000 or 1,000,000: "1M,10M").
const ScaleVar = "EVENTSTORE_SCALE"

// ScaleSizes returns the log sizes ScaleVar names, in the order given (the
// first is the baseline of the ratios), and skips b, saying why, when it is
// unset. A size that does not parse, or one under 2 × ScaleTail events,
// fails b.
func ScaleSizes(b *testing.B) []int {
	b.Helper()
	v := os.Getenv(ScaleVar)
	if v == "" {
		b.Skipf("%s is not set: the scale benchmarks seed logs of millions of events; run `make bench-scale` "+
			"(or set %s=1000000,10000000)", ScaleVar, ScaleVar)
	}
	sizes, err := parseScaleSizes(v)
	if err != nil {
		b.Fatalf("%s=%q: %v", ScaleVar, v, err)
	}
	return sizes
}

// scaleMinSize is the smallest log RunScale seeds.
const scaleMinSize = 2 * ScaleTail

func parseScaleSizes(v string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		mul := 1
		switch {
		case strings.HasSuffix(f, "M"):
			f, mul = strings.TrimSuffix(f, "M"), 1_000_000
		case strings.HasSuffix(f, "k"):
			f, mul = strings.TrimSuffix(f, "k"), 1_000
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("size %q: want a positive number of events", f)
		}
		if n*mul < scaleMinSize {
			return nil, fmt.Errorf("size %d: the smallest log is %d events", n*mul, scaleMinSize)
		}
		sizes = append(sizes, n*mul)
	}
	return sizes, nil
}

// sizeName is a short name of a log size: 1M, 10M, 250k.
func sizeName(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return strconv.Itoa(n)
}

const (
	// ScaleLongStreams is how many long streams RunScale seeds: one per
	// client of the 8-client appends to a long stream.
	ScaleLongStreams = 8
	// ScaleLongLength is the length of each long stream when seeded, or
	// less when the smallest size is under 1M: ScaleLongStreams long streams
	// take at most the smallest log but its last ScaleTail events.
	ScaleLongLength = 100_000
	// ScaleTail is how many events the reads of the log take: the last
	// ScaleTail events, and the first ScaleTail.
	ScaleTail = 100_000
	// scaleStreamLength is the length of every other seeded stream.
	scaleStreamLength = 1_000
)

// ScaleStore is one store of [RunScale].
type ScaleStore struct {
	Store *eventstore.Store
	// Settle, when not nil, runs once the store is seeded, before anything
	// is measured (untimed): on PostgreSQL a VACUUM ANALYZE, which
	// autovacuum would otherwise start in the middle of the measurements.
	Settle func(ctx context.Context) error
}

// scaleLog is one store of RunScale and what was seeded in it.
type scaleLog struct {
	s        *eventstore.Store
	name     string   // its size, as a metric prefix: 1M
	long     []string // the long streams
	longLen  int      // their length when seeded
	versions []uint64 // the long streams' versions
	mid      string   // a 1,000-event stream from the middle of the log
	seedRate float64  // events/s of the seeding
	tail     eventstore.Position
}

// RunScale runs the scale benchmarks: for each size it opens a store with
// newStore (each must be empty, and they live until b ends, so all sizes at
// once must fit on disk) and seeds a log of that many events with Import, in
// requests of 10,000 events (or the store's limit): ScaleLongStreams
// streams of ScaleLongLength events (the same length in every store), their
// runs of 1,000 interleaved in the log's first part, then streams of 1,000
// events; then it runs the store's Settle. Then each workload is a
// sub-benchmark in which the stores take turns (RunInterleaved: one round on
// each store per iteration, after a warm-up round), so the sizes see the
// same machine; each reports every size's rate (1M-ev/s) and the median
// over the rounds of each size's rate as a percentage of the first size's
// (10M/1M-%: 100 means the cost did not grow with the log). The workloads:
//
//   - seed: the seeding rate (measured once, not in turns);
//   - append/new-streams/clients=C: C clients append one event at a time,
//     each to a new stream (Exact(0));
//   - append/long-stream/clients=C: C clients append one event at a time,
//     each to a long stream of its own at its exact version;
//   - readstream/events=1000: whole reads of a 1,000-event stream from the
//     middle of the log, 20 a round;
//   - readall/head/events=100000: ReadAll of the last ScaleTail events, from
//     the position before them;
//   - readall/start/events=100000: ReadAll of the first ScaleTail events;
//   - catchup/head/events=100000: a subscription (batches of 512) from the
//     position before the last ScaleTail events until it has caught up.
func RunScale(b *testing.B, sizes []int, newStore func(b *testing.B) ScaleStore) {
	smallest := slices.Min(sizes)
	longLen := min(ScaleLongLength, (smallest-ScaleTail)/ScaleLongStreams/scaleStreamLength*scaleStreamLength)
	stores := make([]*scaleLog, len(sizes))
	for i, n := range sizes {
		ss := newStore(b)
		st := &scaleLog{s: ss.Store, name: sizeName(n), longLen: longLen}
		st.seed(b, n)
		b.Logf("seeded %s events at %.0f events/s", st.name, st.seedRate)
		if ss.Settle != nil {
			start := time.Now()
			if err := ss.Settle(b.Context()); err != nil {
				b.Fatalf("settle %s: %v", st.name, err)
			}
			b.Logf("settled %s in %v", st.name, time.Since(start).Round(time.Millisecond))
		}
		stores[i] = st
	}
	b.Run("seed", func(b *testing.B) {
		for _, st := range stores {
			b.ReportMetric(st.seedRate, st.name+"-ev/s")
		}
		for _, st := range stores[1:] {
			b.ReportMetric(100*st.seedRate/stores[0].seedRate, st.name+"/"+stores[0].name+"-%")
		}
		b.ReportMetric(0, "ns/op")
	})
	// Rounds of about a second at fsync-bound rates of 1–3 ms an append.
	for _, c := range []struct{ clients, appends int }{{1, 200}, {8, 50}} {
		runScale(b, fmt.Sprintf("append/new-streams/clients=%d", c.clients), stores, func(st *scaleLog) func(context.Context) (int, error) {
			return scaleNewStreams(st.s, c.clients, c.appends)
		})
		runScale(b, fmt.Sprintf("append/long-stream/clients=%d", c.clients), stores, func(st *scaleLog) func(context.Context) (int, error) {
			return st.appendLong(c.clients, c.appends)
		})
	}
	// Only reads from here on: the log's last ScaleTail events stay the
	// same.
	for _, st := range stores {
		st.findTail(b)
	}
	runScale(b, "readstream/events=1000", stores, func(st *scaleLog) func(context.Context) (int, error) {
		read := StoreReadStream(st.s)
		return func(ctx context.Context) (int, error) {
			total := 0
			for range 20 {
				n, err := read(ctx, st.mid)
				total += n
				if err == nil && n != scaleStreamLength {
					err = fmt.Errorf("read %d events of stream %s of %d", n, st.mid, scaleStreamLength)
				}
				if err != nil {
					return total, err
				}
			}
			return total, nil
		}
	})
	runScale(b, "readall/head/events=100000", stores, func(st *scaleLog) func(context.Context) (int, error) {
		return scaleReadAll(st.s, eventstore.ReadAllOptions{After: st.tail, Limit: ScaleTail})
	})
	runScale(b, "readall/start/events=100000", stores, func(st *scaleLog) func(context.Context) (int, error) {
		return scaleReadAll(st.s, eventstore.ReadAllOptions{Limit: ScaleTail})
	})
	runScale(b, "catchup/head/events=100000", stores, func(st *scaleLog) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			handled := 0
			opts := eventstore.SubscribeOptions{After: st.tail, BatchSize: 512,
				OnCaughtUp: func(eventstore.SubscriptionState) { cancel() }}
			err := st.s.Subscribe(ctx, opts, func(context.Context, eventstore.RecordedEvent) error { handled++; return nil })
			if !errors.Is(err, context.Canceled) {
				return handled, fmt.Errorf("subscribe: %w", err)
			}
			if handled != ScaleTail {
				return handled, fmt.Errorf("caught up after %d events, want %d", handled, ScaleTail)
			}
			return handled, nil
		}
	})
}

// runScale runs one workload as a sub-benchmark, the stores taking turns.
func runScale(b *testing.B, name string, stores []*scaleLog, round func(*scaleLog) func(context.Context) (int, error)) {
	b.Run(name, func(b *testing.B) {
		cs := make([]Contender, len(stores))
		for i, st := range stores {
			cs[i] = Contender{Name: st.name, Round: round(st)}
		}
		rates := RunInterleaved(b, 1, cs)
		for i := 1; i < len(stores); i++ {
			b.ReportMetric(MedianPercent(rates, i, 0), stores[i].name+"/"+stores[0].name+"-%")
		}
	})
}

// seed imports n events into st.s (see RunScale) and notes the rate.
func (st *scaleLog) seed(b *testing.B, n int) {
	b.Helper()
	batch := min(10_000, maxBatch(st.s))
	if m := st.s.Limits().MaxAppendSize; m > 0 {
		batch = min(batch, m/(2*len(BenchData)))
	}
	batch = max(batch, 1)
	for range ScaleLongStreams {
		st.long = append(st.long, BenchStream("Long"))
	}
	// The seeded streams, in the order of their runs of up to 1,000
	// events: the long streams' runs in turn, then the other streams.
	type run struct {
		stream string
		from   uint64 // the version of its first event
		n      int
	}
	runs := func(yield func(run) bool) {
		for v := 0; v < st.longLen; v += scaleStreamLength {
			for _, s := range st.long {
				if !yield(run{s, uint64(v + 1), scaleStreamLength}) {
					return
				}
			}
		}
		for done := ScaleLongStreams * st.longLen; done < n; done += scaleStreamLength {
			if !yield(run{BenchStream("Scale"), 1, min(scaleStreamLength, n-done)}) {
				return
			}
		}
	}
	midAt := ScaleLongStreams*st.longLen + (n-ScaleLongStreams*st.longLen)/2
	done := 0
	var req []eventstore.RecordedEvent
	start := time.Now()
	flush := func() {
		if err := st.s.Import(b.Context(), req); err != nil {
			b.Fatalf("seed %s: import at event %d: %v", st.name, done, err)
		}
		done += len(req)
		req = req[:0]
	}
	for r := range runs {
		if st.mid == "" && done+len(req) >= midAt && r.n == scaleStreamLength && r.from == 1 {
			st.mid = r.stream
		}
		for i := range r.n {
			if len(req) == batch {
				flush()
			}
			ev := eventstore.NewEvent(BenchEventType, BenchData)
			req = append(req, eventstore.RecordedEvent{StreamID: r.stream, Version: r.from + uint64(i),
				ID: ev.ID, Type: ev.Type, ContentType: ev.ContentType, Data: ev.Data})
		}
	}
	if len(req) > 0 {
		flush()
	}
	st.seedRate = float64(done) / time.Since(start).Seconds()
	st.versions = make([]uint64, len(st.long))
	for i := range st.versions {
		st.versions[i] = uint64(st.longLen)
	}
	if st.mid == "" {
		b.Fatalf("seed %s: no 1,000-event stream in the middle of the log", st.name)
	}
}

// findTail notes the position before the log's last ScaleTail events.
func (st *scaleLog) findTail(b *testing.B) {
	b.Helper()
	n := 0
	for ev, err := range st.s.ReadAll(b.Context(), eventstore.ReadAllOptions{Backwards: true, Limit: ScaleTail + 1}) {
		if err != nil {
			b.Fatalf("%s: read the log backwards: %v", st.name, err)
		}
		st.tail = ev.Position
		n++
	}
	if n != ScaleTail+1 {
		b.Fatalf("%s: the log holds %d events, want at least %d", st.name, n, ScaleTail+1)
	}
}

// scaleNewStreams is a round of clients goroutines each appending appends
// single events, each to a new stream.
func scaleNewStreams(s *eventstore.Store, clients, appends int) func(context.Context) (int, error) {
	appendFn := StoreAppend(s)
	return func(ctx context.Context) (int, error) {
		return clients * appends, concurrently(clients, func(int) error {
			for range appends {
				if err := appendFn(ctx, BenchStream("Bench"), 0, BenchEvents(1)); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// appendLong is a round of clients goroutines each appending appends
// single events to a long stream of its own at its exact version.
func (st *scaleLog) appendLong(clients, appends int) func(context.Context) (int, error) {
	appendFn := StoreAppend(st.s)
	return func(ctx context.Context) (int, error) {
		return clients * appends, concurrently(clients, func(c int) error {
			for range appends {
				if err := appendFn(ctx, st.long[c], st.versions[c], BenchEvents(1)); err != nil {
					return err
				}
				st.versions[c]++
			}
			return nil
		})
	}
}

// concurrently runs f(0) … f(n-1) in goroutines of their own and returns
// the first error.
func concurrently(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := f(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// scaleReadAll is a round of one ReadAll with opts, which must return
// opts.Limit events.
func scaleReadAll(s *eventstore.Store, opts eventstore.ReadAllOptions) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		n := 0
		for _, err := range s.ReadAll(ctx, opts) {
			if err != nil {
				return n, err
			}
			n++
		}
		if n != opts.Limit {
			return n, fmt.Errorf("read %d events of the log, want %d", n, opts.Limit)
		}
		return n, nil
	}
}
