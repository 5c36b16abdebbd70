package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
)

var _ conformance.WriterHolder = harness{}

// HoldAppend implements conformance.WriterHolder: the log entry of the
// append takes its positions and its event items follow when commit runs,
// which is what a reader sees while DynamoDB applies a transaction's items
// one by one (or, in an indexed table, the lease holder's placement).
func (harness) HoldAppend(t testing.TB, d driver.Driver, req driver.AppendRequest) func() error {
	t.Helper()
	commit, err := dynamodb.HoldAppend(t.Context(), d.(*dynamodb.Driver), req)
	if err != nil {
		t.Fatalf("hold an append: %v", err)
	}
	return commit
}

// TestMultiAppendLayout checks the items of a multi-stream append of
// tagged events: one log entry covering the records in order, with each
// event's type and tags, and the tags on the event items.
func TestMultiAppendLayout(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts dynamodb.Options
	}{{"head", dynamodb.Options{}}, {"indexed", indexedOptions()}} {
		t.Run(tc.name, func(t *testing.T) {
			client := newClient(t, nil)
			s, d := newStore(t, client, tc.opts)
			a, b := "A-"+randomTable(), "B-"+randomTable()
			e1, e2, e3 := eventstore.NewEvent("Debited", nil), eventstore.NewEvent("Credited", nil), eventstore.NewEvent("Noted", nil)
			e1.Tags, e2.Tags = []string{"account:1", "transfer:7"}, []string{"transfer:7"}
			cond := &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"transfer:7"}}}}}
			res, err := s.AppendMulti(t.Context(), eventstore.MultiAppend{
				Records:   []eventstore.Record{{Stream: a, Event: e1}, {Stream: b, Event: e2}, {Stream: a, Event: e3}},
				Condition: cond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Position.Commit != 3 || res.Versions[a] != 2 || res.Versions[b] != 1 {
				t.Errorf("result %+v, want position 3, %s at 2, %s at 1", res, a, b)
			}
			out, err := client.Query(t.Context(), &awsdynamodb.QueryInput{
				TableName: aws.String(d.Table()), ConsistentRead: aws.Bool(true),
				KeyConditionExpression:    aws.String("pk = :l"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":l": &types.AttributeValueMemberS{Value: "$log#0"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Items) != 1 {
				t.Fatalf("%d log entries, want 1", len(out.Items))
			}
			typs, tags, err := dynamodb.DecodeLogTags(out.Items[0])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(typs, []string{"Debited", "Credited", "Noted"}) || !slices.EqualFunc(tags, [][]string{e1.Tags, e2.Tags, nil}, slices.Equal) {
				t.Errorf("log entry lists types %q and tags %q", typs, tags)
			}
			var evs []eventstore.RecordedEvent
			for ev, err := range s.ReadStream(t.Context(), a, eventstore.ReadStreamOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, ev)
			}
			if len(evs) != 2 || !slices.Equal(evs[0].Tags, e1.Tags) || evs[1].Tags != nil {
				t.Errorf("read %s: %+v", a, evs)
			}
			// The same condition again fails: the append matches it.
			_, err = s.AppendMulti(t.Context(), eventstore.MultiAppend{
				Records: []eventstore.Record{{Stream: b, Event: eventstore.NewEvent("Credited", nil)}}, Condition: cond,
			})
			if !errors.Is(err, eventstore.ErrAppendConditionFailed) {
				t.Errorf("second conditional append: want ErrAppendConditionFailed, got %v", err)
			}
		})
	}
}

// TestMultiAppendTransactionLimit checks that a multi-stream append over
// DynamoDB's 100 items per transaction fails whole with ErrBatchTooLarge,
// even when its events are within the driver's MaxAppendEvents: streams
// only checked take an item each.
func TestMultiAppendTransactionLimit(t *testing.T) {
	s, _ := newStore(t, newClient(t, nil), dynamodb.Options{})
	ma := eventstore.MultiAppend{}
	for i := range 60 {
		st := fmt.Sprintf("Limit-%d-%s", i, randomTable())
		ma.Records = append(ma.Records, eventstore.Record{Stream: st, Event: eventstore.NewEvent("E", nil)})
		ma.Expect = append(ma.Expect, eventstore.StreamExpectation{Stream: "Checked-" + st, Expected: eventstore.NoStream})
	}
	_, err := s.AppendMulti(context.Background(), ma)
	if !errors.Is(err, eventstore.ErrBatchTooLarge) {
		t.Fatalf("60 events and 60 checked streams: want ErrBatchTooLarge, got %v", err)
	}
	for _, r := range ma.Records[:3] {
		if v, err := s.StreamVersion(t.Context(), r.Stream); err != nil || v != 0 {
			t.Errorf("%s at version %d (%v) after a failed append, want 0", r.Stream, v, err)
		}
	}
}
