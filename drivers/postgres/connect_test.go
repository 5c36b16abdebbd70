package postgres_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMustExist: with must_exist=true (or Options.MustExist) a missing
// store fails with ErrStoreNotFound and nothing is created; an older schema
// version is refused rather than upgraded; an existing store opens and
// reads its events.
func TestMustExist(t *testing.T) {
	base := testenv.MustHavePostgres(t)
	pool := newPool(t)
	ctx := t.Context()
	exec := func(t *testing.T, sql string) {
		t.Helper()
		_, err := pool.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	// tables counts the tables in schema; -1 when the schema does not exist.
	tables := func(t *testing.T, schema string) int {
		t.Helper()
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT CASE WHEN EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)
			THEN (SELECT count(*) FROM pg_tables WHERE schemaname = $1) ELSE -1 END`, schema).Scan(&n))
		return n
	}
	// migrations counts the rows of schema_migrations; -1 without the table.
	migrations := func(t *testing.T, schema string) int {
		t.Helper()
		n := -1
		var exists bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema+".schema_migrations").Scan(&exists))
		if exists {
			require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".schema_migrations").Scan(&n))
		}
		return n
	}
	for _, tc := range []struct {
		name string
		// setup prepares schema; it returns the number of tables the
		// schema must still have after a refused open (-1: no schema).
		setup   func(t *testing.T, schema string) int
		wantErr error // nil: the open succeeds
	}{
		{
			name:    "MissingSchema",
			setup:   func(*testing.T, string) int { return -1 },
			wantErr: eventstore.ErrStoreNotFound,
		},
		{
			name: "EmptySchema",
			setup: func(t *testing.T, schema string) int {
				exec(t, "CREATE SCHEMA "+schema)
				return 0
			},
			wantErr: eventstore.ErrStoreNotFound,
		},
		{
			name: "OtherTablesOnly",
			setup: func(t *testing.T, schema string) int {
				exec(t, "CREATE SCHEMA "+schema)
				exec(t, "CREATE TABLE "+schema+".events (id int)")
				return 1
			},
			wantErr: eventstore.ErrStoreNotFound,
		},
		{
			name: "OlderSchemaVersion",
			setup: func(t *testing.T, schema string) int {
				d, err := postgres.New(ctx, pool, postgres.Options{Schema: schema})
				require.NoError(t, err)
				require.NoError(t, d.Close())
				exec(t, "DELETE FROM "+schema+".schema_migrations WHERE version > 1")
				return tables(t, schema)
			},
			wantErr: postgres.ErrSchemaVersion,
		},
		{
			name: "ExistingStore",
			setup: func(t *testing.T, schema string) int {
				d, err := postgres.New(ctx, pool, postgres.Options{Schema: schema})
				require.NoError(t, err)
				s := eventstore.New(d, eventstore.Options{})
				_, err = s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{"n":1}`)))
				require.NoError(t, err)
				require.NoError(t, s.Close())
				return tables(t, schema)
			},
		},
	} {
		for _, how := range []string{"URL", "Open", "New"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				schema := randomSchema()
				dropSchemaAtCleanup(t, pool, schema)
				want := tc.setup(t, schema)
				versions := migrations(t, schema)
				var s *eventstore.Store
				var d *postgres.Driver
				var err error
				switch how {
				case "URL":
					s, err = eventstore.Open(ctx, withQuery(t, base, "schema", schema, "must_exist", "true"))
				case "Open":
					d, err = postgres.Open(ctx, base, postgres.Options{Schema: schema, MustExist: true})
				case "New":
					d, err = postgres.New(ctx, pool, postgres.Options{Schema: schema, MustExist: true})
				}
				if d != nil {
					s = eventstore.New(d, eventstore.Options{})
				}
				if tc.wantErr != nil {
					require.ErrorIs(t, err, tc.wantErr)
					require.Nil(t, s)
					assert.Equal(t, want, tables(t, schema), "tables of the schema (-1: no schema) changed")
					assert.Equal(t, versions, migrations(t, schema), "rows of schema_migrations (-1: no table) changed")
					return
				}
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				var got []eventstore.RecordedEvent
				for ev, err := range s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
					require.NoError(t, err)
					got = append(got, ev)
				}
				require.Len(t, got, 1)
				assert.Equal(t, []byte(`{"n":1}`), got[0].Data)
				_, err = s.Append(ctx, "Order-1", eventstore.Exact(1), eventstore.NewEvent("Shipped", nil))
				require.NoError(t, err, "must_exist opens a store for writing too")
			})
		}
	}
}

// handshakeOnlyServer completes PostgreSQL's startup handshake (no TLS, no
// password) and then never answers a query: a server that hangs after
// accepting the connection.
func handshakeOnlyServer(t *testing.T) string {
	t.Helper()
	return testenv.FakeServer(t, func(c net.Conn) {
		b := pgproto3.NewBackend(c, c)
		if m, err := b.ReceiveStartupMessage(); err != nil {
			return
		} else if _, ok := m.(*pgproto3.StartupMessage); !ok {
			c.Close() // a cancel request: ignored
			return
		}
		b.Send(&pgproto3.AuthenticationOk{})
		b.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"})
		b.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
		b.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}})
		b.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		if err := b.Flush(); err != nil {
			return
		}
		for { // read queries, answer none
			if _, err := b.Receive(); err != nil {
				return
			}
		}
	})
}

