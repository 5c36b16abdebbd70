// Package sqlite is the SQLite driver: an event store in one database file,
// on github.com/mattn/go-sqlite3 (cgo). It needs no server, which makes it
// the default for the quickstart, tests and single-machine applications.
// Several processes may use one file at once.
//
// Open a file with [Open] and pass the driver to [eventstore.New], reuse a
// *sql.DB with [New], or import the package for its URL scheme:
//
//	import _ "github.com/eventkit/eventstore/drivers/sqlite"
//
//	store, err := eventstore.Open(ctx, "sqlite:///var/data/events.db")
//
// The file (mode 0600, owner only) and its schema are created when it is
// opened, the schema from SQL files embedded in the package and numbered by
// version; the version is kept in PRAGMA user_version, so a later release
// upgrades an existing file in place. A file written by a newer release is
// refused with [ErrSchemaVersion]. With must_exist=true
// ([Options.MustExist]) nothing is created or written: a missing file, or
// one holding no event store, fails with [eventstore.ErrStoreNotFound], and
// a file at an older schema version with [ErrSchemaVersion].
//
// # URLs
//
//	sqlite:relative/path.db
//	sqlite:///absolute/path.db
//	sqlite:///absolute/path.db?synchronous=normal&busy_timeout=10s
//
// The path may be percent-encoded (a "#" in a file name must be). Query
// parameters set [Options]:
//
//   - synchronous: full (the default) or normal; see [Synchronous].
//   - busy_timeout: how long a write waits for another process's write lock,
//     a Go duration such as 5s (the default).
//   - watch_interval: how often waiting live subscriptions check the file
//     for other processes' events, such as 10ms (the default).
//   - max_read_conns: read connections in the pool (default 4).
//   - must_exist: true opens an existing store only (see
//     [Options.MustExist]); false (the default) creates it if needed.
//
// A query that url.ParseQuery refuses (a ";" or a bad %-escape), a
// parameter given twice or an empty value is rejected.
// A host ("sqlite://data/events.db"), a user, a fragment, an in-memory
// database (":memory:") or any other parameter is rejected with
// [eventstore.ErrInvalidArgument].
//
// # Durability and concurrency
//
// The file is in WAL mode: readers never block the writer nor each other.
// Every write transaction takes the write lock up front (BEGIN IMMEDIATE),
// waiting up to the busy timeout while another process holds it, so two
// writers never deadlock on upgrading a read lock. By default commits are
// synchronous=FULL: an append that returned survives a power loss.
//
// Appends that wait for the write connection at the same time share one
// transaction and one commit (group commit): whichever gets the connection
// writes every append then queued, each after a SAVEPOINT of its own, so
// each keeps its own version check, retry recognition and result, and one
// that fails is rolled back alone. Concurrent appenders then share the WAL
// sync that bounds small appends; a lone appender waits for nothing (the
// group is whatever is queued when the connection comes free), and a group
// is bounded like one append (10,000 events, 32 MiB). An append whose
// context is done before the commit is not written, as alone: the group's
// transaction is rolled back and the others are written again without it.
//
// Global order has no gaps a reader could skip: one write transaction runs
// at a time per file, and positions (the rowid, assigned as the largest
// position plus one) are assigned inside it, so commit order is position
// order. A reader that has seen position P never later sees a new event
// before P.
//
// Live subscriptions are woken at once by appends through the same driver,
// and within WatchInterval by other processes: while a subscription waits,
// the driver reads MAX(position) at that interval.
//
// # Multi-stream appends and reads by query
//
// The driver implements [driver.MultiAppender] and [driver.QueryReader]
// (schema version 4). [eventstore.Store.AppendMulti] runs in one write
// transaction, which takes the file's write lock first, so expectations and
// conditions are checked with no writer able to get in before the commit:
// one statement reads every stream's version and finds retries (the first
// record's event ID beginning an earlier append), every failed expectation
// is named with the stream's version, the condition is an EXISTS per query
// item, and the records take consecutive positions in slice order. Multi-
// stream appends share the group commit of single appends, each in a
// savepoint of its own.
//
// Tags are stored with the event (a JSON array in the tags column, NULL
// when there are none) and indexed by (tag, position) in event_tags, only
// for tagged events: an untagged append writes what it wrote before. Every
// read returns them. A query item with tags walks the event_tags entries of
// its first tag after the position and looks up its other tags and the
// event's type by key; an item with types alone walks the log by position
// from there, as a ReadAll filtered by types does (event types have no
// index). A page is one statement for up to 32 items; see docs/sqlite.md.
//
// # Consumer-group leases
//
// The driver implements [driver.Leaser] with a leases table keyed by
// (group, key) (schema version 3). Expiry is judged by the clock of the
// calling process, stored as microseconds since the Unix epoch: SQLite has
// no server clock, and every process sharing a file runs on the machine
// that holds it. AcquireLease is one write transaction with one statement
// (INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING), plus a SELECT
// when the lease is not granted; processes racing for a lease take the
// file's write lock in turn, so exactly one is granted it. ReleaseLease,
// SaveLeasePosition and DeleteLeases are one statement in a write
// transaction each, Leases one SELECT on a read connection.
//
// # Exactly-once projections
//
// The driver implements [driver.CheckpointTxer] for [eventstore.Store.Project]:
// a *sql.Tx on the driver's write connection, whose first statement takes
// the file's write lock and reads the checkpoint; the handler runs only if
// the checkpoint is where the projection left it, writes its read model
// through the *sql.Tx, and the checkpoint is saved in the same transaction.
// The read model must live in the same database file. The handler must
// write only through that *sql.Tx: the transaction holds the file's write
// lock, so writes through any other connection, appends through the same
// Store included, wait for it and fail after the busy timeout.
//
// # As
//
// [eventstore.Store.As] with a **sql.DB target gives the connection pool
// (the one passed to [New], or the one [Open] created). Use it to read, or
// for your own tables in the same file; begin write transactions IMMEDIATE
// (the pool of [Open] does that for BeginTx).
//
// [eventstore.Tx.As], in a projection's handler, sets a **sql.Tx target to
// the batch's transaction:
//
//	var tx *sql.Tx
//	if !etx.As(&tx) { ... }
//	_, err := tx.ExecContext(ctx, "UPDATE totals SET n = n + ?", len(events))
//
// # Listing streams
//
// [eventstore.Store.ListStreams] lists streams by ID in byte order, from
// the (stream, version) index: two index searches per stream listed,
// whatever the streams' lengths, and no scan of the events table. The
// cursor is the last ID of a page. See docs/sqlite.md.
//
// # Errors
//
// A UNIQUE constraint violation on the (stream, version) key becomes a
// *[eventstore.WrongExpectedVersionError]. SQLITE_BUSY is returned wrapped:
// since writes wait for the lock, it means another connection held the
// write lock longer than the busy timeout, or a bug. It also matches
// [eventstore.ErrTransient]: nothing was written, and a later try may find
// the lock free. Errors unwrap to go-sqlite3's sqlite3.Error.
//
// # Limits
//
// One append, or multi-stream append, takes at most 10,000 events and
// 32 MiB of data and metadata (so one event too; the Store's own 1 MiB
// default per event applies unless raised): an append holds the file's write lock, which other writers wait
// for, so these keep it to a fraction of a second. Positions are {Commit: n, Prepare: 0} with n
// counting events from 1. Writes to one file are serialised: throughput is
// that of one writer, bounded by the disk's sync rate for small appends
// (batch events into one append for more). Reads of the log filtered by
// up to 32 categories use an index; a filter on more categories, or on
// event types alone, walks the log by position, reading the events it skips. Events are never
// deleted: do not delete rows from the events table, or positions may be
// reused. The file must be on a local disk: WAL mode does not work over
// network file systems.
package sqlite
