package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Hostile input to DeleteStream, TruncateStream and SetStreamRetention
// (docs/semantics.md "Deleting and truncating streams"): every bad stream
// ID and an unknown expectation are rejected before the driver is asked;
// expectations far past the stream's version fail and remove nothing;
// before of 0, 1, the version plus one and far past it behave as the
// rules say; retentions of the largest values keep everything and are not
// lost, and the smallest MaxAge is not rounded away to "no limit"; done
// contexts change nothing.

func init() { ruleSets = append(ruleSets, hostileRetentionRules) }

func hostileRetentionRules() []rule {
	return []rule{
		{name: "HostileRetentionNamesRejected", run: testHostileRetentionNames},
		{name: "HostileDeleteFarExpectations", run: withCapability[driver.StreamDeleter]("RetentionNotSupported", testHostileDeleteFar)},
		{name: "HostileTruncateBounds", run: withCapability[driver.StreamTruncater]("RetentionNotSupported", testHostileTruncateBounds)},
		{name: "HostileRetentionExtremes", run: withCapability[driver.RetentionKeeper]("RetentionNotSupported", testHostileRetentionExtremes)},
		{name: "HostileRetentionDoneContext", run: testHostileRetentionDone},
	}
}

// testHostileRetentionNames calls each retention method with every bad
// stream ID and DeleteStream with an unknown expectation: the specific
// error, on every driver, and nothing removed.
func testHostileRetentionNames(t *testing.T, f *fixture) {
	s := stream("RetName")
	f.mustAppend(s, eventstore.NoStream, events(2, "Happened")...)
	before := f.state(s)
	for _, bad := range badNames() {
		checkInvalid(t, fmt.Sprintf("DeleteStream(%q)", bad.value), f.store.DeleteStream(f.ctx, bad.value, eventstore.Any), eventstore.ErrInvalidStreamID)
		checkInvalid(t, fmt.Sprintf("TruncateStream(%q, 2)", bad.value), f.store.TruncateStream(f.ctx, bad.value, 2), eventstore.ErrInvalidStreamID)
		checkInvalid(t, fmt.Sprintf("TruncateStream(%q, 0)", bad.value), f.store.TruncateStream(f.ctx, bad.value, 0), eventstore.ErrInvalidStreamID)
		checkInvalid(t, fmt.Sprintf("SetStreamRetention(%q)", bad.value), f.store.SetStreamRetention(f.ctx, bad.value, eventstore.Retention{MaxCount: 1}), eventstore.ErrInvalidStreamID)
		_, err := f.store.StreamRetention(f.ctx, bad.value)
		checkInvalid(t, fmt.Sprintf("StreamRetention(%q)", bad.value), err, eventstore.ErrInvalidStreamID)
	}
	checkInvalid(t, "DeleteStream with an unknown expectation", f.store.DeleteStream(f.ctx, s, unknownExpectation), eventstore.ErrInvalidVersion)
	for _, age := range []time.Duration{-1, math.MinInt64} {
		checkInvalid(t, fmt.Sprintf("SetStreamRetention with MaxAge %d", age), f.store.SetStreamRetention(f.ctx, s, eventstore.Retention{MaxCount: 1, MaxAge: age}), eventstore.ErrInvalidArgument)
	}
	_, err := f.store.Append(f.ctx, s, unknownExpectation, events(1, "Happened")...)
	checkInvalid(t, "append with an unknown expectation", err, eventstore.ErrInvalidVersion)
	f.checkNothingWritten("calls with bad stream IDs or expectations", before)
}

// testHostileDeleteFar deletes with expectations that do not hold, some
// far past the stream's version: a *WrongExpectedVersionError with the
// actual version, nothing removed.
func testHostileDeleteFar(t *testing.T, f *fixture) {
	s, missing := stream("DelFar"), stream("DelFar")
	f.mustAppend(s, eventstore.NoStream, events(2, "Happened")...)
	for _, tc := range []struct {
		stream string
		exp    eventstore.ExpectedVersion
		actual uint64
	}{
		{s, eventstore.NoStream, 2}, {s, eventstore.Exact(1), 2}, {s, eventstore.Exact(3), 2},
		{s, eventstore.Exact(1 << 63), 2}, {s, eventstore.Exact(math.MaxUint64), 2},
		{missing, eventstore.StreamExists, 0}, {missing, eventstore.Exact(1), 0}, {missing, eventstore.Exact(math.MaxUint64), 0},
	} {
		doing := fmt.Sprintf("DeleteStream at %s of a stream at version %d", expectationName(tc.exp), tc.actual)
		before := f.state(tc.stream)
		err := f.store.DeleteStream(f.ctx, tc.stream, tc.exp)
		checkWrongActual(t, doing, err, tc.actual)
		f.checkNothingWritten(doing, before)
	}
	if err := f.store.DeleteStream(f.ctx, s, eventstore.Exact(2)); err != nil {
		t.Fatalf("DeleteStream at Exact(2) after the failed ones: %v", err)
	}
	f.checkVersions("deleted", s, nil, 0)
}

