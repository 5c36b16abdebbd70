package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Deleting and truncating streams" and
// docs/retention.md.

func init() { ruleSets = append(ruleSets, retentionRules) }

func retentionRules() []rule {
	del := func(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
		return withCapability[driver.StreamDeleter]("RetentionNotSupported", run)
	}
	trunc := func(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
		return withCapability[driver.StreamTruncater]("RetentionNotSupported", run)
	}
	keep := func(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
		return withCapability[driver.RetentionKeeper]("RetentionNotSupported", run)
	}
	apply := func(run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
		return withCapability[driver.RetentionApplier]("RetentionNotSupported", keep(run))
	}
	return []rule{
		{name: "DeleteStreamRemovesEvents", run: del(testDeleteRemoves)},
		{name: "DeleteStreamExpectations", run: del(testDeleteExpectations)},
		{name: "DeletedStreamRecreatedAfterLastVersion", run: del(testDeletedRecreated)},
		{name: "DeleteStreamRetriedAppend", run: del(testDeleteRetriedAppend)},
		{name: "DeleteStreamRacingAppends", run: del(testDeleteRacingAppends)},
		{name: "DeleteStreamPositionsNeverReused", run: del(testDeletePositions)},
		{name: "DeleteStreamSubscriptionsSkipNothingKept", run: del(testDeleteSubscriptions)},
		{name: "DeletedStreamRecreatedByMultiAppend", run: del(testDeletedMultiAppend)},
		{name: "TruncateStreamRemovesOldest", run: trunc(testTruncate)},
		{name: "TruncateStreamMissingOrDeleted", run: trunc(testTruncateMissing)},
		{name: "TruncateStreamRetriedAppend", run: trunc(testTruncateRetriedAppend)},
		{name: "TruncatedStreamImported", run: trunc(testTruncatedImport)},
		{name: "RetentionMaxCount", run: keep(testRetentionMaxCount)},
		{name: "RetentionMaxCountMultiAppend", run: keep(testRetentionMaxCountMulti)},
		{name: "RetentionMaxAge", run: keep(testRetentionMaxAge)},
		{name: "ApplyRetentionQuietStreams", run: apply(testApplyRetention)},
		{name: "RetentionInvalidInput", run: testRetentionInvalid},
		{name: "RetentionNotSupported", run: testRetentionNotSupported},
	}
}

// checkVersions reads stream s forwards and backwards and checks it holds
// exactly the versions want, and that StreamVersion is version.
func (f *fixture) checkVersions(doing, s string, want []uint64, version uint64) {
	f.t.Helper()
	got := f.readStream(s)
	vs := make([]uint64, len(got))
	for i, ev := range got {
		vs[i] = ev.Version
	}
	if !slices.Equal(vs, want) && !(len(vs) == 0 && len(want) == 0) {
		f.t.Errorf("%s: ReadStream(%q) returned versions %v, want %v", doing, s, vs, want)
	}
	back := collect(f.t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{Backwards: true}))
	bs := make([]uint64, len(back))
	for i, ev := range back {
		bs[len(back)-1-i] = ev.Version
	}
	if !slices.Equal(bs, want) && !(len(bs) == 0 && len(want) == 0) {
		f.t.Errorf("%s: ReadStream(%q, Backwards) returned versions %v (reversed), want %v", doing, s, bs, want)
	}
	if v := f.version(s); v != version {
		f.t.Errorf("%s: StreamVersion(%q): want %d, got %d", doing, s, version, v)
	}
}

// inAll returns the events of stream s in the global log.
func (f *fixture) inAll(s string) []eventstore.RecordedEvent {
	f.t.Helper()
	var out []eventstore.RecordedEvent
	for _, ev := range f.readAll() {
		if ev.StreamID == s {
			out = append(out, ev)
		}
	}
	return out
}

