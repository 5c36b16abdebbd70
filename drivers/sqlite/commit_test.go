package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGroupCommit queues appends while the write connection is taken, then
// writes them as one group: each keeps the outcome it would have alone.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })

	retried := newEvents(2, "Placed")
	cancelled, cancel := context.WithCancel(ctx)
	cases := []struct {
		name     string
		ctx      context.Context
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.Event
		wantErr  error // nil: written
	}{
		{"first of two racers", ctx, "Group-race", eventstore.NoStream, newEvents(1, "Placed"), nil},
		{"second of two racers", ctx, "Group-race", eventstore.NoStream, newEvents(1, "Placed"), eventstore.ErrWrongExpectedVersion},
		{"an append", ctx, "Group-retry", eventstore.NoStream, retried, nil},
		{"its retry in the same group", ctx, "Group-retry", eventstore.NoStream, retried, nil},
		{"cancelled while queued", cancelled, "Group-cancelled", eventstore.Any, newEvents(3, "Placed"), context.Canceled},
		{"a batch", ctx, "Group-batch", eventstore.Any, newEvents(100, "Placed"), nil},
		{"exact on a new stream", ctx, "Group-exact", eventstore.Exact(0), newEvents(1, "Placed"), nil},
		{"wrong exact", ctx, "Group-wrong", eventstore.Exact(5), newEvents(1, "Placed"), eventstore.ErrWrongExpectedVersion},
	}

	d.writeSem <- struct{}{} // hold the write connection
	results := make([]eventstore.AppendResult, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		// One at a time, so the queue keeps the order of the cases.
		queued := len(d.appends.waiting)
		wg.Go(func() { results[i], errs[i] = s.Append(tc.ctx, tc.stream, tc.expected, tc.events...) })
		waitFor(t, func() bool {
			d.appends.mu.Lock()
			defer d.appends.mu.Unlock()
			return len(d.appends.waiting) > queued
		})
	}
	cancel()
	d.commitWaiting() // writes the group, gives the connection back
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("appends did not return")
	}

	for i, tc := range cases {
		if tc.wantErr != nil {
			assert.ErrorIs(t, errs[i], tc.wantErr, tc.name)
			continue
		}
		if !assert.NoError(t, errs[i], tc.name) {
			continue
		}
		got := streamEvents(t, s, tc.stream)
		last := got[len(got)-1]
		assert.Equal(t, last.Version, results[i].Version, tc.name)
		assert.Equal(t, last.Position, results[i].Position, tc.name)
	}
	assert.Equal(t, results[2], results[3], "the retry returns the original result")
	assert.Len(t, streamEvents(t, s, "Group-retry"), 2, "the retry wrote nothing")
	assert.Empty(t, streamEvents(t, s, "Group-cancelled"))
	assert.Empty(t, streamEvents(t, s, "Group-wrong"))
	var all []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		all = append(all, ev)
	}
	require.Len(t, all, 1+2+100+1)
	for i, ev := range all {
		assert.Equal(t, uint64(i+1), ev.Position.Commit, "positions are dense")
	}
}

