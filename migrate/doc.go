// Package migrate copies the events of one [eventstore.Store] into another,
// whatever their drivers, and verifies that two stores hold the same events.
//
// # Source and destination
//
// [Copy] and [Verify] take the store read as a [Source], made by [From], and
// the other as a [Destination], made by [To]: distinct types, so swapping
// them does not compile.
//
//	stats, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
//	report, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
//
// # Copy
//
// [Copy] reads the source's global log in order and writes each batch of
// new events to the destination: in one [eventstore.Store.Import] of any
// number of streams when the destination's driver can import (memory,
// SQLite, PostgreSQL, DynamoDB), which also keeps the source's recorded
// times; otherwise in one [eventstore.Store.AppendMulti] of the whole
// batch when the destination can append to several streams atomically
// (KurrentDB 26.1 and later), each stream expected at the version before
// its first event in the batch; otherwise in one append per run of
// consecutive events of one stream, with the exact expected version its
// first event needs (the destination then stamps its own times). It keeps stream IDs, versions, event IDs, event
// types, content types, data and metadata byte for byte, event tags in
// their order, and the relative global order. Positions are the
// destination's own. A source whose events carry tags cannot be copied to
// a destination whose driver does not keep them: Copy finds the first
// tagged event before it writes anything and fails with an error matching
// [eventstore.ErrNotSupported] that names it.
//
// # Resuming
//
// Copy keeps no separate checkpoint: the destination's streams are the
// checkpoint. An event at version v of stream S is copied only when the
// destination's version of S is v-1; when the destination already has version
// v, its event there is compared with the source's and skipped if equal. So a
// copy that was cancelled or killed at any point is resumed by running it
// again: nothing is lost and nothing is written twice, because every append
// carries an exact expected version. The check is cheap: the destination's
// log is read alongside the source's while they agree, and only a
// destination with streams of its own costs a query per stream. A
// destination that holds a different event at some version stops the copy
// with a *[ConflictError] naming the stream and version; nothing is
// overwritten.
//
// # Follow
//
// With [Options.Follow], Copy does not return once it has caught up: it
// subscribes to the source's log after the last event it handled and copies
// new events as they arrive, in batches of what has arrived, until ctx is
// done. [Stats.Live] tells a progress display it has caught up. An
// application can so switch backends while it runs; docs/migration.md lists
// the cut-over steps.
//
// # Verify
//
// [Verify] reads both stores' global logs, compares each stream's version and a
// SHA-256 digest of its events, then the relative order of the logs, and
// reports the first difference precisely (stream, version, field); when
// only recorded times differ, it names the first event whose time differs.
package migrate
