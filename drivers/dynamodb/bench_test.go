package dynamodb_test

import (
	"context"
	"fmt"
	"slices"
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

// The workloads are conformance.Run*, shared with the other drivers. Every
// store benchmark (…/store) has twins on the same DynamoDB Local in the
// same run, each on a table of its own:
//
//   - …/raw: the SDK sending the driver's own requests, built with the
//     driver's own item encoders, without the Store and the driver around
//     them: for an append, the strongly consistent by_id query of the first
//     event ID, then one TransactWriteItems with the log entry at the next
//     position (kept in memory, one transaction at a time), the version
//     check and the event puts; for reads, the same Query and BatchGetItem
//     pages. What the library adds to the requests.
//   - …/minimal (appends): the simplest atomic append DynamoDB offers — the
//     event puts on attribute_not_exists and the version check, no log
//     entry, no ID lookup, no serialisation. What global order and durable
//     idempotency cost; it has no global order at all.
//
// The global log makes every append of a table contend for its head: the
// clients=1/4/8 runs measure that ceiling, drivers=4 with one driver per
// writer as separate processes would (they race for the head instead of
// sharing transactions). Figures in docs/dynamodb.md.

// benchStore returns a Store over a fresh table.
func benchStore(b *testing.B) *eventstore.Store {
	b.Helper()
	s, _ := newStore(b, newClient(b, nil), dynamodb.Options{})
	return s
}

// raw is a twin on a table of its own, created with the driver's schema.
type raw struct {
	client *awsdynamodb.Client
	table  string

	mu   sync.Mutex // one transaction at a time, as the driver; protects next
	next uint64
}

func newRaw(b testing.TB) *raw {
	b.Helper()
	return newRawOn(b, newClient(b, nil))
}

// newRawOn is newRaw on client.
func newRawOn(b testing.TB, client *awsdynamodb.Client) *raw {
	b.Helper()
	r := &raw{client: client, table: randomTable(), next: 1}
	if _, err := r.client.CreateTable(b.Context(), dynamodb.CreateTableInput(r.table)); err != nil {
		b.Fatal(err)
	}
	deleteTableAtCleanup(b, r.client, r.table)
	return r
}

// transactItems returns the version check and event puts of an append.
func (r *raw) transactItems(stream string, expected, pos uint64, events []eventstore.Event) []types.TransactWriteItem {
	var items []types.TransactWriteItem
	if expected > 0 {
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(r.table), ConditionExpression: aws.String("attribute_exists(pk)"),
			Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: stream},
				"sk": &types.AttributeValueMemberN{Value: strconv.FormatUint(expected, 10)},
			},
		}})
	}
	at := driver.Now()
	for i, e := range events {
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(r.table), ConditionExpression: aws.String("attribute_not_exists(pk)"),
			Item: dynamodb.EventItem(stream, expected+uint64(i)+1, pos+uint64(i), e, at),
		}})
	}
	return items
}

// append sends the driver's requests for an append at an exact version.
func (r *raw) append(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	_, err := r.client.Query(ctx, &awsdynamodb.QueryInput{
		TableName: aws.String(r.table), IndexName: aws.String("by_id"), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :s AND id = :i"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s": &types.AttributeValueMemberS{Value: stream}, ":i": &types.AttributeValueMemberB{Value: events[0].ID[:]},
		},
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(r.table), ConditionExpression: aws.String("attribute_not_exists(pk)"),
		Item: dynamodb.LogItemAt(1_000_000, r.next, stream, expected+1, events),
	}}}
	items = append(items, r.transactItems(stream, expected, r.next, events)...)
	if _, err := r.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{
		TransactItems: items, ClientRequestToken: aws.String(uuid.NewString()),
	}); err != nil {
		return err
	}
	r.next += uint64(len(events))
	return nil
}

// minimalAppend appends without a global log: no ID lookup, no log entry,
// writers never wait for each other.
func (r *raw) minimalAppend(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	_, err := r.client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{
		TransactItems: r.transactItems(stream, expected, 0, events), ClientRequestToken: aws.String(uuid.NewString()),
	})
	return err
}

// readStream reads a stream as the driver does: strongly consistent Query
// pages of 512 events (the Store's page size), every event decoded.
func (r *raw) readStream(ctx context.Context, stream string) (int, error) {
	n := 0
	from := uint64(1)
	for {
		out, err := r.client.Query(ctx, &awsdynamodb.QueryInput{
			TableName: aws.String(r.table), ConsistentRead: aws.Bool(true), Limit: aws.Int32(512),
			KeyConditionExpression: aws.String("pk = :s AND sk >= :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":s": &types.AttributeValueMemberS{Value: stream},
				":v": &types.AttributeValueMemberN{Value: strconv.FormatUint(from, 10)},
			},
		})
		if err != nil {
			return n, err
		}
		for _, item := range out.Items {
			ev, err := dynamodb.DecodeEvent(item)
			if err != nil {
				return n, err
			}
			from = ev.Version + 1
		}
		n += len(out.Items)
		if len(out.Items) < 512 {
			return n, nil
		}
	}
}

