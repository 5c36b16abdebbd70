package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/retry"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// Synchronous is the durability of a commit: SQLite's PRAGMA synchronous for
// the connection that writes events.
type Synchronous uint8

const (
	// SynchronousFull syncs the write-ahead log to disk on every commit: an
	// append that returned is on disk, even after a power loss. The default.
	SynchronousFull Synchronous = iota
	// SynchronousNormal syncs only at WAL checkpoints. Appends are faster,
	// and a crash of the process loses nothing, but a power loss or an
	// operating system crash can lose the most recent appends (never corrupt
	// the file). Choose it only when the events can be recreated.
	SynchronousNormal
)

// String returns "full" or "normal", the URL parameter values.
func (s Synchronous) String() string {
	switch s {
	case SynchronousFull:
		return "full"
	case SynchronousNormal:
		return "normal"
	}
	return "Synchronous(" + strconv.Itoa(int(s)) + ")"
}

func (s Synchronous) pragma() string {
	if s == SynchronousNormal {
		return "NORMAL"
	}
	return "FULL"
}

// Defaults for the zero [Options].
const (
	DefaultBusyTimeout   = 5 * time.Second
	DefaultWatchInterval = 10 * time.Millisecond
	DefaultMaxReadConns  = 4
)

// Options configures the driver. The zero value is ready to use.
type Options struct {
	// Synchronous is the durability of commits. The zero value is
	// [SynchronousFull].
	Synchronous Synchronous
	// BusyTimeout is how long a write waits for the file's write lock while
	// another process (or another connection) holds it, and how long a read
	// waits on a locked file. Zero means [DefaultBusyTimeout].
	BusyTimeout time.Duration
	// WatchInterval is how often the driver checks the file for events
	// written by other processes while a live subscription is waiting.
	// Appends through this driver wake subscriptions at once. Zero means
	// [DefaultWatchInterval].
	WatchInterval time.Duration
	// MaxReadConns caps the connections [Open] opens for reads (one more is
	// kept for writes). Zero means [DefaultMaxReadConns]. [New] ignores it.
	MaxReadConns int
	// MustExist opens an existing store only: a missing file, or a file
	// that holds no event store (an empty file, another application's
	// database, a file that is not SQLite), fails with an error matching
	// [eventstore.ErrStoreNotFound], and nothing is created or written. A
	// store at an older schema version fails with [ErrSchemaVersion]: the
	// upgrade is a write, so open it once without MustExist. The URL
	// parameter is must_exist=true.
	MustExist bool
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Synchronous > SynchronousNormal:
		return o, fmt.Errorf("sqlite: %w: unknown synchronous setting %d", eventstore.ErrInvalidArgument, o.Synchronous)
	case o.BusyTimeout < 0 || o.WatchInterval < 0 || o.MaxReadConns < 0:
		return o, fmt.Errorf("sqlite: %w: negative option in %+v", eventstore.ErrInvalidArgument, o)
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.WatchInterval == 0 {
		o.WatchInterval = DefaultWatchInterval
	}
	if o.MaxReadConns == 0 {
		o.MaxReadConns = DefaultMaxReadConns
	}
	return o, nil
}

// ErrSchemaVersion reports a database file whose schema version is newer
// than this driver knows: it was written by a newer release, and opening it
// with this one could damage it.
var ErrSchemaVersion = errors.New("unsupported schema version")

// Driver is the SQLite driver. Create it with [Open] or [New] (or open the
// "sqlite" URL scheme with [eventstore.Open]) and pass it to [eventstore.New].
type Driver struct {
	db     *sql.DB
	ownsDB bool
	opts   Options

	// writeSem is the right to use the write connection: one write
	// transaction at a time in this process. Other processes are kept out
	// by the file's write lock.
	writeSem chan struct{}
	w        *writer // guarded by writeSem; nil when it must be (re)opened

	appends appendQueue // appends waiting for the write connection

	read readStmts
	// pages keeps the arrays of pages the Store gave back (RecyclePage).
	pages driver.PagePool

	watch watchState

	closeOnce sync.Once
	closeErr  error
}

