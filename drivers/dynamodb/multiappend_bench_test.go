package dynamodb_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
)

// opsPerClient is how many transfers or conditional appends each client
// makes in one round of the multi-append benchmarks.
const opsPerClient = 10

// clientRounds runs op opsPerClient times on each of clients goroutines
// (each with its own state from newClient) and returns the events written.
func clientRounds[S any](clients, eventsPerOp int, newClient func(c int) S, op func(ctx context.Context, s S) error) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		var wg sync.WaitGroup
		errs := make([]error, clients)
		for c := range clients {
			st := newClient(c)
			wg.Go(func() {
				for range opsPerClient {
					if err := op(ctx, st); err != nil {
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

func newTransfer(int) *transfer {
	return &transfer{a: conformance.BenchStream("Account"), b: conformance.BenchStream("Account")}
}

// condClient is one client's course and the position of its last append.
type condClient struct {
	course, stream string
	after          eventstore.Position
}

func newCondClient(int) *condClient {
	return &condClient{course: "course:" + uuid.NewString(), stream: conformance.BenchStream("Subscription")}
}

// subscribed returns a client's next event, tagged with its course and a
// new student, and the condition's query: no Subscribed event with both.
func (c *condClient) subscribed(data []byte) (eventstore.Event, eventstore.Query) {
	student := "student:" + uuid.NewString()
	ev := eventstore.NewEvent("Subscribed", data)
	ev.Tags = []string{c.course, student}
	return ev, eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{c.course, student}}}}
}

// storeCondition is one conditional append through the Store.
func storeCondition(s *eventstore.Store, data []byte) func(ctx context.Context, c *condClient) error {
	return func(ctx context.Context, c *condClient) error {
		ev, q := c.subscribed(data)
		res, err := s.AppendMulti(ctx, eventstore.MultiAppend{
			Records:   []eventstore.Record{{Stream: c.stream, Event: ev}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: c.after},
		})
		c.after = res.Position
		return err
	}
}

// byID is the driver's retry lookup: the first event ID in its stream.
func (r *raw) byID(ctx context.Context, stream string, id uuid.UUID) error {
	_, err := r.client.Query(ctx, &awsdynamodb.QueryInput{
		TableName: aws.String(r.table), IndexName: aws.String("by_id"), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :s AND id = :i"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s": &types.AttributeValueMemberS{Value: stream}, ":i": &types.AttributeValueMemberB{Value: id[:]},
		},
	})
	return err
}

// version reads a stream's version as the driver does.
func (r *raw) version(ctx context.Context, stream string) (uint64, error) {
	out, err := r.client.Query(ctx, &awsdynamodb.QueryInput{
		TableName: aws.String(r.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: stream}},
		ProjectionExpression:      aws.String("sk"),
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil || len(out.Items) == 0 {
		return 0, err
	}
	return strconv.ParseUint(out.Items[0]["sk"].(*types.AttributeValueMemberN).Value, 10, 64)
}

// multi writes records in one transaction at the next positions, as the
// driver's committer does (one transaction at a time).
func (r *raw) multi(ctx context.Context, records []eventstore.Record, actual map[string]uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{
		TransactItems:      dynamodb.MultiTransactItems(r.table, r.next, records, actual, driver.Now()),
		ClientRequestToken: aws.String(uuid.NewString()),
	})
	if err != nil {
		return 0, err
	}
	r.next += uint64(len(records))
	return r.next - 1, nil
}

// conditional checks q after after as the driver's tag index does (the
// last log entry, whose own events it matches, then the items of each of
// q's tags below it; see tagindex.go), and writes the record (its stream
// at version v) right after the last one: one writer at a time, so the log
// cannot move meanwhile.
func (r *raw) conditional(ctx context.Context, rec eventstore.Record, v uint64, q eventstore.Query, after uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dq := driver.Query{Items: []driver.QueryItem{{Types: q.Items[0].Types, Tags: q.Items[0].Tags}}}
	head, err := r.client.Query(ctx, &awsdynamodb.QueryInput{
		TableName: aws.String(r.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :l"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":l": &types.AttributeValueMemberS{Value: "$log#0"}},
		ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(1),
	})
	if err != nil {
		return 0, err
	}
	last := uint64(1) // the first position of the last entry
	if len(head.Items) > 0 {
		last, _ = strconv.ParseUint(head.Items[0]["sk"].(*types.AttributeValueMemberN).Value, 10, 64)
		typs, tags, err := dynamodb.DecodeLogTags(head.Items[0])
		if err != nil {
			return 0, err
		}
		for i := range typs {
			if last+uint64(i) > after && dq.Matches(typs[i], tags[i]) {
				return 0, fmt.Errorf("condition failed")
			}
		}
	}
	lo := after - min(after, 99)
	carrying := map[uint64][]string{} // position → the query's tags its event carries
	typeAt := map[uint64]string{}
	for _, tag := range dq.Items[0].Tags {
		if last <= after+1 { // no position between After and the last entry (as tagMatches)
			break
		}
		in := &awsdynamodb.QueryInput{
			TableName: aws.String(r.table), ConsistentRead: aws.Bool(true),
			KeyConditionExpression: aws.String("pk = :t AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":t":  &types.AttributeValueMemberS{Value: "$tag#" + tag},
				":lo": &types.AttributeValueMemberN{Value: strconv.FormatUint(lo+1, 10)},
				":hi": &types.AttributeValueMemberN{Value: strconv.FormatUint(last-1, 10)},
			},
		}
		for {
			out, err := r.client.Query(ctx, in)
			if err != nil {
				return 0, err
			}
			for _, item := range out.Items {
				start, _ := strconv.ParseUint(item["sk"].(*types.AttributeValueMemberN).Value, 10, 64)
				typs := item["ty"].(*types.AttributeValueMemberL).Value
				for i, o := range item["o"].(*types.AttributeValueMemberL).Value {
					off, _ := strconv.ParseUint(o.(*types.AttributeValueMemberN).Value, 10, 64)
					p := start + off
					carrying[p] = append(carrying[p], tag)
					typeAt[p] = typs[i].(*types.AttributeValueMemberS).Value
				}
			}
			if out.LastEvaluatedKey == nil {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	for p, tags := range carrying {
		if p > after && dq.Matches(typeAt[p], tags) {
			return 0, fmt.Errorf("condition failed")
		}
	}
	_, err = r.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{
		TransactItems:      dynamodb.MultiTransactItems(r.table, r.next, []eventstore.Record{rec}, map[string]uint64{rec.Stream: v}, driver.Now()),
		ClientRequestToken: aws.String(uuid.NewString()),
	})
	if err != nil {
		return 0, err
	}
	r.next++
	return r.next - 1, nil
}

// appendCounter counts a contender's requests (on its client's
// transport) and appends, for requests per append.
type appendCounter struct {
	rc      *requestCounter
	appends int
}

func newAppendCounter() *appendCounter {
	return &appendCounter{rc: &requestCounter{next: http.DefaultTransport, ops: map[string]int{}}}
}

// round wraps a round of appends of eventsPerAppend events each.
func (c *appendCounter) round(eventsPerAppend int, round func(ctx context.Context) (int, error)) func(ctx context.Context) (int, error) {
	c.rc.take() // the setup's requests
	return func(ctx context.Context) (int, error) {
		n, err := round(ctx)
		c.appends += n / eventsPerAppend
		return n, err
	}
}

// report reports name's requests per append, in all and of each kind.
func (c *appendCounter) report(b *testing.B, name string) {
	ops := c.rc.take()
	total := 0
	for op, n := range ops {
		total += n
		b.ReportMetric(float64(n)/float64(c.appends), name+"-"+op+"/op")
	}
	b.ReportMetric(float64(total)/float64(c.appends), name+"-requests/op")
}

// runCounted runs the store and its raw twin interleaved, reports
// store/raw-% and each side's requests per append.
func runCounted(b *testing.B, eventsPerAppend int, sc, rc *appendCounter, store, raw func(ctx context.Context) (int, error)) {
	rates := conformance.RunInterleaved(b, 3, []conformance.Contender{{Name: "store", Round: sc.round(eventsPerAppend, store)}, {Name: "raw", Round: rc.round(eventsPerAppend, raw)}})
	b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "store/raw-%")
	sc.report(b, "store")
	rc.report(b, "raw")
}

// BenchmarkMultiAppend: a transfer (one event to each of two streams of the
// client's, both at exact versions) and a conditional append (one event
// tagged with the client's course and a new student, under the condition
// that no Subscribed event carries both tags after the client's last
// append), from 1 and 8 clients, the Store against its raw twin (the same
// requests, sent by hand on the same client: the retry lookup, the version
// queries, for a condition the last log entry and the tag items of the
// query's tags after After, and one TransactWriteItems, one at a time), taking turns in rounds. It
// reports store/raw-% (the target is at least 80) and each side's requests
// per append, in all and per operation.
func BenchmarkMultiAppend(b *testing.B) {
	data := conformance.BenchEvents(1)[0].Data
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("transfer/clients=%d", clients), func(b *testing.B) {
			sc, rc := newAppendCounter(), newAppendCounter()
			s, _ := newStore(b, newClient(b, sc.rc), dynamodb.Options{})
			rw := newRawOn(b, newClient(b, rc.rc))
			store := clientRounds(clients, 2, newTransfer, func(ctx context.Context, t *transfer) error {
				_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
					Records: []eventstore.Record{
						{Stream: t.a, Event: eventstore.NewEvent("Debited", data)},
						{Stream: t.b, Event: eventstore.NewEvent("Credited", data)},
					},
					Expect: []eventstore.StreamExpectation{{Stream: t.a, Expected: eventstore.Exact(t.v)}, {Stream: t.b, Expected: eventstore.Exact(t.v)}},
				})
				t.v++
				return err
			})
			raw := clientRounds(clients, 2, newTransfer, func(ctx context.Context, t *transfer) error {
				recs := []eventstore.Record{
					{Stream: t.a, Event: eventstore.NewEvent("Debited", data)},
					{Stream: t.b, Event: eventstore.NewEvent("Credited", data)},
				}
				if err := rw.byID(ctx, t.a, recs[0].Event.ID); err != nil {
					return err
				}
				var va, vb uint64
				var ea, eb error
				var wg sync.WaitGroup
				wg.Go(func() { va, ea = rw.version(ctx, t.a) })
				wg.Go(func() { vb, eb = rw.version(ctx, t.b) })
				wg.Wait()
				if ea != nil || eb != nil || va != t.v || vb != t.v {
					return fmt.Errorf("versions %d, %d (%v, %v), want %d", va, vb, ea, eb, t.v)
				}
				_, err := rw.multi(ctx, recs, map[string]uint64{t.a: va, t.b: vb})
				t.v++
				return err
			})
			runCounted(b, 2, sc, rc, store, raw)
		})
		b.Run(fmt.Sprintf("condition/clients=%d", clients), func(b *testing.B) {
			sc, rc := newAppendCounter(), newAppendCounter()
			s, _ := newStore(b, newClient(b, sc.rc), dynamodb.Options{})
			rw := newRawOn(b, newClient(b, rc.rc))
			store := clientRounds(clients, 1, newCondClient, storeCondition(s, data))
			raw := clientRounds(clients, 1, newCondClient, func(ctx context.Context, c *condClient) error {
				ev, q := c.subscribed(data)
				if err := rw.byID(ctx, c.stream, ev.ID); err != nil {
					return err
				}
				v, err := rw.version(ctx, c.stream)
				if err != nil {
					return err
				}
				rec := eventstore.Record{Stream: c.stream, Event: ev}
				pos, err := rw.conditional(ctx, rec, v, q, c.after.Commit)
				c.after = eventstore.Position{Commit: pos}
				return err
			})
			runCounted(b, 1, sc, rc, store, raw)
		})
	}
}