// testHostileTruncateBounds truncates with before of 0, 1, inside, at the
// version plus one, and far past it; truncating less than before changes
// nothing; later appends are kept.
func testHostileTruncateBounds(t *testing.T, f *fixture) {
	for _, far := range []uint64{7, 1 << 63, math.MaxUint64} {
		t.Run(fmt.Sprint(far), func(t *testing.T) {
			t.Parallel()
			f := f.sub(t)
			s := stream("TruncFar")
			f.mustAppend(s, eventstore.NoStream, events(5, "Happened")...)
			for _, before := range []uint64{0, 1} {
				if err := f.store.TruncateStream(f.ctx, s, before); err != nil {
					t.Fatalf("TruncateStream(%d): %v", before, err)
				}
				f.checVersionsAll(fmt.Sprintf("after TruncateStream(%d)", before), s, seq(1, 5), 5)
			}
			if err := f.store.TruncateStream(f.ctx, s, 3); err != nil {
				t.Fatalf("TruncateStream(3): %v", err)
			}
			f.checVersionsAll("after TruncateStream(3)", s, seq(3, 5), 5)
			if err := f.store.TruncateStream(f.ctx, s, 2); err != nil {
				t.Fatalf("TruncateStream(2) after TruncateStream(3): %v", err)
			}
			f.checVersionsAll("after TruncateStream(2) after TruncateStream(3)", s, seq(3, 5), 5)
			if err := f.store.TruncateStream(f.ctx, s, far); err != nil {
				t.Fatalf("TruncateStream(%d) of a stream at version 5: %v", far, err)
			}
			f.checVersionsAll(fmt.Sprintf("after TruncateStream(%d)", far), s, nil, 5)
			f.mustAppend(s, eventstore.Exact(5), events(2, "Later")...)
			f.checVersionsAll(fmt.Sprintf("appended after TruncateStream(%d)", far), s, seq(6, 7), 7)
			if err := f.store.TruncateStream(f.ctx, s, 1); err != nil {
				t.Fatalf("TruncateStream(1) at the end: %v", err)
			}
			f.checVersionsAll("after TruncateStream(1) at the end", s, seq(6, 7), 7)
		})
	}
}

// testHostileRetentionExtremes sets retentions of the largest values: they
// keep every event, later appends too, and StreamRetention reads back a
// setting at least as large (the Store keeps MaxCount up to
// math.MaxInt64 and MaxAge up to MaxRetentionAge, rounded up to a
// microsecond; a driver may round MaxAge up further), never none. The smallest MaxAge, one nanosecond, is a limit, not "none": it
// reads back non-zero and, on a driver that imports, removes events
// recorded long ago.
func testHostileRetentionExtremes(t *testing.T, f *fixture) {
	for _, r := range []eventstore.Retention{
		{MaxCount: math.MaxUint64},
		{MaxCount: 1 << 63},
		{MaxCount: 1<<63 - 1},
		{MaxAge: math.MaxInt64},
		{MaxAge: 200 * 365 * 24 * time.Hour},
		{MaxCount: math.MaxUint64, MaxAge: math.MaxInt64},
	} {
		t.Run(fmt.Sprintf("%d/%d", r.MaxCount, r.MaxAge), func(t *testing.T) {
			t.Parallel()
			f := f.sub(t)
			s := stream("RetFar")
			f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
			doing := fmt.Sprintf("SetStreamRetention(MaxCount %d, MaxAge %s)", r.MaxCount, r.MaxAge)
			if err := f.store.SetStreamRetention(f.ctx, s, r); err != nil {
				t.Fatalf("%s: %v", doing, err)
			}
			f.checVersionsAll(doing, s, seq(1, 3), 3)
			f.mustAppend(s, eventstore.Exact(3), events(2, "Later")...)
			f.checVersionsAll("an append after "+doing, s, seq(1, 5), 5)
			got, err := f.store.StreamRetention(f.ctx, s)
			if err != nil {
				t.Fatalf("StreamRetention after %s: %v", doing, err)
			}
			if !atLeast(got, r) {
				t.Errorf("StreamRetention after %s: got MaxCount %d, MaxAge %s: want each at least as set (or the largest the driver keeps)", doing, got.MaxCount, got.MaxAge)
			}
		})
	}
	t.Run("MaxAge1ns", func(t *testing.T) {
		t.Parallel()
		f := f.sub(t)
		s := stream("RetTiny")
		if f.canImport() {
			f.mustImport(recorded(s, 1, 3, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)))
		} else {
			f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
		}
		r := eventstore.Retention{MaxAge: time.Nanosecond}
		if err := f.store.SetStreamRetention(f.ctx, s, r); err != nil {
			t.Fatalf("SetStreamRetention(MaxAge 1ns): %v", err)
		}
		got, err := f.store.StreamRetention(f.ctx, s)
		if err != nil {
			t.Fatalf("StreamRetention after SetStreamRetention(MaxAge 1ns): %v", err)
		}
		if got.MaxAge < time.Nanosecond || got.MaxCount != 0 {
			t.Errorf("StreamRetention after SetStreamRetention(MaxAge 1ns): got MaxCount %d, MaxAge %s: a MaxAge rounded to none keeps everything", got.MaxCount, got.MaxAge)
		}
		if f.canImport() {
			f.checVersionsAll("events recorded in 2001 after SetStreamRetention(MaxAge 1ns)", s, nil, 3)
		}
	})
}

