package dynamodb_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logReads counts the bytes of the responses to requests that name a log
// partition ("$log#…"): what a read of the log costs.
type logReads struct {
	next  http.RoundTripper
	bytes atomic.Int64
}

func (l *logReads) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := l.next.RoundTrip(req)
	if err != nil || !strings.Contains(string(body), `$log#`) {
		return resp, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	l.bytes.Add(int64(len(out)))
	resp.Body = io.NopCloser(bytes.NewReader(out))
	return resp, nil
}

// TestTagIndexReadsNoLog checks that with the tag index a condition and a
// read by tag do not read the log after After: against a log of 900
// untagged events (10 appends of 90 events, then one small append), a
// condition without After that holds, one that fails on an event at
// position 1, and ReadQuery of that tag each read a few hundred bytes of
// log entries (the head of the log, to bound the tag items), where a table
// set up without the index (as before it existed) scans the whole log.
func TestTagIndexReadsNoLog(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		opts    func() dynamodb.Options
		noIndex bool
	}{
		{name: "head", opts: func() dynamodb.Options { return dynamodb.Options{} }},
		{name: "indexed", opts: indexedOptions},
		{name: "head/without-index", opts: func() dynamodb.Options { return dynamodb.Options{} }, noIndex: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			counter := &logReads{next: http.DefaultTransport}
			opts := tc.opts()
			if tc.noIndex {
				dynamodb.SetNoTagIndex(&opts)
			}
			s, _ := newStore(t, newClient(t, counter), opts)
			alice := eventstore.NewEvent("Registered", []byte(`{}`))
			alice.Tags = []string{"user:alice"}
			_, err := s.Append(ctx, "User-alice", eventstore.NoStream, alice)
			require.NoError(t, err)
			for i := range 10 {
				var recs []eventstore.Record
				for range 90 {
					ev := eventstore.NewEvent("Filled", []byte(`{}`))
					recs = append(recs, eventstore.Record{Stream: fmt.Sprintf("Filler-%d", i), Event: ev})
				}
				_, err := s.AppendMulti(ctx, eventstore.MultiAppend{Records: recs})
				require.NoError(t, err)
			}
			_, err = s.Append(ctx, "Small-1", eventstore.Any, eventstore.NewEvent("Small", []byte(`{}`)))
			require.NoError(t, err)

			unique := func(user string) *eventstore.AppendCondition {
				return &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Registered"}, Tags: []string{user}}}}}
			}
			bob := eventstore.NewEvent("Registered", []byte(`{}`))
			bob.Tags = []string{"user:bob"}
			counter.bytes.Store(0)
			_, err = s.AppendMulti(ctx, eventstore.MultiAppend{Records: []eventstore.Record{{Stream: "User-bob", Event: bob}}, Condition: unique("user:bob")})
			require.NoError(t, err)
			holds := counter.bytes.Load()

			again := eventstore.NewEvent("Registered", []byte(`{}`))
			again.Tags = []string{"user:alice"}
			counter.bytes.Store(0)
			_, err = s.AppendMulti(ctx, eventstore.MultiAppend{Records: []eventstore.Record{{Stream: "User-alice2", Event: again}}, Condition: unique("user:alice")})
			require.ErrorIs(t, err, eventstore.ErrAppendConditionFailed)
			fails := counter.bytes.Load()

			counter.bytes.Store(0)
			var got []string
			for ev, err := range s.ReadQuery(ctx, eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"user:alice"}}}}, eventstore.ReadQueryOptions{}) {
				require.NoError(t, err)
				got = append(got, fmt.Sprintf("%s@%d", ev.StreamID, ev.Position.Commit))
			}
			read := counter.bytes.Load()
			assert.Equal(t, []string{"User-alice@1"}, got)
			t.Logf("log bytes read: condition that holds %d, condition that fails %d, read by tag %d", holds, fails, read)
			if tc.noIndex {
				// The measure works: the log scan reads every entry.
				assert.Greater(t, holds, int64(10_000), "a condition without the index scans the log")
				return
			}
			for what, n := range map[string]int64{"a condition that holds": holds, "a condition that fails": fails, "a read by tag": read} {
				assert.Less(t, n, int64(2_000), "%s read %d bytes of log entries, want only the head of the log", what, n)
			}
		})
	}
}

