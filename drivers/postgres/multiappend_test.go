package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tagged returns an event of type typ with tags.
func tagged(typ string, tags ...string) eventstore.Event {
	return eventstore.Event{Type: typ, Data: []byte(`{}`), Tags: tags}
}

// readQuery returns every event ReadQuery returns for q after after.
func readQuery(t testing.TB, s *eventstore.Store, q eventstore.Query, after eventstore.Position) []eventstore.RecordedEvent {
	t.Helper()
	var evs []eventstore.RecordedEvent
	for ev, err := range s.ReadQuery(t.Context(), q, eventstore.ReadQueryOptions{After: after}) {
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	return evs
}

// readOneByOne reads q with ReadQuery one event at a time, each read after
// the last event of the one before, until one returns nothing.
func readOneByOne(t testing.TB, s *eventstore.Store, q eventstore.Query) []eventstore.RecordedEvent {
	t.Helper()
	var all []eventstore.RecordedEvent
	after := eventstore.Position{}
	for {
		n := 0
		for ev, err := range s.ReadQuery(t.Context(), q, eventstore.ReadQueryOptions{After: after, Limit: 1}) {
			require.NoError(t, err)
			all = append(all, ev)
			after = ev.Position
			n++
		}
		if n == 0 {
			return all
		}
	}
}

func TestAppendMulti(t *testing.T) {
	pool := newPool(t)
	s, _ := newStore(t, pool)
	ctx := t.Context()
	_, err := s.Append(ctx, "Account-a", eventstore.NoStream, tagged("Opened", "account:a"))
	require.NoError(t, err)

	res, err := s.AppendMulti(ctx, eventstore.MultiAppend{
		Records: []eventstore.Record{
			{Stream: "Account-a", Event: tagged("Debited", "account:a", "transfer:1")},
			{Stream: "Account-b", Event: tagged("Credited", "account:b", "transfer:1")},
			{Stream: "Account-a", Event: tagged("Fee")},
		},
		Expect: []eventstore.StreamExpectation{{Stream: "Account-a", Expected: eventstore.Exact(1)}, {Stream: "Account-b", Expected: eventstore.NoStream}},
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"Account-a": 3, "Account-b": 1}, res.Versions)

	var all []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		all = append(all, ev)
	}
	require.Len(t, all, 4)
	assert.Equal(t, res.Position, all[3].Position, "the result's position is the last event's")
	for i, want := range []struct {
		stream string
		tags   []string
	}{{"Account-a", []string{"account:a"}}, {"Account-a", []string{"account:a", "transfer:1"}}, {"Account-b", []string{"account:b", "transfer:1"}}, {"Account-a", nil}} {
		assert.Equal(t, want.stream, all[i].StreamID, "event %d", i)
		assert.Equal(t, want.tags, all[i].Tags, "event %d", i)
	}
	assert.Equal(t, all[1].Position.Commit, all[3].Position.Commit, "one transaction")

	// Every failed stream is named with its actual version, and nothing is written.
	_, err = s.AppendMulti(ctx, eventstore.MultiAppend{
		Records: []eventstore.Record{{Stream: "Account-a", Event: tagged("Debited")}, {Stream: "Account-c", Event: tagged("Credited")}},
		Expect: []eventstore.StreamExpectation{
			{Stream: "Account-a", Expected: eventstore.Exact(1)}, {Stream: "Account-b", Expected: eventstore.Exact(1)},
			{Stream: "Account-c", Expected: eventstore.StreamExists},
		},
	})
	var conflict *eventstore.AppendConflictError
	require.ErrorAs(t, err, &conflict)
	assert.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	assert.False(t, conflict.Condition)
	require.Len(t, conflict.Streams, 2, "%v", err)
	assert.Equal(t, "Account-a", conflict.Streams[0].Stream)
	assert.Equal(t, uint64(3), conflict.Streams[0].Actual)
	assert.Equal(t, "Account-c", conflict.Streams[1].Stream)
	assert.Equal(t, uint64(0), conflict.Streams[1].Actual)

	// A retry with the same IDs returns the original result.
	a := eventstore.MultiAppend{
		Records: []eventstore.Record{{Stream: "Account-b", Event: tagged("Debited", "account:b")}, {Stream: "Account-d", Event: tagged("Credited", "account:d")}},
		Expect:  []eventstore.StreamExpectation{{Stream: "Account-b", Expected: eventstore.Exact(1)}},
	}
	for i := range a.Records {
		a.Records[i].Event.ID = uuid.New()
	}
	first, err := s.AppendMulti(ctx, a)
	require.NoError(t, err)
	again, err := s.AppendMulti(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, first.Position, again.Position)
	assert.Equal(t, first.Versions, again.Versions)
	a.Records[1].Event.Tags = []string{"account:e"}
	_, err = s.AppendMulti(ctx, a)
	assert.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
}

