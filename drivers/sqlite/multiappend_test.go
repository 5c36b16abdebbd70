package sqlite_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newStore(t testing.TB) *eventstore.Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
}

// tagged returns a JSON event of typ with tags.
func tagged(typ string, tags ...string) eventstore.Event {
	e := eventstore.NewEvent(typ, []byte(`{}`))
	e.Tags = tags
	return e
}

func readQuery(t testing.TB, s *eventstore.Store, q eventstore.Query, opts eventstore.ReadQueryOptions) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range s.ReadQuery(t.Context(), q, opts) {
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

func TestAppendMultiTransfer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	_, err := s.Append(ctx, "Account-a", eventstore.NoStream, tagged("Opened", "account:a"))
	require.NoError(t, err)
	_, err = s.Append(ctx, "Other-1", eventstore.NoStream, events(1, "X")...)
	require.NoError(t, err)

	recs := []eventstore.Record{
		{Stream: "Account-a", Event: tagged("Debited", "account:a", "transfer:t1")},
		{Stream: "Account-b", Event: tagged("Credited", "account:b", "transfer:t1")},
		{Stream: "Account-a", Event: tagged("Noted")},
	}
	res, err := s.AppendMulti(ctx, eventstore.MultiAppend{
		Records: recs,
		Expect: []eventstore.StreamExpectation{
			{Stream: "Account-a", Expected: eventstore.Exact(1)},
			{Stream: "Account-b", Expected: eventstore.NoStream},
			{Stream: "Other-1", Expected: eventstore.StreamExists},
		},
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"Account-a": 3, "Account-b": 1}, res.Versions, "check-only streams are absent")
	assert.Equal(t, eventstore.Position{Commit: 5}, res.Position)

	all := readAll(t, s, eventstore.ReadAllOptions{})
	require.Len(t, all, 5)
	for i, r := range recs { // slice order, consecutive positions
		got := all[2+i]
		assert.Equal(t, r.Stream, got.StreamID)
		assert.Equal(t, r.Event.ID, got.ID)
		assert.Equal(t, uint64(3+i), got.Position.Commit)
		assert.Equal(t, r.Event.Tags, got.Tags, "ReadAll keeps tags")
	}
	assert.Nil(t, all[1].Tags, "an untagged event reads nil tags")
	a := readStream(t, s, "Account-a")
	require.Len(t, a, 3)
	assert.Equal(t, []uint64{1, 2, 3}, []uint64{a[0].Version, a[1].Version, a[2].Version})
	assert.Equal(t, []string{"account:a", "transfer:t1"}, a[1].Tags, "ReadStream keeps tags")
	assert.Nil(t, a[2].Tags)

	got := readQuery(t, s, eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"transfer:t1"}}}}, eventstore.ReadQueryOptions{})
	require.Len(t, got, 2)
	assert.Equal(t, recs[0].Event.ID, got[0].ID)
	assert.Equal(t, recs[1].Event.Tags, got[1].Tags, "ReadQuery keeps tags")
}

func TestAppendMultiNamesEveryFailedStream(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	for _, st := range []string{"A-1", "B-1", "C-1"} {
		_, err := s.Append(ctx, st, eventstore.NoStream, events(2, "X")...)
		require.NoError(t, err)
	}
	before := readAll(t, s, eventstore.ReadAllOptions{})
	_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
		Records: []eventstore.Record{
			{Stream: "A-1", Event: tagged("X", "k:1")},
			{Stream: "B-1", Event: tagged("X")},
			{Stream: "D-1", Event: tagged("X")},
		},
		Expect: []eventstore.StreamExpectation{
			{Stream: "A-1", Expected: eventstore.Exact(1)},     // fails: at 2
			{Stream: "B-1", Expected: eventstore.Exact(2)},     // holds
			{Stream: "C-1", Expected: eventstore.NoStream},     // fails: at 2, check only
			{Stream: "D-1", Expected: eventstore.StreamExists}, // fails: at 0
		},
	})
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	assert.NotErrorIs(t, err, eventstore.ErrAppendConditionFailed)
	var ce *eventstore.AppendConflictError
	require.ErrorAs(t, err, &ce)
	assert.False(t, ce.Condition)
	assert.Equal(t, []eventstore.WrongExpectedVersionError{
		{Stream: "A-1", Expected: eventstore.Exact(1), Actual: 2},
		{Stream: "C-1", Expected: eventstore.NoStream, Actual: 2},
		{Stream: "D-1", Expected: eventstore.StreamExists, Actual: 0},
	}, ce.Streams)
	assert.Equal(t, before, readAll(t, s, eventstore.ReadAllOptions{}), "nothing written")
	assert.Empty(t, readQuery(t, s, eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"k:1"}}}}, eventstore.ReadQueryOptions{}), "no tags indexed")
}

