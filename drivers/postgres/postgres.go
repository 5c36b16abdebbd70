package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the schema the driver uses when [Options.Schema] is empty.
const DefaultSchema = "eventstore"

// Options configures a [Driver]. The zero value is ready to use.
type Options struct {
	// Schema is the PostgreSQL schema holding the store's tables; stores in
	// different schemas of one database are fully isolated. It must match
	// [a-z_][a-z0-9_]* and be at most 48 bytes, and not start with "pg_".
	// Empty means [DefaultSchema]. It is created and upgraded when the
	// driver opens, unless MustExist is set.
	Schema string
	// MustExist opens an existing store only: when the schema, or the
	// store's tables in it, do not exist, opening fails with an error
	// matching [eventstore.ErrStoreNotFound] and runs no CREATE. A store at
	// an older schema version fails with [ErrSchemaVersion]: upgrading is
	// DDL, so open it once without MustExist. The URL parameter is
	// must_exist=true.
	MustExist bool
	// ConnectTimeout bounds each connection attempt of the pool [Open]
	// creates (libpq's connect_timeout, per server address: the dial, TLS
	// and authentication) and, with [New] too, the schema check when the
	// driver opens, so a server that accepts connections but never answers
	// cannot hang opening. Zero means the connection string's
	// connect_timeout (or PGCONNECT_TIMEOUT), else [DefaultConnectTimeout];
	// with [New], the pool's connect timeout, else the default. Negative
	// means none: only ctx bounds the wait. A value that differs from the
	// connection string's connect_timeout is an error.
	ConnectTimeout time.Duration
	// Logger receives what an operator acts on: the listening connection
	// being lost and re-established. Nil discards.
	Logger *slog.Logger
	// ReadWait bounds how long a read of the global log waits for appends
	// to this store that were open when it started (transactions holding a
	// write lock on its events table), so that it returns every event
	// committed before it started. A transaction open longer only delays
	// events until a later read, and is logged; nothing is skipped. Zero
	// means [DefaultReadWait]; negative means never wait.
	ReadWait time.Duration
	// MaxConns caps the connections of the pool [Open] creates (pgxpool's
	// pool_max_conns). Zero means the connection string's pool_max_conns,
	// else [DefaultMaxConns]; a value that differs from the connection
	// string's is an error, and so is a negative one. [New] takes a pool
	// the caller configured and fails when MaxConns is set.
	MaxConns int32
	// PageSize is how many events a read asks for in one statement (one
	// round trip) when it wants that many or more: the Limit the Store
	// passes for ReadStream, ReadAll and subscriptions' catch-up (see
	// [driver.PageSizer]). Pages stay bounded in bytes by the Store's
	// MaxPageBytes. Zero means the URL's page_size, else
	// [DefaultPageSize]; a value that differs from the URL's is an error,
	// and so is a negative one.
	PageSize int
}

// DefaultReadWait is the default [Options.ReadWait].
const DefaultReadWait = time.Second

// DefaultConnectTimeout is the default [Options.ConnectTimeout].
const DefaultConnectTimeout = 10 * time.Second

// DefaultMaxConns is the default [Options.MaxConns]: the most connections
// the pool [Open] creates opens at once (it opens them as load requires).
// pgxpool's own default, the greater of 4 and the number of CPUs, makes
// concurrent appenders queue for a connection while the server, which
// spends most of an append waiting for the WAL flush, has room for more:
// docs/postgres.md ("Pool size") has the measurements.
const DefaultMaxConns = 16

// DefaultPageSize is the default [Options.PageSize]. A page costs a round
// trip and the statement's fixed work (the snapshot, the visibility fence,
// the byte bound) besides its rows: with the Store's 512 a 100,000-event
// log took 196 statements, with 4,096 it takes 25 and read at 1.00–1.21×
// the rate of 1,024 in five runs (BenchmarkPageSize). 8,192 gained a little
// more in four runs of five but doubles the memory per reader (each
// catching-up subscription holds a page).
// docs/postgres.md ("Page size") has the measurements that chose it.
const DefaultPageSize = 4096

// ErrSchemaVersion reports a schema whose version this driver cannot use
// as it is: newer than the driver knows (written by a newer release), or,
// with [Options.MustExist], older (it would need an upgrade).
var ErrSchemaVersion = errors.New("unsupported schema version")

