package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withQuery returns rawURL with extra query parameters.
func withQuery(t testing.TB, rawURL string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func TestOpenURL(t *testing.T) {
	base := testenv.MustHavePostgres(t)
	pool := newPool(t)
	for _, scheme := range []string{"postgres", "postgresql", "PostgreSQL"} {
		t.Run(scheme, func(t *testing.T) {
			schema := randomSchema()
			dropSchemaAtCleanup(t, pool, schema)
			u, err := url.Parse(withQuery(t, base, "schema", schema, "application_name", "eventstore-test"))
			require.NoError(t, err)
			u.Scheme = scheme
			s, err := eventstore.Open(t.Context(), u.String())
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
			require.NoError(t, err)

			var p *pgxpool.Pool
			require.True(t, s.As(&p), "As(**pgxpool.Pool)")
			var n int
			require.NoError(t, p.QueryRow(t.Context(), "SELECT count(*) FROM "+schema+".events").Scan(&n))
			assert.Equal(t, 1, n, "the event is in the schema named by the URL")
			var app string
			require.NoError(t, p.QueryRow(t.Context(), "SHOW application_name").Scan(&app))
			assert.Equal(t, "eventstore-test", app, "pgx's own parameters pass through")
			assert.False(t, s.As(nil))
			var wrong *int
			assert.False(t, s.As(&wrong))
		})
	}
}

func TestOpenRejectsBadParameters(t *testing.T) {
	base := testenv.MustHavePostgres(t)
	for _, tc := range []struct{ name, url string }{
		{"UnknownParameterOfOurs", withQuery(t, base, "eventstore_schema", "x")},
		{"SchemaWithUpperCase", withQuery(t, base, "schema", "Orders")},
		{"SchemaWithQuote", withQuery(t, base, "schema", `a";DROP TABLE x;--`)},
		{"SchemaTooLong", withQuery(t, base, "schema", strings.Repeat("a", 49))},
		{"SchemaReserved", withQuery(t, base, "schema", "pg_catalog")},
		{"SchemaEmpty", withQuery(t, base, "schema", "")},
		{"SchemaTwice", base + "&schema=a&schema=b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := eventstore.Open(t.Context(), tc.url)
			if s != nil {
				s.Close()
			}
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
		})
	}
}

func TestValidateSchema(t *testing.T) {
	for _, ok := range []string{"eventstore", "a", "_x", "orders_2", strings.Repeat("a", 48)} {
		assert.NoError(t, postgres.ValidateSchema(ok), ok)
	}
	for _, bad := range []string{"", "A", "1a", "a-b", "a b", `a"b`, "pg_x", "é", strings.Repeat("a", 49)} {
		assert.ErrorIs(t, postgres.ValidateSchema(bad), eventstore.ErrInvalidArgument, bad)
	}
}

// closedPort returns a local TCP port nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	_, port, err := net.SplitHostPort(testenv.ClosedAddr(t))
	require.NoError(t, err)
	return port
}

func TestPasswordNeverInErrorsOrLogs(t *testing.T) {
	const password = "s3cr3t-P4ss"
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	port := closedPort(t)
	urls := []string{
		"postgres://app:" + password + "@127.0.0.1:" + port + "/db?sslmode=disable&connect_timeout=2",
		"postgresql://app:" + password + "@127.0.0.1:" + port + "/db?sslmode=disable&connect_timeout=2&schema=x",
		"postgres://app:" + password + "@127.0.0.1:" + port + "/db?sslmode=disable&eventstore_bad=1",
		"postgres://app:" + password + "@127.0.0.1:" + port + "/db?sslmode=bogus",
		"postgres://app:" + password + "@127.0.0.1:" + port + "/db?password=" + password + "&sslmode=disable&connect_timeout=2",
		"postgres://app:" + password + "@[::1:bad/db",
	}
	for _, u := range urls {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		s, err := eventstore.OpenWith(ctx, u, eventstore.Options{Logger: logger})
		cancel()
		if s != nil {
			s.Close()
		}
		require.Error(t, err, "open %s", u)
		assert.NotContains(t, err.Error(), password, "error of open")
		d, err := postgres.Open(t.Context(), u, postgres.Options{Logger: logger})
		require.Error(t, err)
		require.Nil(t, d)
		assert.NotContains(t, err.Error(), password, "error of postgres.Open")
	}
	mu.Lock()
	defer mu.Unlock()
	assert.NotContains(t, logs.String(), password, "logs")
}

