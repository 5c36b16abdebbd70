package tracemeta

import (
	"bytes"
	"fmt"
	"testing"
)

// TestStripUndoesInsert: what Insert wrote, Strip takes out again, leaving
// the caller's metadata (nil for none); metadata Insert refuses comes back
// as it was.
func TestStripUndoesInsert(t *testing.T) {
	ins := Members("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", `k=v,q="x"`)
	for _, tc := range []struct {
		name     string
		md       string
		inserted bool
		want     string // Strip(Insert(md)) when inserted; "" for nil
	}{
		{"none", ``, true, ``},
		{"empty object", `{}`, true, ``}, // an object of trace context only strips to nil
		{"object", `{"n":1}`, true, `{"n":1}`},
		{"object after space", ` {"n":1,"s":"\"{"}`, true, ` {"n":1,"s":"\"{"}`},
		{"caller's traceparent", `{"$traceparent":"mine"}`, false, `{"$traceparent":"mine"}`},
		{"caller's tracestate", `{"$tracestate":"mine"}`, false, `{"$tracestate":"mine"}`},
		{"caller's traceparent, escaped", `{"\u0024traceparent":"mine"}`, false, `{"\u0024traceparent":"mine"}`},
		{"empty object with space", `{ }`, true, ``},
		{"nested traceparent", `{"a":{"$traceparent":"x"}}`, true, `{"a":{"$traceparent":"x"}}`},
		{"escape elsewhere", `{"s":"\u00e9"}`, true, `{"s":"\u00e9"}`},
		{"invalid after the brace", `{"n":}`, false, `{"n":}`},
		{"array", `[1]`, false, `[1]`},
		{"not JSON", `{nope`, false, `{nope`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md, ok := Insert([]byte(tc.md), ins)
			if ok != tc.inserted {
				t.Fatalf("Insert(%s): inserted %v, want %v", tc.md, ok, tc.inserted)
			}
			if !ok {
				if string(md) != tc.md {
					t.Errorf("Insert(%s) refused but changed it to %s", tc.md, md)
				}
				return
			}
			if !bytes.Contains(md, ins) {
				t.Errorf("Insert(%s) = %s: the members are missing", tc.md, md)
			}
			got := Strip(md)
			if tc.want == "" && got != nil || tc.want != "" && string(got) != tc.want {
				t.Errorf("Strip(%s) = %q, want %q", md, got, tc.want)
			}
		})
	}
}

// TestAppendMembers: the members formatted from a span context's bytes are
// those of its traceparent string.
func TestAppendMembers(t *testing.T) {
	traceID := [16]byte{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	spanID := [8]byte{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}
	for _, tc := range []struct {
		name, tracestate string
		flags            byte
	}{
		{"sampled", "", 1},
		{"not sampled", "", 0},
		{"tracestate", `k=v,q="x"<`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := fmt.Sprintf("00-%x-%x-%02x", traceID, spanID, tc.flags)
			want := Members(tp, tc.tracestate)
			if got := AppendMembers([]byte("{"), traceID, spanID, tc.flags, tc.tracestate); string(got) != "{"+string(want) {
				t.Errorf("AppendMembers = %s, want {%s", got, want)
			}
		})
	}
}