// Driver is the PostgreSQL driver. Create one with [New] or [Open] (or
// [eventstore.Open] with a postgres:// URL) and pass it to [eventstore.New].
// It is safe for concurrent use.
type Driver struct {
	pool    *pgxpool.Pool
	ownPool bool // Close closes pool
	schema  string
	sql     statements
	logger  *slog.Logger
	// readWait is Options.ReadWait with the default filled in.
	readWait time.Duration
	// pageSize is Options.PageSize with the default filled in.
	pageSize int
	// blockerLogged is the fence of the last transaction logBlocker logged.
	blockerLogged atomic.Int64
	// logEnd is where the last forward, unfiltered page of the fenced read
	// that was not full ended (ReadAll, belowXmin): a hint, not a fence.
	logEnd atomic.Pointer[driver.Position]
	// pages keeps the arrays of pages the Store gave back (RecyclePage).
	pages driver.PagePool
	// retryHook, when set by tests, is called before each retried attempt.
	retryHook func(err error)

	listener listener
	notifier notifier
	group    grouper
	// instance tells this driver's notifications from other drivers'.
	instance string
}

var (
	_ driver.Driver            = (*Driver)(nil)
	_ driver.Watcher           = (*Driver)(nil)
	_ driver.Aser              = (*Driver)(nil)
	_ driver.LimitReporter     = (*Driver)(nil)
	_ driver.Importer          = (*Driver)(nil)
	_ driver.CheckpointManager = (*Driver)(nil)
	_ driver.ScanReader        = (*Driver)(nil)
	_ driver.PageRecycler      = (*Driver)(nil)
	_ driver.Leaser            = (*Driver)(nil)
	_ driver.CheckpointTxer    = (*Driver)(nil)
	_ driver.PageSizer         = (*Driver)(nil)
)

// New returns a driver over an existing pool, which it does not close: the
// caller closes the pool after closing the Store. It creates or upgrades the
// schema named in opts (under an advisory lock, so concurrent opens are safe)
// and fails if the server is unreachable or the schema cannot be migrated.
// With opts.MustExist it creates nothing: a missing store fails with an
// error matching [eventstore.ErrStoreNotFound], an older one with
// [ErrSchemaVersion].
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Driver, error) {
	if pool == nil {
		return nil, fmt.Errorf("postgres: new: %w: nil pool", eventstore.ErrInvalidArgument)
	}
	if opts.MaxConns != 0 {
		return nil, fmt.Errorf("postgres: new: %w: MaxConns applies to the pool Open creates; set MaxConns in the pool's configuration", eventstore.ErrInvalidArgument)
	}
	return newDriver(ctx, pool, false, opts, checkTimeout(opts, pool))
}

