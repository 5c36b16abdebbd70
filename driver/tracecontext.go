package driver

import "bytes"

// Metadata keys under which the Store records the W3C trace context of an
// append (eventstore.MetadataTraceParent and MetadataTraceState).
const (
	MetadataTraceParent = "$traceparent"
	MetadataTraceState  = "$tracestate"
)

// withoutTraceContext returns metadata without the trace-context keys the
// Store inserts at the start of a JSON object (see eventstore's
// injectTraceContext): the bytes before the object's '{', the '{', and what
// followed the inserted keys. An object that held only those keys becomes
// nil. Metadata that does not start with them is returned unchanged.
func withoutTraceContext(md []byte) []byte {
	i := 0
	for i < len(md) && isSpace(md[i]) {
		i++
	}
	if i >= len(md) || md[i] != '{' {
		return md
	}
	rest, ok := bytes.CutPrefix(md[i+1:], []byte(`"`+MetadataTraceParent+`":`))
	if !ok {
		return md
	}
	n := jsonStringLen(rest)
	if n < 0 {
		return md
	}
	rest = rest[n:]
	if r, ok := bytes.CutPrefix(rest, []byte(`,"`+MetadataTraceState+`":`)); ok {
		if n := jsonStringLen(r); n >= 0 {
			rest = r[n:]
		}
	}
	switch {
	case len(rest) > 0 && rest[0] == ',':
		return append(md[:i+1:i+1], rest[1:]...)
	case len(bytes.TrimSpace(rest)) == 1 && bytes.TrimSpace(rest)[0] == '}':
		return nil
	}
	return md
}

// jsonStringLen returns the length of the JSON string at the start of b,
// quotes included, or -1 when b does not start with one.
func jsonStringLen(b []byte) int {
	if len(b) == 0 || b[0] != '"' {
		return -1
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// sameMetadata reports whether two events' metadata have the same content
// for an idempotent retry: equal bytes, or equal once the trace-context
// keys the Store inserted are taken out of both (a retry runs in another
// span, so its trace context differs), an empty object then equal to none.
func sameMetadata(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	a, b = withoutTraceContext(a), withoutTraceContext(b)
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
