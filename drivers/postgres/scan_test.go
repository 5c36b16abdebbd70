package postgres_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanFilter is a filter and the way ReadAllScan runs it (scan.go).
type scanFilter struct {
	name   string
	filter driver.Filter
}

// scanFilters returns a filter of each kind that keeps the events of
// category cat, all of whose event types are among types: one category
// (its index, no window), 41 categories (a hash lookup per event, within a
// window of the log), the category and the types (the index, then a hash
// lookup), and the types alone (the event type index).
func scanFilters(cat string, types ...string) []scanFilter {
	many := []string{cat}
	for i := range 40 {
		many = append(many, fmt.Sprintf("Absent%d", i))
	}
	return []scanFilter{
		{"one category", driver.Filter{Categories: []string{cat}}},
		{"41 categories", driver.Filter{Categories: many}},
		{"category and types", driver.Filter{Categories: []string{cat}, EventTypes: append([]string{"Absent"}, types...)}},
		{"types", driver.Filter{EventTypes: types}},
	}
}

// followScan reads with ReadAllScan after after, following Scanned, until a
// page says End. It returns the events and the last position scanned
// (after itself when nothing was), checking each page against the
// contract.
func followScan(t testing.TB, d *postgres.Driver, f driver.Filter, after driver.Position, limit int) ([]driver.RecordedEvent, driver.Position) {
	t.Helper()
	var got []driver.RecordedEvent
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100_000, "ReadAllScan never reached End")
		p, err := d.ReadAllScan(t.Context(), driver.AllQuery{After: after, Limit: limit, Filter: f, MaxBytes: eventstore.DefaultMaxPageBytes})
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Events), limit)
		for _, ev := range p.Events {
			require.True(t, f.Matches(ev), "an event the filter does not keep: %s %s", ev.StreamID, ev.Type)
			require.True(t, after.Less(ev.Position), "event %s not after %s", ev.Position, after)
		}
		if n := len(p.Events); n > 0 {
			require.False(t, p.Scanned.Less(p.Events[n-1].Position), "Scanned %s before the last event %s", p.Scanned, p.Events[n-1].Position)
		}
		got = append(got, p.Events...)
		if !p.Scanned.IsZero() {
			require.False(t, p.Scanned.Less(after), "Scanned %s went back before %s", p.Scanned, after)
			after = p.Scanned
		}
		if p.End {
			return got, after
		}
	}
}

// followScanUntil runs scan until done accepts its result, for at most 10
// seconds, and returns the last result.
func followScanUntil(t testing.TB, scan func() ([]driver.RecordedEvent, driver.Position), done func([]driver.RecordedEvent, driver.Position) bool) ([]driver.RecordedEvent, driver.Position) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, scanned := scan()
		if done(got, scanned) || time.Now().After(deadline) {
			return got, scanned
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A filtered scan moves Scanned past the events it does not want, but never
// past an append that is still open: its events will take positions there.
// A writer of the store holds its transaction open after inserting an event
// of the filtered category; events of both categories commit after it. With
// ReadWait negative (no waiting) every kind of filtered scan stops at the
// last event before the open writer. Once it commits, following Scanned
// reads its event and the later ones, in order: none was passed over.
func TestScanNeverPassesAHeldOpenWriter(t *testing.T) {
	pool := newPool(t)
	for _, tc := range scanFilters("Mine", "Mined", "Raw") {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, pool, postgres.Options{ReadWait: -1})
			s := eventstore.New(d, eventstore.Options{})
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()

			early, err := s.Append(ctx, "Mine-1", eventstore.NoStream, eventstore.NewEvent("Mined", nil))
			require.NoError(t, err)
			before, err := s.Append(ctx, "Other-1", eventstore.NoStream, eventstore.NewEvent("Other", nil), eventstore.NewEvent("Other", nil))
			require.NoError(t, err)

			holder, _ := beginHolder(t, pool)
			rawEvent(t, holder, d.Schema(), "Mine-2", 1) // of type Raw
			var held uint64
			require.NoError(t, holder.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&held))
			var later []eventstore.AppendResult
			for i := range 3 {
				for _, st := range []string{"Other-1", "Mine-3"} {
					res, err := s.Append(ctx, st, eventstore.Any, eventstore.NewEvent(map[string]string{"Other-1": "Other", "Mine-3": "Mined"}[st], nil))
					require.NoError(t, err)
					require.Greater(t, res.Position.Commit, held, "precondition: append %d commits after the open writer took its position", i)
					if st == "Mine-3" {
						later = append(later, res)
					}
				}
			}

			for _, limit := range []int{1, 100} {
				// Without waiting, a scan may also stop early, at a fence
				// that counts an unrelated transaction ending during the
				// read (busy shared servers): scan again until it reaches
				// the open writer, as a waiting reader would.
				got, scanned := followScanUntil(t, func() ([]driver.RecordedEvent, driver.Position) {
					return followScan(t, d, tc.filter, driver.Position{}, limit)
				}, func(got []driver.RecordedEvent, scanned driver.Position) bool {
					return scanned == driver.Position(before.Position)
				})
				require.Len(t, got, 1, "limit %d: only the event before the open writer", limit)
				assert.Equal(t, driver.Position(early.Position), got[0].Position)
				assert.Equal(t, driver.Position(before.Position), scanned,
					"limit %d: the scan passes the other category's events up to the open writer, and not beyond", limit)
				assert.Less(t, scanned.Commit, held, "limit %d: Scanned is before the open writer's position", limit)
			}

			_, scanned := followScan(t, d, tc.filter, driver.Position{}, 100)
			require.NoError(t, holder.Commit(ctx))
			var got []driver.RecordedEvent
			end := scanned
			followScanUntil(t, func() ([]driver.RecordedEvent, driver.Position) {
				more, to := followScan(t, d, tc.filter, end, 1)
				got, end = append(got, more...), to
				return got, end
			}, func(got []driver.RecordedEvent, _ driver.Position) bool { return len(got) >= 1+len(later) })
			require.Len(t, got, 1+len(later), "after the writer committed: its event and the later ones")
			assert.Equal(t, "Mine-2", got[0].StreamID)
			assert.Equal(t, held, got[0].Position.Commit)
			for i, res := range later {
				assert.Equal(t, driver.Position(res.Position), got[1+i].Position)
			}
			assert.Equal(t, driver.Position(lastPosition(t, d)), end, "the scan ends at the log's last event")
		})
	}
}

