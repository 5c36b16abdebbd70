package driver_test

import (
	"testing"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

// TestCheckRetryIgnoresTraceContext: metadata that differs only in the
// trace context the Store inserted is the same content for a retry;
// anything else is not.
func TestCheckRetryIgnoresTraceContext(t *testing.T) {
	const (
		tp1 = `"$traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"`
		tp2 = `"$traceparent":"00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"`
		ts  = `"$tracestate":"k=v,q=\"x\""`
	)
	tests := []struct {
		name          string
		stored, retry string
		same          bool
	}{
		{"other span", `{` + tp1 + `,"n":1}`, `{` + tp2 + `,"n":1}`, true},
		{"retry without span", ` {` + tp1 + `,` + ts + `,"n":1}`, ` {"n":1}`, true},
		{"only trace context, retry empty", `{` + tp1 + `}`, ``, true},
		{"only trace context, retry empty object", `{` + tp1 + `,` + ts + `}`, `{}`, true},
		{"other content", `{` + tp1 + `,"n":1}`, `{` + tp2 + `,"n":2}`, false},
		{"trace context not first is the caller's", `{"n":1,` + tp1 + `}`, `{"n":1,` + tp2 + `}`, false},
		{"other spacing", `{` + tp1 + `,"n":1}`, `{ "n":1}`, false},
		{"not an object", `[1]`, `[2]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.New()
			stored := []driver.RecordedEvent{{ID: id, Version: 1, Type: "T", Metadata: []byte(tc.stored)}}
			err := driver.CheckRetry(stored, []driver.Event{{ID: id, Type: "T", Metadata: []byte(tc.retry)}})
			if tc.same && err != nil {
				t.Errorf("stored %s, retried with %s: want the same content, got %v", tc.stored, tc.retry, err)
			}
			if !tc.same && err == nil {
				t.Errorf("stored %s, retried with %s: want a metadata mismatch, got nil", tc.stored, tc.retry)
			}
		})
	}
}
