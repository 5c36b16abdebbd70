package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The grants of docs/postgres.md ("Privileges"), word for word; {{schema}}
// is the quoted schema and {{role}} the role.
var (
	appGrants = []string{
		`GRANT USAGE ON SCHEMA {{schema}} TO {{role}}`,
		`GRANT SELECT, INSERT ON {{schema}}.events TO {{role}}`,
		`GRANT SELECT, INSERT, UPDATE ON {{schema}}.checkpoints, {{schema}}.snapshots TO {{role}}`,
		`GRANT DELETE ON {{schema}}.checkpoints TO {{role}}`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON {{schema}}.leases TO {{role}}`,
		`GRANT SELECT ON {{schema}}.meta, {{schema}}.schema_migrations TO {{role}}`,
		`GRANT SELECT, INSERT ON {{schema}}.event_tags TO {{role}}`,
		`GRANT EXECUTE ON FUNCTION {{schema}}.lock_writers() TO {{role}}`,
	}
	readerGrants = []string{
		`GRANT USAGE ON SCHEMA {{schema}} TO {{role}}`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA {{schema}} TO {{role}}`,
	}
)

// newRole creates a login role with exactly grants on schema, dropped when t
// ends, and returns a pool connected as that role (the test server trusts
// local connections, so no password).
func newRole(t testing.TB, pool *pgxpool.Pool, schema, kind string, grants []string) *pgxpool.Pool {
	t.Helper()
	ctx := t.Context()
	role := kind + "_" + strings.TrimPrefix(randomSchema(), "test_")
	r := strings.NewReplacer("{{schema}}", pgx.Identifier{schema}.Sanitize(), "{{role}}", role)
	_, err := pool.Exec(ctx, "CREATE ROLE "+role+" LOGIN")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, stmt := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := pool.Exec(ctx, stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
	for _, g := range grants {
		_, err := pool.Exec(ctx, r.Replace(g))
		require.NoError(t, err, r.Replace(g))
	}
	cfg := pool.Config()
	cfg.ConnConfig.User, cfg.ConnConfig.Password = role, ""
	rolePool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	// Closed before the role is dropped: cleanups run last-in, first-out.
	t.Cleanup(rolePool.Close)
	var superuser bool
	require.NoError(t, rolePool.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&superuser))
	require.False(t, superuser, "precondition: connected as the unprivileged role")
	return rolePool
}

// requireDenied checks err is PostgreSQL's insufficient_privilege (42501).
func requireDenied(t testing.TB, err error, what string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%s: want permission denied, got %v", what, err)
	assert.Equal(t, "42501", pgErr.Code, "%s: %v", what, err)
}