// readAll reads the log as the driver does: log entries with strongly
// consistent Query pages, then their events with strongly consistent
// BatchGetItem calls of 100 keys, 512 events (a Store page) at a time.
func (r *raw) readAll(ctx context.Context) (int, error) {
	n := 0
	from, skip := uint64(1), uint64(0) // the entry to read from, and its events already read
	for {
		out, err := r.client.Query(ctx, &awsdynamodb.QueryInput{
			TableName: aws.String(r.table), ConsistentRead: aws.Bool(true), Limit: aws.Int32(16),
			KeyConditionExpression: aws.String("pk = :l AND sk >= :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":l": &types.AttributeValueMemberS{Value: "$log#0"},
				":p": &types.AttributeValueMemberN{Value: strconv.FormatUint(from, 10)},
			},
		})
		if err != nil {
			return n, err
		}
		if len(out.Items) == 0 {
			return n, nil
		}
		var keys []map[string]types.AttributeValue
	entries:
		for _, item := range out.Items {
			start, _ := strconv.ParseUint(item["sk"].(*types.AttributeValueMemberN).Value, 10, 64)
			stream := item["s"].(*types.AttributeValueMemberS).Value
			first, _ := strconv.ParseUint(item["v"].(*types.AttributeValueMemberN).Value, 10, 64)
			count, _ := strconv.ParseUint(item["n"].(*types.AttributeValueMemberN).Value, 10, 64)
			from = start
			for ; skip < count; skip++ {
				if len(keys) == 512 {
					break entries
				}
				keys = append(keys, map[string]types.AttributeValue{
					"pk": &types.AttributeValueMemberS{Value: stream},
					"sk": &types.AttributeValueMemberN{Value: strconv.FormatUint(first+skip, 10)},
				})
			}
			from, skip = start+count, 0
		}
		for chunk := range slices.Chunk(keys, 100) {
			req := map[string]types.KeysAndAttributes{r.table: {Keys: chunk, ConsistentRead: aws.Bool(true)}}
			for len(req) > 0 {
				got, err := r.client.BatchGetItem(ctx, &awsdynamodb.BatchGetItemInput{RequestItems: req})
				if err != nil {
					return n, err
				}
				for _, item := range got.Responses[r.table] {
					if _, err := dynamodb.DecodeEvent(item); err != nil {
						return n, err
					}
					n++
				}
				req = got.UnprocessedKeys
			}
		}
	}
}

// BenchmarkAppend: single events and 10-event batches from one writer, and
// single events from 4 and 8 writers on distinct streams — through one
// driver (group commit) and through one driver per writer (separate
// processes racing for the head of the log).
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct{ batch, clients int }{{1, 1}, {10, 1}, {1, 4}, {1, 8}} {
		name := fmt.Sprintf("batch=%d", c.batch)
		if c.clients > 1 {
			name += fmt.Sprintf("/clients=%d", c.clients)
		}
		b.Run(name+"/store", func(b *testing.B) {
			conformance.BenchmarkAppend(b, benchStore(b), c.batch, c.clients)
		})
		b.Run(name+"/raw", func(b *testing.B) {
			conformance.RunAppend(b, c.batch, c.clients, newRaw(b).append)
		})
		b.Run(name+"/minimal", func(b *testing.B) {
			conformance.RunAppend(b, c.batch, c.clients, newRaw(b).minimalAppend)
		})
	}
	b.Run("batch=1/clients=4/drivers=4/store", func(b *testing.B) {
		client := newClient(b, nil)
		first := newDriver(b, client, dynamodb.Options{})
		stores := make([]*eventstore.Store, 4)
		for i := range stores {
			d, err := dynamodb.New(b.Context(), client, first.Table(), dynamodb.Options{})
			if err != nil {
				b.Fatal(err)
			}
			stores[i] = eventstore.New(d, eventstore.Options{})
			b.Cleanup(func() { stores[i].Close() })
		}
		// Each writer's stream is new in every iteration; the four streams
		// of an iteration go to the four stores.
		var mu sync.Mutex
		assigned := map[string]*eventstore.Store{}
		conformance.RunAppend(b, 1, 4, func(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
			mu.Lock()
			s, ok := assigned[stream]
			if !ok {
				s = stores[len(assigned)%len(stores)]
				assigned[stream] = s
			}
			mu.Unlock()
			_, err := s.Append(ctx, stream, eventstore.Exact(expected), events...)
			return err
		})
	})
}

func BenchmarkReadStream(b *testing.B) {
	b.Run("events=1000/store", func(b *testing.B) {
		conformance.BenchmarkReadStream(b, benchStore(b), 1000)
	})
	b.Run("events=1000/raw", func(b *testing.B) {
		r := newRaw(b)
		conformance.RunReadStream(b, 1000, 98, r.append, r.readStream)
	})
}

