// Package eventstore is an event store with pluggable drivers. Applications
// use one portable API — [Store] — and pick their storage by URL or typed
// constructor: SQLite, PostgreSQL, DynamoDB, KurrentDB or memory.
//
//	store, err := eventstore.Open(ctx, "sqlite:events.db")
//	res, err := store.Append(ctx, "Order-42", eventstore.NoStream, eventstore.NewEvent("Placed", data))
//	for ev, err := range store.ReadStream(ctx, "Order-42", eventstore.ReadStreamOptions{}) { … }
//
// # Streams, versions and positions
//
// Events live in streams ("Order-42"); a stream's events have versions 1, 2,
// 3… and its version is the number of events in it. Appends check an
// [ExpectedVersion] ([Any], [NoStream], [StreamExists], [Exact]) and write all
// events or none. Every event also has a [Position] in the global log, which
// [Store.ReadAll] and [Store.Subscribe] follow. Positions never skip: once a
// reader has seen position P, later events have positions after P.
//
// # Subscriptions
//
// [Store.Subscribe] catches up from a checkpoint and then follows new events
// live, in global order, optionally filtered by category and event type and
// shared by the members of a consumer group. Named subscriptions keep a
// durable checkpoint in the store; delivery is at least once.
//
// # Errors
//
// Errors match sentinels with [errors.Is]: [ErrWrongExpectedVersion] (also a
// *[WrongExpectedVersionError] with the details, via [errors.As]),
// [ErrInvalidArgument] and its specific forms ([ErrInvalidStreamID],
// [ErrEventTooLarge], …), [ErrClosed] and [ErrNotSupported]. They wrap the
// driver's native error, so errors.As also reaches it.
//
// # Drivers
//
// A backend implements the small interface of package
// [github.com/eventkit/eventstore/driver] and registers a URL scheme with
// [Register]; its typed constructor's result goes to [New]. The conformance
// package checks that a driver keeps the contract in docs/semantics.md.
package eventstore
