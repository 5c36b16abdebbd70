package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The runes the issue names, each of which must never reach the terminal.
var mustEscape = []rune{
	0x00, 0x07, 0x08, 0x0d, 0x1b, 0x7f, // C0, DEL
	0x80, 0x85, 0x9b, 0x9d, 0x9f, // C1: NEL, CSI, OSC
	0x061c, 0x200e, 0x200f, // bidi marks
	0x202a, 0x202b, 0x202c, 0x202d, 0x202e, // bidi embeddings and overrides
	0x2066, 0x2067, 0x2068, 0x2069, // bidi isolates
	0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, // zero-width
	0x2028, 0x2029, // line and paragraph separators
	0xe0041, // a tag character
}

func TestUnsafeRune(t *testing.T) {
	for _, r := range mustEscape {
		assert.Truef(t, unsafeRune(r), "U+%04X", r)
	}
	for _, r := range []rune{' ', 'a', '~', 0xa0, 0xe9, 0x4e2d, 0x1f600, 0xfffd} {
		assert.Falsef(t, unsafeRune(r), "U+%04X", r)
	}
}

func TestEscapeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Order-42", "Order-42"},
		{"tab\tand newline\n", "tab\tand newline\n"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},
		{"a\rb", `a\x0db`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"txt\u202egnp.exe", `txt\u202egnp.exe`},
		{"zero\u200bwidth\ufeff", `zero\u200bwidth\ufeff`},
		{"tag\U000e0041", `tag\U000e0041`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
		{"cut \xe2\x80", `cut \xe2\x80`},
		{"café 中文 😀", "café 中文 😀"},
	}
	for _, tc := range tests {
		assert.Equalf(t, tc.want, escapeText(tc.in), "escapeText(%q)", tc.in)
	}
}

func TestEscapeJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"b"}` + "\n", `{"a":"b"}` + "\n"},
		{"\"\u202e\u200b\x7f\u0085\"", `"\u202e\u200b\u007f\u0085"`},
		{"\"tag\U000e0041\"", `"tag\udb40\udc41"`},
		{"\"\xff\"", `"\ufffd"`},
		{`"é😀"`, `"é😀"`},
	}
	for _, tc := range tests {
		assert.Equalf(t, tc.want, string(appendEscapedJSON(nil, []byte(tc.in))), "appendEscapedJSON(%q)", tc.in)
	}
}

// checkSafe fails t if out holds an unsafe rune (other than newline and
// tab) or a byte that is not UTF-8.
func checkSafe(t testing.TB, out []byte) {
	t.Helper()
	for i, r := range string(out) {
		if r == utf8.RuneError {
			_, size := utf8.DecodeRune(out[i:])
			require.NotEqualf(t, 1, size, "invalid UTF-8 at byte %d of %q", i, out)
		}
		if r != '\n' && r != '\t' {
			require.Falsef(t, unsafeRune(r), "U+%04X at byte %d of %q", r, i, out)
		}
	}
}

func FuzzEscapeText(f *testing.F) {
	for _, r := range mustEscape {
		f.Add("x" + string(r) + "y")
	}
	f.Add("bad \xff\xfe \xe2\x80 end")
	f.Fuzz(func(t *testing.T, s string) {
		out := appendEscapedText(nil, []byte(s))
		checkSafe(t, out)
		if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && r != '\t' && unsafeRune(r) }) {
			assert.Equal(t, s, string(out), "safe text is left alone")
		}
		// The same through a termWriter, cut anywhere: a rune split
		// between writes comes out whole.
		for _, cut := range []int{1, 2, 3, len(s) / 2} {
			if cut > len(s) {
				continue
			}
			var b bytes.Buffer
			w := &termWriter{w: &b}
			w.Write([]byte(s[:cut]))
			w.Write([]byte(s[cut:]))
			require.NoError(t, w.flush())
			require.Equalf(t, string(out), b.String(), "written in two parts cut at %d", cut)
		}
	})
}

func FuzzEscapeJSON(f *testing.F) {
	for _, r := range mustEscape {
		f.Add("x"+string(r)+"y", []byte(`{"k":"`+string(r)+`"}`))
	}
	f.Add("\xff", []byte("\"\xff\xe2\x80\""))
	f.Add("n", []byte(strings.Repeat("1", 400))) // beyond float64
	f.Fuzz(func(t *testing.T, s string, raw []byte) {
		var j bytes.Buffer
		enc := newJSONEncoder(&j)
		v := map[string]any{"s": s}
		if json.Valid(raw) {
			v["raw"] = json.RawMessage(raw)
		}
		require.NoError(t, enc.Encode(v))
		out := j.Bytes()
		checkSafe(t, out)
		require.Truef(t, json.Valid(out), "invalid JSON %q", out)
		require.Equal(t, 1, bytes.Count(out, []byte("\n")), "one line")
		// The meaning is kept: the string decodes to what json.Marshal
		// alone gives (which turns bad UTF-8 into U+FFFD).
		// Numbers decode as json.Number: a valid JSON number may be far
		// beyond float64.
		plain, err := json.Marshal(v)
		require.NoError(t, err)
		require.Equal(t, decodeJSONNumbers(t, plain), decodeJSONNumbers(t, out))
	})
}

// decodeJSONNumbers decodes b keeping numbers as their text.
func decodeJSONNumbers(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	require.NoError(t, d.Decode(&m))
	return m
}

// Every way an event's content reaches the terminal, in text and --json:
// nothing unsafe comes out, and --json stays valid JSON that decodes to the
// event's content.
func TestPrintedEventsAreSafe(t *testing.T) {
	hostile := "\x1b]0;title\x07\x1b[2J\u202eevil\u200b\u0085\x7f"
	ev := eventstore.RecordedEvent{
		StreamID: "Order-" + hostile, Version: 1, Position: eventstore.Position{Commit: 1},
		ID: uuid.MustParse("0b9e6a4c-8d8f-4bb7-9a53-6c0a5a1f4d11"), Type: "Placed" + hostile,
		Data:     []byte(`{"note":"` + "\u202eevil\u200b\u0085\x7f\u2066" + `"}`),
		Metadata: []byte(`{"$correlationId":"` + "\u202e\u0085" + `"}`),
	}
	for _, asJSON := range []bool{false, true} {
		var b bytes.Buffer
		out := &termWriter{w: &b}
		require.NoError(t, newEventPrinter(out, asJSON).print(ev))
		require.NoError(t, out.flush())
		checkSafe(t, b.Bytes())
		if asJSON {
			var got event
			require.NoError(t, json.Unmarshal(b.Bytes(), &got), "%s", b.Bytes())
			assert.Equal(t, ev.StreamID, got.Stream)
			assert.Equal(t, ev.Type, got.Type)
			assert.JSONEq(t, string(ev.Data), string(got.Data))
			assert.JSONEq(t, string(ev.Metadata), string(got.Metadata))
		} else {
			assert.Contains(t, b.String(), `"Order-\x1b]0;title\a\x1b[2J\u202eevil\u200b\u0085\x7f"@1`)
			assert.Contains(t, b.String(), `{"note":"\u202eevil\u200b\u0085\x7f\u2066"}`)
		}
	}
}

// Messages too: an error quoting a stream ID, a type or raw driver text.
func TestMessagesAreSafe(t *testing.T) {
	u := newStoreURL(t)
	mustEVS(t, "", "append", "--url", u, "Order-\u202e1", "--type", "T\u2066\u200b", `{"a":"\u0085\u202e"}`)
	for _, args := range [][]string{
		{"append", "--url", u, "Order-\u202e1", "--type", "T\x1b[31m", "{}"},
		{"append", "--url", u, "Order-1", "--type", "$\x1b[31m\u200b", "{}"},
		{"read", "--url", u, "\x1b[2J\u2066"},
		{"frob\x1b[2J\u202e"},
		{"read", "--url", u, "--bogus\x1b[2J\u202e"},
		{"append", "--url", u, "Order-1", "--type", "T", "--data-file", "/nonexistent/\x1b[2J\u202e"},
	} {
		r := evs(t, "", args...)
		checkSafe(t, []byte(r.stdout))
		checkSafe(t, []byte(r.stderr))
	}
	// And what was stored comes out escaped.
	r := evs(t, "", "tail", "--url", u, "--no-follow")
	require.Equal(t, exitOK, r.code, r.stderr)
	checkSafe(t, []byte(r.stdout))
	assert.Contains(t, r.stdout, `  "Order-\u202e1"@1  "T\u2066\u200b"  `)
	assert.Contains(t, r.stdout, `  {"a":"\u0085\u202e"}`+"\n")
}
