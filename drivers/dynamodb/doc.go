// Package dynamodb is the Amazon DynamoDB driver of the event store, built on
// github.com/aws/aws-sdk-go-v2/service/dynamodb. One table holds one store.
//
//	store, err := eventstore.Open(ctx, "dynamodb://orders?region=eu-west-1")
//
// or, reusing a client the application configured:
//
//	d, err := dynamodb.New(ctx, client, "orders", dynamodb.Options{})
//	store := eventstore.New(d, eventstore.Options{})
//
// # URLs
//
// "dynamodb://TABLE" with the query parameters
//
//   - region: the AWS region (default: AWS_REGION or the shared configuration)
//   - endpoint: an http:// or https:// endpoint instead of the region's, such
//     as DynamoDB Local's "http://127.0.0.1:8000"
//   - create_table: "true" creates the table when it is missing (see
//     [CreateTableInput] for its schema) and waits until it is ACTIVE
//   - must_exist: "true" opens an existing store only and writes nothing
//     ([Options.MustExist]); it overrides create_table
//   - connect_timeout: whole seconds, default 10 ([Options.ConnectTimeout])
//   - max_attempts: [Options.MaxAttempts]
//   - log: "head" or "indexed", the layout of the global log of a table
//     being set up ([Options.Log]); on an existing table it must be the
//     table's own
//   - orderer: "off" keeps the driver from ordering an indexed table's
//     log ([Options.NoOrderer]); "on", the default, lets it take the
//     orderer's lease
//   - position: "async" makes appends to an indexed table return once
//     written, without waiting for their positions
//     ([Options.AsyncPositions]); "wait" is the default
//
// Any other parameter, a repeated one, and a query that does not parse (a
// ';' or a bad %-escape) are rejected with [eventstore.ErrInvalidArgument].
// Credentials come from the default AWS chain (environment, shared files, IAM
// role), never from the URL, and never appear in errors or logs.
//
// # Opening
//
// Opening checks the table's schema, waits until it is ACTIVE, and reads
// the table's layout item, writing it first in a table no driver has used.
// A missing table is an error matching [eventstore.ErrStoreNotFound] unless
// create_table creates it. With must_exist nothing is created or written:
// a missing table, and a table without the layout item (created with
// [CreateTableInput] but not opened since), are [eventstore.ErrStoreNotFound]
// and left as they are.
//
// The driver's first request (DescribeTable, with its retries) must be
// answered within the connect timeout, 10 s by default, so an endpoint that
// accepts connections but never answers fails [Open] and [New] with an error
// matching context.DeadlineExceeded. The client [Open] builds also dials,
// completes TLS handshakes and waits for each response to begin within the
// connect timeout; a request that meets it fails with an error matching
// context.DeadlineExceeded and is not retried, so [Options.MaxAttempts] does
// not multiply it. A client passed to [New] keeps its own HTTP settings.
//
// # As
//
// [eventstore.Store.As] accepts a **dynamodb.Client (of
// github.com/aws/aws-sdk-go-v2/service/dynamodb) and sets it to the driver's
// client. A client passed to [New] is not closed by the driver.
//
// In a projection's handler, [eventstore.Tx.As] accepts a **[TxItems] (the
// batch's transaction, see "Exactly-once projections") and a
// **dynamodb.Client.
//
// # Table layout and the global log
//
// Events are items keyed by stream ID (partition key "pk") and version (sort
// key "sk"). An append is one TransactWriteItems: each event's put is
// conditional on attribute_not_exists, so two writers can never take the same
// version, and with an exact expectation a condition check on the previous
// version makes sure the stream is exactly there. The same transaction puts
// one log entry in the partition "$log#N" with sort key the position of the
// append's first event, also conditional on attribute_not_exists. Writers
// find the next free position by reading the last log entry, so positions
// are dense, gap-free and in commit order: Position{Commit: n, Prepare: 0}
// for the n-th event of the store. A reader walks the log entries in order
// and knows which position comes next: it never skips an event that commits
// later, it waits for one whose items are not visible yet. The local
// secondary index "by_id" finds an event ID in a stream with a strongly
// consistent read, so a retried append returns its original result however
// long ago it was made. docs/dynamodb.md has the whole layout and argument.
//
// # The indexed log layout
//
// In a table of the [LogIndexed] layout an append writes its events (with
// no position yet) and an inbox entry in one of eight partitions, and no
// item that every append writes, so appends from many processes do not
// contend. One driver of the table at a time, holding a lease, runs the
// orderer: it takes the inbox entries in arrival order, keeping each
// stream's order, and in one transaction per pass moves the log's head,
// writes one dense log entry for the appends it places, deletes their inbox
// entries and sets their events' positions, fenced by the lease's
// generation. In a table set up with the global index "unplaced" (see
// [CreateTableInput]), a single-event append of a driver that does not hold
// the lease is instead one conditional PutItem of its event, marked
// unplaced in that sparse index, which the orderer reads with one Scan.
// Readers read the log as in the head layout. An append waits
// for its position up to [Options.OrderTimeout]; past it it succeeds with a
// zero Position. With [Options.AsyncPositions] it does not wait: a
// single-event append is one PutItem (the lease holder's too) and returns
// a zero Position, and the log trails the appends by the orderer's delay.
// docs/dynamodb.md ("The indexed log layout") has the
// design, its costs and the measurements that chose it.
//
// # Reads
//
// A page ends once it holds the query's MaxBytes of data and metadata (the
// Store's Options.MaxPageBytes), and the driver then stops reading: a
// stream read after the 1 MB Query page that filled it, a read of the
// global log after the BatchGetItem round that did, its rounds sized by the
// bytes still missing at the size of the largest event seen (the largest
// DynamoDB stores until one is seen). A page holds at most MaxBytes plus one
// event; a read, at most about one more Query page or round besides.
//
// The driver implements [driver.ScanReader]: [Driver.ReadAllScan] walks the
// log entries as a forward read does, examines at most 4,096 positions per
// page, fetches only the events the filter keeps, and reports as Scanned
// the last position up to which every position is covered by a visible log
// entry and every match was returned, so a filtered subscription's
// checkpoint moves past the events it does not want. A log entry names the
// stream and type of each of its events, so no event the filter keeps can
// appear at or below Scanned later: the scan stops before a matching event
// not visible yet and at the first hole of the log. A scan costs the bytes
// of the log entries it reads (about 20 read units per 1,000 positions of
// single-event appends, 4 with appends of ~100 events) plus a read unit per
// match; docs/dynamodb.md has the measurements.
//
// # Imports
//
// The driver implements [driver.Importer]: [Driver.Import] writes events
// of any streams with their versions, IDs and recorded times in one
// transaction, with one log entry listing the request's runs, so
// migrations into DynamoDB keep recorded times.
//
// # Deleting, truncating, retention
//
// The driver implements [driver.StreamDeleter], [driver.StreamTruncater],
// [driver.RetentionKeeper] and [driver.RetentionApplier]. A removal is a
// small commit transaction (the stream's meta item, sort key 0, records the
// first kept version; the item below it becomes a stub; a delete's stub is
// marked deleted) that every read path and append follows at once (the
// global log's readers read the meta items of the streams they return
// events of), then a sweep that deletes the items in BatchWriteItem
// requests; a sweep cut short is finished by the next ApplyRetention or
// removal of the stream. A retention is applied after each append's
// transaction, before the append returns, and to every stream listed in
// the "$retention" partition by ApplyRetention. docs/dynamodb.md has the
// items, the reasons and the costs.
//
// # Checkpoints
//
// The driver implements [driver.CheckpointManager]: [Driver.Checkpoints]
// lists the checkpoints sorted by name, with one strongly consistent Query
// of each of the 16 partitions that hold them (a checkpoint's partition and
// numeric sort key come from the SHA-256 of its name), never a scan of the
// events; [Driver.DeleteCheckpoint] deletes one. Saving a checkpoint stays
// one PutItem. Checkpoints saved by drivers before this layout (one
// partition per name) still load and delete; the first listing in such a
// table finds them with one scan of the whole table, copies them, and
// records that in the layout item, so it happens once per table.
// docs/dynamodb.md has the layout, the costs and what mixing driver
// versions on one table means.
//
// # Consumer-group leases
//
// The driver implements [driver.Leaser], on which
// [eventstore.Store.SubscribeGroup] builds consumer groups. A lease is an
// item in its group's partition ("$lease#" + group; the sort key is 120
// bits of the SHA-256 of the lease's key, which is kept in the item), so a
// group's leases are listed with one strongly consistent Query and deleted
// with that Query and BatchWriteItem requests. Every change is one
// conditional UpdateItem, never a read followed by a write: a renewal
// conditional on the caller holding the lease, then, when the item returned
// with the failed condition shows the lease free, a takeover conditional on
// its being absent, released or expired, which increments the generation.
// A renewal or a refusal is one request (one write unit), a grant to a new
// holder two; releasing and saving a position are one each.
//
// DynamoDB has no clock a condition can read, so expiry is judged by the
// clock of the process that calls: a member writes its own now + ttl as the
// expiry and takes a lease over when the stored expiry is at or before its
// own now. The members' clocks must agree within a margin much smaller than
// the lease's duration (NTP keeps them within milliseconds; leases last
// seconds); a member whose clock runs ahead takes leases over early, by as
// much as it is ahead.
//
// # Exactly-once projections
//
// The driver implements [driver.CheckpointTxer], so [eventstore.Store.Project]
// works. The handler does not write: it adds its read model's writes
// (types.TransactWriteItem, to any table) to the batch's [TxItems], which
// [eventstore.Tx.As] hands out for a **TxItems target. When it returns nil
// the driver sends them in one TransactWriteItems request with a put of the
// checkpoint conditional on its being where the projection left it, so the
// read model and the checkpoint commit together or not at all. The handler
// therefore runs before the checkpoint is checked, and cannot read its own
// writes.
//
// A failed checkpoint condition is an error matching
// [eventstore.ErrCheckpointMoved] (Project reloads and goes on); a failed
// condition of one of the handler's items is a *[TxConditionError] (Project
// stops with it); nothing is written either way. A transaction holds at
// most 100 items and 4 MB, so a handler adds at most [MaxTxItems] (99)
// items; more, or more bytes than fit, is an error matching
// [eventstore.ErrInvalidArgument] before anything is sent, never a split
// batch: lower SubscribeOptions.BatchSize. A batch whose handler adds
// nothing saves the checkpoint with one conditional PutItem (one write
// unit); otherwise each item of the transaction costs two write units per
// KB, the checkpoint's included.
//
// # Throughput
//
// Every append of a table writes the head of one log partition, so appends
// are serialised: a driver sends one transaction at a time and commits the
// appends that queued meanwhile together (up to 100 items and 4 MB, one per
// stream); drivers in other processes race for the head and the loser tries
// again. The ceiling is therefore about one transaction per round trip,
// shared by every writer of the table; docs/dynamodb.md has the measurements
// and how to scale past one hot key.
//
// # Live subscriptions
//
// DynamoDB does not push changes here. The driver implements
// [driver.Watcher] for appends made through the same Driver, which wake
// its subscriptions at once; appends from other processes are found by the
// subscription's poll (SubscribeOptions.PollInterval).
//
// # Listing streams
//
// [eventstore.Store.ListStreams] scans the whole table: there is no item
// per stream, so a listing is a strongly consistent Scan filtered to each
// stream's version-1 item, plus one Query per listed stream for its
// version. Streams come in the table's order, not by ID; listing every page
// reads the whole table once. The cursor is an encoded Scan key. See
// docs/dynamodb.md, "Listing streams".
//
// # Errors and retries
//
// A concurrent append that took the expected version (a
// ConditionalCheckFailed cancellation reason on the stream's items) becomes
// a *[eventstore.WrongExpectedVersionError] with the actual version.
// Throttling (ProvisionedThroughputExceeded, ThrottlingError), transaction
// conflicts (TransactionConflict) and 5xx responses are retried with
// exponential back-off and jitter, up to [Options.MaxAttempts] tries, after
// which the native error is returned wrapped (errors.As reaches it) and
// matching [eventstore.ErrTransient], as does a timeout of the HTTP client
// while the caller's context is not done. ValidationException becomes
// [eventstore.ErrInvalidArgument].
//
// # Multi-stream appends, tags and conditions
//
// The driver implements [driver.MultiAppender] and [driver.QueryReader] on
// both log layouts. A multi-stream append is one TransactWriteItems, never
// split: one log entry covering its events at consecutive positions in the
// records' order, a conditional put per event at its stream's next
// versions, and a ConditionCheck per stream only checked. Over DynamoDB's
// 100 items or 4 MB per transaction it fails with
// [eventstore.ErrBatchTooLarge] before anything is written. Failed
// expectations are named together, with versions confirmed by one
// TransactGetItems.
//
// Tags are stored on the event item and, per event, on its log entry, which
// already lists the events' types: [Driver.ReadQuery] reads log entries as
// a filtered ReadAll does and fetches only the events that match. A
// condition scans the log entries after its After the same way and pins
// the append: its log entry must take the position right after the last
// one scanned, so a transaction that finds the head moved is evaluated
// again. Overlapping conditional appends have one winner, disjoint ones
// only retry the head, and nothing extra is written; the scan reads every
// log entry after After. In an indexed table a conditional append is placed
// directly, with the head of the log moved from its pin: by the orderer's
// lease holder with its fence, by any other process without the lease
// (see pinned.go). A writer that read its next position from the table
// first waits until the tag items below it are applied (see window.go).
// docs/dynamodb.md has the layout, costs and limits.
//
// # Limits
//
// DynamoDB stores an item of at most 400 KB and writes at most 100 items and
// 4 MB in one transaction. An event is one item that also holds its keys,
// type and bookkeeping, and an append also writes its log entry, so
// [Driver.Limits] reports 408,064 bytes of data and metadata per event, 98
// events per append (96 in an indexed table, whose orderer places an append
// in a transaction with four items of its own) and 4,007,936 bytes per
// append; the Store rejects larger
// appends whole with [eventstore.ErrEventTooLarge] or
// [eventstore.ErrBatchTooLarge] before anything is sent. Because of the local
// secondary index, one stream holds at most 10 GB. Snapshots are limited like
// events.
package dynamodb
