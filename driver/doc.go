// Package driver defines what an event store backend implements. Applications
// use package eventstore: its Store validates every argument, fills defaults,
// wraps errors and runs subscriptions once for every driver, then calls the
// small [Driver] interface defined here.
//
// A backend implements [Driver] and, where it can, the optional capabilities
// ([Watcher], [LimitReporter], [Importer], [Aser]); each says what the Store
// does without it. It registers a URL scheme with eventstore.Register and
// offers a typed constructor whose result goes to eventstore.New. Errors a
// driver returns are the sentinels and error types of package eventstore
// (eventstore.ErrTransient, *eventstore.WrongExpectedVersionError, …), which
// a driver package imports; this package imports nothing of the library.
//
// The package conformance checks that a driver keeps the contract, and
// docs/writing-a-driver.md walks through a complete minimal driver.
package driver
