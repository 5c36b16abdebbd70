package postgres_test

import (
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// retentionGrants are the grants docs/postgres.md ("Privileges") adds to
// the application role's for deleting, truncating and setting retention.
var retentionGrants = []string{
	`GRANT INSERT, UPDATE ON {{schema}}.stream_marks TO {{role}}`,
	`GRANT DELETE ON {{schema}}.events, {{schema}}.event_tags, {{schema}}.snapshots TO {{role}}`,
}

// TestRetentionPrivileges checks the grants of docs/postgres.md: the
// application role appends to a stream with a retention (the trigger runs
// as the schema's owner) but cannot delete, truncate or set retention
// without the extra grants; with them it can; the read-only role reads
// versions.
func TestRetentionPrivileges(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	ctx := t.Context()
	admin := eventstore.New(newDriver(t, pool, postgres.Options{Schema: schema}), eventstore.Options{})
	t.Cleanup(func() { admin.Close() })
	open := func(kind string, grants []string) *eventstore.Store {
		d, err := postgres.New(ctx, newRole(t, pool, schema, kind, grants), postgres.Options{Schema: schema})
		require.NoError(t, err, "open as %s", kind)
		s := eventstore.New(d, eventstore.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}
	app := open("app", appGrants)
	deleter := open("deleter", append(append([]string(nil), appGrants...), retentionGrants...))
	reader := open("reader", readerGrants)

	require.NoError(t, admin.SetStreamRetention(ctx, "Sensor-1", eventstore.Retention{MaxCount: 2}))
	for v := range uint64(3) {
		_, err := app.Append(ctx, "Sensor-1", eventstore.Exact(v), eventstore.NewEvent("Read", []byte(`{}`)))
		require.NoError(t, err, "append as the application role to a stream with a retention")
	}
	var kept []uint64
	for ev, err := range reader.ReadStream(ctx, "Sensor-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		kept = append(kept, ev.Version)
	}
	assert.Equal(t, []uint64{2, 3}, kept, "MaxCount 2 applied by the application role's appends")
	v, err := reader.StreamVersion(ctx, "Sensor-1")
	require.NoError(t, err, "StreamVersion as the read-only role reads stream_marks")
	assert.Equal(t, uint64(3), v)

	requireDenied(t, app.DeleteStream(ctx, "Sensor-1", eventstore.Any), "DeleteStream without the retention grants")
	requireDenied(t, app.TruncateStream(ctx, "Sensor-1", 3), "TruncateStream without the retention grants")
	requireDenied(t, app.SetStreamRetention(ctx, "Sensor-1", eventstore.Retention{MaxCount: 1}), "SetStreamRetention without the retention grants")

	require.NoError(t, deleter.SetStreamRetention(ctx, "Sensor-1", eventstore.Retention{MaxCount: 5}))
	require.NoError(t, deleter.TruncateStream(ctx, "Sensor-1", 3))
	require.NoError(t, deleter.SaveSnapshot(ctx, "Sensor-1", eventstore.Snapshot{Version: 3, Data: []byte("s")}))
	require.NoError(t, deleter.DeleteStream(ctx, "Sensor-1", eventstore.Exact(3)))
	v, err = reader.StreamVersion(ctx, "Sensor-1")
	require.NoError(t, err)
	assert.Zero(t, v, "a deleted stream")
}