// seq returns the versions from..to.
func seq(from, to uint64) []uint64 {
	var out []uint64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// checkWrongActual checks err is a *WrongExpectedVersionError with actual.
func checkWrongActual(t testing.TB, doing string, err error, actual uint64) {
	t.Helper()
	var wev *eventstore.WrongExpectedVersionError
	switch {
	case err == nil:
		t.Errorf("%s: want ErrWrongExpectedVersion (actual %d), got nil", doing, actual)
	case !errors.Is(err, eventstore.ErrWrongExpectedVersion) || !errors.As(err, &wev):
		t.Errorf("%s: want a *WrongExpectedVersionError, got %v", doing, err)
	case wev.Actual != actual:
		t.Errorf("%s: WrongExpectedVersionError.Actual: want %d, got %d", doing, actual, wev.Actual)
	}
}

// testDeleteRemoves deletes one of two streams: its events leave every read
// path (with its tags, snapshot, retention and listing), the other's stay.
func testDeleteRemoves(t *testing.T, f *fixture) {
	a, b := stream("Del"), stream("Del")
	evs := events(3, "Happened")
	for i := range evs {
		evs[i].Tags = []string{"del:" + a[len(a)-8:]}
	}
	if f.store.Limits().MaxAppendEvents != 0 && f.store.Limits().MaxAppendEvents < 3 {
		t.Fatalf("the driver's MaxAppendEvents %d is below 3", f.store.Limits().MaxAppendEvents)
	}
	if _, err := f.store.Append(f.ctx, a, eventstore.NoStream, evs...); err != nil {
		// A driver without tags (no driver.QueryReader) refuses them.
		for i := range evs {
			evs[i].Tags = nil
		}
		f.mustAppend(a, eventstore.NoStream, evs...)
	}
	kept := f.mustAppend(b, eventstore.NoStream, events(2, "Happened")...)
	f.saveSnapshot(a, eventstore.Snapshot{Version: 3, Data: []byte("state")})
	if _, ok := f.driver.(driver.RetentionKeeper); ok {
		if err := f.store.SetStreamRetention(f.ctx, a, eventstore.Retention{MaxCount: 10}); err != nil {
			t.Fatalf("SetStreamRetention: %v", err)
		}
	}
	if err := f.store.DeleteStream(f.ctx, a, eventstore.Exact(3)); err != nil {
		t.Fatalf("DeleteStream(%q, Exact(3)) of a stream at version 3: %v", a, err)
	}
	f.checkVersions("after DeleteStream", a, nil, 0)
	if got := f.inAll(a); len(got) != 0 {
		t.Errorf("after DeleteStream: ReadAll still returns %d events of %q", len(got), a)
	}
	f.checkVersions("the other stream after DeleteStream", b, seq(1, 2), 2)
	if got := f.inAll(b); len(got) != 2 || got[1].Position != kept.Position {
		t.Errorf("the other stream after DeleteStream: ReadAll returns %d of its events, want 2", len(got))
	}
	f.checkNoSnapshot("after DeleteStream", a)
	if _, ok := f.driver.(driver.RetentionKeeper); ok {
		if r, err := f.store.StreamRetention(f.ctx, a); err != nil || !r.IsZero() {
			t.Errorf("StreamRetention after DeleteStream: want none, got %+v, %v", r, err)
		}
	}
	if evs[0].Tags != nil {
		q := eventstore.Query{Items: []eventstore.QueryItem{{Tags: evs[0].Tags}}}
		if got := f.readQuery(q, eventstore.Position{}); len(got) != 0 {
			t.Errorf("ReadQuery by the deleted events' tag: want nothing, got %d events", len(got))
		}
	}
	if _, ok := f.driver.(driver.StreamLister); ok {
		page, err := f.store.ListStreams(f.ctx, eventstore.ListStreamsOptions{Prefix: a})
		if err != nil || len(page.Streams) != 0 {
			t.Errorf("ListStreams after DeleteStream: want no stream %q, got %v, %v", a, page.Streams, err)
		}
	}
}

// testDeleteExpectations checks DeleteStream's expectation on a stream at
// version 3, on one that never existed and on a deleted one.
func testDeleteExpectations(t *testing.T, f *fixture) {
	type state int
	const (
		existing state = iota // at version 3
		missing
		deleted // was at version 3
	)
	for _, c := range []struct {
		name   string
		state  state
		exp    eventstore.ExpectedVersion
		actual uint64 // of the error; 0 for no error when ok
		ok     bool
	}{
		{"ExistingExact", existing, eventstore.Exact(3), 0, true},
		{"ExistingAny", existing, eventstore.Any, 0, true},
		{"ExistingStreamExists", existing, eventstore.StreamExists, 0, true},
		{"ExistingStaleExact", existing, eventstore.Exact(2), 3, false},
		{"ExistingNoStream", existing, eventstore.NoStream, 3, false},
		{"MissingAny", missing, eventstore.Any, 0, true},
		{"MissingNoStream", missing, eventstore.NoStream, 0, true},
		{"MissingStreamExists", missing, eventstore.StreamExists, 0, false},
		{"MissingExact", missing, eventstore.Exact(1), 0, false},
		{"DeletedAgainAny", deleted, eventstore.Any, 0, true},
		{"DeletedAgainExact", deleted, eventstore.Exact(3), 0, false},
		{"DeletedAgainStreamExists", deleted, eventstore.StreamExists, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := f.sub(t)
			s := stream("DelExp")
			if c.state != missing {
				f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
			}
			if c.state == deleted {
				if err := f.store.DeleteStream(f.ctx, s, eventstore.Any); err != nil {
					t.Fatalf("DeleteStream: %v", err)
				}
			}
			before := f.state(s)
			doing := fmt.Sprintf("DeleteStream(%s) of a stream at version %d", expectationName(c.exp), before.version)
			err := f.store.DeleteStream(f.ctx, s, c.exp)
			if !c.ok {
				checkWrongActual(t, doing, err, c.actual)
				f.checkNothingWritten(doing, before)
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", doing, err)
			}
			f.checkVersions(doing, s, nil, 0)
		})
	}
}

