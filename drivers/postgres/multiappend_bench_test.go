package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// opsPerClient is how many transfers or conditional appends each client
// makes in one round of the multi-append benchmarks.
const opsPerClient = 20

// clientRounds runs op opsPerClient times on each of clients goroutines
// (each with its own state from newClient) and returns the events written.
func clientRounds[S any](clients, eventsPerOp int, newClient func(c int) S, op func(ctx context.Context, s S, i int) error) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		var wg sync.WaitGroup
		errs := make([]error, clients)
		for c := range clients {
			st := newClient(c)
			wg.Go(func() {
				for i := range opsPerClient {
					if err := op(ctx, st, i); err != nil {
						errs[c] = err
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return 0, err
			}
		}
		return clients * opsPerClient * eventsPerOp, nil
	}
}

// transfer is one client's pair of accounts and their versions.
type transfer struct {
	a, b string
	v    uint64
}

// condClient is one client's course and the position of its last append.
type condClient struct {
	course, stream string
	after          eventstore.Position
}

// rawWrite runs a locked write by hand on the driver's pool, as the driver
// sends it: one pipeline of BEGIN, the locks, the write statement, COMMIT.
// It fails unless the write inserted.
func rawWrite(ctx context.Context, bn *bench, streams []string, exclusive bool, keys []int64, modes []bool, cond string, args []any) (eventstore.Position, error) {
	write, lockStreams, lockTable, lockTags := postgres.MultiWriteSQL(bn.driver, cond, exclusive)
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	if len(streams) > 0 {
		b.Queue(lockStreams, bn.driver.Schema(), streams)
	}
	b.Queue(lockTable)
	if len(keys) > 0 {
		b.Queue(lockTags, keys, modes)
	}
	var (
		badS              []string
		badV              []int64
		dup               *string
		failed            bool
		txID, seq         *int64
		vStreams          []string
		vVers             []int64
		nTags             int64
		pos               eventstore.Position
		errNothingWritten = fmt.Errorf("raw write inserted nothing")
	)
	b.Queue(write, args...).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&badS, &badV, &dup, &failed, &txID, &seq, &vStreams, &vVers, &nTags); err != nil {
			return err
		}
		if txID == nil {
			return errNothingWritten
		}
		pos = eventstore.Position{Commit: uint64(*txID), Prepare: uint64(*seq)}
		return nil
	})
	b.Queue(`COMMIT`)
	if err := bn.pool.SendBatch(ctx, b).Close(); err != nil {
		return pos, err
	}
	return pos, nil
}

// writeArgs returns multiWriteSQL's arguments for records with the
// expectations (exact versions) of streams, without tags of their own
// unless tags is set (one list per record).
func writeArgs(streams []string, want []int64, records []eventstore.Record) []any {
	n := len(records)
	var (
		rs, types     = make([]string, n), make([]string, n)
		ks            = make([]int64, n)
		ids           = make([][16]byte, n)
		cts           = make([]int16, n)
		data, meta    = make([][]byte, n), make([][]byte, n)
		at            = make([]time.Time, n)
		starts        = make([]bool, n)
		tagIDs        = [][16]byte{}
		tags          = []string{}
		kinds         = make([]int32, len(streams))
		seen          = map[string]int64{}
		now           = time.Now()
		firstID       = uuid.New()
		nonNilOrEmpty = func(b []byte) []byte {
			if b == nil {
				return []byte{}
			}
			return b
		}
	)
	for i, r := range records {
		id := r.Event.ID
		if i == 0 {
			id = firstID
		} else if id == uuid.Nil {
			id = uuid.New()
		}
		seen[r.Stream]++
		rs[i], ks[i], ids[i], types[i] = r.Stream, seen[r.Stream], id, r.Event.Type
		cts[i], data[i], meta[i], at[i], starts[i] = int16(r.Event.ContentType), nonNilOrEmpty(r.Event.Data), nonNilOrEmpty(r.Event.Metadata), now, seen[r.Stream] == 1
		for _, t := range r.Event.Tags {
			tagIDs, tags = append(tagIDs, id), append(tags, t)
		}
	}
	for i := range kinds {
		if want[i] < 0 {
			kinds[i], want[i] = 1, 0 // Any
		}
	}
	// The last: the metadata content types of an import (none: all JSON).
	return []any{streams, kinds, want, firstID, rs, ks, ids, types, cts, data, meta, at, starts, tagIDs, tags, []int16{}}
}

