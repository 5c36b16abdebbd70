package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
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
	// driver opens.
	Schema string
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
}

// DefaultReadWait is the default [Options.ReadWait].
const DefaultReadWait = time.Second

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
	// blockerLogged is the fence of the last transaction logBlocker logged.
	blockerLogged atomic.Int64
	// retryHook, when set by tests, is called before each retried attempt.
	retryHook func(err error)

	listener listener
	notifier notifier
	// instance tells this driver's notifications from other drivers'.
	instance string
}

var (
	_ eventstore.Driver        = (*Driver)(nil)
	_ eventstore.Watcher       = (*Driver)(nil)
	_ eventstore.Aser          = (*Driver)(nil)
	_ eventstore.LimitReporter = (*Driver)(nil)
	_ eventstore.Importer      = (*Driver)(nil)
)

// New returns a driver over an existing pool, which it does not close: the
// caller closes the pool after closing the Store. It creates or upgrades the
// schema named in opts (under an advisory lock, so concurrent opens are safe)
// and fails if the server is unreachable or the schema cannot be migrated.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Driver, error) {
	if pool == nil {
		return nil, fmt.Errorf("postgres: new: %w: nil pool", eventstore.ErrInvalidArgument)
	}
	return newDriver(ctx, pool, false, opts)
}

// Open connects to the server named by connString, a postgres:// or
// postgresql:// URL or a keyword/value string as pgx accepts, and returns a
// driver that owns its pool (Close closes it). A "schema" query parameter of
// a URL sets [Options.Schema]; see the package documentation for the others.
// Errors never contain the password.
func Open(ctx context.Context, connString string, opts Options) (*Driver, error) {
	cfg, err := parseConfig(connString, &opts)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	d, err := newDriver(ctx, pool, true, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

func newDriver(ctx context.Context, pool *pgxpool.Pool, own bool, opts Options) (*Driver, error) {
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
	if err := d.migrate(ctx); err != nil {
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

// As implements [eventstore.Aser]: a **pgxpool.Pool target receives the pool.
func (d *Driver) As(target any) bool {
	if p, ok := target.(**pgxpool.Pool); ok && p != nil {
		*p = d.pool
		return true
	}
	return false
}

// Limits implements [eventstore.LimitReporter]. PostgreSQL stores a bytea of
// up to 1 GiB, but one append travels in one protocol message, which the
// server caps at 1 GiB: appends are limited to 256 MiB of data and metadata.
func (d *Driver) Limits() eventstore.Limits {
	return eventstore.Limits{MaxEventSize: 256 << 20, MaxAppendSize: 256 << 20}
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

// migrate creates the schema or upgrades it to SchemaVersion in one
// transaction under a transaction-level advisory lock keyed by the schema
// name, so processes opening the same schema at once take turns and all see a
// complete schema. A schema already at SchemaVersion gets no DDL, so a role
// that may only use the tables (no CREATE privilege) can open it. It also
// re-bases positions when the stored data is ahead of the cluster's
// transaction IDs (after a dump and restore into another cluster; see
// docs/postgres.md).
func (d *Driver) migrate(ctx context.Context) error {
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
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, once, q+`.schema_migrations`).Scan(&exists); err != nil {
			return err
		}
		current := 0
		if exists {
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+q+`.schema_migrations`, once).Scan(&current); err != nil {
				return err
			}
		}
		ms := migrations()
		if current > len(ms) {
			return fmt.Errorf("schema version %d is newer than this driver's %d: upgrade the driver", current, len(ms))
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
		if err := tx.QueryRow(ctx, `SELECT m.want FROM `+q+`.meta,
			(SELECT max(tx_id) + 1 - pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS want FROM `+q+`.events) m
			WHERE m.want > xid_offset`, once).Scan(&want); err != nil && err != pgx.ErrNoRows {
			return err
		}
		if want != nil {
			if _, err := tx.Exec(ctx, `UPDATE `+q+`.meta SET xid_offset = $1`, *want); err != nil {
				return err
			}
		}
		if current == 0 {
			// Statistics for the new tables, so the planner's generic plans
			// (which pgx's prepared statements get after five runs) are
			// right from the start instead of after autovacuum's first pass.
			_, err := tx.Exec(ctx, `ANALYZE `+q+`.meta, `+q+`.events`)
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
	importEvents                                            string
	readStreamFwd, readStreamBwd, fence, snapshot           string
	saveSnapshot, loadSnapshot, saveCheckpoint, loadCheckpt string
	channel                                                 string
}

func newStatements(schema string) statements {
	q := quoteIdent(schema)
	r := strings.NewReplacer("{{schema}}", q)
	return statements{
		append:         r.Replace(appendSQL),
		appendNotify:   r.Replace(appendNotifySQL),
		retried:        r.Replace(retriedSQL),
		importEvents:   r.Replace(importSQL),
		notify:         notifySQL,
		streamVersion:  r.Replace(`SELECT coalesce(max(version), 0) FROM {{schema}}.events WHERE stream_id = $1`),
		readStreamFwd:  r.Replace(readStreamFwdSQL),
		readStreamBwd:  r.Replace(readStreamBwdSQL),
		fence:          r.Replace(fenceSQL),
		snapshot:       r.Replace(snapshotSQL),
		saveSnapshot:   r.Replace(saveSnapshotSQL),
		loadSnapshot:   r.Replace(`SELECT version, data FROM {{schema}}.snapshots WHERE stream_id = $1`),
		saveCheckpoint: r.Replace(saveCheckpointSQL),
		loadCheckpt:    r.Replace(`SELECT tx_id, seq FROM {{schema}}.checkpoints WHERE name = $1`),
		channel:        "eventstore." + schema,
	}
}