// testDeletedRecreated checks a deleted stream's expectations and that an
// append recreates it after its last version.
func testDeletedRecreated(t *testing.T, f *fixture) {
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
		t.Run(expectationName(exp), func(t *testing.T) {
			f := f.sub(t)
			s := stream("Recreate")
			f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
			if err := f.store.DeleteStream(f.ctx, s, eventstore.Exact(3)); err != nil {
				t.Fatalf("DeleteStream: %v", err)
			}
			for _, stale := range []eventstore.ExpectedVersion{eventstore.StreamExists, eventstore.Exact(3), eventstore.Exact(4)} {
				_, err := f.store.Append(f.ctx, s, stale, events(1, "Stale")...)
				checkWrongActual(t, "append at "+expectationName(stale)+" to a deleted stream", err, 0)
			}
			f.checkVersions("after rejected appends to a deleted stream", s, nil, 0)
			res := f.mustAppend(s, exp, events(2, "Again")...)
			if res.Version != 5 {
				t.Errorf("append of 2 events at %s recreating a stream deleted at version 3: want version 5, got %d", expectationName(exp), res.Version)
			}
			f.checkVersions("the recreated stream", s, seq(4, 5), 5)
			got := collect(t, f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{From: 2, Limit: 1}))
			if len(got) != 1 || got[0].Version != 4 {
				t.Errorf("ReadStream From 2, Limit 1 of a stream recreated at version 4: want version 4, got %v", got)
			}
			if all := f.inAll(s); len(all) != 2 || all[0].Version != 4 {
				t.Errorf("ReadAll of the recreated stream: want versions 4 and 5, got %d events", len(all))
			}
			f.mustAppend(s, eventstore.Exact(5), events(1, "More")...)
			f.checkVersions("the recreated stream appended to", s, seq(4, 6), 6)
		})
	}
}

// testDeletedMultiAppend recreates a deleted stream with a multi-stream
// append (where the driver has one): the same rules as for Append, stale
// expectations fail naming the stream with actual 0, and NoStream or Any
// numbers the events after the last version the stream had.
func testDeletedMultiAppend(t *testing.T, f *fixture) {
	if _, ok := f.driver.(driver.MultiAppender); !ok {
		t.Skip("the driver has no multi-stream append")
	}
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
		t.Run(expectationName(exp), func(t *testing.T) {
			f := f.sub(t)
			s, other := stream("MultiRecreate"), stream("MultiOther")
			f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
			if err := f.store.DeleteStream(f.ctx, s, eventstore.Exact(3)); err != nil {
				t.Fatalf("DeleteStream: %v", err)
			}
			write := func(e eventstore.ExpectedVersion) (eventstore.MultiAppendResult, error) {
				return f.store.AppendMulti(f.ctx, eventstore.MultiAppend{
					Records: []eventstore.Record{
						{Stream: s, Event: events(1, "Again")[0]},
						{Stream: other, Event: events(1, "Other")[0]},
					},
					Expect: []eventstore.StreamExpectation{{Stream: s, Expected: e}},
				})
			}
			for _, stale := range []eventstore.ExpectedVersion{eventstore.StreamExists, eventstore.Exact(3)} {
				_, err := write(stale)
				var conflict *eventstore.AppendConflictError
				if !errors.As(err, &conflict) || len(conflict.Streams) != 1 || conflict.Streams[0].Stream != s || conflict.Streams[0].Actual != 0 {
					t.Errorf("multi-stream append at %s to a deleted stream: want an *AppendConflictError naming %q with actual 0, got %v", expectationName(stale), s, err)
				}
			}
			f.checkVersions("after rejected multi-stream appends to a deleted stream", s, nil, 0)
			if _, err := write(exp); err != nil {
				t.Fatalf("multi-stream append at %s recreating a deleted stream: %v", expectationName(exp), err)
			}
			f.checkVersions("the stream recreated by a multi-stream append", s, seq(4, 4), 4)
			if all := f.inAll(s); len(all) != 1 || all[0].Version != 4 {
				t.Errorf("ReadAll of the recreated stream: want version 4, got %d events", len(all))
			}
		})
	}
}

