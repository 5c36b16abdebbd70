package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPortingExample runs the program into memory and SQLite and checks what
// it prints: metadata `null` kept as it was, the aggregates' own times, and
// a second run that writes nothing.
func TestPortingExample(t *testing.T) {
	for _, url := range []string{"memory://", "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "events.db"))} {
		t.Run(strings.Split(url, ":")[0], func(t *testing.T) {
			var out strings.Builder
			require.NoError(t, run(t.Context(), []string{"--to", url}, &out))
			got := out.String()
			assert.Contains(t, got, "2. imported 5 events (1 Import calls), 1 snapshot\n")
			assert.Contains(t, got, "   v1 Created at 2021-05-03T09:00:00Z data={\"Customer\":\"ada\"} metadata=null (json)\n")
			assert.Contains(t, got, "   v2 ItemAdded at 2021-05-03T09:00:07Z data={\"SKU\":\"tea\",\"Qty\":2} metadata={\"user\":\"ada\",\"ip\":\"10.0.0.7\"} (json)\n")
			assert.Contains(t, got, "   snapshot at v2: {\"Customer\":\"ada\",\"Items\":2}\n")
			assert.Contains(t, got, "4. imported again: 0 imported, 5 already there\n")
		})
	}
}

// TestToRecorded maps single events in hallgren/eventsourcing's shape.
func TestToRecorded(t *testing.T) {
	tests := []struct {
		name         string
		timestamp    string
		data, md     []byte
		wantAt       time.Time
		wantDataType eventstore.ContentType
		wantMDType   eventstore.ContentType
	}{
		{"SQL store: whole seconds", "2021-05-03T09:00:00Z", []byte(`{}`), []byte(`null`),
			time.Date(2021, 5, 3, 9, 0, 0, 0, time.UTC), eventstore.JSON, eventstore.JSON},
		{"nanoseconds and a zone", "2021-05-03T11:00:00.123456789+02:00", []byte(`{}`), []byte(`{"a":1}`),
			time.Date(2021, 5, 3, 9, 0, 0, 123456789, time.UTC), eventstore.JSON, eventstore.JSON},
		{"another encoder's bytes", "2021-05-03T09:00:00Z", []byte{0x82, 0xa1}, []byte{0x80},
			time.Date(2021, 5, 3, 9, 0, 0, 0, time.UTC), eventstore.Binary, eventstore.Binary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := toRecorded("a-1", "Order", 3, "Paid", tc.timestamp, tc.data, tc.md)
			require.NoError(t, err)
			assert.Equal(t, "Order-a-1", ev.StreamID)
			assert.Equal(t, "Order", ev.Category())
			assert.Equal(t, uint64(3), ev.Version)
			assert.True(t, tc.wantAt.Equal(ev.RecordedAt), "recorded at %s", ev.RecordedAt)
			assert.Equal(t, tc.wantDataType, ev.ContentType)
			assert.Equal(t, tc.wantMDType, ev.MetadataContentType)
			again, err := toRecorded("a-1", "Order", 3, "Paid", tc.timestamp, tc.data, tc.md)
			require.NoError(t, err)
			assert.Equal(t, ev.ID, again.ID, "the same ID on every run")
		})
	}
	_, err := toRecorded("a-1", "Order", 1, "Paid", "yesterday", nil, nil)
	assert.Error(t, err)
}