var (
	_ driver.Driver            = (*Driver)(nil)
	_ driver.CheckpointManager = (*Driver)(nil)
	_ driver.ScanReader        = (*Driver)(nil)
	_ driver.PageRecycler      = (*Driver)(nil)
	_ driver.Watcher           = (*Driver)(nil)
	_ driver.Aser              = (*Driver)(nil)
	_ driver.LimitReporter     = (*Driver)(nil)
	_ driver.Leaser            = (*Driver)(nil)
	_ driver.CheckpointTxer    = (*Driver)(nil)
	_ driver.MultiAppender     = (*Driver)(nil)
	_ driver.QueryReader       = (*Driver)(nil)
)

// Open opens (creating it if needed) the SQLite database file at path and
// brings its schema up to date. A new file is created readable and writable
// by its owner only (mode 0600, which SQLite gives its -wal and -shm files
// too); an existing file keeps its mode. The file is put in WAL mode;
// connections use opts' busy timeout and synchronous setting. The driver owns
// the connections and closes them in Close. With opts.MustExist it creates
// and writes nothing: see [Options.MustExist].
//
// Errors: [eventstore.ErrInvalidArgument] for an empty or in-memory path or
// bad options, [ErrSchemaVersion] for a file written by a newer release (or,
// with MustExist, an older one), [eventstore.ErrStoreNotFound] with
// MustExist, or the error opening the file.
func Open(ctx context.Context, path string, opts Options) (*Driver, error) {
	return open(ctx, path, opts, migrations)
}

func open(ctx context.Context, path string, opts Options, ms []migration) (*Driver, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if opts.MustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: open %q: %w: no such file", path, eventstore.ErrStoreNotFound)
		}
	} else if err := createFile(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	db, err := sql.Open("sqlite3", dsn(path, opts))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	db.SetMaxOpenConns(1 + opts.MaxReadConns)
	db.SetMaxIdleConns(1 + opts.MaxReadConns)
	d, err := newDriver(ctx, db, true, opts, ms)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	return d, nil
}

// New returns a driver over an existing go-sqlite3 *sql.DB for a database
// file, bringing its schema up to date and putting the file in WAL mode. The
// driver keeps one of the pool's connections for writes, with opts' busy
// timeout and synchronous setting, and reads through the others as the pool
// is configured; the pool must allow at least two connections. The driver
// does not close db.
//
// Errors: [eventstore.ErrInvalidArgument] when db is nil, is not a go-sqlite3
// pool, allows a single connection, or is not a file in WAL mode;
// [ErrSchemaVersion] for a file written by a newer release (or, with
// opts.MustExist, an older one); [eventstore.ErrStoreNotFound] with
// opts.MustExist when the file holds no event store, checked before
// anything is written.
func New(ctx context.Context, db *sql.DB, opts Options) (*Driver, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if db == nil {
		return nil, fmt.Errorf("sqlite: %w: nil *sql.DB", eventstore.ErrInvalidArgument)
	}
	if _, ok := db.Driver().(*sqlite3.SQLiteDriver); !ok {
		return nil, fmt.Errorf("sqlite: %w: the *sql.DB does not use github.com/mattn/go-sqlite3 but %T", eventstore.ErrInvalidArgument, db.Driver())
	}
	if db.Stats().MaxOpenConnections == 1 {
		return nil, fmt.Errorf("sqlite: %w: the *sql.DB allows one connection; the driver keeps one for writes and needs another to read", eventstore.ErrInvalidArgument)
	}
	d, err := newDriver(ctx, db, false, opts, migrations)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return d, nil
}

func newDriver(ctx context.Context, db *sql.DB, owns bool, opts Options, ms []migration) (*Driver, error) {
	d := &Driver{db: db, ownsDB: owns, opts: opts, writeSem: make(chan struct{}, 1)}
	d.watch.watchers = map[chan struct{}]struct{}{}
	w, err := d.openWriter(ctx, ms)
	if err != nil {
		return nil, err
	}
	d.w = w
	if err := d.read.prepare(ctx, db); err != nil {
		d.w.discard()
		d.read.close()
		return nil, err
	}
	return d, nil
}