// testDeleteRetriedAppend retries, after a delete, the append that created
// the stream: it is a new append (the stream's IDs were forgotten), or it
// fails with ErrWrongExpectedVersion; a success means the events are there.
func testDeleteRetriedAppend(t *testing.T, f *fixture) {
	s := stream("DelRetry")
	evs := events(2, "Happened")
	f.mustAppend(s, eventstore.NoStream, evs...)
	if err := f.store.DeleteStream(f.ctx, s, eventstore.Any); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	res, err := f.store.Append(f.ctx, s, eventstore.NoStream, evs...)
	switch {
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		f.checkVersions("a rejected retry after DeleteStream", s, nil, 0)
	case err != nil:
		t.Fatalf("retry after DeleteStream: want success or ErrWrongExpectedVersion, got %v", err)
	default:
		if res.Version != 4 {
			t.Errorf("retry after DeleteStream written again: want version 4, got %d", res.Version)
		}
		f.checkVersions("a retry after DeleteStream written again", s, seq(3, 4), 4)
	}
}

// testDeleteRacingAppends deletes a stream while writers append to it:
// every acknowledged append at or after the first version still readable
// is readable, no version is given twice, and nothing else is readable.
func testDeleteRacingAppends(t *testing.T, f *fixture) {
	s := stream("DelRace")
	f.mustAppend(s, eventstore.NoStream, events(3, "Seed")...)
	const writers, each = 4, 8
	var (
		mu    sync.Mutex
		acked = map[uint64]string{} // version → event ID
		dup   []uint64
		wg    sync.WaitGroup
	)
	gate := make(chan struct{})
	for range writers {
		wg.Go(func() {
			<-gate
			for range each {
				ev := events(1, "Raced")
				res, err := f.store.Append(f.ctx, s, eventstore.Any, ev...)
				if err != nil {
					t.Errorf("append with Any racing DeleteStream: %v", err)
					return
				}
				mu.Lock()
				if _, ok := acked[res.Version]; ok {
					dup = append(dup, res.Version)
				}
				acked[res.Version] = ev[0].ID.String()
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		<-gate
		for range 2 {
			if err := f.store.DeleteStream(f.ctx, s, eventstore.Any); err != nil {
				t.Errorf("DeleteStream racing appends: %v", err)
			}
		}
	})
	close(gate)
	wg.Wait()
	if len(dup) > 0 {
		t.Errorf("appends racing DeleteStream were acknowledged at the same versions %v: a version was reused", dup)
	}
	got := f.readStream(s)
	if len(got) == 0 {
		return // the last delete came after every append
	}
	first := got[0].Version
	for i, ev := range got {
		if id, ok := acked[ev.Version]; !ok || id != ev.ID.String() {
			t.Errorf("after racing appends and deletes: version %d holds event %s, which no acknowledged append wrote there", ev.Version, ev.ID)
		}
		if i > 0 && ev.Version != got[i-1].Version+1 {
			t.Errorf("after racing appends and deletes: versions jump from %d to %d", got[i-1].Version, ev.Version)
		}
	}
	for v := range acked {
		if v >= first && v > got[len(got)-1].Version {
			t.Errorf("acknowledged append at version %d is not readable, the stream ends at %d", v, got[len(got)-1].Version)
		}
	}
}

// testDeletePositions deletes the stream that holds the end of the log,
// twice: each later append takes a position after every deleted one, and
// reads and subscriptions after the deleted positions see it.
func testDeletePositions(t *testing.T, f *fixture) {
	top := eventstore.Position{}
	for i := range 3 {
		s := stream("DelPos")
		res := f.mustAppend(s, eventstore.NoStream, events(2, "Last")...)
		if !top.Less(res.Position) {
			t.Fatalf("round %d: append after deleting the end of the log: position %s, not after the deleted %s", i, res.Position, top)
		}
		top = res.Position
		if err := f.store.DeleteStream(f.ctx, s, eventstore.Any); err != nil {
			t.Fatalf("DeleteStream: %v", err)
		}
		if got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{})); len(got) != 0 {
			t.Errorf("round %d: ReadAll after deleting every event: want nothing, got %q version %d", i, got[0].StreamID, got[0].Version)
		}
	}
	k := stream("DelPosKept")
	res := f.mustAppend(k, eventstore.NoStream, events(1, "Kept")...)
	if !top.Less(res.Position) {
		t.Errorf("append after deleting the end of the log: position %s, not after the deleted %s", res.Position, top)
	}
	got := collect(t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: top}))
	if len(got) != 1 || got[0].ID != res.EventIDs[0] {
		t.Errorf("ReadAll after the deleted end of the log: want the one new event, got %d events", len(got))
	}
	r := f.subscribe(subConfig{what: "a subscription after the deleted end of the log", opts: eventstore.SubscribeOptions{After: top}})
	if ev := r.wait(1)[0]; ev.ID != res.EventIDs[0] {
		t.Errorf("%s: got %q version %d, want the new event", r.what, ev.StreamID, ev.Version)
	}
}