// TestAppendCondition covers the condition's semantics: a matching event
// after After fails the append, one at or before After does not, and an
// event of another type, or missing one of the item's tags, never does.
func TestAppendCondition(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	r1, err := s.Append(ctx, "Course-1", eventstore.NoStream,
		tagged("CourseDefined", "course:c1"),
		tagged("StudentSubscribed", "course:c1", "student:s1"),
		tagged("StudentSubscribed", "course:c2", "student:s2"),
		tagged("Other", "course:c1", "student:s3"))
	require.NoError(t, err)
	require.Equal(t, uint64(4), r1.Position.Commit)
	item := func(types []string, tags ...string) eventstore.QueryItem {
		return eventstore.QueryItem{Types: types, Tags: tags}
	}
	sub := []string{"StudentSubscribed"}
	for _, tc := range []struct {
		name  string
		q     eventstore.Query
		after eventstore.Position
		fails bool
	}{
		{"tag and type match", eventstore.Query{Items: []eventstore.QueryItem{item(sub, "course:c1")}}, eventstore.Position{}, true},
		{"at or before After", eventstore.Query{Items: []eventstore.QueryItem{item(sub, "course:c1")}}, eventstore.Position{Commit: 2}, false},
		{"after After", eventstore.Query{Items: []eventstore.QueryItem{item(sub, "course:c2")}}, eventstore.Position{Commit: 2}, true},
		{"all tags of the item", eventstore.Query{Items: []eventstore.QueryItem{item(nil, "course:c1", "student:s2")}}, eventstore.Position{}, false},
		{"all tags, any type", eventstore.Query{Items: []eventstore.QueryItem{item(nil, "student:s3", "course:c1")}}, eventstore.Position{}, true},
		{"another type", eventstore.Query{Items: []eventstore.QueryItem{item([]string{"Nope"}, "course:c1")}}, eventstore.Position{}, false},
		{"types only", eventstore.Query{Items: []eventstore.QueryItem{item([]string{"CourseDefined", "Nope"})}}, eventstore.Position{}, true},
		{"types only after", eventstore.Query{Items: []eventstore.QueryItem{item([]string{"CourseDefined"})}}, eventstore.Position{Commit: 1}, false},
		{"second item matches", eventstore.Query{Items: []eventstore.QueryItem{item(nil, "nope"), item(sub, "student:s2")}}, eventstore.Position{Commit: 2}, true},
		{"no items: any event", eventstore.Query{}, eventstore.Position{Commit: 3}, true},
		{"repeated tags", eventstore.Query{Items: []eventstore.QueryItem{item(nil, "course:c1", "course:c1", "student:s1")}}, eventstore.Position{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "Probe-" + uuid.NewString()
			e := tagged("Probe", "probe:x")
			_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
				Records:   []eventstore.Record{{Stream: stream, Event: e}},
				Condition: &eventstore.AppendCondition{FailIfEventsMatch: tc.q, After: tc.after},
			})
			if tc.fails {
				require.ErrorIs(t, err, eventstore.ErrAppendConditionFailed)
				assert.NotErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
				var ce *eventstore.AppendConflictError
				require.ErrorAs(t, err, &ce)
				assert.True(t, ce.Condition)
				assert.Empty(t, readStream(t, s, stream), "nothing written")
				return
			}
			require.NoError(t, err)
			assert.Len(t, readStream(t, s, stream), 1)
		})
	}

	// A query without items, after the last position: nothing follows it.
	head, err := s.Head(ctx)
	require.NoError(t, err)
	_, err = s.AppendMulti(ctx, eventstore.MultiAppend{
		Records:   []eventstore.Record{{Stream: "Probe-head", Event: tagged("Probe")}},
		Condition: &eventstore.AppendCondition{After: head},
	})
	require.NoError(t, err)
}