// BenchmarkReadAll reads a log of 10,000 events (seeding 100,000 on DynamoDB
// Local would take minutes).
func BenchmarkReadAll(b *testing.B) {
	b.Run("events=10000/store", func(b *testing.B) {
		conformance.BenchmarkReadAll(b, benchStore(b), 10_000)
	})
	b.Run("events=10000/raw", func(b *testing.B) {
		r := newRaw(b)
		conformance.RunReadAll(b, 10_000, 98, r.append, r.readAll)
	})
}

// BenchmarkCatchUp: a subscription's catch-up against ReadAll of the same
// 10,000 events (as BenchmarkReadAll), in the same run (catchup/readall is
// their ratio).
func BenchmarkCatchUp(b *testing.B) {
	b.Run("events=10000/store", func(b *testing.B) {
		conformance.BenchmarkCatchUp(b, benchStore(b), 10_000)
	})
}

// BenchmarkFilteredCatchUp: a subscription to a category that is 0.1 % of
// a log of 20,000 events catches up from the start: ReadAllScan pages of
// at most 4,096 positions read the log entries (a few Query requests per
// page) and fetch only the 20 matches.
func BenchmarkFilteredCatchUp(b *testing.B) {
	b.Run("events=20000/share=1000/store", func(b *testing.B) {
		conformance.BenchmarkFilteredCatchUp(b, benchStore(b), 20_000, 1000)
	})
}

// BenchmarkImport copies batches of MaxAppendEvents (98) events of 14
// streams taking turns into a fresh table, as migrate.Copy does: …/import
// sends each batch as one Store.Import (one transaction, and from the second
// batch on one BatchGetItem of the streams' previous versions), …/append the
// same events as one Store.Append per run of one stream, at the exact
// version, one after another (what Copy did before the driver could
// import). …/minimal is the raw twin: the SDK sending each batch as one
// TransactWriteItems of its 98 event puts (attribute_not_exists, the
// driver's item layout), without the log entry or the version read, the
// fastest atomic multi-stream write DynamoDB offers. run=1 interleaves the
// streams event by event (98 runs of one event per batch), run=7 in runs of
// 7 events (14 runs). Each iteration writes 5 batches to new streams.
// Figures in docs/dynamodb.md.
func BenchmarkImport(b *testing.B) {
	const streams, batches = 14, 5
	for _, run := range []int{1, 7} {
		// batch returns batch k of a copy of streams named prefix-0…
		batch := func(prefix string, k int) []eventstore.RecordedEvent {
			evs := make([]eventstore.RecordedEvent, 0, 98)
			perStream := 98 / streams // events of each stream per batch
			for r := range perStream / run {
				for s := range streams {
					for i := range run {
						v := uint64(k*perStream + r*run + i + 1)
						evs = append(evs, eventstore.RecordedEvent{
							StreamID: fmt.Sprintf("%s-%d", prefix, s), Version: v, ID: uuid.New(),
							Type: conformance.BenchEventType, Data: conformance.BenchData, RecordedAt: driver.Now(),
						})
					}
				}
			}
			return evs
		}
		// copyBatches times writing every batch with write, 5 per iteration,
		// each iteration to new streams.
		copyBatches := func(b *testing.B, name string, write func([]eventstore.RecordedEvent) error) {
			events := 0
			for b.Loop() {
				prefix := conformance.BenchStream(name)
				for k := range batches {
					evs := batch(prefix, k)
					if err := write(evs); err != nil {
						b.Fatal(err)
					}
					events += len(evs)
				}
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		}
		b.Run(fmt.Sprintf("run=%d/import", run), func(b *testing.B) {
			store := benchStore(b)
			copyBatches(b, "Import", func(evs []eventstore.RecordedEvent) error {
				return store.Import(b.Context(), evs)
			})
		})
		b.Run(fmt.Sprintf("run=%d/minimal", run), func(b *testing.B) {
			r := newRaw(b)
			copyBatches(b, "Minimal", func(evs []eventstore.RecordedEvent) error {
				items := make([]types.TransactWriteItem, len(evs))
				for i, e := range evs {
					items[i] = types.TransactWriteItem{Put: &types.Put{
						TableName: aws.String(r.table), ConditionExpression: aws.String("attribute_not_exists(pk)"),
						Item: dynamodb.EventItem(e.StreamID, e.Version, 0, eventstore.Event{ID: e.ID, Type: e.Type, Data: e.Data}, e.RecordedAt),
					}}
				}
				_, err := r.client.TransactWriteItems(b.Context(), &awsdynamodb.TransactWriteItemsInput{
					TransactItems: items, ClientRequestToken: aws.String(uuid.NewString()),
				})
				return err
			})
		})
		b.Run(fmt.Sprintf("run=%d/append", run), func(b *testing.B) {
			store := benchStore(b)
			copyBatches(b, "Append", func(evs []eventstore.RecordedEvent) error {
				for start := 0; start < len(evs); start += run {
					first := evs[start]
					appended := make([]eventstore.Event, run)
					for i, e := range evs[start : start+run] {
						appended[i] = eventstore.Event{ID: e.ID, Type: e.Type, Data: e.Data}
					}
					if _, err := store.Append(b.Context(), first.StreamID, eventstore.Exact(first.Version-1), appended...); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}
