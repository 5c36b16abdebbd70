package shred

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseObject checks the top-level walk of parseObject against
// encoding/json: it accepts exactly the valid JSON objects, and writing its
// members back gives the same object.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":"x\"}","b":[1,{"c":"]"}],"d":null,"e":true,"f":-1.5e3}`,
		`{"\u0041":"\\"}`, `[1]`, `"s"`, `{"a":}`, `{"a":1,}`, `{"a":1} x`, "{\"a\"\t:\n{\"b\" : [ ] } }",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		members, ok := parseObject(data)
		want := json.Valid(data) && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
		if ok != want {
			t.Fatalf("parseObject(%q): ok %v, want %v", data, ok, want)
		}
		if !ok {
			return
		}
		var a, b any
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatal(err)
		}
		out := appendObject(nil, members)
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("appendObject gave %q: %v", out, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%q became %q", data, out)
		}
	})
}