func TestNewDoesNotClosePool(t *testing.T) {
	pool := newPool(t)
	d := newDriver(t, pool, postgres.Options{})
	s := eventstore.New(d, eventstore.Options{})
	_, err := s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "second Close")
	require.NoError(t, pool.Ping(t.Context()), "the caller's pool is still open")
}

// TestPoolSize: the pool Open creates has DefaultMaxConns connections at
// most unless the URL's pool_max_conns or Options.MaxConns says otherwise;
// New refuses MaxConns, which it cannot apply to the caller's pool.
func TestPoolSize(t *testing.T) {
	base := testenv.MustHavePostgres(t)
	pool := newPool(t)
	for _, tc := range []struct {
		name string
		url  string
		opts postgres.Options
		want int32
	}{
		{"Default", base, postgres.Options{}, postgres.DefaultMaxConns},
		{"URL", withQuery(t, base, "pool_max_conns", "3"), postgres.Options{}, 3},
		{"Options", base, postgres.Options{MaxConns: 5}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *pgxpool.Pool
			require.True(t, openDriver(t, pool, tc.url, tc.opts).As(&p))
			assert.Equal(t, tc.want, p.Config().MaxConns)
		})
	}
	_, err := postgres.New(t.Context(), pool, postgres.Options{MaxConns: 8})
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument, "New with MaxConns")
}

// TestPageSize: reads ask for PageSize events a statement (the URL's
// page_size, Options.PageSize, else DefaultPageSize), so reading 25 events
// of a stream and of the log takes one statement each by default and three
// with pages of 10; a negative PageSize is refused.
func TestPageSize(t *testing.T) {
	base := testenv.MustHavePostgres(t)
	pool := newPool(t)
	for _, tc := range []struct {
		name string
		url  string
		opts postgres.Options
		want int
	}{
		{"Default", base, postgres.Options{}, postgres.DefaultPageSize},
		{"URL", withQuery(t, base, "page_size", "10"), postgres.Options{}, 10},
		{"Options", base, postgres.Options{PageSize: 10}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, openDriver(t, pool, tc.url, tc.opts).PageSize())
		})
	}
	_, err := postgres.New(t.Context(), pool, postgres.Options{Schema: randomSchema(), PageSize: -1})
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument, "New with a negative PageSize")

	// A read of the log reads its pages below xmin first (one statement
	// each), and the last, which is not full there, again fenced.
	for _, tc := range []struct {
		size  int
		pages int64 // statements per read of 25 events
	}{{0, 1}, {10, 3}} {
		t.Run(fmt.Sprintf("Statements/PageSize=%d", tc.size), func(t *testing.T) {
			traced, counter := countingPool(t, `.events WHERE stream_id = $1 AND version >=`, "pg_snapshot_xmin(pg_current_snapshot())", "coalesce(top >= fence, false)")
			s := eventstore.New(newDriver(t, traced, postgres.Options{PageSize: tc.size}), eventstore.Options{})
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			evs := make([]eventstore.Event, 25)
			for i := range evs {
				evs[i] = eventstore.NewEvent("Placed", nil)
			}
			_, err = s.Append(ctx, "Order-1", eventstore.NoStream, evs...)
			require.NoError(t, err)
			n := 0
			for _, err := range s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
				require.NoError(t, err)
				n++
			}
			assert.Equal(t, 25, n, "events read from the stream")
			n = 0
			for _, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
				require.NoError(t, err)
				n++
			}
			assert.Equal(t, 25, n, "events read from the log")
			assert.Equal(t, tc.pages, counter.counts[0].Load(), "statements reading the stream")
			assert.Equal(t, tc.pages, counter.counts[1].Load(), "statements reading the log below xmin")
			assert.Equal(t, int64(1), counter.counts[2].Load(), "fenced statements reading the log")
		})
	}
}

