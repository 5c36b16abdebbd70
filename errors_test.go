package eventstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
)

func TestCheckRetry(t *testing.T) {
	id := uuid.New()
	stored := eventstore.RecordedEvent{StreamID: "s", Version: 4, ID: id, Type: "T", Data: []byte(`{"a":1}`), Metadata: nil}
	same := eventstore.Event{ID: id, Type: "T", Data: []byte(`{"a":1}`), Metadata: []byte{}}
	tests := []struct {
		name  string
		ev    eventstore.Event
		field string // "" for no conflict
	}{
		{"Same", same, ""},
		{"NilAndEmptyMetadataAreEqual", same, ""},
		{"Type", eventstore.Event{ID: id, Type: "U", Data: same.Data}, "type"},
		{"ContentType", eventstore.Event{ID: id, Type: "T", ContentType: eventstore.Binary, Data: same.Data}, "content type"},
		{"Data", eventstore.Event{ID: id, Type: "T", Data: []byte(`{"a":2}`)}, "data"},
		{"Metadata", eventstore.Event{ID: id, Type: "T", Data: same.Data, Metadata: []byte(`{"m":1}`)}, "metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := eventstore.CheckRetry("s", []eventstore.RecordedEvent{stored}, []eventstore.Event{tc.ev})
			if tc.field == "" {
				if err != nil {
					t.Fatalf("CheckRetry of the same content: %v", err)
				}
				return
			}
			wrapped := fmt.Errorf("append: %w", err)
			var dup *eventstore.DuplicateEventIDError
			if !errors.Is(wrapped, eventstore.ErrDuplicateEventID) || !errors.As(wrapped, &dup) {
				t.Fatalf("CheckRetry with another %s: want a *DuplicateEventIDError, got %v", tc.field, err)
			}
			if dup.Field != tc.field || dup.ID != id || dup.Version != 4 || dup.Stream != "s" {
				t.Fatalf("CheckRetry with another %s: got %+v", tc.field, dup)
			}
		})
	}
}
