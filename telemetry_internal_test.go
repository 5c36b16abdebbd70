package eventstore

import (
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// TestTracerOn: the Store starts spans only with a provider that may record
// them; the global provider before an SDK is installed may not.
func TestTracerOn(t *testing.T) {
	sdk := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = sdk.Shutdown(t.Context()) })
	tests := []struct {
		name   string
		tp     trace.TracerProvider
		on     bool
		global bool
	}{
		{"global, no SDK", otel.GetTracerProvider(), false, true},
		{"noop", tracenoop.NewTracerProvider(), false, false},
		{"noop pointer", &tracenoop.TracerProvider{}, false, false},
		//lint:ignore SA1019 older code still passes it
		{"deprecated noop", trace.NewNoopTracerProvider(), false, false},
		{"SDK", sdk, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tracerOn(tc.tp); got != tc.on {
				t.Errorf("tracerOn(%T) = %v, want %v", tc.tp, got, tc.on)
			}
			if got := isGlobalDelegate(tc.tp); got != tc.global {
				t.Errorf("isGlobalDelegate(%T) = %v, want %v", tc.tp, got, tc.global)
			}
		})
	}
}
