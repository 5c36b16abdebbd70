// Package tracemeta is the one place that knows how the Store writes the
// W3C trace context of an append into event metadata, and how that is
// taken out again: the Store inserts the members first in a JSON object
// (Insert), and driver.CheckRetry compares a retry's metadata without them
// (Strip), since a retry runs in another span.
package tracemeta

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
)

// The metadata keys of the trace context.
const (
	KeyTraceParent = "$traceparent"
	KeyTraceState  = "$tracestate"
)

// Members returns the JSON object members recording a trace context:
// "$traceparent":"…" and, when tracestate is not empty, "$tracestate":"…",
// in that order (Strip expects it).
func Members(traceparent, tracestate string) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `"`+KeyTraceParent+`":`...)
	v, _ := json.Marshal(traceparent)
	b = append(b, v...)
	return appendTraceState(b, tracestate)
}

// AppendMembers appends to dst the members Members returns for the W3C
// traceparent of a span context (version 00, lower-case hex, as the
// traceparent header) and its tracestate, without a string in between.
func AppendMembers(dst []byte, traceID [16]byte, spanID [8]byte, flags byte, tracestate string) []byte {
	dst = append(dst, `"`+KeyTraceParent+`":"00-`...)
	dst = hex.AppendEncode(dst, traceID[:])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, spanID[:])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, []byte{flags})
	dst = append(dst, '"')
	return appendTraceState(dst, tracestate)
}

// appendTraceState appends the tracestate member to b, when tracestate is
// not empty.
func appendTraceState(b []byte, tracestate string) []byte {
	if tracestate == "" {
		return b
	}
	v, _ := json.Marshal(tracestate)
	b = append(b, `,"`+KeyTraceState+`":`...)
	return append(b, v...)
}

// Insert returns md with the members ins inserted first in its JSON
// object, and true; or md and false when md is neither empty nor a JSON
// object, or already has a trace-context key (the caller's, kept).
//
// Metadata in which neither "$trace" nor an escape "\u" occurs cannot
// hold either key (a key may spell "$" as "\u0024"), so it is only
// checked for validity; other metadata is decoded to look at its keys.
func Insert(md, ins []byte) ([]byte, bool) {
	if len(md) == 0 {
		out := make([]byte, 0, len(ins)+2)
		return append(append(append(out, '{'), ins...), '}'), true
	}
	i := bytes.IndexByte(md, '{')
	if i < 0 || len(bytes.TrimSpace(md[:i])) != 0 {
		return md, false
	}
	if bytes.Contains(md, []byte("$trace")) || bytes.Contains(md, []byte(`\u`)) {
		var m map[string]json.RawMessage
		if json.Unmarshal(md, &m) != nil {
			return md, false
		}
		if _, ok := m[KeyTraceParent]; ok {
			return md, false
		}
		if _, ok := m[KeyTraceState]; ok {
			return md, false
		}
	} else if !json.Valid(md) {
		return md, false
	}
	rest := md[i+1:]
	empty := bytes.TrimLeft(rest, " \t\n\r")[0] == '}' // valid JSON: an object ends with '}'
	out := make([]byte, 0, len(md)+len(ins)+1)
	out = append(append(out, md[:i+1]...), ins...)
	if !empty {
		out = append(out, ',')
	}
	return append(out, rest...), true
}

// Strip returns metadata without the trace-context members Insert put at
// the start of a JSON object: the bytes before the object's '{', the '{',
// and what followed the inserted members. An object that held only those
// members becomes nil. Metadata that does not start with them is returned
// unchanged.
func Strip(md []byte) []byte {
	i := 0
	for i < len(md) && isSpace(md[i]) {
		i++
	}
	if i >= len(md) || md[i] != '{' {
		return md
	}
	rest, ok := bytes.CutPrefix(md[i+1:], []byte(`"`+KeyTraceParent+`":`))
	if !ok {
		return md
	}
	n := jsonStringLen(rest)
	if n < 0 {
		return md
	}
	rest = rest[n:]
	if r, ok := bytes.CutPrefix(rest, []byte(`,"`+KeyTraceState+`":`)); ok {
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
