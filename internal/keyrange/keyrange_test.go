package keyrange

import (
	"testing"
	"unicode/utf8"
)

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, end string
		ok                bool
	}{
		{"empty", "", "", false},
		{"ASCII", "Order-", "Order.", true},
		{"last byte", "a\x7f", "a\u0080", true},
		{"two bytes", "a\u00ff", "a\u0100", true},
		{"before the surrogates", "a\ud7ff", "a\ue000", true},
		{"last code point", "ab\U0010ffff", "ac", true},
		{"only last code points", "\U0010ffff\U0010ffff", "", false},
		{"invalid UTF-8", "a\xff", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end, ok := PrefixEnd(tc.prefix)
			if end != tc.end || ok != tc.ok {
				t.Fatalf("PrefixEnd(%q) = %q, %v; want %q, %v", tc.prefix, end, ok, tc.end, tc.ok)
			}
		})
	}
}

// FuzzPrefixEnd checks the range property: a string extending the prefix
// lies in [prefix, end), and end itself is valid UTF-8 and does not start
// with the prefix.
func FuzzPrefixEnd(f *testing.F) {
	f.Add("Order-", "42")
	f.Add("a\U0010ffff", "x")
	f.Add("\ud7ff", "")
	f.Fuzz(func(t *testing.T, prefix, rest string) {
		end, ok := PrefixEnd(prefix)
		if !ok {
			return
		}
		s := prefix + rest
		if !(prefix <= s && s < end) {
			t.Fatalf("PrefixEnd(%q) = %q: %q is outside the range", prefix, end, s)
		}
		if !utf8.ValidString(end) || len(end) >= len(prefix) && end[:len(prefix)] == prefix {
			t.Fatalf("PrefixEnd(%q) = %q: invalid end", prefix, end)
		}
	})
}