// Provoked races, as in TestFenceNoSkipUnderChurn, for filtered reads that
// follow Scanned: appenders write two categories in turn while writers of
// another store and short unrelated transactions churn. Readers that never
// wait (ReadWait negative) follow ReadAllScan with each kind of filter, and
// a durable filtered subscription through the Store (which follows Scanned
// and saves it as its checkpoint) is stopped and restarted half way. Each
// must see every event of its category exactly once, in the log's order.
func TestFilteredScanNoSkipUnderChurn(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	cfg.MaxConns = 16 // a connection for each reader, writer and churner
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	d := newDriver(t, pool, postgres.Options{ReadWait: -1})
	other := newDriver(t, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	so := eventstore.New(other, eventstore.Options{})
	t.Cleanup(func() { so.Close() })
	ctx := t.Context()

	const appenders, perAppender = 4, 100
	gate := make(chan struct{})
	stop := make(chan struct{})
	var writers, churn sync.WaitGroup
	errs := make(chan error, 64)
	for i := range appenders {
		writers.Go(func() {
			<-gate
			for j := range perAppender {
				// Batches of 1–3 events, so pages end inside an append;
				// the categories alternate, so each append passes over the
				// other's.
				cat, typ := "Want", "Wanted"
				if (i+j)%2 == 1 {
					cat, typ = "Skip", "Skipped"
				}
				evs := make([]eventstore.Event, 1+j%3)
				for k := range evs {
					evs[k] = eventstore.NewEvent(typ, nil)
				}
				if _, err := s.Append(ctx, fmt.Sprintf("%s-%d", cat, i), eventstore.Any, evs...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 2 {
		churn.Go(func() {
			<-gate
			for {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i == 0 {
					_, err = so.Append(ctx, "Elsewhere-1", eventstore.Any, eventstore.NewEvent("Other", nil))
				} else {
					err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						_, err := tx.Exec(ctx, "SELECT pg_current_xact_id()")
						return err
					})
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		})
	}
	type tail struct {
		got []driver.RecordedEvent
		err error
	}
	var final driver.Position // the log's last position, set before stop closes
	filters := scanFilters("Want", "Wanted")
	tails := make([]chan tail, len(filters))
	for r, f := range filters {
		tails[r] = make(chan tail, 1)
		go func() {
			var out tail
			var after driver.Position
			<-gate
			for {
				p, err := d.ReadAllScan(ctx, driver.AllQuery{After: after, Limit: 3, Filter: f.filter})
				if err != nil {
					out.err = err
					break
				}
				out.got = append(out.got, p.Events...)
				if !p.Scanned.IsZero() {
					after = p.Scanned
				}
				select {
				case <-stop:
					if p.End && after == final {
						tails[r] <- out
						return
					}
				default:
				}
			}
			tails[r] <- out
		}()
	}
	subOpts := eventstore.SubscribeOptions{Name: "want", BatchSize: 3, PollInterval: 10 * time.Millisecond,
		Filter: eventstore.Filter{Categories: []string{"Want"}}}
	sub := subscribe(t, s, subOpts)
	close(gate)
	delivered := receive(t, sub, 20, "the first events of the filtered subscription")
	require.NoError(t, sub.stop())
	for len(sub.events) > 0 {
		delivered = append(delivered, <-sub.events)
	}
	sub = subscribe(t, s, subOpts)

	writers.Wait()
	final = driver.Position(lastPosition(t, d))
	close(stop)
	churn.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	var want []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		if eventstore.Category(ev.StreamID) == "Want" {
			want = append(want, ev)
		}
	}
	wantN := 0
	for i := range appenders {
		for j := range perAppender {
			if (i+j)%2 == 0 {
				wantN += 1 + j%3
			}
		}
	}
	require.Len(t, want, wantN)
	for r, ch := range tails {
		out := waitFor(t, ch, 60*time.Second, "a reader")
		require.NoError(t, out.err, filters[r].name)
		got := make([]eventstore.RecordedEvent, len(out.got))
		for i, ev := range out.got {
			got[i] = eventstore.RecordedEvent{ID: ev.ID, StreamID: ev.StreamID, Version: ev.Version, Position: eventstore.Position(ev.Position)}
		}
		assert.Equal(t, ids(want), ids(got), "%s: the reader read every event of its category once, in order", filters[r].name)
	}
	delivered = append(delivered, receive(t, sub, len(want)-len(delivered), "the rest after the restart")...)
	require.NoError(t, sub.stop())
	assert.Equal(t, ids(want), ids(delivered), "the subscription delivered every event of its category once, in order")
	assert.Empty(t, sub.events, "delivered twice")
	pos, ok, err := s.Checkpoint(ctx, "want")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, final, driver.Position(pos), "the checkpoint moved past the other category's events to the end")
}

// Each kind of filtered scan bounds what a page examines. A log of three
// windows and a bit more holds a rare category, one event in 97. Walking an
// index, one page reads every match and reaches the end; checking events
// one by one, each page stops at the window's last event (or at its limit),
// so the scan takes one page per window and still finds every match.
func TestScanPagesAreBounded(t *testing.T) {
	pool := newPool(t)
	s, d := newStore(t, pool)
	ctx := t.Context()
	n := 3*postgres.ScanWindow + 500
	var version uint64
	for done := 0; done < n; {
		batch := min(96, n-done)
		_, err := s.Append(ctx, conformance.BenchStream("Common"), eventstore.NoStream, conformance.BenchEvents(batch)...)
		require.NoError(t, err)
		done += batch
		if done < n {
			_, err = s.Append(ctx, "Rare-1", eventstore.Exact(version), eventstore.NewEvent("RareEvent", nil))
			require.NoError(t, err)
			version++
			done++
		}
	}
	var log []driver.Position
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		log = append(log, driver.Position(ev.Position))
	}
	require.Len(t, log, n)
	index := func(p driver.Position) int {
		i, ok := slices.BinarySearchFunc(log, p, driver.Position.Compare)
		require.True(t, ok, "Scanned %s is the position of an event", p)
		return i
	}

	for _, tc := range scanFilters("Rare", "RareEvent") {
		t.Run(tc.name, func(t *testing.T) {
			windowed := len(tc.filter.Categories) > 1 || len(tc.filter.EventTypes) > 0 && len(tc.filter.Categories) > 0
			var got int
			var after driver.Position
			pages := 0
			for {
				p, err := d.ReadAllScan(ctx, driver.AllQuery{After: after, Limit: 1000, Filter: tc.filter})
				require.NoError(t, err)
				pages++
				got += len(p.Events)
				first := 0
				if !after.IsZero() {
					first = index(after) + 1
				}
				examined := index(p.Scanned) + 1 - first
				if windowed {
					assert.LessOrEqual(t, examined, postgres.ScanWindow, "page %d examined more than a window", pages)
					if !p.End {
						assert.Equal(t, postgres.ScanWindow, examined, "page %d stopped before the end of its window", pages)
					}
				}
				after = p.Scanned
				if p.End {
					break
				}
			}
			assert.Equal(t, int(version), got, "every event of the rare category")
			assert.Equal(t, log[n-1], after, "the scan ends at the last event")
			if windowed {
				assert.Equal(t, (n+postgres.ScanWindow-1)/postgres.ScanWindow, pages)
			} else {
				assert.Equal(t, 1, pages, "an index walk reads every match at once")
			}
		})
	}
}
