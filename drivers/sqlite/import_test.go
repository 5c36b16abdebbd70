package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportRecordsAppendStarts: after an import, retrying an append whose
// first event began a stream's run of the import is recognised, and an
// import whose run begins with an event ID the stream already holds (a
// source can hold one twice) still goes in.
func TestImportRecordsAppendStarts(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	ctx := t.Context()
	evs := events(3, "Imported")
	at := time.Date(2020, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var req []eventstore.RecordedEvent
	for i, e := range evs {
		req = append(req, eventstore.RecordedEvent{StreamID: "Order-1", Version: uint64(i + 1), ID: e.ID, Type: e.Type, Data: e.Data, RecordedAt: at})
	}
	require.NoError(t, s.Import(ctx, req))

	res, err := s.Append(ctx, "Order-1", eventstore.NoStream, evs...)
	require.NoError(t, err, "a retry of the imported run")
	assert.Equal(t, uint64(3), res.Version)

	again := eventstore.RecordedEvent{StreamID: "Order-1", Version: 4, ID: evs[0].ID, Type: "Again", RecordedAt: at}
	require.NoError(t, s.Import(ctx, []eventstore.RecordedEvent{again}))
	got := readStream(t, s, "Order-1")
	require.Len(t, got, 4)
	assert.Equal(t, evs[0].ID, got[3].ID)
	for _, ev := range got {
		assert.True(t, at.Equal(ev.RecordedAt), "recorded at %s", ev.RecordedAt)
	}
}
