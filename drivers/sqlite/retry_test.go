package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newEvents(n int, typ string) []eventstore.Event {
	es := make([]eventstore.Event, n)
	for i := range es {
		es[i] = eventstore.NewEvent(typ, []byte(`{}`))
	}
	return es
}

// version1File is a file at schema version 1 with events written by version
// 1's own INSERT (whose columns version 2 keeps), as the version-1 driver
// wrote them.
type version1File struct {
	t  *testing.T
	db *sql.DB
}

func newVersion1File(t *testing.T, path string) version1File {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	require.Equal(t, 1, migrations[0].version)
	for _, q := range []string{"PRAGMA journal_mode = WAL", migrations[0].sql, "PRAGMA user_version = 1"} {
		_, err := db.ExecContext(t.Context(), q)
		require.NoError(t, err)
	}
	return version1File{t: t, db: db}
}

// append writes batch at the end of stream, as an append at Any would.
func (f version1File) append(stream string, batch []eventstore.Event) eventstore.AppendResult {
	f.t.Helper()
	var current int64
	require.NoError(f.t, f.db.QueryRowContext(f.t.Context(), "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?", stream).Scan(&current))
	var args []any
	for i, e := range batch {
		args = append(args, stream, current+int64(i)+1, eventstore.Category(stream), e.ID[:], e.Type, int64(e.ContentType), e.Data, []byte{}, int64(1))
	}
	res, err := f.db.ExecContext(f.t.Context(), insertQuery(len(batch)), args...)
	require.NoError(f.t, err)
	pos, err := res.LastInsertId()
	require.NoError(f.t, err)
	return eventstore.AppendResult{Version: uint64(current) + uint64(len(batch)), Position: eventstore.Position{Commit: uint64(pos)}}
}

// retryChecker appends and retries on one store, checking that a retry
// returns the original result and writes nothing.
type retryChecker struct {
	t *testing.T
	s *eventstore.Store
	d *Driver
}

func (c retryChecker) count() int {
	c.t.Helper()
	var n int
	require.NoError(c.t, c.d.db.QueryRowContext(c.t.Context(), "SELECT COUNT(*) FROM events").Scan(&n))
	return n
}

func (c retryChecker) append(stream string, exp eventstore.ExpectedVersion, batch []eventstore.Event) eventstore.AppendResult {
	c.t.Helper()
	res, err := c.s.Append(c.t.Context(), stream, exp, batch...)
	require.NoError(c.t, err)
	return res
}

func (c retryChecker) retry(doing, stream string, exp eventstore.ExpectedVersion, batch []eventstore.Event, wantVersion uint64, wantPos eventstore.Position) {
	c.t.Helper()
	before := c.count()
	res, err := c.s.Append(c.t.Context(), stream, exp, batch...)
	require.NoError(c.t, err, doing)
	assert.Equal(c.t, wantVersion, res.Version, doing)
	assert.Equal(c.t, wantPos, res.Position, doing)
	assert.Equal(c.t, before, c.count(), "%s: wrote events", doing)
}

