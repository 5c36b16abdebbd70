// Package postgres is the PostgreSQL driver of the event store, built on
// github.com/jackc/pgx/v5 (pgxpool). It needs PostgreSQL 13 or later
// (pg_current_xact_id); it is tested on 15.
//
//	store, err := eventstore.Open(ctx, "postgres://app:secret@db:5432/app?schema=orders")
//
// or, reusing a pool the application configured:
//
//	d, err := postgres.New(ctx, pool, postgres.Options{Schema: "orders"})
//	store := eventstore.New(d, eventstore.Options{})
//
// The driver keeps its tables in one schema, created and upgraded from
// embedded, versioned SQL when it opens, under an advisory lock (several
// processes may open the same new schema at once). Two stores in two schemas
// of one database are fully isolated.
//
// # URLs
//
// "postgres://" and "postgresql://" URLs as pgx reads them. The driver's
// query parameters:
//
//   - schema: the schema (default "eventstore"; lower-case letters, digits
//     and _, at most 48 bytes); see [Options.Schema].
//   - must_exist: true opens an existing store only, creating nothing (a
//     missing one fails with [eventstore.ErrStoreNotFound], an older one
//     with [ErrSchemaVersion]); false (the default) creates and upgrades.
//     See [Options.MustExist].
//   - page_size: how many events a read asks for in one statement (default
//     4,096, [DefaultPageSize]); see [Options.PageSize]. Pages stay bounded
//     in bytes by the Store's MaxPageBytes.
//
// Parameters with the prefix "eventstore_" are reserved for the driver, and
// an unknown one is rejected. Every other parameter goes to pgx unchanged:
// libpq's (sslmode, connect_timeout, application_name…), pgxpool's
// (pool_max_conns…), and any other name is sent to the server as a setting
// (statement_timeout…), which the server rejects when it does not know it.
// connect_timeout defaults to 10 seconds ([DefaultConnectTimeout]; see
// [Options.ConnectTimeout]) and pool_max_conns to 16 ([DefaultMaxConns];
// see [Options.MaxConns]); the server setting jit defaults to off (every
// statement is a few index lookups, and JIT compiled each read-all page of
// a 10M-event log). A query that does not parse strictly (a ";"
// separator, a bad %-escape) or that repeats a parameter is rejected with
// [eventstore.ErrInvalidArgument] rather than partly dropped. Errors never
// show the password.
//
// # As
//
// [eventstore.Store.As] accepts a **pgxpool.Pool and sets it to the driver's
// pool. A pool passed to [New] is not closed by the driver.
//
// In a projection's handler ([eventstore.Store.Project]), [eventstore.Tx.As]
// accepts a *pgx.Tx and sets it to the batch's transaction (see
// "Exactly-once projections").
//
// # Positions and the visibility fence
//
// An event's position is {Commit: transaction ID, Prepare: sequence}, from
// pg_current_xact_id() of the appending transaction and a sequence in version
// order. Reads of the global log return only events whose transaction ID is
// below a visibility fence: the oldest transaction, running when the read's
// snapshot was taken, that holds a writing lock on the store's events table
// (found in pg_locks), or failing one the snapshot's horizon. Nothing can
// appear below it later, so a reader that has seen a position never misses
// an event that commits afterwards. The cost: the global log (and live
// subscriptions) wait behind open appends to the store, at most
// [Options.ReadWait] per read; transactions of other tables, schemas,
// databases or roles without access to the schema do not hold it back.
// Stream reads do not wait. docs/postgres.md has the argument, the
// measurements, the narrowest grants for application and read-only roles,
// and what a dump and restore into another cluster does to positions.
//
// # Pages
//
// Reads go in pages of [Options.PageSize] events (4,096 unless set), one
// statement each, cut at the Store's MaxPageBytes on the server. A page of
// the log comes with one head row (the snapshot's horizon and fence, and
// for an unfiltered read the page's row count, so its slice is allocated
// once at its size). docs/postgres.md ("Page size") has the measurements.
//
// # Live subscriptions
//
// The driver implements [driver.Watcher] with LISTEN/NOTIFY on one
// dedicated connection per driver; see [Driver.Watch]. The subscription's
// poll (PollInterval) is the fallback when that connection is down. An
// append's NOTIFY is sent after its commit, at most one every 5 ms, and
// only while some driver listens on the store's channel (a listening
// connection holds a shared advisory lock that the notifier tests): a
// store nobody subscribes to live costs one small read-only statement per
// 50 ms instead. Processes on releases before this one listen without the
// lock and rely on their poll unless an upgraded process listens too.
//
// # Filtered reads
//
// Schema version 3 indexes the events by category and by event type, each
// in position order. A read filtered by a list of up to 32 categories or
// event types walks that list's index and costs the events it returns; a
// longer list, or the other list, is checked on each event the read passes
// by a hash lookup. The driver implements [driver.ScanReader]: a filtered page
// also says how far it examined the log, never past the visibility fence,
// so a filtered subscription's checkpoint moves past other categories'
// events but not past an append still open, and a page that checks a list
// event by event examines at most 4,096 events of the log. docs/postgres.md ("Filtered
// reads") has the plans, the measurements and what the indexes cost
// appends.
//
// # Checkpoints
//
// Checkpoints are rows of the checkpoints table, both parts of the position
// in each. The driver implements [driver.CheckpointManager], so
// [eventstore.Store.Checkpoints] lists them, sorted by name in byte order
// whatever the database's collation, and [eventstore.Store.DeleteCheckpoint]
// deletes one. Listing needs SELECT on the table, deleting DELETE; the
// application role of docs/postgres.md has both, the read-only role only
// SELECT.
//
// # Consumer-group leases
//
// The driver implements [driver.Leaser] (schema version 4: the leases
// table), for [eventstore.Store.SubscribeGroup]. Leases expire by the
// server's clock, clock_timestamp(), never the members': a grant sets the
// expiry to clock_timestamp() plus the TTL (to the microsecond), and
// [Driver.Leases] returns clock_timestamp() as its now. Each call is one
// statement; AcquireLease is one INSERT ... ON CONFLICT DO UPDATE ... WHERE
// (the lease is free, expired or the caller's) ... RETURNING when it grants
// the lease, and a SELECT of the holder's lease after it when it does not.
// Racing acquirers queue on the lease's row lock and exactly one is
// granted. Leases are listed in byte order by key (the columns are COLLATE
// "C"). The application role needs SELECT, INSERT, UPDATE and DELETE on the
// leases table.
//
// # Exactly-once projections
//
// The driver implements [driver.CheckpointTxer], so
// [eventstore.Store.Project] runs. A batch is one transaction on the
// driver's pool at the server's default isolation level: BEGIN; the
// checkpoint's compare-and-set, first, as one UPDATE ... WHERE the stored
// checkpoint is the expected one (from none: INSERT ... ON CONFLICT DO
// NOTHING), which takes the checkpoint row's lock; the handler, which gets
// the transaction as a *pgx.Tx from [eventstore.Tx.As]; COMMIT. Three round
// trips besides the handler's statements. When the compare-and-set changes
// no row the checkpoint moved: the transaction rolls back before the
// handler runs, with an error matching [eventstore.ErrCheckpointMoved]. A
// second instance of the projection waits on the row lock, then finds the
// checkpoint moved. The handler must not end the transaction: the Commit
// and Rollback of the pgx.Tx it gets fail; savepoints work. Its error is
// returned as is, after the rollback. When it returns nil the COMMIT goes
// out even if the context ended meanwhile (for up to 5 seconds more), so a
// stopping projection keeps the batch its handler finished.
//
// # Group commit
//
// Concurrent appends of one driver share statements: while an append
// statement runs, the appends that arrive wait for it and then go together
// in one statement, one transaction and one round trip, each with its own
// expected-version outcome. Appends that have waited twice as long as the
// fastest recent append statement took (at most 50 ms) go as one more group
// without waiting for the slot, so a statement held back (busy CPUs, a
// lock) does not hold every appender back with it. An append that finds none
// running goes at once; retries of earlier appends, appends over 64 KiB and
// the appends of a group statement that failed run on their own. A group
// statement sets plan_cache_mode to force_generic_plan for its own
// transaction, so it runs the plan prepared once per connection (planned
// afresh, as PostgreSQL chose to, it spent longer planning than running),
// whatever plan_cache_mode the connection string sets.
// docs/postgres.md ("Group commit", "Query plans of appends") has the rules
// and the measurements.
//
// # Listing streams
//
// [eventstore.Store.ListStreams] is a loose index scan of the UNIQUE
// (stream_id, version) index: two index descents per stream, whatever the
// streams' lengths, and no scan of the table. Streams come by ID in the
// order of the stream_id column's collation, which is byte order under C,
// POSIX and C.UTF-8; under a linguistic collation a listing with a prefix
// hops over every stream after the cursor, as the IDs with a prefix are not
// contiguous there. The cursor is the last ID of a page. See
// docs/postgres.md, "Listing streams".
//
// # Multi-stream appends and DCB
//
// The driver implements [driver.MultiAppender] ([eventstore.Store.AppendMulti])
// and [driver.QueryReader] ([eventstore.Store.ReadQuery], event tags and
// append conditions; schema version 5: events.tags and the event_tags
// index). A multi-stream append, a conditional append and an Append or
// Import of tagged events is one READ COMMITTED transaction sent as one
// pipeline: advisory locks on its streams (sorted by key), the events
// table in ROW EXCLUSIVE mode, shared advisory locks per (type, tag) and
// (any type, tag) of its events and exclusive ones per condition item
// (sorted by key), then one statement that checks every expectation and
// the condition and inserts the records in order. A condition item without
// tags locks out every writer through lock_writers() instead, as it may
// match untagged events, whose writers take no locks. Reads by query walk
// the event_tags index behind the visibility fence of ReadAll, so the last
// position of a page is a safe After. docs/postgres.md ("Multi-stream
// appends and DCB") has the argument and the measurements.
//
// # Errors
//
// A concurrent append that took the expected version (SQLSTATE 23505 on the
// events_stream_version_key constraint) becomes a
// *[eventstore.WrongExpectedVersionError] with the actual version;
// serialization failures (40001) and deadlocks (40P01) are retried a bounded
// number of times. Errors wrap the native one, so errors.As reaches a
// *pgconn.PgError. A connection lost during an append is reported as such:
// the append wrote all of its events or none, and a retry with the same event
// IDs tells which. A connection that could not be made (refused, timed out,
// or refused by the server with a FATAL error such as 57P03 "starting up")
// is reported as that: nothing was sent.
//
// These errors also match [eventstore.ErrTransient]: a lost or refused
// connection, a network timeout, the server starting, stopping or out of
// connections (SQLSTATE 57P01, 57P02, 57P03, 57P05, 53300, class 08), a
// statement timeout (57014), and a serialization failure or deadlock still
// there after the driver's retries. A role or database the server refuses,
// and a context the caller cancelled, are not transient.
//
// # Limits
//
// At most 256 MiB of data and metadata per event and per append (one
// protocol message carries an append). Positions are not dense. A filter
// whose lists all hold more than 32 values walks the log, 4,096 events per
// page of a subscription.
package postgres