// checkPath rejects what is not a plain file path: the driver needs a file
// for WAL mode and passes the path to SQLite itself.
func checkPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("sqlite: %w: empty database path", eventstore.ErrInvalidArgument)
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return fmt.Errorf("sqlite: %w: %q: want a file path (an in-memory database cannot use WAL mode or be shared by connections)", eventstore.ErrInvalidArgument, path)
	case strings.ContainsRune(path, 0):
		return fmt.Errorf("sqlite: %w: database path contains NUL", eventstore.ErrInvalidArgument)
	}
	return nil
}

// createFile creates an empty file at path, readable and writable by its
// owner only, unless something exists there. SQLite would create it with
// mode 0644 (less the umask); it gives a database's -wal and -shm files the
// mode of the database file, so they are 0600 too.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// dsn returns the go-sqlite3 data source name for a file: an SQLite URI, so
// that "?" or "#" in the path stay part of it. With MustExist the file is
// opened with mode=rw, so that SQLite cannot create it, and is not switched
// to WAL mode on connect: the store is checked first (see checkStore).
func dsn(path string, opts Options) string {
	q := url.Values{}
	if opts.MustExist {
		q.Set("mode", "rw")
	} else {
		q.Set("_journal_mode", "WAL")
	}
	q.Set("_synchronous", opts.Synchronous.pragma())
	q.Set("_busy_timeout", strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10))
	q.Set("_txlock", "immediate") // for users of As(*sql.DB) who begin transactions
	return "file:" + escapePath(filepath.Clean(path)) + "?" + q.Encode()
}

// escapePath percent-encodes the bytes SQLite's URI parser would take for
// syntax ('?', '#', '%') and those outside printable ASCII.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '?' || c == '#' || c == '%' || c <= ' ' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// writer is the connection every write goes through, with its prepared
// statements. It is used by one goroutine at a time (see Driver.writeSem).
type writer struct {
	conn *sql.Conn

	begin, commit, rollback *sql.Stmt
	// savepoint and rollbackTo delimit one append of a group (commit.go).
	savepoint, rollbackTo *sql.Stmt
	// head returns a stream's version and the version of an append's first
	// event ID in it.
	head           *sql.Stmt
	insert         [len(insertRows)]*sql.Stmt // INSERTs of insertRows[i] events
	insertTagged   [len(insertRows)]*sql.Stmt // the same with the tags column
	insertTags     *sql.Stmt                  // event_tags rows of a range of positions
	multiHeads     *sql.Stmt
	insertAppend   *sql.Stmt
	importHeads    *sql.Stmt
	importAppends  *sql.Stmt
	retryRange     *sql.Stmt
	saveSnapshot   *sql.Stmt
	saveCheckpoint *sql.Stmt
	leaseStmts
	// conditions are the prepared append conditions, by query text.
	conditions map[string]*sql.Stmt
}