// TestUpgradeToVersion2KeepsRetries writes appends with the version-1 schema
// (an index on every event ID), upgrades the file to version 2 (a row per
// append) and retries them: every event written before the upgrade still
// counts as a possible first event, as it did.
func TestUpgradeToVersion2KeepsRetries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	v1 := newVersion1File(t, path)
	a1, a2 := newEvents(3, "A1"), newEvents(2, "A2")
	r1 := v1.append("Order-1", a1)
	r2 := v1.append("Order-1", a2)
	b := newEvents(1, "B")
	rb := v1.append("Order-2", b)
	// The same ID in two streams, and twice in one stream (as the second
	// event of a batch, which version 1 wrote).
	v1.append("Order-2", []eventstore.Event{newEvents(1, "B")[0], a1[0]})
	dup := newEvents(1, "Dup")[0]
	v1.append("Order-3", []eventstore.Event{dup, newEvents(1, "X")[0]})
	v1.append("Order-3", []eventstore.Event{newEvents(1, "X")[0], dup})
	require.NoError(t, v1.db.Close())

	d, err := open(ctx, path, Options{}, migrations)
	require.NoError(t, err)
	c := retryChecker{t: t, s: eventstore.New(d, eventstore.Options{}), d: d}
	defer c.s.Close()

	var version, oldIndex, appends, events int
	require.NoError(t, d.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'events_stream_event_id'").Scan(&oldIndex))
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM appends").Scan(&appends))
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events").Scan(&events))
	assert.Equal(t, len(migrations), version)
	assert.Zero(t, oldIndex, "the per-event index is dropped")
	assert.Equal(t, events-1, appends, "a row for every distinct (stream, event ID)")
	var dupVersion int
	require.NoError(t, d.db.QueryRowContext(ctx, "SELECT first_version FROM appends WHERE stream = 'Order-3' AND first_event_id = ?", dup.ID[:]).Scan(&dupVersion))
	assert.Equal(t, 4, dupVersion, "an ID twice in a stream keeps its last version, as version 1 looked up")

	c.retry("retry at NoStream the first append", "Order-1", eventstore.NoStream, a1, r1.Version, r1.Position)
	c.retry("retry at Any the first append", "Order-1", eventstore.Any, a1, r1.Version, r1.Position)
	c.retry("retry at Exact(3) the second append", "Order-1", eventstore.Exact(3), a2, r2.Version, r2.Position)
	c.retry("retry at StreamExists the append to the other stream", "Order-2", eventstore.StreamExists, b, rb.Version, rb.Position)
	// Appends made before the upgrade are recognised from any event, as
	// version 1 did: here the last two events of the first append.
	c.retry("retry at Any the end of the first append", "Order-1", eventstore.Any, a1[1:], r1.Version, eventstore.Position{Commit: r1.Position.Commit})

	// Anything else reusing an old first ID conflicts, as before.
	_, err = c.s.Append(ctx, "Order-1", eventstore.Any, a1[0], newEvents(1, "New")[0])
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)

	// New appends after the upgrade are recorded and retried too.
	n := newEvents(2, "New")
	rn := c.append("Order-1", eventstore.Exact(5), n)
	c.retry("retry at Exact(5) an append made after the upgrade", "Order-1", eventstore.Exact(5), n, rn.Version, rn.Position)
	c.retry("retry at Any an append made after the upgrade", "Order-1", eventstore.Any, n, rn.Version, rn.Position)
}

// TestRetryOfBatchInterior pins what docs/semantics.md states for a batch
// whose first ID sits inside an earlier batch (not at its start): with an
// exact expectation it is a retry when the events from the expected version
// on carry the batch's IDs; with Any or StreamExists it is a new append.
func TestRetryOfBatchInterior(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "events.db"), Options{})
	require.NoError(t, err)
	c := retryChecker{t: t, s: eventstore.New(d, eventstore.Options{}), d: d}
	defer c.s.Close()

	c.append("Order-1", eventstore.NoStream, newEvents(1, "Prior"))
	batch := newEvents(3, "Batch")
	orig := c.append("Order-1", eventstore.Exact(1), batch)
	later := c.append("Order-1", eventstore.Exact(4), newEvents(1, "Later"))

	// Exact: the expected version says where the retried events went.
	c.retry("retry at Exact(2) the last 2 events of a batch at versions 2-4", "Order-1", eventstore.Exact(2), batch[1:], orig.Version, orig.Position)
	c.retry("retry at Exact(2) the middle event of that batch", "Order-1", eventstore.Exact(2), batch[1:2], 3, eventstore.Position{Commit: orig.Position.Commit - 1})
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Exact(1), eventstore.Exact(3), eventstore.NoStream} {
		_, err := c.s.Append(ctx, "Order-1", exp, batch[1:]...)
		require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion, exp.String())
	}
	var wrong *eventstore.WrongExpectedVersionError
	_, err = c.s.Append(ctx, "Order-1", eventstore.Exact(2), batch[1], newEvents(1, "Other")[0])
	require.ErrorAs(t, err, &wrong)
	assert.Equal(t, later.Version, wrong.Actual)

	// Any and StreamExists: only the first event of an append is looked up,
	// so the batch is written again as new events.
	before := c.count()
	res, err := c.s.Append(ctx, "Order-1", eventstore.Any, batch[1:]...)
	require.NoError(t, err)
	assert.Equal(t, later.Version+2, res.Version)
	assert.Equal(t, before+2, c.count())
	// That append is now recorded, and retrying it is recognised.
	c.retry("retry the re-written events", "Order-1", eventstore.StreamExists, batch[1:], res.Version, res.Position)
}
