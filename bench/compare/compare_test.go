package compare_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventkit/eventstore/conformance"
)

// contender is one event store under comparison, as the workloads of
// conformance see it: appends at exact expected versions, whole-stream
// reads and whole-log reads.
type contender struct {
	append     conformance.AppendFunc
	readStream conformance.ReadStreamFunc
	readAll    conformance.ReadAllFunc
	// analyze, when set, updates the planner's statistics of the
	// contender's tables; runCompare calls it after seeding.
	analyze func(ctx context.Context) error
}

// maker names a contender and makes an empty one for one benchmark,
// removed when the benchmark ends.
type maker struct {
	name string
	make func(b testing.TB) contender
}

// ours is the name of the library's contender, always the first.
const ours = "eventkit"

// workload is one row of issue 16's table: seed events to write before
// timing (in streams of 1,000, in appends of 500), and one round of work.
type workload struct {
	name  string
	seed  int
	round func(ctx context.Context, c contender, seeded string) (int, error)
}

// appendRound is a round of appends of batch events from clients
// goroutines, each to its own new stream, as drivers/postgres
// BenchmarkInterleaved runs it.
func appendRound(batch, clients int) func(ctx context.Context, c contender, _ string) (int, error) {
	appends := min(100, max(1, 1000/batch)) / clients
	return func(ctx context.Context, c contender, _ string) (int, error) {
		return conformance.ConcurrentAppends(c.append, batch, clients, appends)(ctx)
	}
}

// workloads are the rows of issue 16's table, with the rounds of
// drivers/postgres BenchmarkInterleaved.
var workloads = []workload{
	{"append/batch=1", 0, appendRound(1, 1)},
	{"append/batch=1/clients=8", 0, appendRound(1, 8)},
	{"append/batch=100", 0, appendRound(100, 1)},
	{"readstream/events=1000", 1000, func(ctx context.Context, c contender, seeded string) (int, error) {
		total := 0
		for range 20 { // a round of one read would be too short to time
			n, err := c.readStream(ctx, seeded)
			if err != nil {
				return total, err
			}
			if n != 1000 {
				return total, errShort(n, 1000)
			}
			total += n
		}
		return total, nil
	}},
	{"readall/events=100000", 100_000, func(ctx context.Context, c contender, _ string) (int, error) {
		n, err := c.readAll(ctx)
		if err == nil && n != 100_000 {
			err = errShort(n, 100_000)
		}
		return n, err
	}},
}

// runCompare runs every workload on a fresh instance of each contender,
// seeded and then analyzed (PostgreSQL's statistics of its tables updated,
// as autovacuum does some time after a bulk load: the library's migration
// analyzes its tables while they are empty, and the plans it settles on
// from those figures are not what a store in service runs), the contenders
// taking turns in rounds (conformance.RunInterleaved: each
// iteration runs one round of every contender, starting with a different
// one each time). Besides each contender's events/s it reports
// eventkit/NAME-%: the median over rounds of our rate as a percentage of
// contender NAME's (above 100: ours is faster).
func runCompare(b *testing.B, makers []maker) {
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			cs := make([]conformance.Contender, len(makers))
			for i, m := range makers {
				c := m.make(b)
				seeded := seed(b, c, w.seed)
				if c.analyze != nil {
					if err := c.analyze(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				cs[i] = conformance.Contender{Name: m.name, Round: func(ctx context.Context) (int, error) {
					return w.round(ctx, c, seeded)
				}}
			}
			rates := conformance.RunInterleaved(b, 6, cs) // plans settle, pools fill, caches warm
			for i := 1; i < len(cs); i++ {
				b.ReportMetric(conformance.MedianPercent(rates, 0, i), ours+"/"+cs[i].Name+"-%")
			}
		})
	}
}

// seed appends n events to c in streams of 1,000, in appends of 500, and
// returns the last stream written ("" when n is 0).
func seed(b *testing.B, c contender, n int) string {
	b.Helper()
	stream := ""
	for done := 0; done < n; done += 1000 {
		stream = conformance.BenchStream("Bench")
		for v := 0; v < 1000; v += 500 {
			if err := c.append(b.Context(), stream, uint64(v), conformance.BenchEvents(500)); err != nil {
				b.Fatalf("seed %s at version %d: %v", stream, v, err)
			}
		}
	}
	return stream
}

// errShort is the error of a read that returned got events of want.
func errShort(got, want int) error { return fmt.Errorf("read %d events of %d", got, want) }

// TestContenders checks that every contender does the work the benchmarks
// time: appends at exact expected versions that refuse a stale one, and
// reads that return every event of a stream and of the log.
func TestContenders(t *testing.T) {
	groups := []struct {
		name string
		ms   []maker
	}{{"postgres", postgresContenders}, {"sqlite", sqliteContenders}}
	for _, g := range groups {
		for _, m := range g.ms {
			t.Run(g.name+"/"+m.name, func(t *testing.T) { testContender(t, m.make(t)) })
		}
	}
}

// testContender is TestContenders on one contender.
func testContender(t *testing.T, c contender) {
	ctx := t.Context()
	s1, s2 := conformance.BenchStream("Test"), conformance.BenchStream("Test")
	steps := []struct {
		stream   string
		expected uint64
		n        int
		ok       bool
	}{
		{s1, 0, 3, true},
		{s1, 3, 2, true},
		{s1, 3, 1, false}, // stale: s1 is at 5
		{s2, 0, 1, true},
		{s2, 0, 1, false}, // stale: s2 exists
		{s2, 2, 1, false}, // ahead of s2
	}
	for _, st := range steps {
		err := c.append(ctx, st.stream, st.expected, conformance.BenchEvents(st.n))
		if (err == nil) != st.ok {
			t.Fatalf("append %d events to %s at expected version %d: want success %v, got %v", st.n, st.stream, st.expected, st.ok, err)
		}
	}
	if n, err := c.readStream(ctx, s1); err != nil || n != 5 {
		t.Errorf("read %s: want 5 events, got %d, %v", s1, n, err)
	}
	if n, err := c.readAll(ctx); err != nil || n != 6 {
		t.Errorf("read the log: want 6 events, got %d, %v", n, err)
	}
}
