package driver

import (
	"bytes"

	"github.com/eventkit/eventstore/internal/tracemeta"
)

// Metadata keys under which the Store records the W3C trace context of an
// append (eventstore.MetadataTraceParent and MetadataTraceState).
const (
	MetadataTraceParent = tracemeta.KeyTraceParent // "$traceparent"
	MetadataTraceState  = tracemeta.KeyTraceState  // "$tracestate"
)

// sameMetadata reports whether two events' metadata have the same content
// for an idempotent retry: equal bytes, or equal once the trace-context
// keys the Store inserted are taken out of both (a retry runs in another
// span, so its trace context differs), an empty object then equal to none.
func sameMetadata(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	a, b = tracemeta.Strip(a), tracemeta.Strip(b)
	return bytes.Equal(emptyObjectAsNil(a), emptyObjectAsNil(b))
}

// emptyObjectAsNil returns nil for empty metadata or an empty JSON object.
func emptyObjectAsNil(b []byte) []byte {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || len(t) >= 2 && t[0] == '{' && t[len(t)-1] == '}' && len(bytes.TrimSpace(t[1:len(t)-1])) == 0 {
		return nil
	}
	return b
}