func TestSchemasAreIsolated(t *testing.T) {
	pool := newPool(t)
	a, _ := newStore(t, pool)
	b, _ := newStore(t, pool)
	ctx := t.Context()
	_, err := a.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("InA", nil))
	require.NoError(t, err)
	_, err = b.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("InB", nil), eventstore.NewEvent("InB", nil))
	require.NoError(t, err)
	require.NoError(t, a.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: 1, Data: []byte("a")}))

	va, err := a.StreamVersion(ctx, "Order-1")
	require.NoError(t, err)
	vb, err := b.StreamVersion(ctx, "Order-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), va)
	assert.Equal(t, uint64(2), vb)
	for ev, err := range b.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		assert.Equal(t, "InB", ev.Type)
	}
	_, ok, err := b.LoadSnapshot(ctx, "Order-1")
	require.NoError(t, err)
	assert.False(t, ok, "a snapshot saved in schema a is not in schema b")
}

// Processes opening the same new schema at once take turns on the advisory
// lock: every open succeeds and the schema is created once.
func TestConcurrentOpensOfANewSchema(t *testing.T) {
	base := testenv.MustHavePostgres(t)
	pool := newPool(t)
	schema := randomSchema()
	dropSchemaAtCleanup(t, pool, schema)
	const n = 8
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			// Each opener has its own pool, as separate processes would.
			d, err := postgres.Open(t.Context(), base, postgres.Options{Schema: schema})
			if err == nil {
				s := eventstore.New(d, eventstore.Options{})
				_, err = s.Append(t.Context(), "Open-"+randomSchema(), eventstore.NoStream, eventstore.NewEvent("Opened", nil))
				s.Close()
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var versions, events int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM "+schema+".schema_migrations").Scan(&versions))
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM "+schema+".events").Scan(&events))
	assert.Equal(t, postgres.SchemaVersion(), versions, "each migration applied once")
	assert.Equal(t, n, events)
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// A schema migrated by a newer driver is refused rather than misread; an
// existing schema at this driver's version opens without applying anything.
func TestSchemaVersions(t *testing.T) {
	pool := newPool(t)
	schema := randomSchema()
	newDriver(t, pool, postgres.Options{Schema: schema})
	d2, err := postgres.New(t.Context(), pool, postgres.Options{Schema: schema})
	require.NoError(t, err, "reopen")
	d2.Close()
	var applied int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM "+schema+".schema_migrations").Scan(&applied))
	assert.Equal(t, postgres.SchemaVersion(), applied)

	_, err = pool.Exec(t.Context(), "INSERT INTO "+schema+".schema_migrations (version, name) VALUES (9999, '9999_future.sql')")
	require.NoError(t, err)
	_, err = postgres.New(t.Context(), pool, postgres.Options{Schema: schema})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "newer than this driver")
}

// An application often runs under a role that may use the store's tables
// but not create anything: it must be able to open a schema that is already
// up to date (an administrator's role created or upgraded it), and append,
// read, subscribe and checkpoint through it.
func TestOpenUpToDateSchemaWithoutCreatePrivilege(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	schema := randomSchema()
	newDriver(t, pool, postgres.Options{Schema: schema}) // the administrator's open
	role := "app_" + schema
	q := pgx.Identifier{schema}.Sanitize()
	for _, stmt := range []string{
		"CREATE ROLE " + role + " LOGIN PASSWORD 'app'",
		"GRANT USAGE ON SCHEMA " + q + " TO " + role,
		"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA " + q + " TO " + role,
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA " + q + " TO " + role,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, stmt := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := pool.Exec(ctx, stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
	var canCreate bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT has_database_privilege($1, current_database(), 'CREATE')", role).Scan(&canCreate))
	require.False(t, canCreate, "precondition: the role cannot create schemas")

	cfg := pool.Config()
	cfg.ConnConfig.User, cfg.ConnConfig.Password = role, "app"
	appPool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(appPool.Close)
	d, err := postgres.New(ctx, appPool, postgres.Options{Schema: schema})
	require.NoError(t, err, "open an up-to-date schema without CREATE privilege")
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
	require.NoError(t, err)
	sub := subscribe(t, s, eventstore.SubscribeOptions{Name: "app", PollInterval: noPoll})
	got := receive(t, sub, 1, "the appended event")
	assert.Equal(t, "Order-1", got[0].StreamID)
	require.NoError(t, sub.stop())
	pos, ok, err := d.LoadCheckpoint(ctx, "app")
	require.NoError(t, err)
	assert.True(t, ok, "the subscription saved its checkpoint")
	assert.Equal(t, driver.Position(got[0].Position), pos)
	require.NoError(t, s.SaveSnapshot(ctx, "Order-1", eventstore.Snapshot{Version: 1, Data: []byte("state")}))
}

// A database in another encoding than UTF8 (LATIN1 here) has that client
// encoding by default, which pgx's simple protocol refuses: the driver must
// not depend on it. Opening such a database works, and stream IDs, types
// and payloads round-trip byte for byte (PostgreSQL keeps the bytes as they
// came, since the client and the database encodings agree).
func TestOpenDatabaseInAnotherEncoding(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	name := randomSchema() + "_latin1"
	_, err := pool.Exec(ctx, "CREATE DATABASE "+name+" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	u.Path = "/" + name
	for range 2 { // creates the schema, then opens it up to date
		d, err := postgres.Open(ctx, u.String(), postgres.Options{})
		require.NoError(t, err)
		require.NoError(t, d.Close())
	}
	s, err := eventstore.Open(ctx, u.String())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ev := eventstore.Event{Type: "Placé-😀", Data: []byte(`{"ü":"😀"}`)}
	_, err = s.Append(ctx, "Ordér-😀", eventstore.NoStream, ev)
	require.NoError(t, err)
	var got []eventstore.RecordedEvent
	for e, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Ordér"}}}) {
		require.NoError(t, err)
		got = append(got, e)
	}
	require.Len(t, got, 1)
	assert.Equal(t, "Ordér-😀", got[0].StreamID)
	assert.Equal(t, ev.Type, got[0].Type)
	assert.Equal(t, ev.Data, got[0].Data)
}

// A keyword/value connection string works too (with the schema in Options).
func TestOpenKeywordValue(t *testing.T) {
	u, err := url.Parse(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	pool := newPool(t)
	schema := randomSchema()
	dropSchemaAtCleanup(t, pool, schema)
	dsn := "host=" + u.Hostname() + " port=" + u.Port() + " user=" + u.User.Username() + " dbname=" + strings.TrimPrefix(u.Path, "/") + " sslmode=disable"
	d, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema})
	require.NoError(t, err)
	require.NoError(t, d.Close())
}

// TestJITOff checks the pool Open creates turns JIT off unless the URL sets
// jit: on a log of ~10M events JIT compiled every read-all page.
func TestJITOff(t *testing.T) {
	base := testenv.MustHavePostgres(t)
	pool := newPool(t)
	for _, tc := range []struct{ name, url, want string }{
		{"Default", base, "off"},
		{"URL", withQuery(t, base, "jit", "on"), "on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *pgxpool.Pool
			require.True(t, openDriver(t, pool, tc.url, postgres.Options{}).As(&p))
			var got string
			require.NoError(t, p.QueryRow(t.Context(), "SHOW jit").Scan(&got))
			assert.Equal(t, tc.want, got)
		})
	}
}