// testDeleteSubscriptions runs a subscription from the start after a
// delete, and one already past the deleted events: each gets every event
// that remains, in order.
func testDeleteSubscriptions(t *testing.T, f *fixture) {
	gone, kept := stream("DelSubGone"), stream("DelSubKept")
	f.mustAppend(kept, eventstore.NoStream, events(1, "Kept")...)
	last := f.mustAppend(gone, eventstore.NoStream, events(3, "Gone")...)
	past := f.subscribe(subConfig{what: "a subscription past the deleted events", opts: eventstore.SubscribeOptions{After: last.Position}})
	if err := f.store.DeleteStream(f.ctx, gone, eventstore.Any); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	after := f.mustAppend(kept, eventstore.Exact(1), events(2, "Kept")...)
	fromStart := f.subscribe(subConfig{what: "a subscription from the start"})
	for _, r := range []*subRun{past, fromStart} {
		want := 2
		if r == fromStart {
			want = 3
		}
		got := r.wait(want)
		for _, ev := range got {
			if ev.StreamID == gone {
				t.Errorf("%s: delivered %q version %d, deleted before it got there", r.what, gone, ev.Version)
			}
		}
		if n := len(got); got[n-1].Position != after.Position {
			t.Errorf("%s: last event delivered at %s, want the last append's %s", r.what, got[n-1].Position, after.Position)
		}
	}
}

// testTruncate truncates a stream of 5 events before each version in turn.
func testTruncate(t *testing.T, f *fixture) {
	for _, c := range []struct {
		before uint64
		kept   []uint64
	}{
		{0, seq(1, 5)}, {1, seq(1, 5)}, {2, seq(2, 5)}, {4, seq(4, 5)},
		{5, seq(5, 5)}, {6, nil}, {100, nil},
	} {
		t.Run(fmt.Sprintf("Before%d", c.before), func(t *testing.T) {
			f := f.sub(t)
			s := stream("Trunc")
			f.mustAppend(s, eventstore.NoStream, events(5, "Happened")...)
			if err := f.store.TruncateStream(f.ctx, s, c.before); err != nil {
				t.Fatalf("TruncateStream(%q, %d): %v", s, c.before, err)
			}
			doing := fmt.Sprintf("after TruncateStream before %d", c.before)
			f.checVersionsAll(doing, s, c.kept, 5)
			// Truncating less, again, changes nothing.
			if err := f.store.TruncateStream(f.ctx, s, c.before/2); err != nil {
				t.Fatalf("TruncateStream(%q, %d) after %d: %v", s, c.before/2, c.before, err)
			}
			f.checVersionsAll(doing+" and again before less", s, c.kept, 5)
			res := f.mustAppend(s, eventstore.Exact(5), events(1, "Later")...)
			if res.Version != 6 {
				t.Errorf("%s: append at Exact(5): want version 6, got %d", doing, res.Version)
			}
			f.checVersionsAll(doing+" and an append", s, append(slices.Clone(c.kept), 6), 6)
			_, err := f.store.Append(f.ctx, s, eventstore.NoStream, events(1, "Stale")...)
			checkWrongActual(t, doing+": append at NoStream", err, 6)
		})
	}
}

// checVersionsAll is checkVersions, and checks ReadAll agrees.
func (f *fixture) checVersionsAll(doing, s string, want []uint64, version uint64) {
	f.t.Helper()
	f.checkVersions(doing, s, want, version)
	all := f.inAll(s)
	vs := make([]uint64, len(all))
	for i, ev := range all {
		vs[i] = ev.Version
	}
	if !slices.Equal(vs, want) && !(len(vs) == 0 && len(want) == 0) {
		f.t.Errorf("%s: ReadAll returned versions %v of %q, want %v", doing, vs, s, want)
	}
}

// testTruncateMissing truncates a stream that never existed and a deleted
// one: neither changes, and neither later appends are hidden.
func testTruncateMissing(t *testing.T, f *fixture) {
	s := stream("TruncMissing")
	if err := f.store.TruncateStream(f.ctx, s, 10); err != nil {
		t.Fatalf("TruncateStream of a stream that never existed: %v", err)
	}
	f.checkVersions("after truncating a missing stream", s, nil, 0)
	f.mustAppend(s, eventstore.NoStream, events(2, "Happened")...)
	f.checkVersions("appended after truncating it while missing", s, seq(1, 2), 2)
	if _, ok := f.driver.(driver.StreamDeleter); !ok {
		return
	}
	if err := f.store.DeleteStream(f.ctx, s, eventstore.Any); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	if err := f.store.TruncateStream(f.ctx, s, 10); err != nil {
		t.Fatalf("TruncateStream of a deleted stream: %v", err)
	}
	f.checkVersions("after truncating a deleted stream", s, nil, 0)
	if _, err := f.store.Append(f.ctx, s, eventstore.Exact(2), events(1, "Stale")...); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Errorf("append at Exact(2) to a deleted stream truncated since: want ErrWrongExpectedVersion, got %v", err)
	}
	f.mustAppend(s, eventstore.NoStream, events(1, "Again")...)
	f.checkVersions("the deleted stream truncated and recreated", s, seq(3, 3), 3)
}