func TestReadQueryAndCondition(t *testing.T) {
	pool := newPool(t)
	s, _ := newStore(t, pool)
	ctx := t.Context()
	for i := range 5 {
		_, err := s.Append(ctx, fmt.Sprintf("Course-%d", i), eventstore.NoStream,
			tagged("CourseDefined", fmt.Sprintf("course:c%d", i)),
			tagged("StudentSubscribed", fmt.Sprintf("course:c%d", i), "student:s1"),
			tagged("Untagged"))
		require.NoError(t, err)
	}
	_, err := s.Append(ctx, "Other-1", eventstore.Any, tagged("StudentSubscribed"))
	require.NoError(t, err)

	tests := []struct {
		name string
		q    eventstore.Query
		want int
	}{
		{"all", eventstore.Query{}, 16}, // first: the probes of the others match it
		{"one tag", eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"course:c1"}}}}, 2},
		{"two tags", eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"student:s1", "course:c2"}}}}, 1},
		{"type and tag", eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"CourseDefined"}, Tags: []string{"course:c3"}}}}, 1},
		{"types only", eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"StudentSubscribed", "Untagged"}}}}, 11},
		{"two items overlapping", eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"student:s1"}}, {Tags: []string{"course:c0"}}}}, 6},
		{"no match", eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Nope"}, Tags: []string{"course:c0"}}}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := readQuery(t, s, tc.q, eventstore.Position{})
			require.Len(t, evs, tc.want)
			for i, ev := range evs {
				assert.True(t, tc.q.Matches(ev), "event %d %s %v", i, ev.Type, ev.Tags)
				if i > 0 {
					assert.Greater(t, ev.Position.Compare(evs[i-1].Position), 0, "position order")
				}
			}
			// Pages of 1 give the same events.
			assert.Equal(t, evs, readOneByOne(t, s, tc.q))

			// The condition fails iff the read returned an event: after the
			// last one it holds, from before the first it fails.
			cond := func(after eventstore.Position) error {
				_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
					Records:   []eventstore.Record{{Stream: "Probe-" + uuid.NewString(), Event: tagged("Probe")}},
					Condition: &eventstore.AppendCondition{FailIfEventsMatch: tc.q, After: after},
				})
				return err
			}
			if tc.name == "all" {
				return // the probes themselves match
			}
			if len(evs) == 0 {
				require.NoError(t, cond(eventstore.Position{}))
				return
			}
			require.NoError(t, cond(evs[len(evs)-1].Position))
			err := cond(eventstore.Position{})
			var conflict *eventstore.AppendConflictError
			require.ErrorAs(t, err, &conflict)
			assert.True(t, conflict.Condition)
			assert.ErrorIs(t, err, eventstore.ErrAppendConditionFailed)
		})
	}
}