// atLeast reports whether got keeps at least what want keeps: each limit of
// want is set in got, MaxCount at least as large up to the largest int64,
// MaxAge at least as long up to MaxRetentionAge.
func atLeast(got, want eventstore.Retention) bool {
	if (want.MaxCount == 0) != (got.MaxCount == 0) || (want.MaxAge == 0) != (got.MaxAge == 0) {
		return false
	}
	return got.MaxCount >= min(want.MaxCount, math.MaxInt64) && got.MaxAge >= min(want.MaxAge, eventstore.MaxRetentionAge)
}

// testHostileRetentionDone calls the retention methods with done contexts:
// the context's error (ErrNotSupported without the capability), nothing
// changed.
func testHostileRetentionDone(t *testing.T, f *fixture) {
	_, del := f.driver.(driver.StreamDeleter)
	_, trunc := f.driver.(driver.StreamTruncater)
	_, keep := f.driver.(driver.RetentionKeeper)
	s := stream("RetDone")
	f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
	for _, c := range doneContexts(f) {
		before := f.state(s)
		for _, call := range []struct {
			name string
			has  bool
			do   func(ctx context.Context) error
		}{
			{"DeleteStream(Any)", del, func(ctx context.Context) error { return f.store.DeleteStream(ctx, s, eventstore.Any) }},
			{"DeleteStream(Exact(3))", del, func(ctx context.Context) error { return f.store.DeleteStream(ctx, s, eventstore.Exact(3)) }},
			{"TruncateStream(3)", trunc, func(ctx context.Context) error { return f.store.TruncateStream(ctx, s, 3) }},
			{"TruncateStream(max)", trunc, func(ctx context.Context) error { return f.store.TruncateStream(ctx, s, math.MaxUint64) }},
			{"TruncateStream(1)", trunc, func(ctx context.Context) error { return f.store.TruncateStream(ctx, s, 1) }},
			{"SetStreamRetention(MaxCount 1)", keep, func(ctx context.Context) error {
				return f.store.SetStreamRetention(ctx, s, eventstore.Retention{MaxCount: 1})
			}},
			{"StreamRetention", keep, func(ctx context.Context) error { _, err := f.store.StreamRetention(ctx, s); return err }},
		} {
			err := call.do(c.ctx)
			checkDone(t, fmt.Sprintf("%s with a %s context", call.name, c.name), err, c.want, call.has)
		}
		f.checkNothingWritten(fmt.Sprintf("retention calls with a %s context", c.name), before)
		if keep {
			if r, err := f.store.StreamRetention(f.ctx, s); err != nil || !r.IsZero() {
				t.Errorf("SetStreamRetention with a %s context, then StreamRetention: want none, got %+v (err %v)", c.name, r, err)
			}
		}
	}
	if errors.Is(f.store.DeleteStream(f.ctx, s, eventstore.Exact(3)), eventstore.ErrWrongExpectedVersion) {
		t.Errorf("DeleteStream at Exact(3) after the calls with done contexts: the stream moved")
	}
}
