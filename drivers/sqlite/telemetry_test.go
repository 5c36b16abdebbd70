package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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

// BenchmarkTracingOverhead: single appends on a Store whose telemetry goes
// to the OpenTelemetry SDK (a tracer with a batching in-memory exporter, a
// meter with a manual reader) against a Store with the no-op providers,
// in interleaved rounds on the same machine. on/off-% is the median of
// the on store's rate over the off store's: 100 means no overhead. The
// issue's target is at least 95 (≤ 5 % overhead); see
// docs/observability.md for the figures.
func BenchmarkTracingOverhead(b *testing.B) {
	for _, c := range []struct {
		name string
		sync sqlite.Synchronous
	}{{"synchronous=full", sqlite.SynchronousFull}, {"synchronous=normal", sqlite.SynchronousNormal}} {
		b.Run(c.name, func(b *testing.B) {
			exporter := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				_ = tp.Shutdown(context.Background())
				_ = mp.Shutdown(context.Background())
			})
			open := func(opts eventstore.Options) *eventstore.Store {
				d, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "events.db"), sqlite.Options{Synchronous: c.sync})
				if err != nil {
					b.Fatal(err)
				}
				s := eventstore.New(d, opts)
				b.Cleanup(func() { s.Close() })
				return s
			}
			on := open(eventstore.Options{TracerProvider: tp, MeterProvider: mp})
			off := open(eventstore.Options{})
			const appends = 50
			onRound := conformance.ConcurrentAppends(conformance.StoreAppend(on), 1, 1, appends)
			rates := conformance.RunInterleaved(b, 2, []conformance.Contender{
				{Name: "on", Round: func(ctx context.Context) (int, error) {
					exporter.Reset() // the exported spans do not pile up
					return onRound(ctx)
				}},
				{Name: "off", Round: conformance.ConcurrentAppends(conformance.StoreAppend(off), 1, 1, appends)},
			})
			b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "on/off-%")
		})
	}
}
