// Package memory is the reference driver: an in-process, goroutine-safe event
// store that keeps everything in memory and loses it on Close.
//
// It exists to pin the contract (it runs the whole conformance suite), for
// tests of code built on the event store, and for examples.
//
// # URLs
//
// "memory://" opens a new, empty store; each Open returns an independent
// store. It takes no host, path or user, and one query parameter:
// must_exist=true fails with [eventstore.ErrStoreNotFound], since a memory
// store exists only inside the driver that holds it and no URL can name one
// (must_exist=false is the default). Any other parameter, a parameter given
// twice, or a query that does not parse is rejected with
// [eventstore.ErrInvalidArgument]. [New] always returns a new store: there is
// nothing existing for it to open.
//
// # As
//
// The driver has no native client; As always reports false.
//
// # Multi-stream appends and queries
//
// The driver implements [driver.MultiAppender] and [driver.QueryReader]:
// [eventstore.Store.AppendMulti] checks every expectation and the append
// condition and writes the records under the one mutex, and
// [eventstore.Store.ReadQuery] scans the log, so a read by query costs a
// pass over the events after its position. Tags are kept on every path.
//
// # Limits
//
// Only the Store's own limits apply. Positions are {Commit: n, Prepare: 0}
// with n counting events from 1, dense and in commit order: appends take one
// mutex, so an event becomes visible only together with every event before it.
package memory
