package sqlite_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/internal/telemetrytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTelemetry runs the Store's telemetry over SQLite: three appends of
// two events and a conflict give the counters and spans with
// db.system.name "sqlite", and a subscription handler's span links to the
// span of the append that wrote its event.
func TestTelemetry(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	s, err := eventstore.OpenWith(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "events.db"),
		eventstore.Options{TracerProvider: tp, MeterProvider: mp})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })

	ctx, cmd := tp.Tracer("test").Start(t.Context(), "command")
	for _, stream := range []string{"Order-1", "Order-2", "Order-3"} {
		_, err := s.Append(ctx, stream, eventstore.NoStream, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("Paid", nil))
		require.NoError(t, err)
	}
	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	cmd.End()

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	counters := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					sys, _ := dp.Attributes.Value("db.system.name")
					require.Equal(t, "sqlite", sys.AsString(), m.Name)
					key := m.Name
					if o, ok := dp.Attributes.Value("outcome"); ok {
						key += "{outcome=" + o.AsString() + "}"
					}
					counters[key] = dp.Value
				}
			}
		}
	}
	for name, want := range map[string]int64{
		"eventstore.appends{outcome=ok}":       3,
		"eventstore.appends{outcome=conflict}": 1,
		"eventstore.conflicts":                 1,
		"eventstore.events.appended":           6,
	} {
		assert.Equal(t, want, counters[name], name)
	}

	var appends []sdktrace.ReadOnlySpan
	for _, sp := range spans.Ended() {
		if sp.Name() == "append" {
			appends = append(appends, sp)
			assert.Contains(t, sp.Attributes(), attribute.String("db.system.name", "sqlite"))
		}
	}
	require.Len(t, appends, 4)

	sctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var links []sdktrace.Link
	err = s.Subscribe(sctx, eventstore.SubscribeOptions{Name: "projector"}, func(ctx context.Context, ev eventstore.RecordedEvent) error {
		if ev.StreamID == "Order-2" && ev.Version == 2 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	for _, sp := range spans.Ended() {
		if sp.Name() == "handler" {
			links = append(links, sp.Links()...)
		}
	}
	require.Len(t, links, 4, "one link per event handled")
	for i, l := range links {
		assert.Equal(t, appends[i/2].SpanContext().SpanID(), l.SpanContext.SpanID(), "event %d links to its append", i)
	}
}

// TestTelemetryCountsDriverRetries holds the write lock from another
// connection while the Store appends: the driver's own retries while it
// waits for the lock (internal/retry) count in eventstore.retries under
// operation "append".
func TestTelemetryCountsDriverRetries(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := eventstore.OpenWith(t.Context(), "sqlite://"+path, eventstore.Options{MeterProvider: mp})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })

	db, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	holder, err := db.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE: the write lock
	require.NoError(t, err)
	go func() {
		time.Sleep(100 * time.Millisecond)
		holder.Rollback()
	}()
	_, err = s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	var retries int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "eventstore.retries" {
				for _, dp := range sum.DataPoints {
					op, _ := dp.Attributes.Value("operation")
					assert.Equal(t, "append", op.AsString())
					retries += dp.Value
				}
			}
		}
	}
	assert.Positive(t, retries, "the driver retried its BEGIN IMMEDIATE while the lock was held")
}

