package driver

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Position is the place of an event in the global log, totally ordered by
// (Commit, Prepare); positions need not be dense. The zero value is before
// every event. What the two parts hold is the driver's business, but a
// driver must give every event a non-zero position and keep both parts.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.Commit, q.Commit); c != 0 {
		return c
	}
	return cmp.Compare(p.Prepare, q.Prepare)
}

// Less reports whether p is before q.
func (p Position) Less(q Position) bool { return p.Compare(q) < 0 }

// IsZero reports whether p is the start of the log.
func (p Position) IsZero() bool { return p == Position{} }

// String returns "COMMIT/PREPARE" in decimal, e.g. "1042/0".
func (p Position) String() string {
	return strconv.FormatUint(p.Commit, 10) + "/" + strconv.FormatUint(p.Prepare, 10)
}

// MarshalText implements encoding.TextMarshaler with the String form, which
// is how a driver that stores positions as text should store them.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with [ParsePosition].
func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ParsePosition parses the form [Position.String] returns: two canonical
// unsigned decimals ("0", "42"; not "+1", "01" or "") around a "/".
func ParsePosition(s string) (Position, error) {
	c, pr, ok := strings.Cut(s, "/")
	if !ok {
		return Position{}, fmt.Errorf("%q: want COMMIT/PREPARE", s)
	}
	commit, err1 := parseDecimal(c)
	prepare, err2 := parseDecimal(pr)
	if err1 != nil || err2 != nil {
		return Position{}, fmt.Errorf("%q: want two unsigned decimal numbers", s)
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}

// parseDecimal accepts only canonical unsigned decimals.
func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' {
		return 0, fmt.Errorf("not canonical")
	}
	return strconv.ParseUint(s, 10, 64)
}
