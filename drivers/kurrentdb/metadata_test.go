package kurrentdb_test

import (
	"testing"

	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/eventkit/eventstore/migrate"
)

// KurrentDB takes any bytes as an event's metadata. Events written by
// other clients with metadata that is not a JSON object are read with it
// byte for byte and its content type (JSON for any JSON value, Binary for
// the rest), and a migration to a store that imports keeps both.
func TestMetadataThatIsNotAnObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		md   []byte
		want eventstore.ContentType
	}{
		{"object", []byte(`{"a":1}`), eventstore.JSON},
		{"empty", nil, eventstore.JSON},
		{"null", []byte(`null`), eventstore.JSON},
		{"array", []byte(`[1,"two"]`), eventstore.JSON},
		{"NUL bytes", []byte("\x00{}\x00"), eventstore.Binary},
		{"invalid UTF-8", []byte{0xff, 0xfe, 'x'}, eventstore.Binary},
		{"text", []byte("hello"), eventstore.Binary},
	}
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	src := eventstore.New(openDriver(t, srv.URL(), kurrentdb.Options{}), eventstore.Options{})
	t.Cleanup(func() { src.Close() })
	var c *kdb.Client
	require.True(t, src.As(&c))
	const stream = "Legacy-1"
	evs := make([]kdb.EventData, len(tests))
	for i, tc := range tests {
		evs[i] = kdb.EventData{EventID: uuid.New(), EventType: "Written", ContentType: kdb.ContentTypeJson, Data: []byte(`{}`), Metadata: tc.md}
	}
	_, err := c.AppendToStream(t.Context(), stream, kdb.AppendToStreamOptions{StreamState: kdb.NoStream{}}, evs...)
	require.NoError(t, err)

	check := func(t *testing.T, doing string, got []eventstore.RecordedEvent) {
		t.Helper()
		require.Len(t, got, len(tests), doing)
		for i, tc := range tests {
			assert.Equal(t, string(tc.md), string(got[i].Metadata), "%s: %s: metadata", doing, tc.name)
			assert.Equal(t, tc.want, got[i].MetadataContentType, "%s: %s: metadata content type", doing, tc.name)
		}
	}
	check(t, "read stream", collectEvents(t, src.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{})))
	check(t, "read all", collectEvents(t, src.ReadAll(t.Context(), eventstore.ReadAllOptions{})))

	// The migration that failed when imports took only JSON objects.
	dst := eventstore.New(memory.New(), eventstore.Options{})
	t.Cleanup(func() { dst.Close() })
	stats, err := migrate.Copy(t.Context(), migrate.From(src), migrate.To(dst), migrate.Options{})
	require.NoError(t, err)
	assert.Equal(t, len(tests), stats.Copied, "events copied")
	check(t, "read stream of the migrated store", collectEvents(t, dst.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{})))
	report, err := migrate.Verify(t.Context(), migrate.From(src), migrate.To(dst))
	require.NoError(t, err)
	assert.True(t, report.Equal, "verify after the copy: %s", report)
}

func collectEvents(t testing.TB, seq func(func(eventstore.RecordedEvent, error) bool)) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range seq {
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}