// The driver works under exactly the grants docs/postgres.md gives an
// application role and a read-only role, on a schema an administrator
// created, and those grants deny what the roles must not do: the
// application role cannot rewrite or delete events or snapshots or move the
// transaction ID offset; the read-only role cannot write anything, though it
// lists checkpoints.
func TestLeastPrivilegeRoles(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	newDriver(t, pool, postgres.Options{Schema: schema}) // the administrator creates the schema
	q := pgx.Identifier{schema}.Sanitize()
	ctx := t.Context()

	appPool := newRole(t, pool, schema, "app", appGrants)
	readerPool := newRole(t, pool, schema, "reader", readerGrants)

	app, err := postgres.New(ctx, appPool, postgres.Options{Schema: schema})
	require.NoError(t, err, "open as the application role")
	s := eventstore.New(app, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	reader, err := postgres.New(ctx, readerPool, postgres.Options{Schema: schema})
	require.NoError(t, err, "open as the read-only role")
	r := eventstore.New(reader, eventstore.Options{})
	t.Cleanup(func() { r.Close() })

	// The application role: append, import, read, subscribe durably,
	// snapshot, manage checkpoints, hold leases, run projections.
	res, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
	require.NoError(t, err)
	require.NoError(t, s.Import(ctx, []eventstore.RecordedEvent{{
		StreamID: "Imported-1", Version: 1, ID: uuid.New(), Type: "Old", ContentType: eventstore.JSON,
		Data: []byte(`{}`), RecordedAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)}}))
	live := subscribe(t, r, eventstore.SubscribeOptions{PollInterval: noPoll}) // the reader, live
	sub := subscribe(t, s, eventstore.SubscribeOptions{Name: "app", PollInterval: noPoll})
	got := receive(t, sub, 2, "the appended and the imported event")
	require.NoError(t, sub.stop(), "stopping saves the checkpoint")
	_, err = s.Append(ctx, "Order-1", eventstore.Exact(1), eventstore.NewEvent("Paid", nil))
	require.NoError(t, err)
	sub = subscribe(t, s, eventstore.SubscribeOptions{Name: "app", PollInterval: noPoll})
	got = append(got, receive(t, sub, 1, "the event after the checkpoint")...)
	require.NoError(t, sub.stop(), "stopping updates the checkpoint")
	assert.Equal(t, []string{"Order-1", "Imported-1", "Order-1"}, []string{got[0].StreamID, got[1].StreamID, got[2].StreamID})
	assert.Equal(t, res.Position, got[0].Position)
	for _, v := range []uint64{1, 2} { // insert, then update
		require.NoError(t, s.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: v, Data: []byte("state")}))
	}
	require.NoError(t, s.SetCheckpoint(ctx, "app-old", got[0].Position))
	cps, err := s.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Equal(t, []eventstore.Checkpoint{{Name: "app", Position: got[2].Position}, {Name: "app-old", Position: got[0].Position}}, cps)
	require.NoError(t, s.DeleteCheckpoint(ctx, "app-old"))
	require.NoError(t, s.DeleteCheckpoint(ctx, "app-old"), "deleting a missing checkpoint")
	n := 0
	for _, err := range s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 2, n)
	// Consumer-group leases and a projection's checkpoint transaction.
	_, granted, err := app.AcquireLease(ctx, "g", "partition/1/0", "m", time.Minute)
	require.NoError(t, err)
	require.True(t, granted)
	require.NoError(t, app.SaveLeasePosition(ctx, "g", "partition/1/0", "m", 1, driver.Position(res.Position)))
	require.NoError(t, app.ReleaseLease(ctx, "g", "partition/1/0", "m", 1))
	require.NoError(t, app.CheckpointTx(ctx, "proj", driver.Position{}, false, driver.Position(res.Position), nil))
	require.NoError(t, app.CheckpointTx(ctx, "proj", driver.Position(res.Position), true, driver.Position(got[2].Position), nil))
	require.NoError(t, app.DeleteCheckpoint(ctx, "proj"))

	// The reader: it saw the events live, and reads everything.
	receive(t, live, 3, "the events, live, as the read-only role")
	// A transaction elsewhere older than the events makes the read scan
	// pg_locks for the fence: that works without privileges too.
	older, _ := beginHolder(t, pool)
	_, err = older.Exec(ctx, "SELECT pg_current_xact_id()")
	require.NoError(t, err)
	_, err = s.Append(ctx, "Order-2", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	var all []eventstore.RecordedEvent
	for ev, err := range r.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		all = append(all, ev)
	}
	assert.Len(t, all, 4)
	snap, ok, err := r.LoadSnapshot(ctx, "Order-1")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, uint64(2), snap.Version)
	pos, ok, err := reader.LoadCheckpoint(ctx, "app")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, driver.Position(got[2].Position), pos)
	cps, err = r.Checkpoints(ctx)
	require.NoError(t, err, "list checkpoints as the read-only role")
	assert.Equal(t, []eventstore.Checkpoint{{Name: "app", Position: got[2].Position}}, cps)
	leases, _, err := reader.Leases(ctx, "g")
	require.NoError(t, err, "list leases as the read-only role")
	assert.Len(t, leases, 1)

	// What the grants deny.
	_, err = r.Append(ctx, "Order-9", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	requireDenied(t, err, "append as the read-only role")
	requireDenied(t, r.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: 2}), "snapshot as the read-only role")
	requireDenied(t, reader.SaveCheckpoint(ctx, "reader", pos), "checkpoint as the read-only role")
	requireDenied(t, r.DeleteCheckpoint(ctx, "app"), "delete a checkpoint as the read-only role")
	_, _, err = reader.AcquireLease(ctx, "g", "partition/1/0", "r", time.Minute)
	requireDenied(t, err, "acquire a lease as the read-only role")
	requireDenied(t, reader.CheckpointTx(ctx, "app", pos, true, pos, nil), "a checkpoint transaction as the read-only role")
	for _, tc := range []struct {
		name string
		pool *pgxpool.Pool
		sql  string
	}{
		{"app rewrites an event", appPool, `UPDATE ` + q + `.events SET data = '\x00'`},
		{"app deletes an event", appPool, `DELETE FROM ` + q + `.events`},
		{"app truncates the log", appPool, `TRUNCATE ` + q + `.events`},
		{"app moves the offset", appPool, `UPDATE ` + q + `.meta SET xid_offset = xid_offset - 1000`},
		{"app deletes a snapshot", appPool, `DELETE FROM ` + q + `.snapshots`},
		{"app truncates the checkpoints", appPool, `TRUNCATE ` + q + `.checkpoints`},
		{"app creates a table in the schema", appPool, `CREATE TABLE ` + q + `.mine (n int)`},
		{"reader inserts an event", readerPool, `INSERT INTO ` + q + `.events (tx_id, stream_id, version, event_id, event_type, content_type, data, metadata, recorded_at)
			VALUES (1, 'X-1', 1, gen_random_uuid(), 'X', 0, '', '', now())`},
		{"reader moves a checkpoint", readerPool, `UPDATE ` + q + `.checkpoints SET seq = 0`},
	} {
		_, err := tc.pool.Exec(ctx, tc.sql)
		requireDenied(t, err, tc.name)
	}
}