// TestGroupCommitFailureIsolated: an append of a group that fails after it
// has written (here a trigger aborts its INSERT of events, after its row in
// appends) is undone alone, and the others commit.
func TestGroupCommitFailureIsolated(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	_, err = d.w.conn.ExecContext(ctx, `CREATE TRIGGER refuse BEFORE INSERT ON events
		WHEN NEW.stream = 'Group-bad' BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	require.NoError(t, err)

	streams := []string{"Group-good1", "Group-bad", "Group-good2"}
	bad := newEvents(2, "Placed")
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	d.writeSem <- struct{}{}
	for i, stream := range streams {
		evs := newEvents(2, "Placed")
		if stream == "Group-bad" {
			evs = bad
		}
		wg.Go(func() { _, errs[i] = s.Append(ctx, stream, eventstore.NoStream, evs...) })
		waitFor(t, func() bool {
			d.appends.mu.Lock()
			defer d.appends.mu.Unlock()
			return len(d.appends.waiting) > i
		})
	}
	d.commitWaiting()
	wg.Wait()
	assert.NoError(t, errs[0])
	assert.ErrorContains(t, errs[1], "refused")
	assert.NoError(t, errs[2])
	assert.Len(t, streamEvents(t, s, "Group-good1"), 2)
	assert.Len(t, streamEvents(t, s, "Group-good2"), 2)

	// Nothing of the failed append stayed, its appends row included: the
	// same append is new, not a retry, once the trigger is gone.
	_, err = d.db.ExecContext(ctx, "DROP TRIGGER refuse")
	require.NoError(t, err)
	res, err := s.Append(ctx, "Group-bad", eventstore.NoStream, bad...)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res.Version)
	assert.Equal(t, uint64(6), res.Position.Commit)
}

// waitFor waits until cond holds, for up to 10 s, yielding in between.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(errors.New("condition not met within 10s"))
		}
		runtime.Gosched()
	}
}

// streamEvents reads a whole stream.
func streamEvents(t *testing.T, s *eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

// TestGroupCommitCancelledAppendIsAllOrNothing cancels one append of a
// group at every step, from before the group starts to after it commits:
// it is written whole or not at all, and the other append of the group is
// always written.
func TestGroupCommitCancelledAppendIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	var committed, cancelled int
	for n := int64(0); committed < 3; n++ {
		require.Less(t, n, int64(100000), "the append never completed")
		stream, other := fmt.Sprintf("Cancel-%d", n), fmt.Sprintf("Other-%d", n)
		var errCancelled, errOther error
		var wg sync.WaitGroup
		returned := make(chan struct{})
		d.writeSem <- struct{}{}
		wg.Go(func() {
			defer close(returned)
			_, errCancelled = s.Append(NewCancelAfter(n), stream, eventstore.NoStream, newEvents(50, "Placed")...)
		})
		waitFor(t, func() bool { // queued, or cancelled while queued
			d.appends.mu.Lock()
			defer d.appends.mu.Unlock()
			select {
			case <-returned:
				return true
			default:
				return len(d.appends.waiting) == 1
			}
		})
		wg.Go(func() { _, errOther = s.Append(ctx, other, eventstore.NoStream, newEvents(1, "Placed")...) })
		waitFor(t, func() bool {
			d.appends.mu.Lock()
			defer d.appends.mu.Unlock()
			for _, p := range d.appends.waiting {
				if p.req.Stream == other {
					return true
				}
			}
			return false
		})
		d.commitWaiting()
		wg.Wait()
		require.NoError(t, errOther, "step %d", n)
		require.Len(t, streamEvents(t, s, other), 1, "step %d", n)
		got := len(streamEvents(t, s, stream))
		if errCancelled == nil {
			require.Equal(t, 50, got, "step %d: append succeeded", n)
			committed++
			continue
		}
		require.ErrorIs(t, errCancelled, context.Canceled, "step %d", n)
		require.Zero(t, got, "step %d: cancelled append wrote %d of 50 events", n, got)
		cancelled++
	}
	t.Logf("cancelled at %d steps, then committed", cancelled)
	assert.Greater(t, cancelled, 3, "cancellation should have hit the append inside the group")
}

// TestGroupCommitMultiAppends queues multi-stream and conditional appends
// with single appends in one group: each sees the appends before it in the
// group, so of two conditional appends on one boundary the second fails,
// and a failed one writes nothing while the others commit.
func TestGroupCommitMultiAppends(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })

	tagged := func(typ string, tags ...string) eventstore.Event {
		e := eventstore.NewEvent(typ, []byte(`{}`))
		e.Tags = tags
		return e
	}
	unique := &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{
		{Types: []string{"Registered"}, Tags: []string{"username:ada"}}}}}
	type op func() (eventstore.Position, error)
	multi := func(a eventstore.MultiAppend) op {
		return func() (eventstore.Position, error) {
			res, err := s.AppendMulti(ctx, a)
			return res.Position, err
		}
	}
	cases := []struct {
		name    string
		op      op
		wantErr error
	}{
		{"first registration", multi(eventstore.MultiAppend{
			Records: []eventstore.Record{{Stream: "User-1", Event: tagged("Registered", "username:ada")}}, Condition: unique}), nil},
		{"second registration", multi(eventstore.MultiAppend{
			Records: []eventstore.Record{{Stream: "User-2", Event: tagged("Registered", "username:ada")}}, Condition: unique}), eventstore.ErrAppendConditionFailed},
		{"single append", func() (eventstore.Position, error) {
			res, err := s.Append(ctx, "Account-a", eventstore.NoStream, tagged("Opened"))
			return res.Position, err
		}, nil},
		{"transfer", multi(eventstore.MultiAppend{
			Records: []eventstore.Record{{Stream: "Account-a", Event: tagged("Debited")}, {Stream: "Account-b", Event: tagged("Credited")}},
			Expect:  []eventstore.StreamExpectation{{Stream: "Account-a", Expected: eventstore.Exact(1)}}}), nil},
		{"stale transfer", multi(eventstore.MultiAppend{
			Records: []eventstore.Record{{Stream: "Account-a", Event: tagged("Debited")}},
			Expect:  []eventstore.StreamExpectation{{Stream: "Account-a", Expected: eventstore.Exact(1)}}}), eventstore.ErrWrongExpectedVersion},
	}
	d.writeSem <- struct{}{} // hold the write connection
	positions := make([]eventstore.Position, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		queued := len(d.appends.waiting)
		wg.Go(func() { positions[i], errs[i] = tc.op() })
		waitFor(t, func() bool {
			d.appends.mu.Lock()
			defer d.appends.mu.Unlock()
			return len(d.appends.waiting) > queued
		})
	}
	d.commitWaiting()
	wg.Wait()
	for i, tc := range cases {
		if tc.wantErr != nil {
			assert.ErrorIs(t, errs[i], tc.wantErr, tc.name)
		} else {
			assert.NoError(t, errs[i], tc.name)
		}
	}
	assert.Equal(t, []uint64{1, 0, 2, 4, 0}, []uint64{positions[0].Commit, positions[1].Commit, positions[2].Commit, positions[3].Commit, positions[4].Commit})
	assert.Empty(t, streamEvents(t, s, "User-2"))
	assert.Len(t, streamEvents(t, s, "Account-a"), 2)
}