// BenchmarkTracingOverhead appends single events to SQLite stores in
// interleaved rounds (conformance.RunInterleaved), so that every contender
// sees the same machine:
//
//   - on: telemetry to the OpenTelemetry SDK as an operator runs it
//     (internal/telemetrytest): a TracerProvider with the batch span
//     processor and an exporter, a MeterProvider with a reader;
//   - off: the no-op providers (the default);
//   - meta: the no-op providers, appending inside a caller's span context:
//     no span and no metrics, but the same trace context (72 bytes) in
//     each event's metadata as on, so meta/off-% is the cost of the larger
//     rows;
//   - floor: the off store's append wrapped in the SDK calls the Store
//     makes for it (telemetrytest.SDK.Floor: a span with the same
//     attributes, three counters, the duration histogram), so floor/off-%
//     is the cost of the SDK itself, which no code of the Store can remove.
//
// X/off-% is the median over rounds of X's rate as a percentage of off's
// (100: no overhead; the target for on is 95 or more).
// X/off-cpu-% is X's process CPU time per event over all rounds as a
// percentage of off's (above 100: more CPU), less sensitive than the
// rates to the load other processes put on the machine; off-cpu-ns/event
// is off's, and X-switches/event the process's context switches per event
// (the batch span processor hands every span to its goroutine: with the
// process otherwise idle between appends, a thread is woken for it). The
// sdk-floor sub-benchmark times Floor around an empty function, in CPU
// too. docs/observability.md has the figures.
func BenchmarkTracingOverhead(b *testing.B) {
	for _, c := range []struct {
		name string
		sync sqlite.Synchronous
	}{{"synchronous=full", sqlite.SynchronousFull}, {"synchronous=normal", sqlite.SynchronousNormal}} {
		b.Run(c.name, func(b *testing.B) {
			sdk := telemetrytest.New(b)
			open := func(opts eventstore.Options) *eventstore.Store {
				d, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "events.db"), sqlite.Options{Synchronous: c.sync})
				if err != nil {
					b.Fatal(err)
				}
				s := eventstore.New(d, opts)
				b.Cleanup(func() { s.Close() })
				return s
			}
			on := open(eventstore.Options{TracerProvider: sdk.TracerProvider, MeterProvider: sdk.MeterProvider})
			off := open(eventstore.Options{})
			meta := open(eventstore.Options{})
			floor := open(eventstore.Options{})
			wrap := sdk.Floor("sqlite")
			const appends = 50
			contenders := []conformance.Contender{
				{Name: "on", Round: conformance.ConcurrentAppends(conformance.StoreAppend(on), 1, 1, appends)},
				{Name: "off", Round: conformance.ConcurrentAppends(conformance.StoreAppend(off), 1, 1, appends)},
				{Name: "meta", Round: conformance.ConcurrentAppends(func(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
					_, err := meta.Append(callerSpan(ctx), stream, eventstore.Exact(expected), events...)
					return err
				}, 1, 1, appends)},
				{Name: "floor", Round: conformance.ConcurrentAppends(func(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
					return wrap(ctx, func() (int, error) {
						_, err := floor.Append(ctx, stream, eventstore.Exact(expected), events...)
						return len(events[0].Data), err
					})
				}, 1, 1, appends)},
			}
			used := make([]telemetrytest.Usage, len(contenders))
			events := make([]int, len(contenders))
			for i := range contenders {
				round := contenders[i].Round
				contenders[i].Round = func(ctx context.Context) (int, error) {
					u0 := telemetrytest.ProcessUsage(b)
					n, err := round(ctx)
					used[i] = used[i].Add(telemetrytest.ProcessUsage(b).Sub(u0))
					events[i] += n
					return n, err
				}
			}
			rates := conformance.RunInterleaved(b, 2, contenders)
			cpu := func(i int) float64 { return float64(used[i].CPU) / float64(events[i]) }
			b.ReportMetric(cpu(1), "off-cpu-ns/event")
			for i, c := range contenders {
				b.ReportMetric(float64(used[i].Switches)/float64(events[i]), c.Name+"-switches/event")
				if c.Name == "off" {
					continue
				}
				b.ReportMetric(conformance.MedianPercent(rates, i, 1), c.Name+"/off-%")
				b.ReportMetric(100*cpu(i)/cpu(1), c.Name+"/off-cpu-%")
			}
		})
	}
	b.Run("sdk-floor", func(b *testing.B) {
		wrap := telemetrytest.New(b).Floor("sqlite")
		ctx := b.Context()
		b.ReportAllocs()
		u0 := telemetrytest.ProcessUsage(b)
		for b.Loop() {
			if err := wrap(ctx, func() (int, error) { return 100, nil }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(telemetrytest.ProcessUsage(b).Sub(u0).CPU)/float64(b.N), "cpu-ns/op")
	})
}

// callerSpan returns ctx carrying a new sampled span context, as a
// caller's span (or one extracted from a request) would, without an SDK.
func callerSpan(ctx context.Context) context.Context {
	var sc trace.SpanContextConfig
	rand.Read(sc.TraceID[:])
	rand.Read(sc.SpanID[:])
	sc.TraceFlags = trace.FlagsSampled
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(sc))
}
