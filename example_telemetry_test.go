package eventstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/eventkit/eventstore"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// ExampleOptions_tracing wires OpenTelemetry SDK providers into a Store. A
// real application would export with OTLP (go.opentelemetry.io/otel/
// exporters/otlp/...) and serve metrics with the Prometheus exporter; the
// in-memory exporter and manual reader here show what the Store emits.
// Leaving both providers nil uses the global ones (otel.SetTracerProvider,
// otel.SetMeterProvider).
func ExampleOptions_tracing() {
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(ctx)
	reader := metric.NewManualReader()
	mp := metric.NewMeterProvider(metric.WithReader(reader))
	defer mp.Shutdown(ctx)

	store, err := eventstore.OpenWith(ctx, "memory://", eventstore.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The command's span: the append is its child, and the event records
	// the append's trace context in its metadata.
	cmdCtx, cmd := tp.Tracer("shop").Start(ctx, "PlaceOrder")
	_, err = store.Append(cmdCtx, "Order-42", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{"sku":"A-1"}`)))
	cmd.End()
	if err != nil {
		log.Fatal(err)
	}
	for ev, err := range store.ReadStream(ctx, "Order-42", eventstore.ReadStreamOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		tp, _ := eventstore.TraceParent(ev.Metadata)
		fmt.Println("traceparent recorded:", tp == fmt.Sprintf("00-%s-%s-01", cmd.SpanContext().TraceID(), spans.GetSpans()[0].SpanContext.SpanID()))
	}
	for _, s := range spans.GetSpans() {
		fmt.Println("span:", s.Name)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "eventstore.events.appended" {
			fmt.Println(m.Name, sum.DataPoints[0].Value)
		}
	}
	// Output:
	// traceparent recorded: true
	// span: append
	// span: PlaceOrder
	// span: read_stream
	// eventstore.events.appended 1
}