// testTruncateRetriedAppend retries an append whose events were truncated
// since: at an exact expectation it fails or returns the original result;
// at Any it may also be written again, as a new append (a driver may forget
// the IDs of removed events).
func testTruncateRetriedAppend(t *testing.T, f *fixture) {
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
		t.Run(expectationName(exp), func(t *testing.T) {
			f := f.sub(t)
			s := stream("TruncRetry")
			first := events(2, "First")
			f.mustAppend(s, eventstore.NoStream, first...)
			f.mustAppend(s, eventstore.Exact(2), events(2, "Second")...)
			if err := f.store.TruncateStream(f.ctx, s, 3); err != nil {
				t.Fatalf("TruncateStream: %v", err)
			}
			res, err := f.store.Append(f.ctx, s, exp, first...)
			if err != nil && !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Fatalf("retry at %s of a truncated append: want ErrWrongExpectedVersion or the original result, got %v", expectationName(exp), err)
			}
			switch {
			case err == nil && res.Version == 6 && exp == eventstore.Any:
				f.checkVersions("after a retry at Any of a truncated append written again", s, seq(3, 6), 6)
			case err == nil && res.Version != 2:
				t.Errorf("retry at %s of a truncated append: want the original result (version 2) or ErrWrongExpectedVersion, got version %d", expectationName(exp), res.Version)
			default:
				f.checkVersions("after retrying a truncated append", s, seq(3, 4), 4)
			}
		})
	}
}

// testTruncatedImport imports a stream that starts at version 4, as a copy
// of a truncated stream: it reads from 4, and appends follow it.
func testTruncatedImport(t *testing.T, f *fixture) {
	if !f.canImport() {
		t.Skip("the driver does not implement driver.Importer")
	}
	s := stream("TruncImport")
	evs := recorded(s, 4, 2, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	f.mustImport(evs)
	f.checVersionsAll("after importing versions 4 and 5", s, seq(4, 5), 5)
	f.mustAppend(s, eventstore.Exact(5), events(1, "Later")...)
	f.checkVersions("appended after the import", s, seq(4, 6), 6)
	if err := f.store.Import(f.ctx, recorded(s, 9, 1, time.Now())); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Errorf("Import at version 9 into a stream at version 6: want ErrWrongExpectedVersion, got %v", err)
	}
}

// testRetentionMaxCount sets a MaxCount on a stream: it applies at once
// and after every append, until it is removed.
// testRetentionMaxCountMulti checks that a multi-stream append (where the
// driver has one) applies the retention of every stream it writes, as
// Append does.
func testRetentionMaxCountMulti(t *testing.T, f *fixture) {
	if _, ok := f.driver.(driver.MultiAppender); !ok {
		t.Skip("the driver has no multi-stream append")
	}
	kept, plain := stream("MultiMaxCount"), stream("MultiPlain")
	if err := f.store.SetStreamRetention(f.ctx, kept, eventstore.Retention{MaxCount: 2}); err != nil {
		t.Fatalf("SetStreamRetention: %v", err)
	}
	evs := events(6, "Happened")
	var recs []eventstore.Record
	for i, ev := range evs {
		s := kept
		if i%2 == 1 {
			s = plain
		}
		recs = append(recs, eventstore.Record{Stream: s, Event: ev})
	}
	if _, err := f.store.AppendMulti(f.ctx, eventstore.MultiAppend{Records: recs}); err != nil {
		t.Fatalf("AppendMulti: %v", err)
	}
	f.checVersionsAll("a stream with MaxCount 2 after a multi-stream append of 3 of its events", kept, seq(2, 3), 3)
	f.checVersionsAll("a stream without retention written by the same multi-stream append", plain, seq(1, 3), 3)
}

