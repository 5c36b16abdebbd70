package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func isInvalid(err error) bool { return errors.Is(err, eventstore.ErrInvalidArgument) }

// TestSchemaUpgradesVersionOneFile opens a file created with schema version 1
// with a driver that knows every version and one more: the upgrades run once,
// keep the events, and record the new version.
func TestSchemaUpgradesVersionOneFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	v1 := newVersion1File(t, path)
	v1.append("Order-1", newEvents(1, "Placed"))
	require.NoError(t, v1.db.Close())

	fsys := fstest.MapFS{
		fmt.Sprintf("schema/%03d_test.sql", len(migrations)+1): {Data: []byte("CREATE TABLE upgrade_marker (x INTEGER) STRICT;\nINSERT INTO upgrade_marker VALUES (42);")},
	}
	for _, m := range migrations {
		fsys["schema/"+m.name] = &fstest.MapFile{Data: []byte(m.sql)}
	}
	v2, err := loadMigrations(fsys)
	require.NoError(t, err)
	require.Len(t, v2, len(migrations)+1)

	for range 2 { // the second open finds the file up to date
		d, err := open(ctx, path, Options{}, v2)
		require.NoError(t, err)
		var version, marker, events int
		require.NoError(t, d.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
		require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*), MAX(x) FROM upgrade_marker").Scan(new(int), &marker))
		require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events").Scan(&events))
		assert.Equal(t, len(v2), version)
		assert.Equal(t, 42, marker)
		assert.Equal(t, 1, events)
		var n int
		require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM upgrade_marker").Scan(&n))
		assert.Equal(t, 1, n, "the migration ran more than once")
		require.NoError(t, d.Close())
	}

	// A driver that knows only the versions before now refuses the file.
	_, err = open(ctx, path, Options{}, migrations)
	require.ErrorIs(t, err, ErrSchemaVersion)
}

// TestUpgradeToVersion3CreatesLeases opens a file at schema version 2,
// written before leases existed: the upgrade creates the leases table, keeps
// the checkpoints, and leases and checkpoint transactions work at once.
func TestUpgradeToVersion3CreatesLeases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	require.Equal(t, "003_leases.sql", migrations[2].name)
	db, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	for _, q := range []string{"PRAGMA journal_mode = WAL", migrations[0].sql, migrations[1].sql, "PRAGMA user_version = 2",
		"INSERT INTO checkpoints (name, position_commit, position_prepare) VALUES ('proj', 7, 0)"} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	d, err := open(ctx, path, Options{}, migrations)
	require.NoError(t, err)
	defer d.Close()
	var version, tables int
	require.NoError(t, d.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'leases'").Scan(&tables))
	assert.GreaterOrEqual(t, version, 3)
	assert.Equal(t, 1, tables, "the leases table")

	l, granted, err := d.AcquireLease(ctx, "g", "member/1", "a", time.Minute)
	require.NoError(t, err)
	assert.True(t, granted)
	assert.Equal(t, uint64(1), l.Generation)
	pos, ok, err := d.LoadCheckpoint(ctx, "proj")
	require.NoError(t, err)
	require.True(t, ok, "the checkpoint is kept")
	require.NoError(t, d.CheckpointTx(ctx, "proj", pos, true, driver.Position{Commit: 9}, nil))
}

func TestLoadMigrationsRejectsGaps(t *testing.T) {
	t.Parallel()
	for name, fsys := range map[string]fstest.MapFS{
		"gap":     {"schema/001_a.sql": {}, "schema/003_c.sql": {}},
		"badname": {"schema/1_a.sql": {}},
		"empty":   {},
	} {
		_, err := loadMigrations(fsys)
		assert.Error(t, err, name)
	}
}

// TestMigrationFailureRollsBack: a failing migration leaves the file at its
// old version with none of the new version's changes.
func TestMigrationFailureRollsBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	bad := append(migrations[:len(migrations):len(migrations)], migration{
		version: len(migrations) + 1, name: "bad", sql: "CREATE TABLE half (x); SELECT no_such_function();",
	})
	_, err := open(ctx, path, Options{}, bad)
	require.Error(t, err)
	db, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	var version, tables int
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
	require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('half', 'events')").Scan(&tables))
	assert.Equal(t, 0, version)
	assert.Equal(t, 0, tables)
}

// TestUniqueViolationMapsToWrongExpectedVersion provokes the native error for
// real: inserting an existing (stream, version) with the driver's own insert
// statement inside its write transaction.
func TestUniqueViolationMapsToWrongExpectedVersion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	defer d.Close()
	s := eventstore.New(d, eventstore.Options{})
	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)

	conflict := &eventstore.WrongExpectedVersionError{Stream: "Order-1", Expected: eventstore.NoStream, Actual: 1}
	err = d.write(ctx, func(w *writer) error {
		_, err := w.insert[len(insertRows)-1].ExecContext(ctx, "Order-1", 1, "Order", make([]byte, 16), "Placed", 0, []byte{}, []byte{}, 0)
		return mapError(err, conflict)
	})
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	var wev *eventstore.WrongExpectedVersionError
	require.ErrorAs(t, err, &wev)
	assert.Equal(t, uint64(1), wev.Actual)
	var se sqlite3.Error
	require.ErrorAs(t, err, &se, "the native cause stays reachable")
	assert.Equal(t, sqlite3.ErrConstraintUnique, se.ExtendedCode)

	// Without a conflict to report (not an insert of events), a constraint
	// error passes through as it is.
	err = d.write(ctx, func(w *writer) error {
		_, err := w.insert[len(insertRows)-1].ExecContext(ctx, "Order-1", 1, "Order", make([]byte, 16), "Placed", 0, []byte{}, []byte{}, 0)
		return mapError(err, nil)
	})
	require.ErrorAs(t, err, &se)
	assert.NotErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
}