// Open connects to the server named by connString, a postgres:// or
// postgresql:// URL or a keyword/value string as pgx accepts, and returns a
// driver that owns its pool (Close closes it). A "schema" query parameter of
// a URL sets [Options.Schema] and "must_exist=true" [Options.MustExist]; see
// the package documentation for the others. Connecting is bounded by
// [DefaultConnectTimeout] unless the connection string or opts set another
// timeout. Errors never contain the password.
func Open(ctx context.Context, connString string, opts Options) (*Driver, error) {
	cfg, err := parseConfig(connString, &opts)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	d, err := newDriver(ctx, pool, true, opts, cfg.ConnConfig.ConnectTimeout)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

// newDriver checks (and unless opts.MustExist, creates or upgrades) the
// schema, waiting at most checkTimeout (0: no limit) for the check's
// queries, and returns the driver.
func newDriver(ctx context.Context, pool *pgxpool.Pool, own bool, opts Options, checkTimeout time.Duration) (*Driver, error) {
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if err := ValidateSchema(schema); err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	d := &Driver{pool: pool, ownPool: own, schema: schema, logger: opts.Logger}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	d.sql = newStatements(schema)
	d.readWait = opts.ReadWait
	if d.readWait == 0 {
		d.readWait = DefaultReadWait
	}
	switch {
	case opts.PageSize < 0:
		return nil, fmt.Errorf("postgres: open: %w: PageSize %d: want at least 1, or 0 for the default", eventstore.ErrInvalidArgument, opts.PageSize)
	case opts.PageSize == 0:
		d.pageSize = DefaultPageSize
	default:
		d.pageSize = opts.PageSize
	}
	if err := d.open(ctx, opts.MustExist, checkTimeout); err != nil {
		return nil, fmt.Errorf("postgres: open schema %q: %w", schema, wrapNative(err))
	}
	var id [6]byte
	rand.Read(id[:])
	d.instance = hex.EncodeToString(id[:])
	d.listener.init(d)
	d.notifier.start(d)
	return d, nil
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// maxSchemaLen keeps "eventstore." plus the schema within PostgreSQL's
// 63-byte limit on notification channel names.
const maxSchemaLen = 48

// ValidateSchema reports whether name is a schema name the driver accepts:
// 1–48 bytes of [a-z0-9_], not starting with a digit or "pg_". The error
// matches [eventstore.ErrInvalidArgument].
func ValidateSchema(name string) error {
	switch {
	case !schemaRE.MatchString(name):
		return fmt.Errorf("%w: schema name %q: want lower-case letters, digits and _, not starting with a digit", eventstore.ErrInvalidArgument, name)
	case len(name) > maxSchemaLen:
		return fmt.Errorf("%w: schema name %q is %d bytes, over %d", eventstore.ErrInvalidArgument, name, len(name), maxSchemaLen)
	case strings.HasPrefix(name, "pg_"):
		return fmt.Errorf("%w: schema name %q: the pg_ prefix is reserved by PostgreSQL", eventstore.ErrInvalidArgument, name)
	}
	return nil
}

// Schema returns the name of the driver's schema.
func (d *Driver) Schema() string { return d.schema }

// As implements [driver.Aser]: a **pgxpool.Pool target receives the pool.
func (d *Driver) As(target any) bool {
	if p, ok := target.(**pgxpool.Pool); ok && p != nil {
		*p = d.pool
		return true
	}
	return false
}

// PageSize implements [driver.PageSizer]: [Options.PageSize], or
// [DefaultPageSize].
func (d *Driver) PageSize() int { return d.pageSize }

// Limits implements [driver.LimitReporter]. PostgreSQL stores a bytea of
// up to 1 GiB, but one append travels in one protocol message, which the
// server caps at 1 GiB: appends are limited to 256 MiB of data and metadata.
func (d *Driver) Limits() driver.Limits {
	return driver.Limits{MaxEventSize: 256 << 20, MaxAppendSize: 256 << 20}
}

// Close stops the listening connection and, when the driver created the
// pool ([Open]), closes the pool. It is idempotent.
func (d *Driver) Close() error {
	d.notifier.close()
	d.listener.close()
	if d.ownPool {
		d.pool.Close()
	}
	return nil
}

//go:embed schema/*.sql
var schemaFS embed.FS

// migration is one embedded schema file, "NNNN_name.sql", version NNNN.
type migration struct {
	version int
	name    string
	sql     string
}

var migrations = sync.OnceValue(func() []migration {
	files, err := fs.Glob(schemaFS, "schema/*.sql")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, f := range files {
		base := strings.TrimPrefix(f, "schema/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			panic("postgres: schema file " + f + " is not named NNNN_name.sql")
		}
		b, err := schemaFS.ReadFile(f)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			panic("postgres: schema files are not numbered 1, 2, 3…: " + m.name)
		}
	}
	return ms
})

// SchemaVersion is the schema version this driver creates and upgrades to.
func SchemaVersion() int { return len(migrations()) }

// schemaState is what opening found, reading only.
type schemaState struct {
	version int  // 0: no store (no schema_migrations table)
	rebase  bool // xid_offset must be raised (see migrate)
}

// open makes sure the schema is ready. A read-only check comes first, under
// checkTimeout (0: ctx alone), so that a server that never answers cannot
// hang opening, and so that an up-to-date schema is opened without the
// advisory lock or any DDL. Only a schema that needs work (creation, an
// upgrade, a rebase of positions) goes through migrate, which may wait for
// another process's upgrade and may take long on a large store: ctx alone
// bounds it. With mustExist, a missing store is ErrStoreNotFound and an
// older one ErrSchemaVersion; nothing is created.
func (d *Driver) open(ctx context.Context, mustExist bool, checkTimeout time.Duration) error {
	st, err := d.checkSchema(ctx, checkTimeout)
	if err != nil {
		return err
	}
	if err := checkVersion(st.version, mustExist); err != nil {
		return err
	}
	if st.version == len(migrations()) && !st.rebase {
		return nil
	}
	return d.migrate(ctx, mustExist)
}

// checkVersion refuses a schema version this driver cannot open: newer than
// it knows, or with mustExist missing (0) or older.
func checkVersion(version int, mustExist bool) error {
	latest := len(migrations())
	switch {
	case version > latest:
		return fmt.Errorf("%w: schema version %d is newer than this driver's %d: upgrade the driver", ErrSchemaVersion, version, latest)
	case mustExist && version == 0:
		return fmt.Errorf("%w: the schema or its tables do not exist (must_exist is set, so nothing was created)", eventstore.ErrStoreNotFound)
	case mustExist && version < latest:
		return fmt.Errorf("%w: schema version %d is older than this driver's %d: upgrading it runs DDL, which must_exist does not do; open it once without must_exist", ErrSchemaVersion, version, latest)
	}
	return nil
}

// checkSchema reads the schema's version and whether positions need a
// rebase, on one connection, without locks or writes. The connect is bounded
// by the pool's connect timeout, the queries by timeout (0: ctx alone).
func (d *Driver) checkSchema(ctx context.Context, timeout time.Duration) (schemaState, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return schemaState{}, err
	}
	defer conn.Release()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	q := quoteIdent(d.schema)
	once := pgx.QueryExecModeExec // see migrate
	var st schemaState
	var exists bool
	if err := conn.QueryRow(ctx, schemaExistsSQL, once, d.schema).Scan(&exists); err != nil {
		return st, err
	}
	if !exists {
		return st, nil
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+q+`.schema_migrations`, once).Scan(&st.version); err != nil {
		return st, err
	}
	if st.version != len(migrations()) {
		return st, nil
	}
	err = conn.QueryRow(ctx, rebaseCheckSQL(q), once).Scan(new(int64))
	switch {
	case err == nil:
		st.rebase = true
	case !errors.Is(err, pgx.ErrNoRows):
		return st, err
	}
	return st, nil
}

