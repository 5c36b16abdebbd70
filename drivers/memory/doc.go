// Package memory is the reference driver: an in-process, goroutine-safe event
// store that keeps everything in memory and loses it on Close.
//
// It exists to pin the contract (it runs the whole conformance suite), for
// tests of code built on the event store, and for examples.
//
// # URLs
//
// "memory://" opens a new, empty store. It takes no host, path or query
// parameters; each Open returns an independent store.
//
// # As
//
// The driver has no native client; As always reports false.
//
// # Limits
//
// Only the Store's own limits apply. Positions are {Commit: n, Prepare: 0}
// with n counting events from 1, dense and in commit order: appends take one
// mutex, so an event becomes visible only together with every event before it.
package memory
