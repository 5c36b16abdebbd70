package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDCBQueryPlans pins the plans of reads by query, append conditions and
// the statements of multi-stream appends: an item with tags walks the
// event_tags key of its first tag from the position bound and looks up each
// further tag and the event's type by key; an item with types alone walks
// the log by position from the bound; the page reads its events by rowid,
// in order, and sorts nothing. No statement scans events or event_tags.
func TestDCBQueryPlans(t *testing.T) {
	t.Parallel()
	d, err := Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	defer d.Close()
	tagsAndType := driver.QueryItem{Tags: []string{"a", "b", "c"}, Types: []string{"T"}}
	typesOnly := driver.QueryItem{Types: []string{"T", "U"}}
	oneTag := driver.QueryItem{Tags: []string{"a"}}
	walkTag := "SEARCH t0 USING PRIMARY KEY (tag=? AND position>?)"
	lookupTag := "SEARCH t1 EXISTS USING PRIMARY KEY (tag=? AND position=?)"
	lookupType := "SEARCH e EXISTS USING INTEGER PRIMARY KEY (rowid=?)"
	walkLog := "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)"
	byRowid := "SEARCH events USING INTEGER PRIMARY KEY (rowid=?)"
	type check struct {
		name  string
		query string
		args  []any
		want  []string
	}
	var checks []check
	for _, c := range []struct {
		name  string
		items []driver.QueryItem
		want  []string
	}{
		{"tags and type", []driver.QueryItem{tagsAndType}, []string{walkTag, lookupTag, lookupType}},
		{"one tag", []driver.QueryItem{oneTag}, []string{walkTag}},
		{"types only", []driver.QueryItem{typesOnly}, []string{walkLog}},
		{"three items", []driver.QueryItem{tagsAndType, typesOnly, oneTag}, []string{walkTag, lookupTag, lookupType, walkLog}},
		{"long type list", []driver.QueryItem{{Tags: []string{"a"}, Types: names("T", maxListArgs+1)}}, []string{walkTag, lookupType}},
	} {
		q, args := pageQuery(c.items, 5, 10)
		checks = append(checks, check{"page " + c.name, q, args, append([]string{byRowid}, c.want...)})
		q, args = conditionQuery(c.items, 5)
		checks = append(checks, check{"condition " + c.name, q, args, c.want})
	}
	checks = append(checks,
		check{"condition all", queryConditionAll, []any{5}, []string{walkLog}},
		check{"multiHeads", queryMultiHeads, []any{`[["s","00"]]`}, []string{
			"SEARCH events USING COVERING INDEX sqlite_autoindex_events_1 (stream=?)",
			"SEARCH appends USING PRIMARY KEY (stream=? AND first_event_id=?)"}},
		check{"insertTags", queryInsertTags, []any{1, 2}, []string{"SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"}},
	)
	for _, c := range checks {
		p := queryPlan(t, d, c.query, c.args...)
		for _, w := range c.want {
			assert.Contains(t, p, w, "%s: %s", c.name, c.query)
		}
		for _, bad := range []string{"SCAN events", "SCAN event_tags", "SCAN t0", "SCAN e ", "TEMP B-TREE"} {
			assert.NotContains(t, p+" ", bad, "%s: %s", c.name, c.query)
		}
	}
}

// TestUpgradeToVersion4AddsTags opens a file at schema version 3, with
// events written by version 3's INSERT: the upgrade adds the tags column
// and the event_tags table, the old events read with no tags and retry as
// before, and tagged appends, multi-stream appends and reads by query work
// at once.
func TestUpgradeToVersion4AddsTags(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	require.Equal(t, "004_tags.sql", migrations[3].name)
	db, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	for _, q := range []string{"PRAGMA journal_mode = WAL", migrations[0].sql, migrations[1].sql, migrations[2].sql, "PRAGMA user_version = 3"} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err)
	}
	old := newEvents(2, "Old")
	var args []any
	for i, e := range old {
		args = append(args, "Order-1", i+1, "Order", e.ID[:], e.Type, 0, e.Data, []byte{}, 1)
	}
	_, err = db.ExecContext(ctx, insertQuery(len(old)), args...)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, queryInsertAppend, "Order-1", old[0].ID[:], 1)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	d, err := open(ctx, path, Options{}, migrations)
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	defer s.Close()
	var version, tables int
	require.NoError(t, d.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'event_tags'").Scan(&tables))
	assert.Equal(t, len(migrations), version)
	assert.Equal(t, 1, tables)

	read := func(stream string) []eventstore.RecordedEvent {
		var out []eventstore.RecordedEvent
		for ev, err := range s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			out = append(out, ev)
		}
		return out
	}
	got := read("Order-1")
	require.Len(t, got, 2)
	assert.Nil(t, got[0].Tags)
	assert.Equal(t, old[1].ID, got[1].ID)

	res, err := s.Append(ctx, "Order-1", eventstore.NoStream, old...)
	require.NoError(t, err, "a retry of an append made before the upgrade")
	assert.Equal(t, uint64(2), res.Version)

	e := eventstore.NewEvent("Shipped", []byte(`{}`))
	e.Tags = []string{"order:1"}
	_, err = s.Append(ctx, "Order-1", eventstore.Exact(2), e)
	require.NoError(t, err)
	q := eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"order:1"}}}}
	m := eventstore.NewEvent("Billed", []byte(`{}`))
	m.Tags = []string{"order:1", "invoice:1"}
	_, err = s.AppendMulti(ctx, eventstore.MultiAppend{
		Records:   []eventstore.Record{{Stream: "Invoice-1", Event: m}},
		Expect:    []eventstore.StreamExpectation{{Stream: "Order-1", Expected: eventstore.Exact(3)}},
		Condition: &eventstore.AppendCondition{FailIfEventsMatch: q, After: eventstore.Position{Commit: 3}},
	})
	require.NoError(t, err)
	var byQuery []eventstore.RecordedEvent
	for ev, err := range s.ReadQuery(ctx, q, eventstore.ReadQueryOptions{}) {
		require.NoError(t, err)
		byQuery = append(byQuery, ev)
	}
	require.Len(t, byQuery, 2)
	assert.Equal(t, []string{"order:1"}, byQuery[0].Tags)
	assert.Equal(t, []string{"order:1", "invoice:1"}, byQuery[1].Tags)
	assert.Equal(t, "Invoice-1", byQuery[1].StreamID)
	assert.Equal(t, byQuery[0], read("Order-1")[2])
}

// TestUntaggedAppendWritesNoTagRows: an event without tags costs no
// event_tags row and a NULL tags column.
func TestUntaggedAppendWritesNoTagRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	s := eventstore.New(d, eventstore.Options{})
	defer s.Close()
	_, err = s.Append(ctx, "A-1", eventstore.NoStream, newEvents(3, "X")...)
	require.NoError(t, err)
	e := eventstore.NewEvent("Y", nil)
	e.Tags = []string{"k:1", "k:2"}
	_, err = s.Append(ctx, "A-1", eventstore.Any, e, newEvents(1, "Z")[0])
	require.NoError(t, err)
	var rows, nulls int
	var tags string
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM event_tags").Scan(&rows))
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events WHERE tags IS NULL").Scan(&nulls))
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT group_concat(tag || '@' || position, ' ') FROM event_tags").Scan(&tags))
	assert.Equal(t, 2, rows)
	assert.Equal(t, 4, nulls)
	assert.ElementsMatch(t, []string{"k:1@4", "k:2@4"}, strings.Fields(tags))
}