// TestAppendConditionAndExpectationsBothReported: one error names the
// failed streams and the failed condition.
func TestAppendConditionAndExpectationsBothReported(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	_, err := s.Append(ctx, "User-1", eventstore.NoStream, tagged("Registered", "username:ada"))
	require.NoError(t, err)
	_, err = s.AppendMulti(ctx, eventstore.MultiAppend{
		Records: []eventstore.Record{{Stream: "User-1", Event: tagged("Registered", "username:ada")}},
		Expect:  []eventstore.StreamExpectation{{Stream: "User-1", Expected: eventstore.NoStream}},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{
			{Types: []string{"Registered"}, Tags: []string{"username:ada"}}}}},
	})
	require.ErrorIs(t, err, eventstore.ErrAppendConditionFailed)
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	var ce *eventstore.AppendConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, []eventstore.WrongExpectedVersionError{{Stream: "User-1", Expected: eventstore.NoStream, Actual: 1}}, ce.Streams)
}

func TestAppendMultiRetry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	req := eventstore.MultiAppend{
		Records: []eventstore.Record{
			{Stream: "A-1", Event: tagged("X", "t:1")},
			{Stream: "B-1", Event: tagged("Y")},
			{Stream: "A-1", Event: tagged("Z", "t:2", "t:1")},
		},
		Expect: []eventstore.StreamExpectation{{Stream: "A-1", Expected: eventstore.NoStream}},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{
			{Tags: []string{"t:1"}}}}},
	}
	orig, err := s.AppendMulti(ctx, req)
	require.NoError(t, err)
	_, err = s.Append(ctx, "B-1", eventstore.Any, events(1, "Later")...)
	require.NoError(t, err)
	n := len(readAll(t, s, eventstore.ReadAllOptions{}))

	// The same request again: the original result, although its own events
	// now match the condition and A-1 is no longer new.
	again, err := s.AppendMulti(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, orig.Position, again.Position)
	assert.Equal(t, orig.Versions, again.Versions)
	assert.Len(t, readAll(t, s, eventstore.ReadAllOptions{}), n, "a retry writes nothing")

	// The same IDs with other content: a duplicate event ID, naming the
	// record.
	changed := slices.Clone(req.Records)
	changed[2].Event.Tags = []string{"t:2"}
	_, err = s.AppendMulti(ctx, eventstore.MultiAppend{Records: changed, Expect: req.Expect})
	require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
	var de *eventstore.DuplicateEventIDError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "tags", de.Field)
	assert.Equal(t, req.Records[2].Event.ID, de.ID)
	assert.Equal(t, "A-1", de.Stream)

	// The first ID reused with other events: not a retry, and a conflict
	// on the stream whose append began with it, as for Append, and on
	// every stream whose expectation fails; none other.
	reused := []eventstore.Record{req.Records[0], {Stream: "B-1", Event: tagged("Y")}, {Stream: "C-1", Event: tagged("Y")}}
	_, err = s.AppendMulti(ctx, eventstore.MultiAppend{Records: reused, Expect: []eventstore.StreamExpectation{
		{Stream: "C-1", Expected: eventstore.StreamExists}}})
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	var ce *eventstore.AppendConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, []eventstore.WrongExpectedVersionError{
		{Stream: "A-1", Expected: eventstore.Any, Actual: 2},
		{Stream: "C-1", Expected: eventstore.StreamExists, Actual: 0},
	}, ce.Streams)
	assert.Len(t, readAll(t, s, eventstore.ReadAllOptions{}), n, "nothing written")

	// A single append retrying one stream's part is recognised too.
	res, err := s.Append(ctx, "A-1", eventstore.NoStream, req.Records[0].Event, req.Records[2].Event)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res.Version)
	assert.Equal(t, orig.Position, res.Position)
	assert.Len(t, readAll(t, s, eventstore.ReadAllOptions{}), n)
}