// The write statements, prepared once on the write connection.
const (
	// queryHead returns a stream's highest stored version, the version of
	// the first event of the earlier append to it that began with an event
	// ID, if any, and its stream_marks row (retention.go), if any.
	queryHead = `SELECT
		(SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1),
		(SELECT first_version FROM appends WHERE stream = ?1 AND first_event_id = ?2),
		(SELECT json_array(last, deleted, max_count, max_age) FROM stream_marks WHERE stream = ?1)`
	queryInsertAppend = `INSERT INTO appends (stream, first_event_id, first_version) VALUES (?, ?, ?)`
	// queryImportHeads returns the version of each stream of a JSON array,
	// with its index in the array: one statement for all of an import's
	// streams.
	queryImportHeads = `SELECT j.key, (SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = j.value),
		(SELECT json_array(last, deleted, max_count, max_age) FROM stream_marks WHERE stream = j.value)
		FROM json_each(?) j`
	// queryImportAppends records where each stream's run of an import
	// begins, from a JSON array of [stream, hex event ID, version]. A source
	// may hold an event ID twice in a stream (SQLite recognises fewer
	// retries than other drivers), so an existing row is kept.
	queryImportAppends = `INSERT OR IGNORE INTO appends (stream, first_event_id, first_version)
		SELECT json_extract(j.value, '$[0]'), unhex(json_extract(j.value, '$[1]')), json_extract(j.value, '$[2]')
		FROM json_each(?) j`
	// queryImportMetadataTypes records the metadata content type of
	// imported events from a JSON array of [stream, version, content type]:
	// a second statement in the import's transaction, only for an import
	// with metadata that is not JSON, so every INSERT stays as it was.
	queryImportMetadataTypes = `UPDATE events SET metadata_content_type = j.value->>2
		FROM json_each(?) j WHERE events.stream = j.value->>0 AND events.version = j.value->>1`
	queryInsertInto = `INSERT INTO events
		(stream, version, category, event_id, type, content_type, data, metadata, recorded_at) VALUES `
	queryInsertTaggedInto = `INSERT INTO events
		(stream, version, category, event_id, type, content_type, data, metadata, recorded_at, tags) VALUES `
	// queryInsertTags indexes the tags of the events with positions in
	// (?1, ?2]: one statement for a batch, only when it has tags.
	queryInsertTags = `INSERT INTO event_tags (tag, position)
		SELECT t.value, e.position FROM events e, json_each(e.tags) t
		WHERE e.position > ?1 AND e.position <= ?2 AND e.tags IS NOT NULL`
	// queryRetryRange reads the events a retried append would have
	// written, content included, to compare them with the retry.
	queryRetryRange = "SELECT " + streamColumns + ` FROM events
		WHERE stream = ? AND version >= ? AND version <= ? ORDER BY version`
	querySaveSnapshot = `INSERT INTO snapshots (stream, version, data) VALUES (?, ?, ?)
		ON CONFLICT (stream) DO UPDATE SET version = excluded.version, data = excluded.data
		WHERE excluded.version >= snapshots.version`
	querySaveCheckpoint = `INSERT INTO checkpoints (name, position_commit, position_prepare) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET position_commit = excluded.position_commit, position_prepare = excluded.position_prepare`
)

// insertRows are the row counts of the prepared multi-row INSERTs, largest
// first and ending with 1; insertColumns is the number of values per row,
// one more (the tags) for a tagged INSERT.
var insertRows = [...]int{64, 16, 4, 1}

const insertColumns = 9

// insertQuery returns an INSERT of rows events without tags: the statement
// of every batch whose events have none, so untagged appends send what they
// sent before tags existed.
func insertQuery(rows int) string {
	return valuesQuery(queryInsertInto, insertColumns, rows)
}

// insertTaggedQuery returns an INSERT of rows events with their tags.
func insertTaggedQuery(rows int) string {
	return valuesQuery(queryInsertTaggedInto, insertColumns+1, rows)
}

func valuesQuery(into string, columns, rows int) string {
	row := "(?" + strings.Repeat(", ?", columns-1) + ")"
	return into + row + strings.Repeat(", "+row, rows-1)
}

// openWriter takes a connection from the pool for writes, configures it,
// migrates the schema and prepares the write statements.
func (d *Driver) openWriter(ctx context.Context, ms []migration) (*writer, error) {
	// Opening a connection switches a new file to WAL mode (the DSN's
	// _journal_mode): while another connection (another process opening
	// the file too) reads it, SQLite refuses that at once with SQLITE_BUSY
	// instead of waiting, so wait here.
	var conn *sql.Conn
	err := d.whileBusy(ctx, func() error {
		var err error
		conn, err = d.db.Conn(ctx)
		return err
	})
	if d.opts.MustExist && isNotADB(err) { // from the pragmas run on connect
		return nil, notADB(err)
	}
	if err != nil {
		return nil, mapError(err, nil)
	}
	w := &writer{conn: conn}
	if err := d.setupWriter(ctx, w, ms); err != nil {
		w.discard()
		return nil, err
	}
	return w, nil
}

