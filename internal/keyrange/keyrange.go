// Package keyrange turns a string prefix into a range of keys in byte
// order, for drivers that list stream IDs by prefix from an ordered index.
package keyrange

import "unicode/utf8"

// PrefixEnd returns the least valid UTF-8 string greater than every string
// that starts with prefix, in byte order (which for UTF-8 is code point
// order): the strings starting with prefix are exactly those s with
// prefix <= s < end. It increments the last code point of prefix, skipping
// the surrogates, and drops a last code point that is already U+10FFFF. ok
// is false when there is no such string (prefix is empty or all U+10FFFF)
// and for a prefix that is not valid UTF-8.
func PrefixEnd(prefix string) (end string, ok bool) {
	if !utf8.ValidString(prefix) {
		return "", false
	}
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF: // the next code points are surrogates
			r = 0xE000
		default:
			r++
		}
		return prefix + string(r), true
	}
	return "", false
}