func TestWriterConnectionSettings(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, tc := range []struct {
		sync Synchronous
		want int
	}{{SynchronousFull, 2}, {SynchronousNormal, 1}} {
		path := filepath.Join(t.TempDir(), "events.db")
		// Through New, the pool's own settings are the defaults of
		// go-sqlite3 (synchronous NORMAL); the write connection's are ours.
		db, err := sql.Open("sqlite3", "file:"+path)
		require.NoError(t, err)
		d, err := New(ctx, db, Options{Synchronous: tc.sync})
		require.NoError(t, err)
		var sync, busy int
		var mode string
		require.NoError(t, d.w.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
		require.NoError(t, d.w.conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
		require.NoError(t, d.w.conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
		assert.Equal(t, tc.want, sync, tc.sync.String())
		assert.Equal(t, 0, busy, "the driver waits for the write lock itself")
		assert.Equal(t, "wal", mode)
		require.NoError(t, d.Close())
		require.NoError(t, db.Close())
	}
}

// queryPlan returns SQLite's plan of query with args on d, its lines
// joined by newlines.
func queryPlan(t *testing.T, d *Driver, query string, args ...any) string {
	t.Helper()
	rows, err := d.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		lines = append(lines, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}

// TestQueryPlans pins that reads walk a key or an index in order: no query
// scans the events table or sorts it.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	defer d.Close()
	plan := func(query string, args ...any) string { return queryPlan(t, d, query, args...) }
	type check struct {
		name, query string
		args        []any
		want        string
	}
	checks := []check{
		{"head", queryHead, []any{"s", []byte{1}}, "SEARCH appends USING PRIMARY KEY (stream=? AND first_event_id=?)"},
		{"importHeads", queryImportHeads, []any{`["s","t"]`}, "USING COVERING INDEX sqlite_autoindex_events_1 (stream=?)"},
		{"head", queryHead, []any{"s", []byte{1}}, "USING COVERING INDEX sqlite_autoindex_events_1 (stream=?)"},
		{"retryRange", queryRetryRange, []any{"s", 1, 2}, "USING INDEX sqlite_autoindex_events_1 (stream=? AND version>? AND version<?)"},
		{"streamForwards", queryStreamForwards, []any{"s", 1, 10}, "USING INDEX sqlite_autoindex_events_1 (stream=? AND version>?)"},
		{"streamBackwards", queryStreamBackwards, []any{"s", 1, 10}, "USING INDEX sqlite_autoindex_events_1 (stream=? AND version<?)"},
		{"allForwards", queryAllForwards, []any{0, 10, 10}, "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{"allBackwards", queryAllBackwards, []any{0, 10, 10}, "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{"streamVersion", queryStreamVersion, []any{"s"}, "USING COVERING INDEX sqlite_autoindex_events_1 (stream=?)"},
		{"lockCheckpoint", queryLockCheckpoint, []any{"p"}, "SEARCH checkpoints USING PRIMARY KEY (name=?)"},
		{"getLease", queryGetLease, []any{"g", "k"}, "SEARCH leases USING PRIMARY KEY (group_name=? AND key=?)"},
		{"releaseLease", queryReleaseLease, []any{"g", "k", "o", 1, 0}, "SEARCH leases USING PRIMARY KEY (group_name=? AND key=?)"},
		{"saveLeasePosition", querySaveLeasePosition, []any{"g", "k", "o", 1, 0, 0}, "SEARCH leases USING PRIMARY KEY (group_name=? AND key=?)"},
		{"leases", queryLeases, []any{"g"}, "SEARCH leases USING PRIMARY KEY (group_name=?)"},
	}
	for _, f := range []driver.Filter{
		{Categories: []string{"A"}},
		{Categories: []string{"A", "B", "C"}},
		{EventTypes: []string{"T"}},
		{EventTypes: []string{"T", "U"}},
		{Categories: []string{"A"}, EventTypes: []string{"T", "U"}},
		{Categories: names("C", maxMergedCategories+1)},
		{EventTypes: names("T", maxListArgs+1)},
		{Categories: names("C", maxMergedCategories), EventTypes: names("T", maxListArgs+1)},
	} {
		for _, backwards := range []bool{false, true} {
			q, args := filteredQuery(f, backwards, 0, 100, 10)
			want := "SEARCH events USING INDEX events_category (category=? AND rowid>? AND rowid<?)"
			if len(f.Categories) == 0 || len(f.Categories) > maxMergedCategories {
				want = "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"
			}
			checks = append(checks, check{"filtered", q, args, want})
		}
	}
	for _, c := range checks {
		p := plan(c.query, c.args...)
		assert.Contains(t, p, c.want, "%s: %s", c.name, c.query)
		assert.NotContains(t, p, "SCAN events", "%s: %s", c.name, c.query)
		if !strings.Contains(c.query, "UNION ALL") { // merging sorts at most limit rows per category
			assert.NotContains(t, p, "TEMP B-TREE", "%s: %s", c.name, c.query)
		}
	}
}

// names returns n names made from prefix.
func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}