// schemaExistsSQL tells whether schema $1 has a schema_migrations table. It
// scans pg_tables with the statement's snapshot rather than calling
// to_regclass, which resolves the name through the backend's catalog cache
// without a lock: after waiting for the advisory lock, that cache can still
// hold "no such table" from a check made before another process created
// the schema, and the creation would run twice.
const schemaExistsSQL = `SELECT EXISTS (SELECT FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'schema_migrations')`

// rebaseCheckSQL returns the offset xid_offset must be raised to, as one
// row, or no row when it need not change (see migrate).
func rebaseCheckSQL(q string) string {
	return `SELECT m.want FROM ` + q + `.meta,
			(SELECT max(tx_id) + 1 - pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS want FROM ` + q + `.events) m
			WHERE m.want > xid_offset`
}

// migrate creates the schema or upgrades it to SchemaVersion in one
// transaction under a transaction-level advisory lock keyed by the schema
// name, so processes opening the same schema at once take turns and all see a
// complete schema. A schema already at SchemaVersion gets no DDL, so a role
// that may only use the tables (no CREATE privilege) can open it. It also
// re-bases positions when the stored data is ahead of the cluster's
// transaction IDs (after a dump and restore into another cluster; see
// docs/postgres.md). With mustExist it creates and upgrades nothing.
func (d *Driver) migrate(ctx context.Context, mustExist bool) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('eventstore.migrate'), hashtext($1))`, d.schema); err != nil {
			return err
		}
		q := quoteIdent(d.schema)
		// One-off queries go unprepared: they would stay in the
		// connection's statement cache for nothing. (Not the simple
		// protocol: pgx refuses it unless client_encoding is UTF8.)
		once := pgx.QueryExecModeExec
		var exists bool
		if err := tx.QueryRow(ctx, schemaExistsSQL, once, d.schema).Scan(&exists); err != nil {
			return err
		}
		current := 0
		if exists {
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+q+`.schema_migrations`, once).Scan(&current); err != nil {
				return err
			}
		}
		ms := migrations()
		if err := checkVersion(current, mustExist); err != nil {
			return err // things changed since the check
		}
		if current < len(ms) {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (
				version    integer     PRIMARY KEY,
				name       text        NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return err
			}
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(m.sql, "{{schema}}", q)); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return err
			}
		}
		// New transactions get IDs of at least pg_snapshot_xmax (the next
		// ID): make sure they land after every stored event. The check is a
		// read; only a restored schema needs the update (and its privilege).
		var want *int64
		if err := tx.QueryRow(ctx, rebaseCheckSQL(q), once).Scan(&want); err != nil && err != pgx.ErrNoRows {
			return err
		}
		if want != nil {
			if _, err := tx.Exec(ctx, `UPDATE `+q+`.meta SET xid_offset = $1`, *want); err != nil {
				return err
			}
		}
		if current == 0 {
			// Statistics for meta (one row, which autovacuum never
			// analyzes), so the planner's generic plans (which pgx's
			// prepared statements get after five runs) read it as one row
			// from the start. Not for the new, empty events table: analyzed
			// empty, it is planned as a table of no pages, and the generic
			// plans of the append statements walk it with sequential scans
			// until autovacuum analyzes it again (schema file 0003 skips it
			// too; TestAppendPlans).
			_, err := tx.Exec(ctx, `ANALYZE `+q+`.meta`)
			return err
		}
		return nil
	})
}

// quoteIdent quotes a validated schema name as an SQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// statements holds the driver's SQL with the schema name filled in. pgx
// prepares and caches each text per connection.
type statements struct {
	append, appendNotify, retried, notify, streamVersion    string
	groupAppend                                             string
	importEvents                                            string
	readStreamFwd, readStreamBwd, fence, snapshot           string
	readBelowXmin                                           string
	saveSnapshot, loadSnapshot, saveCheckpoint, loadCheckpt string
	checkpoints, deleteCheckpoint                           string
	moveCheckpoint, createCheckpoint                        string
	acquireLease, lease, releaseLease, saveLeasePosition    string
	leases, deleteLeases                                    string
	listStreamsRange, listStreamsAll                        string
	channel                                                 string
	tagged                                                  taggedStatements
	retention                                               retentionStatements
}

func newStatements(schema string) statements {
	q := quoteIdent(schema)
	r := strings.NewReplacer("{{schema}}", q)
	return statements{
		append:            r.Replace(appendSQL),
		appendNotify:      r.Replace(appendNotifySQL),
		groupAppend:       r.Replace(groupAppendSQL),
		retried:           r.Replace(retriedSQL),
		importEvents:      r.Replace(importSQL),
		notify:            notifySQL,
		streamVersion:     r.Replace(streamVersionSQL),
		readStreamFwd:     r.Replace(readStreamFwdSQL),
		readStreamBwd:     r.Replace(readStreamBwdSQL),
		fence:             r.Replace(fenceSQL),
		readBelowXmin:     r.Replace(readBelowXminSQL),
		snapshot:          r.Replace(snapshotSQL),
		saveSnapshot:      r.Replace(saveSnapshotSQL),
		loadSnapshot:      r.Replace(`SELECT version, data FROM {{schema}}.snapshots WHERE stream_id = $1`),
		saveCheckpoint:    r.Replace(saveCheckpointSQL),
		loadCheckpt:       r.Replace(`SELECT tx_id, seq FROM {{schema}}.checkpoints WHERE name = $1`),
		checkpoints:       r.Replace(`SELECT name, tx_id, seq FROM {{schema}}.checkpoints`),
		deleteCheckpoint:  r.Replace(`DELETE FROM {{schema}}.checkpoints WHERE name = $1`),
		moveCheckpoint:    r.Replace(moveCheckpointSQL),
		createCheckpoint:  r.Replace(createCheckpointSQL),
		listStreamsRange:  r.Replace(listStreamsRangeSQL),
		listStreamsAll:    r.Replace(listStreamsAllSQL),
		acquireLease:      r.Replace(acquireLeaseSQL),
		lease:             r.Replace(leaseSQL),
		releaseLease:      r.Replace(releaseLeaseSQL),
		saveLeasePosition: r.Replace(saveLeasePositionSQL),
		leases:            r.Replace(leasesSQL),
		deleteLeases:      r.Replace(deleteLeasesSQL),
		channel:           "eventstore." + schema,
		tagged:            newTaggedStatements(r),
		retention:         newRetentionStatements(r),
	}
}

// SystemName implements [driver.SystemNamer]: postgresql.
func (d *Driver) SystemName() string { return "postgresql" }
