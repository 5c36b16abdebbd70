package tracemeta

import (
	"bytes"
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