func (d *Driver) setupWriter(ctx context.Context, w *writer, ms []migration) error {
	// PRAGMA statements take no parameters; the values are ours.
	busy := "PRAGMA busy_timeout = " + strconv.FormatInt(d.opts.BusyTimeout.Milliseconds(), 10)
	if _, err := w.conn.ExecContext(ctx, busy); err != nil {
		return mapError(err, nil)
	}
	if d.opts.MustExist {
		// Before anything that could write, such as switching to WAL.
		if err := d.checkStore(ctx, w, ms); err != nil {
			return err
		}
	}
	var mode string
	err := d.whileBusy(ctx, func() error { // see openWriter
		return w.conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
	})
	if err != nil {
		return mapError(err, nil)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("%w: the database cannot use WAL mode (journal mode %q); use a file on a local disk", eventstore.ErrInvalidArgument, mode)
	}
	if _, err := w.conn.ExecContext(ctx, "PRAGMA synchronous = "+d.opts.Synchronous.pragma()); err != nil {
		return mapError(err, nil)
	}
	// From here on the driver waits for the write lock itself (see begin).
	if _, err := w.conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return mapError(err, nil)
	}
	prep := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = w.conn.PrepareContext(ctx, query)
		return st
	}
	w.begin = prep("BEGIN IMMEDIATE")
	w.commit = prep("COMMIT")
	w.rollback = prep("ROLLBACK")
	w.savepoint = prep("SAVEPOINT append")
	w.rollbackTo = prep("ROLLBACK TO append")
	if err != nil {
		return mapError(err, nil)
	}
	if err := d.migrate(ctx, w, ms); err != nil {
		return err
	}
	w.head = prep(queryHead)
	for i, n := range insertRows {
		w.insert[i] = prep(insertQuery(n))
		w.insertTagged[i] = prep(insertTaggedQuery(n))
	}
	w.insertTags = prep(queryInsertTags)
	w.multiHeads = prep(queryMultiHeads)
	w.insertAppend = prep(queryInsertAppend)
	w.importHeads = prep(queryImportHeads)
	w.importAppends = prep(queryImportAppends)
	w.retryRange = prep(queryRetryRange)
	w.saveSnapshot = prep(querySaveSnapshot)
	w.saveCheckpoint = prep(querySaveCheckpoint)
	w.acquireLease = prep(queryAcquireLease)
	w.getLease = prep(queryGetLease)
	w.releaseLease = prep(queryReleaseLease)
	w.saveLeasePosition = prep(querySaveLeasePosition)
	return mapError(err, nil)
}

// discard closes the statements and drops the connection from the pool
// rather than returning it: its settings or an open transaction must not
// leak to other users of the pool.
func (w *writer) discard() {
	for _, st := range append([]*sql.Stmt{w.begin, w.commit, w.rollback, w.savepoint, w.rollbackTo, w.head, w.insertAppend, w.importHeads, w.importAppends, w.retryRange, w.saveSnapshot, w.saveCheckpoint,
		w.acquireLease, w.getLease, w.releaseLease, w.saveLeasePosition, w.insertTags, w.multiHeads}, append(w.insert[:], w.insertTagged[:]...)...) {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range w.conditions {
		st.Close()
	}
	w.conn.Raw(func(any) error { return sqldriver.ErrBadConn })
	w.conn.Close()
}

// inTx reports whether the connection is inside a transaction (or broken).
func (w *writer) inTx() bool {
	in := true
	w.conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok {
			in = !c.AutoCommit()
		}
		return nil
	})
	return in
}

// busyBackoff is the wait between tries of begin while another connection
// holds the write lock: up to 100 µs after the first try, doubling to at most
// 4 ms, with full jitter (a mean of 50 µs growing to 2 ms).
var busyBackoff = retry.Policy{Base: 100 * time.Microsecond, Max: 4 * time.Millisecond}

// begin starts a write transaction, taking the file's write lock up front
// (BEGIN IMMEDIATE) so that it never has to upgrade a read lock, which can
// fail with SQLITE_BUSY at once. While another connection holds the lock it
// retries, with short jittered sleeps, for up to BusyTimeout. It polls itself
// instead of using SQLite's busy handler, whose sleeps grow to 100 ms: a
// process appending in a loop frees the lock only for microseconds between
// transactions, so a waiter should look often, and a done ctx should end
// the wait at once.
func (d *Driver) begin(ctx context.Context, w *writer) error {
	return d.whileBusy(ctx, func() error {
		_, err := w.begin.ExecContext(ctx)
		return err
	})
}

