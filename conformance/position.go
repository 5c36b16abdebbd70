package conformance

import (
	"errors"
	"fmt"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Positions and the global log".

func init() { ruleSets = append(ruleSets, positionRules) }

func positionRules() []rule {
	return []rule{
		{name: "PositionStringRoundTrip", run: testPositionStringRoundTrip},
		{name: "ParsePositionRejectsJunk", run: testParsePositionRejectsJunk},
		{name: "PositionCompareFollowsLog", run: testPositionCompare},
		{name: "AppendResultPositionAsAfter", run: testAppendResultPositionAsAfter},
		{name: "NoSkipUnderConcurrentWriters", run: testNoSkip},
	}
}

func testPositionStringRoundTrip(t *testing.T, f *fixture) {
	m := f.seedLog()
	positions := []eventstore.Position{{}}
	for _, ev := range m.log {
		positions = append(positions, ev.Position)
	}
	for _, p := range positions {
		s := p.String()
		got, err := eventstore.ParsePosition(s)
		if err != nil || got != p {
			t.Errorf("ParsePosition(%q), the String of position %#v: want it back and no error, got %#v and %v", s, p, got, err)
		}
		text, err := p.MarshalText()
		if err != nil || string(text) != s {
			t.Errorf("MarshalText of position %#v: want %q, got %q and %v", p, s, text, err)
		}
		var back eventstore.Position
		if err := back.UnmarshalText(text); err != nil || back != p {
			t.Errorf("UnmarshalText(%q): want %#v, got %#v and %v", text, p, back, err)
		}
	}
	// A parsed checkpoint reads exactly like the position it came from.
	mid := m.log[len(m.log)/2].Position
	parsed, err := eventstore.ParsePosition(mid.String())
	if err != nil {
		t.Fatalf("ParsePosition(%q): %v", mid.String(), err)
	}
	got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: parsed}))
	sameEvents(t, fmt.Sprintf("ReadAll After ParsePosition(%q)", mid.String()), got, m.log[len(m.log)/2+1:])
}

func testParsePositionRejectsJunk(t *testing.T, f *fixture) {
	for _, s := range []string{
		"", "/", "1", "1/", "/1", "1/2/3", "a/b", "1/b", "a/1", "-1/0", "1/-1", "+1/0", "01/0", "1/00",
		" 1/0", "1/0 ", "1 /0", "1.0/0", "0x1/0", "1e3/0", "18446744073709551616/0", "0/18446744073709551616",
		"1\\0", "1:0", "１/0", "1/0\n", "\x00",
	} {
		p, err := eventstore.ParsePosition(s)
		if !errors.Is(err, eventstore.ErrInvalidPosition) || !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("ParsePosition(%q): want an error matching ErrInvalidPosition and ErrInvalidArgument, got %#v and %v", s, p, err)
		}
		var q eventstore.Position
		if err := q.UnmarshalText([]byte(s)); !errors.Is(err, eventstore.ErrInvalidPosition) {
			t.Errorf("UnmarshalText(%q): want an error matching ErrInvalidPosition, got %v", s, err)
		}
	}
}

func testPositionCompare(t *testing.T, f *fixture) {
	log := f.seedLog().log
	var zero eventstore.Position
	for i, ev := range log {
		p := ev.Position
		if p.Compare(p) != 0 || p.Less(p) {
			t.Errorf("position %s of event %d: Compare with itself is %d and Less %v, want 0 and false", p, i, p.Compare(p), p.Less(p))
		}
		if p.IsZero() || zero.Compare(p) != -1 || p.Compare(zero) != 1 || !zero.Less(p) {
			t.Errorf("position %s of event %d: want it after the zero Position (Compare -1 and +1, Less), got IsZero %v, %d, %d, %v",
				p, i, p.IsZero(), zero.Compare(p), p.Compare(zero), zero.Less(p))
		}
		for j := i + 1; j < len(log); j++ {
			q := log[j].Position
			if p.Compare(q) != -1 || q.Compare(p) != 1 || !p.Less(q) || q.Less(p) {
				t.Errorf("events %d at %s and %d at %s in log order: want Compare -1 and +1 and Less only one way, got %d, %d, %v, %v",
					i, p, j, q, p.Compare(q), q.Compare(p), p.Less(q), q.Less(p))
			}
		}
	}
}

func testAppendResultPositionAsAfter(t *testing.T, f *fixture) {
	a, b := stream("A"), stream("B")
	resA := f.mustAppend(a, eventstore.NoStream, events(3, "First")...)
	resB := f.mustAppend(b, eventstore.NoStream, events(2, "Second")...)
	resA2 := f.mustAppend(a, eventstore.Exact(3), events(4, "Third")...)
	log := f.readAll()
	if len(log) != 9 {
		t.Fatalf("appends of 3, 2 and 4 events: read all returned %d events, want 9: %s", len(log), describe(log))
	}
	for _, c := range []struct {
		name string
		res  eventstore.AppendResult
		last int // index in log of the append's last event
	}{{"first", resA, 2}, {"second", resB, 4}, {"third", resA2, 8}} {
		if c.res.Position != log[c.last].Position {
			t.Errorf("%s append: result position %s is not its last event's position %s", c.name, c.res.Position, log[c.last].Position)
		}
		got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: c.res.Position}))
		sameEvents(t, fmt.Sprintf("ReadAll After the %s append's result position %s", c.name, c.res.Position), got, log[c.last+1:])
		got = collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Before: c.res.Position}))
		sameEvents(t, fmt.Sprintf("ReadAll Before the %s append's result position %s", c.name, c.res.Position), got, log[:c.last])
	}
}
