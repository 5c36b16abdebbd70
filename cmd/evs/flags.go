package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/eventkit/eventstore"
)

// expectedFlag is --expected: any, no-stream, stream-exists or a version.
type expectedFlag struct{ v eventstore.ExpectedVersion }

func (f *expectedFlag) String() string { return f.v.String() }

func (f *expectedFlag) Set(s string) error {
	switch strings.ToLower(s) {
	case "any":
		f.v = eventstore.Any
	case "no-stream":
		f.v = eventstore.NoStream
	case "stream-exists":
		f.v = eventstore.StreamExists
	default:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want any, no-stream, stream-exists or a version number")
		}
		f.v = eventstore.Exact(n)
	}
	return nil
}

// positionFlag is a global-log position in its checkpoint form, COMMIT/PREPARE.
type positionFlag struct {
	pos eventstore.Position
	set bool
}

func (f *positionFlag) String() string {
	if !f.set {
		return ""
	}
	return f.pos.String()
}

func (f *positionFlag) Set(s string) error {
	p, err := eventstore.ParsePosition(s)
	if err != nil {
		return fmt.Errorf("want a position such as 42/0, as printed by read, tail and stats")
	}
	f.pos, f.set = p, true
	return nil
}

// listFlag is a flag that may be repeated; each use adds a value.
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }

func (f *listFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}