// TestConditionRace: racers that read the same query and append a matching
// event under it have exactly one winner, for every kind of query item;
// racers on disjoint tags all win.
func TestConditionRace(t *testing.T) {
	pool := newPool(t)
	s, _ := newStore(t, pool)
	const racers, rounds = 16, 10
	tests := []struct {
		name     string
		item     func(round int) eventstore.QueryItem
		event    func(round, racer int) eventstore.Event
		winners  int
		disjoint bool
	}{
		{"tag", func(r int) eventstore.QueryItem {
			return eventstore.QueryItem{Tags: []string{fmt.Sprintf("user:%d", r)}}
		},
			func(r, _ int) eventstore.Event { return tagged("Registered", fmt.Sprintf("user:%d", r)) }, 1, false},
		{"type and two tags", func(r int) eventstore.QueryItem {
			return eventstore.QueryItem{Types: []string{"Subscribed"}, Tags: []string{fmt.Sprintf("course:%d", r), "term:1"}}
		}, func(r, i int) eventstore.Event {
			return tagged("Subscribed", fmt.Sprintf("student:%d", i), "term:1", fmt.Sprintf("course:%d", r))
		}, 1, false},
		{"types only, untagged events", func(r int) eventstore.QueryItem {
			return eventstore.QueryItem{Types: []string{fmt.Sprintf("Opened%d", r)}}
		}, func(r, _ int) eventstore.Event { return tagged(fmt.Sprintf("Opened%d", r)) }, 1, false},
		{"disjoint tags", func(r int) eventstore.QueryItem { return eventstore.QueryItem{Tags: []string{fmt.Sprintf("d:%d", r)}} },
			func(r, i int) eventstore.Event { return tagged("Registered", fmt.Sprintf("d:%d:%d", r, i)) }, racers, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for r := range rounds {
				gate := make(chan struct{})
				var wins, fails atomic.Int32
				var wg, ready sync.WaitGroup
				ready.Add(racers)
				for i := range racers {
					wg.Go(func() {
						item := tc.item(r)
						if tc.disjoint {
							item.Tags = []string{fmt.Sprintf("d:%d:%d", r, i)}
						}
						q := eventstore.Query{Items: []eventstore.QueryItem{item}}
						evs := readQuery(t, s, q, eventstore.Position{})
						var after eventstore.Position
						if len(evs) > 0 {
							after = evs[len(evs)-1].Position
						}
						ready.Done()
						<-gate
						_, err := s.AppendMulti(t.Context(), eventstore.MultiAppend{
							Records:   []eventstore.Record{{Stream: fmt.Sprintf("Racer-%d", i), Event: tc.event(r, i)}},
							Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
						})
						switch {
						case err == nil:
							wins.Add(1)
						case errors.Is(err, eventstore.ErrAppendConditionFailed):
							fails.Add(1)
						default:
							t.Errorf("racer %d: %v", i, err)
						}
					})
				}
				ready.Wait() // every racer has read before any appends
				close(gate)
				wg.Wait()
				require.Equal(t, int32(tc.winners), wins.Load(), "round %d: winners (losers %d)", r, fails.Load())
			}
		})
	}
}

