package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListStreamsPlan pins that a listing hops over the (stream, version)
// index: each step is one search of it, with no scan of the events table
// and no sort, on a file of 20,000 events in 2,000 streams.
func TestListStreamsPlan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	defer d.Close()
	_, err = d.db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < 19999)
		INSERT INTO events (stream, version, category, event_id, type, content_type, data, metadata, recorded_at)
		SELECT printf('Plan-%04d', i % 2000), i / 2000 + 1, 'Plan', randomblob(16), 'T', 0, x'', x'', 0 FROM n`)
	require.NoError(t, err)
	_, err = d.db.ExecContext(ctx, "ANALYZE")
	require.NoError(t, err)

	for _, c := range []struct {
		name, query string
		args        []any
	}{
		{"first page", queryListStreamsFirst, []any{"Plan-", "Plan.", 101}},
		{"next page", queryListStreamsAfter, []any{"Plan-0100", "Plan.", 101}},
		{"no prefix", queryListStreamsFirst, []any{"", noEnd, 101}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := queryPlan(t, d, c.query, c.args...)
			for _, want := range []string{
				"SEARCH events USING COVERING INDEX sqlite_autoindex_events_1 (stream>?",  // the hops
				"SEARCH events USING COVERING INDEX sqlite_autoindex_events_1 (stream=?)", // the versions
			} {
				assert.Contains(t, p, want, "plan of %s", c.query)
			}
			assert.NotContains(t, p, "SCAN events", "plan of %s", c.query)
			assert.NotContains(t, p, "TEMP B-TREE", "plan of %s", c.query)
		})
	}

	// The listing itself, over the 2,000 streams in pages of 100.
	page, err := d.ListStreams(ctx, listReq("Plan-", "", 100))
	require.NoError(t, err)
	require.Len(t, page.Streams, 100)
	assert.Equal(t, "Plan-0000", page.Streams[0].ID)
	assert.Equal(t, uint64(10), page.Streams[0].Version)
	assert.Equal(t, "Plan-0099", page.Next)
	page, err = d.ListStreams(ctx, listReq("Plan-19", "Plan-1990", 100))
	require.NoError(t, err)
	require.Len(t, page.Streams, 9)
	assert.Equal(t, fmt.Sprintf("Plan-%04d", 1991), page.Streams[0].ID)
	assert.Empty(t, page.Next)

	// All 2,000 streams in pages of 100 (the time is logged for
	// docs/sqlite.md, not asserted).
	start, n, pages := time.Now(), 0, 0
	for req := listReq("Plan-", "", 100); ; pages++ {
		page, err := d.ListStreams(ctx, req)
		require.NoError(t, err)
		n += len(page.Streams)
		if page.Next == "" {
			break
		}
		req.Cursor = page.Next
	}
	assert.Equal(t, 2000, n)
	t.Logf("listed %d streams in %d pages of 100 in %v", n, pages+1, time.Since(start))
}

func listReq(prefix, cursor string, limit int) driver.ListStreamsRequest {
	return driver.ListStreamsRequest{Prefix: prefix, Cursor: cursor, Limit: limit}
}
