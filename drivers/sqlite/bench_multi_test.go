package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/google/uuid"
)

// BenchmarkMultiAppend measures multi-stream appends and conditional
// appends (issue 19) through the Store (…/store) against a raw twin
// (…/raw) that sends the driver's own SQL on the driver's schema through
// plain database/sql on one connection of the driver's pool: BEGIN
// IMMEDIATE, the heads statement, the condition, the appends rows, the
// INSERTs and the tag index, COMMIT. They run in interleaved rounds
// (conformance.RunInterleaved) and report the median of store/raw-%.
//
//   - transfer: each client moves money between two accounts of its own:
//     a debit and a credit (2 events, 2 streams) at exact expected
//     versions of both.
//   - condition: each client subscribes new students to a course of its
//     own: one event tagged course:C and student:S, appended to a new
//     stream on the condition that no Subscribed event tagged both follows
//     the position of the client's previous append (a query of one item
//     with one type and 2 tags). Clients' boundaries are disjoint, so
//     clients=1…8 is the disjoint-boundary scaling: every append succeeds,
//     and they queue for the file's one write lock.
func BenchmarkMultiAppend(b *testing.B) {
	type round func(ctx context.Context, m multiAppender, clients int) (int, error)
	cases := []struct {
		name    string
		clients []int
		round   round
	}{
		{"transfer", []int{1, 8}, transferRound},
		{"condition", []int{1, 2, 4, 8}, conditionRound},
	}
	for _, c := range cases {
		for _, clients := range c.clients {
			b.Run(fmt.Sprintf("%s/clients=%d", c.name, clients), func(b *testing.B) {
				store := storeMulti{benchStore(b)}
				raw := newRawMulti(b)
				cs := []conformance.Contender{
					{Name: "store", Round: func(ctx context.Context) (int, error) { return c.round(ctx, store, clients) }},
					{Name: "raw", Round: func(ctx context.Context) (int, error) { return c.round(ctx, raw, clients) }},
				}
				rates := conformance.RunInterleaved(b, 2, cs)
				b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "store/raw-%")
			})
		}
	}
}

// multiAppender is a side of BenchmarkMultiAppend.
type multiAppender interface {
	// transfer appends debit to a and credit to b, both at expected.
	transfer(ctx context.Context, a, b string, expected uint64, debit, credit eventstore.Event) error
	// subscribe appends e to the new stream on the condition that no event
	// matching q follows after; it returns e's position.
	subscribe(ctx context.Context, stream string, e eventstore.Event, q eventstore.Query, after uint64) (uint64, error)
}

// appendsPerRound is how many appends the clients of a round make in all.
const appendsPerRound = 96

func transferRound(ctx context.Context, m multiAppender, clients int) (int, error) {
	return clientsRound(clients, func(int) error {
		a, b := conformance.BenchStream("Account"), conformance.BenchStream("Account")
		for i := range appendsPerRound / clients {
			evs := conformance.BenchEvents(2)
			if err := m.transfer(ctx, a, b, uint64(i), evs[0], evs[1]); err != nil {
				return err
			}
		}
		return nil
	}, 2)
}

func conditionRound(ctx context.Context, m multiAppender, clients int) (int, error) {
	return clientsRound(clients, func(int) error {
		course := "course:" + uuid.NewString()
		var after uint64
		for range appendsPerRound / clients {
			student := "student:" + uuid.NewString()
			e := conformance.BenchEvents(1)[0]
			e.Type = "Subscribed"
			e.Tags = []string{course, student}
			q := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{course, student}}}}
			pos, err := m.subscribe(ctx, conformance.BenchStream("Subscription"), e, q, after)
			if err != nil {
				return err
			}
			after = pos
		}
		return nil
	}, 1)
}

// clientsRound runs client in clients goroutines and returns the events
// they appended (events per append).
func clientsRound(clients int, client func(i int) error, events int) (int, error) {
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			if err := client(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return clients * (appendsPerRound / clients) * events, <-errs
}

// storeMulti is the Store side.
type storeMulti struct{ s *eventstore.Store }

func (m storeMulti) transfer(ctx context.Context, a, b string, expected uint64, debit, credit eventstore.Event) error {
	_, err := m.s.AppendMulti(ctx, eventstore.MultiAppend{
		Records: []eventstore.Record{{Stream: a, Event: debit}, {Stream: b, Event: credit}},
		Expect:  []eventstore.StreamExpectation{{Stream: a, Expected: eventstore.Exact(expected)}, {Stream: b, Expected: eventstore.Exact(expected)}},
	})
	return err
}

func (m storeMulti) subscribe(ctx context.Context, stream string, e eventstore.Event, q eventstore.Query, after uint64) (uint64, error) {
	res, err := m.s.AppendMulti(ctx, eventstore.MultiAppend{
		Records:   []eventstore.Record{{Stream: stream, Event: e}},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: eventstore.Position{Commit: after}},
	})
	return res.Position.Commit, err
}

// rawMulti is the raw twin: the driver's statements on a connection of
// the driver's pool.
type rawMulti struct {
	mu                      sync.Mutex // one transaction at a time on conn
	conn                    *sql.Conn
	begin, commit, rollback *sql.Stmt
	heads, appends          *sql.Stmt
	insert, insertTagged    *sql.Stmt // one row each
	insertTags              *sql.Stmt
	b                       *testing.B
	conditions              map[string]*sql.Stmt // guarded by mu
}