// TestConditionSeesAHeldOpenWriter: a writer that holds a lower position
// and commits after a ReadQuery makes a condition with the read's After
// fail; while it is open, the condition waits for it.
func TestConditionSeesAHeldOpenWriter(t *testing.T) {
	pool := newPool(t)
	s, d := newStore(t, pool)
	ctx := t.Context()
	q := eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"seat:1"}}}}
	_, err := s.Append(ctx, "Seat-0", eventstore.NoStream, tagged("Booked", "seat:0"))
	require.NoError(t, err)

	// The writer: an insert of a matching event in a transaction held open,
	// as a slow append would be. It holds the shared tag lock as the
	// driver's writers do.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck
	schema := pgx.Identifier{d.Schema()}.Sanitize()
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(k) FROM unnest($1::bigint[]) k`, postgres.TagLockKeys(d.Schema(), "Booked", "seat:1"))
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO `+schema+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, starts_append, tags)
		VALUES (pg_current_xact_id()::text::bigint, 'Seat-1', 1, gen_random_uuid(), 'Booked', 0, '\x', '\x', now(), true, '{seat:1}')`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO `+schema+`.event_tags SELECT 'seat:1', tx_id, seq, event_type FROM `+schema+`.events WHERE stream_id = 'Seat-1'`)
	require.NoError(t, err)

	// A later append: its position is after the writer's.
	_, err = s.Append(ctx, "Seat-2", eventstore.NoStream, tagged("Booked", "seat:2"))
	require.NoError(t, err)

	// The read stops before the open writer (ReadWait passes): After is
	// below the writer's position.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var after eventstore.Position
	for ev, err := range s.ReadQuery(rctx, eventstore.Query{}, eventstore.ReadQueryOptions{}) {
		require.NoError(t, err)
		after = ev.Position
	}
	require.NotZero(t, after)

	done := make(chan error, 1)
	go func() {
		_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
			Records:   []eventstore.Record{{Stream: "Seat-1b", Event: tagged("Booked", "seat:1")}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
		})
		done <- err
	}()
	// It waits for the writer's tag lock.
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("the condition did not wait for the open writer: %v", err)
		default:
		}
		var waiting int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting)
		return err == nil && waiting > 0
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, tx.Commit(ctx))
	select {
	case err := <-done:
		require.ErrorIs(t, err, eventstore.ErrAppendConditionFailed)
	case <-time.After(10 * time.Second):
		t.Fatal("the condition still waits after the writer committed")
	}

	// And a condition taken after the commit, with the same After, fails too.
	_, err = s.AppendMulti(ctx, eventstore.MultiAppend{
		Records:   []eventstore.Record{{Stream: "Seat-1c", Event: tagged("Booked", "seat:1")}},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: after},
	})
	require.ErrorIs(t, err, eventstore.ErrAppendConditionFailed)
}

// The application role of docs/postgres.md ("Privileges") writes tagged
// events, appends under conditions of both kinds (a tagged item: advisory
// locks; an item without tags: lock_writers()) and reads by query; the
// read-only role reads by query but can neither call lock_writers() nor
// write tags.
func TestLeastPrivilegeTagsAndConditions(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	newDriver(t, pool, postgres.Options{Schema: schema})
	q := pgx.Identifier{schema}.Sanitize()
	ctx := t.Context()
	appPool := newRole(t, pool, schema, "app", appGrants)
	readerPool := newRole(t, pool, schema, "reader", readerGrants)
	open := func(p *pgxpool.Pool) *eventstore.Store {
		d, err := postgres.New(ctx, p, postgres.Options{Schema: schema})
		require.NoError(t, err)
		s := eventstore.New(d, eventstore.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}
	app, reader := open(appPool), open(readerPool)

	_, err := app.Append(ctx, "User-1", eventstore.NoStream, tagged("Registered", "username:ada"))
	require.NoError(t, err)
	require.NoError(t, app.Import(ctx, []eventstore.RecordedEvent{{StreamID: "User-2", Version: 1, ID: uuid.New(), Type: "Registered",
		Data: []byte(`{}`), Tags: []string{"username:bob"}, RecordedAt: time.Now()}}))
	for _, item := range []eventstore.QueryItem{{Types: []string{"Registered"}, Tags: []string{"username:cy"}}, {Types: []string{"Nothing"}}} {
		_, err = app.AppendMulti(ctx, eventstore.MultiAppend{
			Records:   []eventstore.Record{{Stream: "User-3-" + item.Types[0], Event: tagged("Renamed", "username:cy")}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{item}}},
		})
		require.NoError(t, err, "conditional append as the application role, %v", item)
	}
	query := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Registered"}}}}
	assert.Len(t, readQuery(t, app, query, eventstore.Position{}), 2)
	evs := readQuery(t, reader, query, eventstore.Position{})
	require.Len(t, evs, 2)
	assert.Equal(t, []string{"username:bob"}, evs[1].Tags)

	for _, tc := range []struct {
		name string
		pool *pgxpool.Pool
		sql  string
	}{
		{"reader locks out writers", readerPool, `SELECT ` + q + `.lock_writers()`},
		{"reader writes a tag", readerPool, `INSERT INTO ` + q + `.event_tags VALUES ('x', 1, 1, 'X')`},
		{"app deletes a tag", appPool, `DELETE FROM ` + q + `.event_tags`},
	} {
		_, err := tc.pool.Exec(ctx, tc.sql)
		requireDenied(t, err, tc.name)
	}
}