func testRetentionMaxCount(t *testing.T, f *fixture) {
	s := stream("MaxCount")
	f.mustAppend(s, eventstore.NoStream, events(5, "Happened")...)
	r := eventstore.Retention{MaxCount: 3}
	if err := f.store.SetStreamRetention(f.ctx, s, r); err != nil {
		t.Fatalf("SetStreamRetention(%+v): %v", r, err)
	}
	if got, err := f.store.StreamRetention(f.ctx, s); err != nil || got != r {
		t.Errorf("StreamRetention: want %+v, got %+v, %v", r, got, err)
	}
	f.checVersionsAll("after setting MaxCount 3", s, seq(3, 5), 5)
	f.mustAppend(s, eventstore.Exact(5), events(2, "More")...)
	f.checVersionsAll("after appending 2 events with MaxCount 3", s, seq(5, 7), 7)
	f.mustAppend(s, eventstore.Exact(7), events(4, "Many")...)
	f.checVersionsAll("after appending 4 events with MaxCount 3", s, seq(9, 11), 11)
	if err := f.store.SetStreamRetention(f.ctx, s, eventstore.Retention{}); err != nil {
		t.Fatalf("SetStreamRetention(zero): %v", err)
	}
	if got, err := f.store.StreamRetention(f.ctx, s); err != nil || !got.IsZero() {
		t.Errorf("StreamRetention after removing it: want zero, got %+v, %v", got, err)
	}
	f.mustAppend(s, eventstore.Exact(11), events(2, "Kept")...)
	f.checVersionsAll("after removing the retention", s, seq(9, 13), 13)
	// A setting made before the stream has events applies once it has some.
	n := stream("MaxCountNew")
	if err := f.store.SetStreamRetention(f.ctx, n, eventstore.Retention{MaxCount: 1}); err != nil {
		t.Fatalf("SetStreamRetention of a new stream: %v", err)
	}
	f.mustAppend(n, eventstore.NoStream, events(3, "Happened")...)
	f.checVersionsAll("a new stream with MaxCount 1", n, seq(3, 3), 3)
}

// testRetentionMaxAge sets a MaxAge that old events exceed: it removes
// them, up to the first young event.
func testRetentionMaxAge(t *testing.T, f *fixture) {
	s := stream("MaxAge")
	var maxAge time.Duration
	if f.canImport() {
		now := time.Now().UTC()
		evs := recorded(s, 1, 3, now.Add(-5*time.Hour)) // 5, 4 and 3 hours old
		evs = append(evs, recorded(s, 4, 1, now.Add(-time.Minute))...)
		f.mustImport(evs)
		maxAge = 2*time.Hour + 30*time.Minute
	} else {
		f.mustAppend(s, eventstore.NoStream, events(3, "Old")...)
		time.Sleep(1500 * time.Millisecond) // no way to append in the past
		f.mustAppend(s, eventstore.Exact(3), events(1, "Young")...)
		maxAge = time.Second
	}
	if err := f.store.SetStreamRetention(f.ctx, s, eventstore.Retention{MaxAge: maxAge}); err != nil {
		t.Fatalf("SetStreamRetention(MaxAge %s): %v", maxAge, err)
	}
	f.checVersionsAll("after setting MaxAge", s, seq(4, 4), 4)
	f.mustAppend(s, eventstore.Exact(4), events(1, "New")...)
	f.checVersionsAll("after an append with MaxAge", s, seq(4, 5), 5)
}

// testApplyRetention lets the events of a stream with a MaxAge age while
// nothing is appended to it: they stay until ApplyRetention removes them
// (it also applies a MaxCount set while a stream was longer, as an append
// would), and it leaves streams without a retention, or whose events are
// young enough, as they are. A cancelled call removes nothing.
func testApplyRetention(t *testing.T, f *fixture) {
	quiet, young, counted, plain := stream("ApplyQuiet"), stream("ApplyYoung"), stream("ApplyCount"), stream("ApplyPlain")
	const maxAge = time.Second // KurrentDB keeps $maxAge in whole seconds
	for s, r := range map[string]eventstore.Retention{quiet: {MaxAge: maxAge}, young: {MaxAge: time.Hour}, counted: {MaxCount: 2}} {
		if err := f.store.SetStreamRetention(f.ctx, s, r); err != nil {
			t.Fatalf("SetStreamRetention(%q, %+v): %v", s, r, err)
		}
	}
	for _, s := range []string{quiet, young, counted, plain} {
		f.mustAppend(s, eventstore.NoStream, events(3, "Happened")...)
	}
	f.checVersionsAll("the stream with MaxCount 2 after its append", counted, seq(2, 3), 3)
	time.Sleep(maxAge + 500*time.Millisecond) // no way to append in the past and keep the stream quiet
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	before := f.state(plain)
	if _, err := f.store.ApplyRetention(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ApplyRetention with a cancelled context: want context.Canceled, got %v", err)
	}
	f.checkNothingWritten("ApplyRetention with a cancelled context", before)
	res, err := f.store.ApplyRetention(f.ctx)
	if err != nil {
		t.Fatalf("ApplyRetention: %v", err)
	}
	f.checVersionsAll("a quiet stream whose events aged past MaxAge, after ApplyRetention", quiet, nil, 3)
	f.checVersionsAll("a stream whose events are younger than its MaxAge, after ApplyRetention", young, seq(1, 3), 3)
	f.checVersionsAll("a stream with MaxCount 2, after ApplyRetention", counted, seq(2, 3), 3)
	f.checVersionsAll("a stream without retention, after ApplyRetention", plain, seq(1, 3), 3)
	if res.Streams != 0 && res.Streams != 3 {
		t.Errorf("ApplyRetention: examined %d streams, want 3 (the streams with a retention), or 0 from a driver whose backend applies it itself", res.Streams)
	}
	if res.Events != 0 && res.Events != 3 {
		t.Errorf("ApplyRetention: removed %d events, want 3 (or 0 from a driver whose backend applies it itself)", res.Events)
	}
	// Applied again: nothing more to remove.
	if res, err = f.store.ApplyRetention(f.ctx); err != nil || res.Events != 0 {
		t.Errorf("ApplyRetention again: want no event removed, got %+v, %v", res, err)
	}
	f.checVersionsAll("a stream without retention, after ApplyRetention twice", plain, seq(1, 3), 3)
}

