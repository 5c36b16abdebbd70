// Package kurrentdb is the KurrentDB (formerly EventStoreDB) driver of the
// event store, built on github.com/kurrent-io/KurrentDB-Client-Go (the v1
// gRPC Streams API). It needs a server that sends caught-up messages to
// subscriptions: KurrentDB/EventStoreDB 24.2 or later.
//
//	store, err := eventstore.Open(ctx, "kurrentdb://127.0.0.1:2113?tls=false")
//
// or, reusing a client the application configured:
//
//	d, err := kurrentdb.New(client, kurrentdb.Options{Namespace: "orders"})
//	store := eventstore.New(d, eventstore.Options{})
//
// # URLs
//
// Connection strings as the client reads them, with the schemes
// "kurrentdb", "kurrent", "kdb" and "esdb", each also with "+discover"
// (gossip discovery): a host without a port means 2113, "a:2113,b:2113"
// lists gossip seeds, "user:pass@" gives credentials (sent only over TLS).
// The client's parameters, case-insensitive: tls (default true),
// tlsVerifyCert, tlsCAFile, userCertFile, userKeyFile, nodePreference,
// maxDiscoverAttempts, discoveryInterval, gossipTimeout, keepAliveInterval,
// keepAliveTimeout, defaultDeadline. The driver's own: namespace (see
// [Options.Namespace]), maxAppendSize and maxAppendEventSize (the server's
// limits, see [Options]), must_exist ([Options.MustExist]) and
// connect_timeout (whole seconds, [Options.ConnectTimeout]). Any other
// parameter, a repeated one, and a query that does not parse (a ';' or a
// bad %-escape, which a lenient parser would drop with its pair) are
// rejected with [eventstore.ErrInvalidArgument]. Errors never show the
// password.
//
// [Open] and the URL opener build the client themselves, with a no-op
// logger (the client's default one prints), and make one round trip to the
// server (finding it and reading its version) bounded by the connect
// timeout, 10 s by default: a server that does not answer fails Open, and
// one that accepts connections but never answers fails it with an error
// matching context.DeadlineExceeded. Open writes nothing, and never
// reports [eventstore.ErrStoreNotFound]: the server is the store, a
// namespace needs no setup, and a server that does not answer may be down
// rather than missing, with or without must_exist. The client's own
// timeouts bound the rest: gossipTimeout (seconds) each discovery attempt,
// defaultDeadline appends and deletes, keepAliveInterval and
// keepAliveTimeout a connection that went silent; reads and subscriptions
// end with their contexts. When the client gives up on an unreachable
// server (it closes itself after a failed discovery and then reports
// kurrentdb.ErrorCodeConnectionClosed), the driver builds a new one and
// retries the call once. A client passed to [New] is neither rebuilt nor
// closed; [NewFromConfig] takes a configuration instead. Neither contacts
// the server: their first call connects. A call that still fails because the
// server is unavailable, the client closed its connection, or the client's
// own deadline expired returns an error matching [eventstore.ErrTransient]
// (the last also matches context.DeadlineExceeded); a call whose context
// the caller cancelled or let expire does not match it.
//
// # Namespaces
//
// A namespace ([Options.Namespace]) is a stream-name prefix: it keeps
// stores on one server from seeing each other's streams, but it is a
// naming convention, not an isolation boundary. Any client with access to
// the server, whatever namespace it uses, can read and write the streams of
// every namespace; a store without a namespace sees them all. Keep stores
// that must not reach each other on separate servers, or restrict each
// application's user with a secured server's access control lists (stream
// metadata $acl); the driver sets none.
//
// # As
//
// [eventstore.Store.As] accepts a **kurrentdb.Client and sets it to the
// client in use.
//
// # Mapping
//
// Versions count from 1, KurrentDB revisions from 0: the event at version N
// has revision N−1, and an append expecting Exact(n) expects revision n−1
// (NoStream expects no_stream, StreamExists stream_exists, Any any). A
// position is KurrentDB's (commit, prepare) pair of log offsets: increasing
// in log order, with gaps. RecordedAt is the server's clock, truncated to
// microseconds: KurrentDB does not take a time from the client.
//
// $all also holds what a portable reader does not see, and the driver
// hides it from ReadAll and subscriptions: events of system streams and of
// system types ("$…": settings, stream metadata, links, tombstones,
// statistics), the driver's internal streams, and in a namespace every
// other stream. Category filters become stream-name prefix filters that
// the server evaluates on $all (no system projection is needed); since a
// prefix also matches longer categories ("Order" and "Orders-1"), the
// driver checks the category too. Event-type filters become event-type
// prefixes, checked exactly. Forwards reads with a filter or in a
// namespace run as a filtered subscription that ends when it catches up.
//
// Snapshots of stream S are in the stream [SnapshotStream](ns, S), and
// the checkpoint of subscription N in [CheckpointStream](ns, N), each with
// $maxCount 1. Their names start with a control character (U+001F), so no
// stream ID can collide with them.
//
// # Idempotency
//
// Retries with the same event IDs are recognised by the server: durably
// for NoStream and Exact(n), and for Any and StreamExists only while the
// server's in-memory cache of recent event IDs holds them (it is bounded
// and empty after a restart or leader change), so a late retry with Any
// can write the events twice; see docs/kurrentdb.md. The server would also
// write again a batch whose IDs are already in the stream when the append
// expects the stream's current version; the event store's rules make that
// a wrong expected version, so before an Exact(n) append the driver checks
// the first ID against the last 256 versions up to n, from a cache of the
// latest IDs of the streams it has written or read, or else by one read of
// at most 256 events plus the batch: the cost does not grow with the
// stream. Unlike the other drivers, it does not look further back: a retry
// at the current version of an append made more than 256 versions earlier
// is written again (a retry with its original expectation is recognised by
// the server at any distance).
//
// The server takes an append for a retry by its IDs alone, whatever the
// events' content. The driver reads the events back and compares them
// (a difference is [eventstore.ErrDuplicateEventID]) when it knows they
// were already in the stream, from that cache, or when an earlier append
// with the same first ID went unanswered in this process; a changed retry
// of an append another process made can go unnoticed (docs/kurrentdb.md).
//
// # Pages
//
// A read page ends at the query's Limit, or once it holds MaxBytes bytes of
// data and metadata ([driver.StreamQuery.MaxBytes]). The driver converts
// events one at a time as they arrive and closes the server's read (or
// subscription) as soon as the page is full, so a page holds at most
// MaxBytes plus one event (an event is at most 16 MiB), besides what gRPC
// has received but not yet handed over (its flow-control window, up to
// 16 MiB). The rest of a read's count is never received.
//
// # Filtered scans
//
// The driver implements [driver.ScanReader]: [Driver.ReadAllScan] is a
// forwards read of $all that also says how far it looked (Scanned), so a
// filtered subscription's checkpoint moves past events it does not want.
// With a filter or a namespace it is a filtered subscription of $all, as
// ReadAll is: Scanned follows the events received and the server's
// checkpoints, which it sends for every 256 events it considers, matching
// or not, at a position before which it has considered every event. Those
// checkpoints trail the server's reading by up to 256 events, so before
// subscribing the driver reads the position of the last event of $all;
// once the subscription has caught up, the server has considered every
// event up to that one, and Scanned moves there. Neither can pass an event
// that becomes visible later: one writer gives positions in log order and
// $all is read only up to what is committed, so a later event comes after
// both (see "No skipping" in docs/kurrentdb.md). A page ends after about
// 4,096 events examined (16 checkpoints, or events received), and then
// Scanned may be a checkpoint's position, (p, 0), which is not an event's
// but which reads and subscriptions resume from. Cost per page: one read of
// the last event of $all (a round trip, and that event received whole),
// then the subscription: the server reads at most about 4,096 events, the
// client receives the matching ones (and, in a namespace, the driver's
// internal events and streams whose names only share the prefix) and one
// small checkpoint per 256 events. Without a filter and outside a
// namespace the scan is a plain read of $all, every event received.
//
// # Live subscriptions
//
// The driver implements [driver.Watcher] with a native subscription to
// $all; see [Driver.Watch]. It resubscribes after the connection drops.
//
// # Checkpoints
//
// The driver implements [driver.CheckpointManager], so
// [eventstore.Store.Checkpoints] and [eventstore.Store.DeleteCheckpoint]
// work. Listing reads $all from its start, filtered on the server to the
// namespace's checkpoint streams (no system projection is needed), then
// the last event of each stream found: it costs a scan of the server's
// whole log, and one message per checkpoint save not yet scavenged. A
// delete is a soft delete written as the stream's metadata ($tb at the
// largest event number, $maxCount 1 kept), so the checkpoint can be saved
// again; deleting one that is not there writes nothing. See
// docs/kurrentdb.md.
//
// # Deleting, truncating, retention
//
// The driver implements [driver.StreamDeleter] (the server's soft delete),
// [driver.StreamTruncater] ($tb) and [driver.RetentionKeeper] ($maxCount,
// $maxAge); its [driver.RetentionApplier] does nothing, since the server
// applies $maxAge and $maxCount on every read. The server hides the events
// at once and removes them at the next scavenge; the driver leaves them out of ReadAll and subscriptions
// too, with one read per stream per page of the global log. Where the
// server's rules differ from the portable ones (an Exact append to a
// soft-deleted stream, retries of deleted events), the driver adapts; see
// docs/kurrentdb.md.
//
// # Consumer groups and projections
//
// The driver implements neither [driver.Leaser] nor [driver.CheckpointTxer],
// so [eventstore.Store.SubscribeGroup] and [eventstore.Store.Project] return
// [eventstore.ErrNotSupported]. KurrentDB has no transaction spanning a
// read model and a checkpoint, and it offers its own persistent
// subscriptions for competing consumers (through the client [Driver.As]
// hands out). Leases kept as streams and fenced with expected versions are
// possible future work.
//
// # Multi-stream appends
//
// [Driver.AppendMulti] ([eventstore.Store.AppendMulti]) uses the server's
// AppendRecords, KurrentDB 26.1 and later: records of several streams in
// one transaction, contiguous in $all in the request's order, every failed
// check reported. On an older server it returns
// [eventstore.ErrNotSupported] and writes nothing. Metadata travels as a
// record property and is unwrapped on reads, so it comes back byte for
// byte. Tags, [eventstore.Store.ReadQuery] and append conditions are not
// supported: the server has no query condition. See docs/kurrentdb.md.
//
// # Listing streams
//
// The driver does not implement [driver.StreamLister]:
// [eventstore.Store.ListStreams] returns [eventstore.ErrNotSupported]. The
// server lists streams only through the $streams system projection (off by
// default, and absent from the test double) or by reading $all, which reads
// the whole log and misses streams whose first event was truncated and
// scavenged. See docs/kurrentdb.md.
//
// # Limits
//
// The server limits an event (MaxAppendEventSize: 16 MiB by default since
// 25.1, unlimited before) and an append (MaxAppendSize: 1 MiB in 24.10 and
// 25.0, 256 MiB since 25.1), counting data, metadata and twice the UTF-16
// length of the type; the driver checks both before sending, with the
// values in [Options] (by default 16 MiB and 1 MiB, which any server
// accepts). One event is also one gRPC message of at most 16,767,216
// bytes. [Driver.Limits] reports an event limit 1 KiB below the smallest
// of these, to leave room for the type.
package kurrentdb