// BenchmarkConditionScaling: conditional appends on disjoint boundaries
// (each client its own course tag, as in BenchmarkMultiAppend) from 1, 2, 4
// and 8 clients, taking turns in rounds. It reports each client count's
// events/s and its rate against one client's (x-of-1-%).
func BenchmarkConditionScaling(b *testing.B) {
	data := conformance.BenchEvents(1)[0].Data
	s := benchStore(b)
	counts := []int{1, 2, 4, 8}
	var cs []conformance.Contender
	for _, clients := range counts {
		cs = append(cs, conformance.Contender{Name: fmt.Sprintf("clients=%d", clients), Round: clientRounds(clients, 1, newCondClient, storeCondition(s, data))})
	}
	rates := conformance.RunInterleaved(b, 3, cs)
	for i := 1; i < len(counts); i++ {
		b.ReportMetric(conformance.MedianPercent(rates, i, 0), fmt.Sprintf("clients-%d-of-1-%%", counts[i]))
	}
}

// BenchmarkConditionLongLog: the unique-username check (a condition
// without After: no Registered event carries the new user's tag) after a
// log of 10,000 events (1,000 appends of 10), from 1 and 8 clients, on a
// table with the tag index against one set up without it (as before it
// existed, where a condition scans the whole log), taking turns in rounds.
// It reports index/scan-% (how many times faster the index is, in percent).
func BenchmarkConditionLongLog(b *testing.B) {
	data := conformance.BenchEvents(1)[0].Data
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var cs []conformance.Contender
			for _, index := range []bool{true, false} {
				var opts dynamodb.Options
				name := "index"
				if !index {
					dynamodb.SetNoTagIndex(&opts)
					name = "scan"
				}
				s, _ := newStore(b, newClient(b, nil), opts)
				fillLog(b, s, 1000, 10)
				cs = append(cs, conformance.Contender{Name: name, Round: clientRounds(clients, 1, func(int) struct{} { return struct{}{} },
					func(ctx context.Context, _ struct{}) error {
						user := "user:" + uuid.NewString()
						ev := eventstore.NewEvent("Registered", data)
						ev.Tags = []string{user}
						_, err := s.AppendMulti(ctx, eventstore.MultiAppend{
							Records:   []eventstore.Record{{Stream: conformance.BenchStream("User"), Event: ev}},
							Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Registered"}, Tags: []string{user}}}}},
						})
						return err
					})})
			}
			rates := conformance.RunInterleaved(b, 1, cs)
			b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "index/scan-%")
		})
	}
}

// fillLog appends n appends of size untagged events each, from 16
// goroutines.
func fillLog(b *testing.B, s *eventstore.Store, n, size int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for g := range 16 {
		wg.Go(func() {
			stream := conformance.BenchStream("Filler")
			for range n / 16 {
				evs := make([]eventstore.Event, size)
				for i := range evs {
					evs[i] = eventstore.NewEvent("Filled", []byte(`{}`))
				}
				if _, err := s.Append(b.Context(), stream, eventstore.Any, evs...); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}
