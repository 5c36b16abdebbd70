package eventstore

import "github.com/eventkit/eventstore/driver"

// Position is the place of an event in the global log. Positions are totally
// ordered by (Commit, Prepare) and need not be dense. The zero value is before
// every event: reading or subscribing after it starts from the beginning.
//
// What the two parts hold is the driver's business: KurrentDB stores its
// (commit, prepare) log offsets; PostgreSQL a transaction ID and a sequence;
// SQLite and memory a sequence in Commit and 0 in Prepare. A checkpoint must
// keep both parts, which [Position.String] and [ParsePosition] do.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int { return driver.Position(p).Compare(driver.Position(q)) }

// Less reports whether p is before q.
func (p Position) Less(q Position) bool { return p.Compare(q) < 0 }

// IsZero reports whether p is the start of the log.
func (p Position) IsZero() bool { return p == Position{} }

// String returns the stable checkpoint form "COMMIT/PREPARE" in decimal,
// e.g. "1042/0". [ParsePosition] reads it back.
func (p Position) String() string { return driver.Position(p).String() }

// MarshalText implements encoding.TextMarshaler with the String form.
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

// ParsePosition parses the form [Position.String] returns. Errors match
// [ErrInvalidPosition] and [ErrInvalidArgument].
func ParsePosition(s string) (Position, error) {
	p, err := driver.ParsePosition(s)
	if err != nil {
		return Position{}, invalid(ErrInvalidPosition, "%v", err)
	}
	return Position(p), nil
}
