package driver_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

func TestCheckRetry(t *testing.T) {
	id := uuid.New()
	stored := driver.RecordedEvent{StreamID: "s", Version: 4, ID: id, Type: "T", Data: []byte(`{"a":1}`), Metadata: nil}
	same := driver.Event{ID: id, Type: "T", Data: []byte(`{"a":1}`), Metadata: []byte{}}
	tests := []struct {
		name  string
		ev    driver.Event
		field string // "" for no conflict
	}{
		{"Same", same, ""},
		{"NilAndEmptyMetadataAreEqual", same, ""},
		{"Type", driver.Event{ID: id, Type: "U", Data: same.Data}, "type"},
		{"ContentType", driver.Event{ID: id, Type: "T", ContentType: driver.Binary, Data: same.Data}, "content type"},
		{"Data", driver.Event{ID: id, Type: "T", Data: []byte(`{"a":2}`)}, "data"},
		{"Metadata", driver.Event{ID: id, Type: "T", Data: same.Data, Metadata: []byte(`{"m":1}`)}, "metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := driver.CheckRetry([]driver.RecordedEvent{stored, stored}, []driver.Event{same, tc.ev})
			if tc.field == "" {
				if err != nil {
					t.Fatalf("CheckRetry of the same content: %v", err)
				}
				return
			}
			var m *driver.RetryMismatchError
			if !errors.As(fmt.Errorf("append: %w", err), &m) {
				t.Fatalf("CheckRetry with another %s: want a *RetryMismatchError, got %v", tc.field, err)
			}
			if m.Field != tc.field || m.Index != 1 || m.Version != 4 {
				t.Fatalf("CheckRetry with another %s: got %+v", tc.field, m)
			}
		})
	}
}
