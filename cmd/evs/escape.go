package main

import (
	"io"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Terminal safety. Stream IDs, event types, data and metadata come from
// whoever wrote the events, and error messages quote them. Printed raw, an
// escape sequence in them could drive the terminal (move the cursor, rewrite
// earlier lines, set the window title), and a bidi control or a zero-width
// character could make a line read differently from what it holds. So
// everything evs prints goes through one of two escapers:
//
//   - text (readable output and every message): a run of unsafe bytes is
//     shown as Go escapes, \x1b for a C0 control or DEL, \u202e (\U000e0001)
//     for other runes, \xff for a byte that is not UTF-8;
//   - JSON (--json): unsafe runes become \uXXXX escapes (a surrogate pair
//     above U+FFFF) and bytes that are not UTF-8 become \ufffd, so the line
//     stays valid JSON with the same meaning. encoding/json leaves DEL, the
//     C1 controls and the bidi controls as they are, and copies a
//     json.RawMessage (event data) byte for byte.
//
// A rune is unsafe when it is a control character (Unicode category Cc: C0,
// DEL, C1), a format character (Cf: every bidi control, U+200E/F, U+061C,
// U+202A–U+202E, U+2066–U+2069, the zero-width characters U+200B–U+200D,
// U+2060 and U+FEFF, the soft hyphen, the tag characters) or a line or
// paragraph separator (Zl, Zp). The text escaper lets newline and tab
// through: evs writes them itself, to end lines and in usage text.

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	if r < 0x80 {
		return r < 0x20 || r == 0x7f
	}
	return r <= 0x9f || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// safeASCII reports whether b needs no escaping in text output.
func safeASCII(b byte) bool { return b >= 0x20 && b < 0x7f || b == '\n' || b == '\t' }

// appendEscapedText appends s with every unsafe rune and every byte that is
// not UTF-8 escaped, newlines and tabs kept.
func appendEscapedText(b, s []byte) []byte {
	for len(s) > 0 {
		if safeASCII(s[0]) {
			b = append(b, s[0])
			s = s[1:]
			continue
		}
		r, size := utf8.DecodeRune(s)
		switch {
		case r == utf8.RuneError && size <= 1:
			b = append(b, `\x`...)
			b = appendHex(b, uint32(s[0]), 2)
		case r < 0x80:
			b = append(b, `\x`...)
			b = appendHex(b, uint32(r), 2)
		case !unsafeRune(r):
			b = append(b, s[:size]...)
		case r > 0xffff:
			b = append(b, `\U`...)
			b = appendHex(b, uint32(r), 8)
		default:
			b = append(b, `\u`...)
			b = appendHex(b, uint32(r), 4)
		}
		s = s[size:]
	}
	return b
}

// escapeText returns s escaped for a terminal, as appendEscapedText does.
func escapeText(s string) string {
	for i := 0; i < len(s); i++ {
		if !safeASCII(s[i]) {
			return string(appendEscapedText(make([]byte, 0, len(s)+16), []byte(s)))
		}
	}
	return s
}

// appendEscapedJSON appends the compact JSON j (encoding/json's output)
// with every unsafe rune other than newline written as a \u escape and every
// byte that is not UTF-8 as \ufffd. In compact JSON such runes and bytes can
// only be inside strings, where the escapes mean the same, so valid JSON
// stays valid and equal. (Indented JSON would have tabs outside strings.)
func appendEscapedJSON(b, j []byte) []byte {
	for len(j) > 0 {
		if j[0] >= 0x20 && j[0] < 0x7f || j[0] == '\n' {
			b = append(b, j[0])
			j = j[1:]
			continue
		}
		r, size := utf8.DecodeRune(j)
		switch {
		case r == utf8.RuneError && size <= 1:
			b = append(b, `\ufffd`...)
		case !unsafeRune(r):
			b = append(b, j[:size]...)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			b = append(b, `\u`...)
			b = appendHex(b, uint32(hi), 4)
			b = append(b, `\u`...)
			b = appendHex(b, uint32(lo), 4)
		default:
			b = append(b, `\u`...)
			b = appendHex(b, uint32(r), 4)
		}
		j = j[size:]
	}
	return b
}

func appendHex(b []byte, v uint32, digits int) []byte {
	s := strconv.FormatUint(uint64(v), 16)
	for i := len(s); i < digits; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// termWriter escapes what it writes with appendEscapedText. Writes may split
// a UTF-8 sequence (a bufio.Writer flushes every few kilobytes): an
// incomplete one at the end of a write waits for the next. Its methods may
// be called from several goroutines.
type termWriter struct {
	w io.Writer

	mu      sync.Mutex // protects everything below
	pending []byte     // the start of a rune cut off by the last write
	buf     []byte
}

func (t *termWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := p
	if len(t.pending) > 0 {
		data = append(t.pending[:len(t.pending):len(t.pending)], p...)
		t.pending = t.pending[:0]
	}
	cut := len(data)
	for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:]) {
				cut = i
			}
			break
		}
	}
	t.pending = append(t.pending, data[cut:]...)
	t.buf = appendEscapedText(t.buf[:0], data[:cut])
	if len(t.buf) > 0 {
		if _, err := t.w.Write(t.buf); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush writes a rune left incomplete by the last write, escaped: its bytes
// are not UTF-8 after all.
func (t *termWriter) flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 {
		return nil
	}
	t.buf = appendEscapedText(t.buf[:0], t.pending)
	t.pending = t.pending[:0]
	_, err := t.w.Write(t.buf)
	return err
}

// jsonWriter escapes each write, a whole JSON value from a json.Encoder,
// with appendEscapedJSON.
type jsonWriter struct {
	w   io.Writer
	buf []byte
}

func (j *jsonWriter) Write(p []byte) (int, error) {
	j.buf = appendEscapedJSON(j.buf[:0], p)
	if _, err := j.w.Write(j.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// rawWriter returns the writer under a termWriter, for output evs composes
// itself and that must keep its control sequences: the progress line.
func rawWriter(w io.Writer) io.Writer {
	if t, ok := w.(*termWriter); ok {
		return t.w
	}
	return w
}