func newRawMulti(b *testing.B) *rawMulti {
	_, conn := driverConn(b, filepath.Join(benchDir(b), "raw.db"), sqlite.Options{})
	return &rawMulti{
		conn:         conn,
		begin:        prepare(b, conn, "BEGIN IMMEDIATE"),
		commit:       prepare(b, conn, "COMMIT"),
		rollback:     prepare(b, conn, "ROLLBACK"),
		heads:        prepare(b, conn, sqlite.QueryMultiHeads),
		appends:      prepare(b, conn, sqlite.QueryImportAppends),
		insert:       prepare(b, conn, sqlite.InsertQuery(1)),
		insertTagged: prepare(b, conn, sqlite.InsertTaggedQuery(1)),
		insertTags:   prepare(b, conn, sqlite.QueryInsertTags),
		b:            b,
		conditions:   map[string]*sql.Stmt{},
	}
}

// tx runs fn in a write transaction on the twin's connection.
func (r *rawMulti) tx(ctx context.Context, fn func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.begin.ExecContext(ctx); err != nil {
		return err
	}
	if err := fn(); err != nil {
		r.rollback.ExecContext(context.WithoutCancel(ctx))
		return err
	}
	_, err := r.commit.ExecContext(ctx)
	return err
}

// checkHeads runs the heads statement for streams (sorted) with their
// first event IDs and checks each is at expected and begins no retry.
func (r *rawMulti) checkHeads(ctx context.Context, streams []string, ids []uuid.UUID, expected uint64) error {
	heads := make([][2]any, len(streams))
	for i := range streams {
		heads[i] = [2]any{streams[i], hex.EncodeToString(ids[i][:])}
	}
	j, err := json.Marshal(heads)
	if err != nil {
		return err
	}
	rows, err := r.heads.QueryContext(ctx, j)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var current int64
		var from sql.NullInt64
		var marks sql.NullString // the stream's retention marks: none here
		if err := rows.Scan(&i, &current, &from, &marks); err != nil {
			return err
		}
		if uint64(current) != expected || from.Valid || marks.Valid {
			return fmt.Errorf("raw: %s at version %d, want %d", streams[i], current, expected)
		}
	}
	return rows.Err()
}

func (r *rawMulti) insertStarts(ctx context.Context, streams []string, ids []uuid.UUID, first uint64) error {
	starts := make([][3]any, len(streams))
	for i := range streams {
		starts[i] = [3]any{streams[i], hex.EncodeToString(ids[i][:]), first}
	}
	j, err := json.Marshal(starts)
	if err != nil {
		return err
	}
	_, err = r.appends.ExecContext(ctx, j)
	return err
}

func (r *rawMulti) transfer(ctx context.Context, a, b string, expected uint64, debit, credit eventstore.Event) error {
	streams, evs := []string{a, b}, []eventstore.Event{debit, credit}
	if b < a {
		streams, evs = []string{b, a}, []eventstore.Event{credit, debit}
	}
	ids := []uuid.UUID{evs[0].ID, evs[1].ID}
	at := time.Now().UnixMicro()
	return r.tx(ctx, func() error {
		if err := r.checkHeads(ctx, streams, ids, expected); err != nil {
			return err
		}
		if err := r.insertStarts(ctx, streams, ids, expected+1); err != nil {
			return err
		}
		for _, rec := range []struct {
			stream string
			e      eventstore.Event
		}{{a, debit}, {b, credit}} {
			category, _, _ := strings.Cut(rec.stream, "-")
			e := rec.e
			if _, err := r.insert.ExecContext(ctx, rec.stream, int64(expected)+1, category, e.ID[:], e.Type, int64(e.ContentType), e.Data, []byte{}, at); err != nil {
				return err
			}
		}
		return nil
	})
}

func (r *rawMulti) subscribe(ctx context.Context, stream string, e eventstore.Event, q eventstore.Query, after uint64) (uint64, error) {
	dq := driver.Query{Items: []driver.QueryItem{driver.QueryItem(q.Items[0])}}
	var pos int64
	err := r.tx(ctx, func() error {
		if err := r.checkHeads(ctx, []string{stream}, []uuid.UUID{e.ID}, 0); err != nil {
			return err
		}
		query, args := sqlite.ConditionQuery(dq, int64(after))
		st, ok := r.conditions[query]
		if !ok {
			st = prepare(r.b, r.conn, query)
			r.conditions[query] = st
		}
		var found bool
		if err := st.QueryRowContext(ctx, args...).Scan(&found); err != nil {
			return err
		}
		if found {
			return fmt.Errorf("raw: condition failed for %s", stream)
		}
		if err := r.insertStarts(ctx, []string{stream}, []uuid.UUID{e.ID}, 1); err != nil {
			return err
		}
		category, _, _ := strings.Cut(stream, "-")
		tags, err := json.Marshal(e.Tags)
		if err != nil {
			return err
		}
		res, err := r.insertTagged.ExecContext(ctx, stream, 1, category, e.ID[:], e.Type, int64(e.ContentType), e.Data, []byte{}, time.Now().UnixMicro(), string(tags))
		if err != nil {
			return err
		}
		if pos, err = res.LastInsertId(); err != nil {
			return err
		}
		_, err = r.insertTags.ExecContext(ctx, pos-1, pos)
		return err
	})
	return uint64(pos), err
}