// TestOpenDoesNotHang: a server that accepts TCP but never answers, before
// or after the handshake, makes Open fail with a timeout instead of hanging.
// The guard deadline is far longer than the timeouts under test; the test
// asserts it was not what ended the open. (After a query it gave up on, pgx
// takes up to 15 s to close the connection, and Open waits for that.)
func TestOpenDoesNotHang(t *testing.T) {
	silent := testenv.SilentServer(t)
	hung := handshakeOnlyServer(t)
	for _, tc := range []struct {
		name string
		url  string
		opts postgres.Options
	}{
		{"SilentConnectTimeoutInURL", "postgres://app@" + silent + "/db?sslmode=disable&connect_timeout=1", postgres.Options{}},
		{"SilentConnectTimeoutInOptions", "postgres://app@" + silent + "/db?sslmode=disable", postgres.Options{ConnectTimeout: 200 * time.Millisecond}},
		{"SilentWithTLSPreferred", "postgres://app@" + silent + "/db?sslmode=prefer", postgres.Options{ConnectTimeout: 200 * time.Millisecond}},
		{"HungAfterHandshake", "postgres://app@" + hung + "/db?sslmode=disable", postgres.Options{ConnectTimeout: 200 * time.Millisecond}},
		{"HungAfterHandshakeMustExist", "postgres://app@" + hung + "/db?sslmode=disable", postgres.Options{ConnectTimeout: 200 * time.Millisecond, MustExist: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			guard, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			d, err := postgres.Open(guard, tc.url, tc.opts)
			if d != nil {
				d.Close()
			}
			require.Error(t, err)
			require.NoError(t, guard.Err(), "the guard deadline ended the open, not the connect timeout")
			assert.True(t, pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded), "want a timeout, got %v", err)
		})
	}
}

// TestWritesReportFailedConnects: when the pool cannot make a connection
// (the server refuses the role or the database with a FATAL error, or
// nothing listens), an append or import says it could not connect and that
// nothing was sent, not that a connection was lost mid-write; and nothing
// was written.
func TestWritesReportFailedConnects(t *testing.T) {
	ctx := t.Context()
	pool, breakConn, port := breakablePool(t)
	d := newDriver(t, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})

	for _, tc := range []struct {
		name  string
		brk   func(*pgx.ConnConfig)
		fatal string // the SQLSTATE of the server's FATAL error; "" for none
	}{
		{"RoleDoesNotExist", func(cc *pgx.ConnConfig) { cc.User = "no_such_role_" + strconv.Itoa(port) }, "28000"},
		{"DatabaseDoesNotExist", func(cc *pgx.ConnConfig) { cc.Database = "no_such_db_" + strconv.Itoa(port) }, "3D000"},
		{"NothingListens", func(cc *pgx.ConnConfig) { cc.Port = uint16(port); cc.Fallbacks = nil }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "Order-" + tc.name
			check := func(op string, err error) {
				t.Helper()
				require.Error(t, err, op)
				assert.Contains(t, err.Error(), "could not connect: nothing was sent", op)
				assert.NotContains(t, err.Error(), "connection lost", op)
				var ce *pgconn.ConnectError
				assert.True(t, errors.As(err, &ce), "%s: want a *pgconn.ConnectError in %v", op, err)
				if tc.fatal != "" {
					var pe *pgconn.PgError
					require.True(t, errors.As(err, &pe), "%s: want the server's error in %v", op, err)
					assert.Equal(t, tc.fatal, pe.Code, op)
					assert.Equal(t, "FATAL", pe.Severity, op)
				}
			}
			breakConn.Store(&tc.brk)
			pool.Reset() // every connection from now on is new
			_, err := s.Append(ctx, stream, eventstore.NoStream, eventstore.NewEvent("Placed", nil))
			check("append", err)
			err = s.Import(ctx, []eventstore.RecordedEvent{{StreamID: stream, Version: 1, ID: eventstore.NewEvent("X", nil).ID,
				Type: "Placed", RecordedAt: time.Now().UTC().Truncate(time.Microsecond)}})
			check("import", err)

			breakConn.Store(nil)
			pool.Reset()
			v, err := s.StreamVersion(ctx, stream)
			require.NoError(t, err)
			assert.Zero(t, v, "nothing was written")
		})
	}
}

// The URL of a store never leaks into the must_exist error, and the error
// names what to do.
func TestMustExistErrorMessage(t *testing.T) {
	base := testenv.MustHavePostgres(t)
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), "pw-6a1d")
	schema := randomSchema()
	_, err = eventstore.Open(t.Context(), withQuery(t, u.String(), "schema", schema, "must_exist", "true"))
	require.ErrorIs(t, err, eventstore.ErrStoreNotFound)
	assert.NotContains(t, err.Error(), "pw-6a1d")
	assert.Contains(t, err.Error(), schema)
}

// breakablePool returns a pool on the test server whose new connections
// breakConn may alter (a wrong role, database or port) while it holds a
// function, and a local port where nothing listens.
func breakablePool(t *testing.T) (pool *pgxpool.Pool, breakConn *atomic.Pointer[func(*pgx.ConnConfig)], closedPortNumber int) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	port, err := strconv.Atoi(closedPort(t))
	require.NoError(t, err)
	breakConn = new(atomic.Pointer[func(*pgx.ConnConfig)])
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		if f := breakConn.Load(); f != nil {
			(*f)(cc)
		}
		return nil
	}
	pool, err = pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, breakConn, port
}