// testRetentionInvalid checks the Store refuses bad input before the
// driver, and a cancelled context, whatever the driver implements.
func testRetentionInvalid(t *testing.T, f *fixture) {
	s := stream("RetBad")
	f.mustAppend(s, eventstore.NoStream, events(2, "Happened")...)
	for _, bad := range []string{"", "tab\there", "$system"} {
		checkInvalid(t, fmt.Sprintf("DeleteStream(%q)", bad), f.store.DeleteStream(f.ctx, bad, eventstore.Any), eventstore.ErrInvalidStreamID)
		checkInvalid(t, fmt.Sprintf("TruncateStream(%q)", bad), f.store.TruncateStream(f.ctx, bad, 2), eventstore.ErrInvalidStreamID)
		checkInvalid(t, fmt.Sprintf("SetStreamRetention(%q)", bad), f.store.SetStreamRetention(f.ctx, bad, eventstore.Retention{MaxCount: 1}), eventstore.ErrInvalidStreamID)
		_, err := f.store.StreamRetention(f.ctx, bad)
		checkInvalid(t, fmt.Sprintf("StreamRetention(%q)", bad), err, eventstore.ErrInvalidStreamID)
	}
	checkInvalid(t, "SetStreamRetention with a negative MaxAge", f.store.SetStreamRetention(f.ctx, s, eventstore.Retention{MaxAge: -time.Second}), eventstore.ErrInvalidArgument)
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	before := f.state(s)
	for name, err := range map[string]error{
		"DeleteStream":       f.store.DeleteStream(ctx, s, eventstore.Any),
		"TruncateStream":     f.store.TruncateStream(ctx, s, 2),
		"SetStreamRetention": f.store.SetStreamRetention(ctx, s, eventstore.Retention{MaxCount: 1}),
	} {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, eventstore.ErrNotSupported) {
			t.Errorf("%s with a cancelled context: want context.Canceled, got %v", name, err)
		}
	}
	f.checkNothingWritten("calls with a cancelled context", before)
}

// testRetentionNotSupported checks a driver without the capabilities makes
// the Store return ErrNotSupported.
func testRetentionNotSupported(t *testing.T, f *fixture) {
	_, del := f.driver.(driver.StreamDeleter)
	_, trunc := f.driver.(driver.StreamTruncater)
	_, keep := f.driver.(driver.RetentionKeeper)
	_, apply := f.driver.(driver.RetentionApplier)
	if del && trunc && keep && apply {
		t.Skip("the driver implements driver.StreamDeleter, StreamTruncater, RetentionKeeper and RetentionApplier: the other retention rules apply")
	}
	s := stream("RetNS")
	f.mustAppend(s, eventstore.NoStream, events(2, "Happened")...)
	check := func(name string, has bool, err error) {
		if !has && !errors.Is(err, eventstore.ErrNotSupported) {
			t.Errorf("%s without its driver capability: want ErrNotSupported, got %v", name, err)
		}
	}
	if !del {
		check("DeleteStream", del, f.store.DeleteStream(f.ctx, s, eventstore.Any))
	}
	if !trunc {
		check("TruncateStream", trunc, f.store.TruncateStream(f.ctx, s, 2))
	}
	if !keep {
		check("SetStreamRetention", keep, f.store.SetStreamRetention(f.ctx, s, eventstore.Retention{MaxCount: 1}))
		_, err := f.store.StreamRetention(f.ctx, s)
		check("StreamRetention", keep, err)
	}
	if !apply {
		_, err := f.store.ApplyRetention(f.ctx)
		check("ApplyRetention", apply, err)
	}
	f.checkVersions("after unsupported calls", s, seq(1, 2), 2)
}