// TestTagIndexLimits checks that an append whose tag items would take a
// transaction over DynamoDB's 100 items fails with ErrBatchTooLarge before
// anything is written, on both layouts, and that one just under the limit
// is written whole and found by its tags; and the same for multi-stream
// appends, with and without a condition.
func TestTagIndexLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts func() dynamodb.Options
	}{
		{name: "head", opts: func() dynamodb.Options { return dynamodb.Options{} }},
		{name: "indexed", opts: indexedOptions},
	}
	// events returns n events with distinct tags each, tagsPer of them.
	events := func(n, tagsPer int) []eventstore.Event {
		var out []eventstore.Event
		for i := range n {
			ev := eventstore.NewEvent("Tagged", []byte(`{}`))
			for j := range tagsPer {
				ev.Tags = append(ev.Tags, fmt.Sprintf("t:%d-%d", i, j))
			}
			out = append(out, ev)
		}
		return out
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, _ := newStore(t, newClient(t, nil), tc.opts())
			// 4 events × 32 tags: 128 tag items.
			_, err := s.Append(ctx, "Many-1", eventstore.NoStream, events(4, 32)...)
			require.ErrorIs(t, err, eventstore.ErrBatchTooLarge)
			v, err := s.StreamVersion(ctx, "Many-1")
			require.NoError(t, err)
			require.Zero(t, v, "nothing is written")
			// 2 events × 32 tags: 64 tag items.
			_, err = s.Append(ctx, "Many-1", eventstore.NoStream, events(2, 32)...)
			require.NoError(t, err)
			for _, tag := range []string{"t:0-0", "t:1-31"} {
				var n int
				for _, err := range s.ReadQuery(ctx, eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{tag}}}}, eventstore.ReadQueryOptions{}) {
					require.NoError(t, err)
					n++
				}
				assert.Equal(t, 1, n, "events tagged %s", tag)
			}
			// The same through AppendMulti, across two streams, without
			// and with a condition (which an indexed table places
			// directly): over the limit nothing is written, under it the
			// whole append is.
			noMatch := eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"none:0"}}}}
			for i, cond := range []*eventstore.AppendCondition{nil, {FailIfEventsMatch: noMatch}} {
				a, b := fmt.Sprintf("ManyA-%d", i), fmt.Sprintf("ManyB-%d", i)
				multi := func(n int) eventstore.MultiAppend {
					ma := eventstore.MultiAppend{Condition: cond, Expect: []eventstore.StreamExpectation{
						{Stream: a, Expected: eventstore.NoStream}, {Stream: b, Expected: eventstore.NoStream},
					}}
					for j, ev := range events(n, 32) {
						ma.Records = append(ma.Records, eventstore.Record{Stream: []string{a, b}[j%2], Event: ev})
					}
					return ma
				}
				_, err := s.AppendMulti(ctx, multi(4))
				require.ErrorIs(t, err, eventstore.ErrBatchTooLarge, "condition %v", cond != nil)
				for _, st := range []string{a, b} {
					v, err := s.StreamVersion(ctx, st)
					require.NoError(t, err)
					require.Zero(t, v, "nothing is written to %s", st)
				}
				_, err = s.AppendMulti(ctx, multi(2))
				require.NoError(t, err, "condition %v", cond != nil)
				for _, st := range []string{a, b} {
					v, err := s.StreamVersion(ctx, st)
					require.NoError(t, err)
					require.Equal(t, uint64(1), v, "%s after the append under the limit", st)
				}
			}
		})
	}
}

// TestTagIndexMatchesLogScan appends 90 events in appends of 3 (so tag
// items list several offsets), tagged "a" when i%2 == 0 and "b" when
// i%3 == 0, of types T0/T1 alternately, and reads each query from several
// positions, with the tag index and on a table without it (the log scan):
// both return the same events, and those are the ones the query matches.
func TestTagIndexMatchesLogScan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var noIndex dynamodb.Options
	dynamodb.SetNoTagIndex(&noIndex)
	stores := map[string]*eventstore.Store{}
	stores["index"], _ = newStore(t, newClient(t, nil), dynamodb.Options{})
	stores["scan"], _ = newStore(t, newClient(t, nil), noIndex)
	type ev struct {
		typ  string
		tags []string
	}
	var all []ev
	for i := range 90 {
		e := ev{typ: fmt.Sprintf("T%d", i%2)}
		if i%2 == 0 {
			e.tags = append(e.tags, "a")
		}
		if i%3 == 0 {
			e.tags = append(e.tags, "b")
		}
		all = append(all, e)
	}
	for _, s := range stores {
		for i := 0; i < len(all); i += 3 {
			var evs []eventstore.Event
			for _, e := range all[i : i+3] {
				x := eventstore.NewEvent(e.typ, []byte(`{}`))
				x.Tags = e.tags
				evs = append(evs, x)
			}
			_, err := s.Append(ctx, fmt.Sprintf("S-%d", i%4), eventstore.Any, evs...)
			require.NoError(t, err)
		}
	}
	cases := []struct {
		name  string
		items []eventstore.QueryItem
	}{
		{name: "one tag", items: []eventstore.QueryItem{{Tags: []string{"a"}}}},
		{name: "both tags", items: []eventstore.QueryItem{{Tags: []string{"a", "b"}}}},
		{name: "either tag", items: []eventstore.QueryItem{{Tags: []string{"a"}}, {Tags: []string{"b"}}}},
		{name: "tag and type", items: []eventstore.QueryItem{{Types: []string{"T1"}, Tags: []string{"b"}}}},
		{name: "tag and type or tag", items: []eventstore.QueryItem{{Types: []string{"T0"}, Tags: []string{"b"}}, {Tags: []string{"a", "b"}}}},
		{name: "no match", items: []eventstore.QueryItem{{Types: []string{"T1"}, Tags: []string{"a"}}}},
	}
	for _, tc := range cases {
		q := eventstore.Query{Items: tc.items}
		for _, after := range []uint64{0, 2, 88} {
			for _, limit := range []int{0, 7} {
				var want []uint64
				for i, e := range all {
					if p := uint64(i + 1); p > after && matches(q, e.typ, e.tags) && (limit == 0 || len(want) < limit) {
						want = append(want, p)
					}
				}
				for name, s := range stores {
					var got []uint64
					for e, err := range s.ReadQuery(ctx, q, eventstore.ReadQueryOptions{After: eventstore.Position{Commit: after}, Limit: limit}) {
						require.NoError(t, err)
						got = append(got, e.Position.Commit)
					}
					assert.Equal(t, want, got, "%s: %s after %d, limit %d", name, tc.name, after, limit)
				}
			}
		}
	}
}

// matches reports whether an event of type typ with tags matches q.
func matches(q eventstore.Query, typ string, tags []string) bool {
	for _, it := range q.Items {
		if (len(it.Types) == 0 || slices.Contains(it.Types, typ)) && !slices.ContainsFunc(it.Tags, func(t string) bool { return !slices.Contains(tags, t) }) {
			return true
		}
	}
	return false
}