// BenchmarkMultiAppend: a transfer (one event to each of two streams of the
// client's, both at exact versions) and a conditional append (one event
// tagged with the client's course and a new student, under the condition
// that no Subscribed event carries both tags after the client's last
// append), from 1 and 8 clients, the Store against its raw twin (the same
// statements, sent by hand as one pipeline on the driver's pool), taking
// turns in rounds. It reports store/raw-% (the target is at least 80).
func BenchmarkMultiAppend(b *testing.B) {
	data := conformance.BenchEvents(1)[0].Data
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("transfer/clients=%d", clients), func(b *testing.B) {
			bn := newBench(b)
			newTransfer := func(int) *transfer {
				return &transfer{a: conformance.BenchStream("Account"), b: conformance.BenchStream("Account")}
			}
			store := clientRounds(clients, 2, newTransfer, func(ctx context.Context, t *transfer, _ int) error {
				_, err := bn.store.AppendMulti(ctx, eventstore.MultiAppend{
					Records: []eventstore.Record{
						{Stream: t.a, Event: eventstore.NewEvent("Debited", data)},
						{Stream: t.b, Event: eventstore.NewEvent("Credited", data)},
					},
					Expect: []eventstore.StreamExpectation{{Stream: t.a, Expected: eventstore.Exact(t.v)}, {Stream: t.b, Expected: eventstore.Exact(t.v)}},
				})
				t.v++
				return err
			})
			raw := clientRounds(clients, 2, newTransfer, func(ctx context.Context, t *transfer, _ int) error {
				streams := []string{t.a, t.b}
				if t.b < t.a {
					streams = []string{t.b, t.a}
				}
				args := writeArgs(streams, []int64{int64(t.v), int64(t.v)}, []eventstore.Record{
					{Stream: t.a, Event: eventstore.NewEvent("Debited", data)},
					{Stream: t.b, Event: eventstore.NewEvent("Credited", data)},
				})
				_, err := rawWrite(ctx, bn, streams, false, nil, nil, "false", args)
				t.v++
				return err
			})
			rates := conformance.RunInterleaved(b, 3, []conformance.Contender{{Name: "store", Round: store}, {Name: "raw", Round: raw}})
			b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "store/raw-%")
		})
		b.Run(fmt.Sprintf("condition/clients=%d", clients), func(b *testing.B) {
			bn := newBench(b)
			newClient := func(int) *condClient {
				return &condClient{course: "course:" + uuid.NewString(), stream: conformance.BenchStream("Subscription")}
			}
			query := func(c *condClient, student string) eventstore.Query {
				return eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{c.course, student}}}}
			}
			store := clientRounds(clients, 1, newClient, func(ctx context.Context, c *condClient, _ int) error {
				student := "student:" + uuid.NewString()
				ev := eventstore.NewEvent("Subscribed", data)
				ev.Tags = []string{c.course, student}
				res, err := bn.store.AppendMulti(ctx, eventstore.MultiAppend{
					Records:   []eventstore.Record{{Stream: c.stream, Event: ev}},
					Condition: &eventstore.AppendCondition{FailIfEventsMatch: query(c, student), After: c.after},
				})
				c.after = res.Position
				return err
			})
			raw := clientRounds(clients, 1, newClient, func(ctx context.Context, c *condClient, _ int) error {
				student := "student:" + uuid.NewString()
				ev := eventstore.NewEvent("Subscribed", data)
				ev.Tags = []string{c.course, student}
				dcond := driver.AppendCondition{
					FailIfEventsMatch: driver.Query{Items: []driver.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{c.course, student}}}},
					After:             driver.Position(c.after),
				}
				args := writeArgs([]string{c.stream}, []int64{-1}, []eventstore.Record{{Stream: c.stream, Event: ev}})
				cond, args := postgres.ConditionSQL(bn.driver, dcond, args)
				keys, modes := postgres.LockKeys(bn.driver, []driver.Event{{Type: ev.Type, Tags: ev.Tags}}, &dcond)
				pos, err := rawWrite(ctx, bn, []string{c.stream}, false, keys, modes, cond, args)
				c.after = pos
				return err
			})
			rates := conformance.RunInterleaved(b, 3, []conformance.Contender{{Name: "store", Round: store}, {Name: "raw", Round: raw}})
			b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "store/raw-%")
		})
	}
}

// BenchmarkConditionScaling: conditional appends on disjoint boundaries
// (each client its own course tag, as in BenchmarkMultiAppend) from 1, 2, 4
// and 8 clients, taking turns in rounds. It reports each client count's
// events/s and its rate against one client's (x-of-1-%): disjoint
// conditions take no lock another waits for, so the rate should grow with
// the clients until the server's commits (WAL flushes) bound it.
func BenchmarkConditionScaling(b *testing.B) {
	data := conformance.BenchEvents(1)[0].Data
	bn := newBench(b)
	counts := []int{1, 2, 4, 8}
	var cs []conformance.Contender
	for _, clients := range counts {
		round := clientRounds(clients, 1, func(int) *condClient {
			return &condClient{course: "course:" + uuid.NewString(), stream: conformance.BenchStream("Subscription")}
		}, func(ctx context.Context, c *condClient, _ int) error {
			student := "student:" + uuid.NewString()
			ev := eventstore.NewEvent("Subscribed", data)
			ev.Tags = []string{c.course, student}
			res, err := bn.store.AppendMulti(ctx, eventstore.MultiAppend{
				Records: []eventstore.Record{{Stream: c.stream, Event: ev}},
				Condition: &eventstore.AppendCondition{
					FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{c.course, student}}}},
					After:             c.after,
				},
			})
			c.after = res.Position
			return err
		})
		cs = append(cs, conformance.Contender{Name: fmt.Sprintf("clients=%d", clients), Round: round})
	}
	rates := conformance.RunInterleaved(b, 3, cs)
	for i := 1; i < len(counts); i++ {
		b.ReportMetric(conformance.MedianPercent(rates, i, 0), fmt.Sprintf("clients-%d-of-1-%%", counts[i]))
	}
}