// Upgrading a version 4 schema adds tags: events written before have none,
// and tagged appends, conditions and reads by query work at once.
func TestUpgradeFromSchema4(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	schema := randomSchema()
	q := pgx.Identifier{schema}.Sanitize()
	oldSchema(t, pool, schema, 4, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO `+q+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
			VALUES (pg_current_xact_id()::text::bigint, 'Old-1', 1, gen_random_uuid(), 'Registered', 0, '\x', '\x', now())`)
		return err
	})
	d, err := postgres.New(ctx, pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	_, err = s.AppendMulti(ctx, eventstore.MultiAppend{
		Records:   []eventstore.Record{{Stream: "New-1", Event: tagged("Registered", "username:ada")}},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"username:ada"}}}}},
	})
	require.NoError(t, err)
	evs := readQuery(t, s, eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Registered"}}}}, eventstore.Position{})
	require.Len(t, evs, 2)
	assert.Nil(t, evs[0].Tags, "an event from before the upgrade")
	assert.Equal(t, []string{"username:ada"}, evs[1].Tags)
}

// Reads by query and conditions walk event_tags (or events_type_idx) in
// position order, in the generic plans prepared statements settle on, and
// examine only the page's events: the log has 100,000 events, half tagged
// "common" and one in 1,000 tagged "rare", so the planner is tempted to
// walk the log for the common tag and to sort the rare one's events.
func TestQueryPlans(t *testing.T) {
	pool := newPool(t)
	d := newDriver(t, pool, postgres.Options{})
	ctx := t.Context()
	q := pgx.Identifier{d.Schema()}.Sanitize()
	// Below every transaction ID of the server, so below the fence.
	_, err := pool.Exec(ctx, `INSERT INTO `+q+`.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at, tags)
		SELECT 1 + i / 1000, 'S-' || i / 1000, i % 1000 + 1, gen_random_uuid(), CASE WHEN i % 3 = 0 THEN 'T0' ELSE 'T1' END, 0, '\x7b7d', '', now(),
			CASE WHEN i % 1000 = 999 THEN '{rare,common}'::text[] WHEN i % 2 = 0 THEN '{common}'::text[] END
		FROM generate_series(0, 99999) i`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO `+q+`.event_tags SELECT t, tx_id, seq, event_type FROM `+q+`.events, unnest(tags) t`)
	require.NoError(t, err)
	for _, table := range []string{"events", "event_tags"} {
		_, err = pool.Exec(ctx, `VACUUM ANALYZE `+q+`.`+table)
		require.NoError(t, err)
	}
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)
	explain := func(t *testing.T, query string, args []any) string {
		var plan strings.Builder
		rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF) `+query, append([]any{pgx.QueryExecModeExec}, args...)...)
		require.NoError(t, err)
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			plan.WriteString(line + "\n")
		}
		require.NoError(t, rows.Err())
		t.Logf("plan:\n%s", plan.String())
		return plan.String()
	}
	mid := driver.Position{Commit: 50, Prepare: 1} // half way through the log
	for _, tc := range []struct {
		name  string
		query driver.Query
		after driver.Position
		want  []string
	}{
		{"common tag", driver.Query{Items: []driver.QueryItem{{Tags: []string{"common"}}}}, mid, []string{"Index Only Scan using event_tags_pkey"}},
		{"rare tag and type", driver.Query{Items: []driver.QueryItem{{Types: []string{"T1"}, Tags: []string{"rare"}}}}, driver.Position{}, []string{"Index Only Scan using event_tags_pkey"}},
		{"two tags", driver.Query{Items: []driver.QueryItem{{Tags: []string{"rare", "common"}}}}, mid, []string{"Index Only Scan using event_tags_pkey"}},
		{"type only", driver.Query{Items: []driver.QueryItem{{Types: []string{"T0"}}}}, mid, []string{"using events_type_idx"}},
		{"two items", driver.Query{Items: []driver.QueryItem{{Tags: []string{"rare"}}, {Types: []string{"T0"}}}}, mid, []string{"event_tags_pkey", "events_type_idx"}},
	} {
		t.Run("read "+tc.name, func(t *testing.T) {
			query, args := postgres.ReadQueryQuery(d, driver.QueryPage{Query: tc.query, After: tc.after, Limit: 100, MaxBytes: eventstore.DefaultMaxPageBytes})
			plan := explain(t, query, args)
			for _, w := range tc.want {
				assert.Contains(t, plan, w)
			}
			assert.NotContains(t, plan, "Seq Scan on event")
			for _, m := range regexp.MustCompile(`rows=(\d+) loops=1\)`).FindAllStringSubmatch(plan, -1) {
				n, _ := strconv.Atoi(m[1])
				assert.LessOrEqual(t, n, 1000, "rows a node returned")
			}
		})
		t.Run("condition "+tc.name, func(t *testing.T) {
			cond, args := postgres.ConditionSQL(d, driver.AppendCondition{FailIfEventsMatch: tc.query, After: tc.after}, nil)
			plan := explain(t, `SELECT `+cond, args)
			assert.NotContains(t, plan, "Seq Scan on event")
			for _, m := range regexp.MustCompile(`rows=(\d+) loops=1\)`).FindAllStringSubmatch(plan, -1) {
				n, _ := strconv.Atoi(m[1])
				assert.LessOrEqual(t, n, 1000, "rows a node returned")
			}
		})
	}
}

