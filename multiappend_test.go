package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/memory"
)

// Validation comes before anything reaches the driver, so these hold for
// every driver, whether it appends to several streams or not.
func TestAppendMultiRejectsBadInput(t *testing.T) {
	ev := eventstore.NewEvent("Moved", []byte(`{}`))
	tagged := ev
	tagged.Tags = []string{"a", "a"}
	tests := []struct {
		name string
		a    eventstore.MultiAppend
		want error
	}{
		{"no records", eventstore.MultiAppend{}, eventstore.ErrInvalidArgument},
		{"bad stream", eventstore.MultiAppend{Records: []eventstore.Record{{Stream: "$x", Event: ev}}}, eventstore.ErrInvalidStreamID},
		{"two expectations for one stream", eventstore.MultiAppend{
			Records: []eventstore.Record{{Stream: "a", Event: ev}},
			Expect:  []eventstore.StreamExpectation{{Stream: "a", Expected: eventstore.NoStream}, {Stream: "a", Expected: eventstore.Any}},
		}, eventstore.ErrInvalidArgument},
		{"check-only Any", eventstore.MultiAppend{
			Records: []eventstore.Record{{Stream: "a", Event: ev}},
			Expect:  []eventstore.StreamExpectation{{Stream: "b", Expected: eventstore.Any}},
		}, eventstore.ErrInvalidVersion},
		{"repeated tag", eventstore.MultiAppend{Records: []eventstore.Record{{Stream: "a", Event: tagged}}}, eventstore.ErrInvalidTag},
		{"empty query item", eventstore.MultiAppend{
			Records:   []eventstore.Record{{Stream: "a", Event: ev}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{}}}},
		}, eventstore.ErrInvalidQuery},
		{"empty tag in query", eventstore.MultiAppend{
			Records:   []eventstore.Record{{Stream: "a", Event: ev}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{""}}}}},
		}, eventstore.ErrInvalidQuery},
		{"repeated event id", eventstore.MultiAppend{Records: []eventstore.Record{{Stream: "a", Event: ev}, {Stream: "b", Event: ev}}}, eventstore.ErrInvalidArgument},
	}
	s := eventstore.New(memory.New(), eventstore.Options{})
	defer s.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.AppendMulti(context.Background(), tc.a)
			if !errors.Is(err, tc.want) || !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAppendConflictErrorMatches(t *testing.T) {
	err := error(&eventstore.AppendConflictError{Streams: []eventstore.WrongExpectedVersionError{
		{Stream: "a", Expected: eventstore.NoStream, Actual: 3},
		{Stream: "b", Expected: eventstore.Exact(2), Actual: 5},
	}})
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) || errors.Is(err, eventstore.ErrAppendConditionFailed) {
		t.Fatalf("stream conflict matches wrongly: %v", err)
	}
	var w *eventstore.WrongExpectedVersionError
	if !errors.As(err, &w) || w.Stream != "a" || w.Actual != 3 {
		t.Fatalf("errors.As = %+v", w)
	}
	cond := error(&eventstore.AppendConflictError{Condition: true})
	if !errors.Is(cond, eventstore.ErrAppendConditionFailed) || errors.Is(cond, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("condition conflict matches wrongly: %v", cond)
	}
}