// TestAppendConditionRace: racers that read the same boundary and append a
// matching event under its condition: exactly one wins each round.
// Racers with disjoint boundaries all win.
func TestAppendConditionRace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	// Two drivers on one file: the write lock is the file's, not the
	// process's.
	stores := []*eventstore.Store{openStore(t, path, sqlite.Options{}), openStore(t, path, sqlite.Options{})}
	const racers, rounds = 16, 20
	for round := range rounds {
		tag := fmt.Sprintf("course:%d", round)
		q := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{tag}}}}
		var after eventstore.Position
		for ev, err := range stores[0].ReadQuery(ctx, q, eventstore.ReadQueryOptions{}) {
			require.NoError(t, err)
			after = ev.Position
		}
		var wins, conflicts atomic.Int32
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-gate
				_, err := stores[i%2].AppendMulti(ctx, eventstore.MultiAppend{
					Records:   []eventstore.Record{{Stream: fmt.Sprintf("Student-%d-%d", round, i), Event: tagged("Subscribed", tag)}},
					Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
				})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, eventstore.ErrAppendConditionFailed):
					conflicts.Add(1)
				default:
					t.Errorf("racer %d: %v", i, err)
				}
			})
		}
		close(gate)
		wg.Wait()
		require.Equal(t, int32(1), wins.Load(), "round %d: winners", round)
		require.Equal(t, int32(racers-1), conflicts.Load(), "round %d: conflicts", round)
		assert.Len(t, readQuery(t, stores[1], q, eventstore.ReadQueryOptions{}), 1)
	}

	// Disjoint boundaries: every racer wins.
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-gate
			tag := fmt.Sprintf("disjoint:%d", i)
			_, err := stores[i%2].AppendMulti(ctx, eventstore.MultiAppend{
				Records: []eventstore.Record{{Stream: fmt.Sprintf("Disjoint-%d", i), Event: tagged("Subscribed", tag)}},
				Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{
					{Types: []string{"Subscribed"}, Tags: []string{tag}}}}},
			})
			assert.NoError(t, err, "racer %d", i)
		})
	}
	close(gate)
	wg.Wait()
}

// TestAppendMultiExpectationRace: racers appending to the same two streams
// at the same expected versions: exactly one wins.
func TestAppendMultiExpectationRace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	const racers = 16
	var wins atomic.Int32
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-gate
			_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
				Records: []eventstore.Record{{Stream: "A-1", Event: tagged("X")}},
				Expect: []eventstore.StreamExpectation{
					{Stream: "A-1", Expected: eventstore.NoStream},
					{Stream: "B-1", Expected: eventstore.NoStream},
				},
			})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	close(gate)
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load())
	assert.Len(t, readStream(t, s, "A-1"), 1)
}

// TestReadQueryMatchesFilteredReadAll compares ReadQuery with the events of
// ReadAll that Query.Matches keeps, for queries of every shape, in pages of
// several sizes, with more items than one statement holds too.
func TestReadQueryMatchesFilteredReadAll(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	types := []string{"A", "B", "C"}
	var batch []eventstore.Event
	for i := range 300 {
		var tags []string
		for k, m := range []int{2, 3, 5, 7} {
			if i%m == 0 {
				tags = append(tags, fmt.Sprintf("m%d:%d", k, i%(m*4)))
			}
		}
		batch = append(batch, tagged(types[i%3], tags...))
	}
	_, err := s.Append(ctx, "Log-1", eventstore.NoStream, batch...)
	require.NoError(t, err)
	all := readAll(t, s, eventstore.ReadAllOptions{})
	var many []eventstore.QueryItem
	for i := range 40 {
		many = append(many, eventstore.QueryItem{Tags: []string{fmt.Sprintf("m1:%d", i%12)}, Types: types[:1+i%3]})
	}
	for _, tc := range []struct {
		name string
		q    eventstore.Query
	}{
		{"one tag", eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"m0:0"}}}}},
		{"two tags", eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"m0:0", "m1:0"}}}}},
		{"tags and types", eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"m0:4"}, Types: []string{"A", "C"}}}}},
		{"types only", eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"B"}}}}},
		{"overlapping items", eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"m0:0"}}, {Types: []string{"B"}}, {Tags: []string{"m2:0", "m0:0"}}}}},
		{"no match", eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"nope"}}}}},
		{"all", eventstore.Query{}},
		{"more items than a statement", eventstore.Query{Items: many}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []eventstore.RecordedEvent
			for _, ev := range all {
				if ev.Position.Commit > 37 && tc.q.Matches(ev) {
					want = append(want, ev)
				}
			}
			after := eventstore.Position{Commit: 37}
			assert.Equal(t, want, readQuery(t, s, tc.q, eventstore.ReadQueryOptions{After: after}), "whole")
			for _, limit := range []int{1, 7} {
				var got []eventstore.RecordedEvent
				from := after
				for {
					page := readQuery(t, s, tc.q, eventstore.ReadQueryOptions{After: from, Limit: limit})
					got = append(got, page...)
					if len(page) < limit {
						break
					}
					from = page[len(page)-1].Position
				}
				assert.Equal(t, want, got, "in pages of %d", limit)
			}
		})
	}
}