// Multi-stream appends and single appends (grouped or not) to the same
// streams, all at Any, all succeed, and the streams' versions neither
// repeat nor skip. The retries they needed are logged by cause: lost
// versions (23505) are expected (40–41 in three runs); a deadlock (40P01,
// none in three runs) can only come from a group statement inserting into
// both streams in the other order, and is retried.
func TestMultiAppendWithSingleAppends(t *testing.T) {
	pool := newPool(t)
	s, d := newStore(t, pool)
	ctx := t.Context()
	var mu sync.Mutex
	causes := map[string]int{}
	postgres.SetRetryHook(d, func(err error) {
		var pgErr *pgconn.PgError
		cause := "other"
		if errors.As(err, &pgErr) {
			cause = pgErr.Code
		}
		mu.Lock()
		causes[cause]++
		mu.Unlock()
	})
	const workers, ops = 4, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				_, err := s.Append(ctx, []string{"Acct-a", "Acct-b"}[(w+i)%2], eventstore.Any, tagged("Single"))
				if err != nil {
					t.Errorf("single append: %v", err)
					return
				}
			}
		})
		wg.Go(func() {
			for range ops {
				_, err := s.AppendMulti(ctx, eventstore.MultiAppend{Records: []eventstore.Record{
					{Stream: "Acct-a", Event: tagged("Multi")}, {Stream: "Acct-b", Event: tagged("Multi")},
				}})
				if err != nil {
					t.Errorf("multi-stream append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, stream := range []string{"Acct-a", "Acct-b"} {
		var versions []uint64
		for ev, err := range s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			versions = append(versions, ev.Version)
		}
		for i, v := range versions {
			require.Equal(t, uint64(i+1), v, "%s: versions neither repeat nor skip", stream)
		}
		total += len(versions)
	}
	assert.Equal(t, workers*ops*3, total)
	mu.Lock()
	defer mu.Unlock()
	// Not asserted: a deadlock is possible, if rare, and resolved.
	t.Logf("retries by SQLSTATE: %v", causes)
}