// whileBusy runs fn until it does not fail with SQLITE_BUSY, for up to
// BusyTimeout, with the short jittered sleeps of begin in between.
func (d *Driver) whileBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(d.opts.BusyTimeout)
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		var se sqlite3.Error
		if !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || !time.Now().Before(deadline) {
			return err
		}
		if err := busyBackoff.Wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// write runs fn inside a write transaction on the write connection and
// commits it; an error from fn, a failed commit or a done ctx rolls it back,
// so a write is all or nothing.
func (d *Driver) write(ctx context.Context, fn func(w *writer) error) error {
	w, err := d.takeWriter(ctx)
	if err != nil {
		return err
	}
	defer d.giveWriter()
	return d.writeTx(ctx, w, fn)
}

// writeTx is write on w, the write connection, which the caller holds.
func (d *Driver) writeTx(ctx context.Context, w *writer, fn func(w *writer) error) error {
	if err := d.begin(ctx, w); err != nil {
		return err
	}
	err := fn(w)
	if err == nil {
		// A done ctx rolls back even if the statements got through: the
		// caller has given up and may retry.
		err = ctx.Err()
	}
	if err == nil {
		_, err = w.commit.ExecContext(ctx)
	}
	if err != nil {
		d.abort(ctx, w)
	}
	return err
}

// takeWriter waits for the right to use the write connection (writeSem),
// opening the connection if it must, and returns it; giveWriter gives the
// right back.
func (d *Driver) takeWriter(ctx context.Context) (*writer, error) {
	select {
	case d.writeSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	w, err := d.heldWriter(ctx)
	if err != nil {
		d.giveWriter()
		return nil, err
	}
	return w, nil
}

// heldWriter returns the write connection, opening it if it must; the
// caller holds writeSem.
func (d *Driver) heldWriter(ctx context.Context) (*writer, error) {
	if d.w == nil {
		w, err := d.openWriter(ctx, migrations)
		if err != nil {
			return nil, err
		}
		d.w = w
	}
	return d.w, nil
}

func (d *Driver) giveWriter() { <-d.writeSem }

// abort rolls back the write transaction, if one is still open, under its
// own deadline: ctx may be done. If the connection is still inside a
// transaction afterwards it is dropped and the next write opens another.
func (d *Driver) abort(ctx context.Context, w *writer) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if w.inTx() {
		w.rollback.ExecContext(rctx)
	}
	if w.inTx() {
		w.discard()
		d.w = nil
	}
}

// Close implements [driver.Driver]. It stops the watch poller and
// releases the connections; it closes the *sql.DB only when [Open] created it.
// A second Close returns nil.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		d.watch.close()
		d.writeSem <- struct{}{} // wait for a write in flight; none starts after this
		if d.w != nil {
			d.w.discard()
			d.w = nil
		}
		d.read.close()
		if d.ownsDB {
			d.closeErr = d.db.Close()
		}
	})
	return d.closeErr
}

// As implements [driver.Aser]: a **sql.DB target receives the pool. Use
// it for reads and for your own tables; begin write transactions with
// BEGIN IMMEDIATE (the pool of [Open] does so for BeginTx).
func (d *Driver) As(target any) bool {
	if p, ok := target.(**sql.DB); ok && p != nil {
		*p = d.db
		return true
	}
	return false
}

// The limits of one append. An append holds the file's write lock, which
// every other writer (in any process) waits for up to its busy timeout, 5 s
// by default: these keep an append to a fraction of a second on a local
// disk (32 MiB took about 0.4 s, 10,000 small events 0.07 s; see
// docs/sqlite.md), far below SQLite's maximum row size of 1,000,000,000
// bytes.
const (
	maxAppendSize   = 32 << 20
	maxAppendEvents = 10_000
)

// Limits implements [driver.LimitReporter]: at most 10,000 events and
// 32 MiB of data and metadata per append, so per event too.
func (d *Driver) Limits() driver.Limits {
	return driver.Limits{MaxEventSize: maxAppendSize, MaxAppendEvents: maxAppendEvents, MaxAppendSize: maxAppendSize}
}

// SystemName implements [driver.SystemNamer]: sqlite.
func (d *Driver) SystemName() string { return "sqlite" }