func TestImportKeepsTags(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src, dst := newStore(t), newStore(t)
	_, err := src.Append(ctx, "A-1", eventstore.NoStream, tagged("X", "k:1", "j:2"), tagged("Y"))
	require.NoError(t, err)
	evs := readAll(t, src, eventstore.ReadAllOptions{})
	require.NoError(t, dst.Import(ctx, evs))
	assert.Equal(t, evs, readAll(t, dst, eventstore.ReadAllOptions{}))
	got := readQuery(t, dst, eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"j:2", "k:1"}}}}, eventstore.ReadQueryOptions{})
	require.Len(t, got, 1)
	assert.Equal(t, evs[0], got[0])
}

// TestConditionGapSafeWithHeldWriter is the SQLite form of the gap-safety
// rule (conformance skips it for drivers whose positions follow commit
// order): another program's writer inserts a matching event and holds its
// transaction open; a reader by query sees nothing new, so it takes the
// old head as After; the conditional append waits for the write lock and,
// once the held event commits, fails on it.
func TestConditionGapSafeWithHeldWriter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	s := openStore(t, path, sqlite.Options{})
	_, err := s.Append(ctx, "Course-1", eventstore.NoStream, tagged("CourseDefined", "course:c1"))
	require.NoError(t, err)
	q := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{"course:c1"}}}}

	conn, err := rawDB(t, path).Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)
	id := uuid.New()
	res, err := conn.ExecContext(ctx, sqlite.InsertTaggedQuery(1), "Student-1", 1, "Student", id[:], "Subscribed", 0, []byte(`{}`), []byte{}, 0, `["course:c1"]`)
	require.NoError(t, err)
	held, err := res.LastInsertId()
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, sqlite.QueryInsertTags, held-1, held)
	require.NoError(t, err)

	var after eventstore.Position
	for ev, err := range s.ReadQuery(ctx, eventstore.Query{}, eventstore.ReadQueryOptions{}) {
		require.NoError(t, err)
		after = ev.Position
	}
	require.Equal(t, uint64(held-1), after.Commit, "the reader sees the log up to the held writer")
	require.Empty(t, readQuery(t, s, q, eventstore.ReadQueryOptions{}))

	done := make(chan error, 1)
	go func() {
		_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
			Records:   []eventstore.Record{{Stream: "Student-2", Event: tagged("Subscribed", "course:c1")}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
		})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a conditional append finished while another writer held the write lock: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	require.NoError(t, err)
	select {
	case err := <-done:
		require.ErrorIs(t, err, eventstore.ErrAppendConditionFailed)
	case <-time.After(10 * time.Second):
		t.Fatal("the conditional append did not finish after the other writer committed")
	}
	got := readQuery(t, s, q, eventstore.ReadQueryOptions{After: after})
	require.Len(t, got, 1)
	assert.Equal(t, "Student-1", got[0].StreamID)
	assert.Equal(t, []string{"course:c1"}, got[0].Tags)
}
