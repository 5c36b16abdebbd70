// Package shred erases the personal data of a data subject from an event
// store by crypto-shredding: the protected part of each event's data is
// encrypted with a key of its own subject, and forgetting the subject
// deletes the key, after which no copy of those events (the store, its
// backups, a migrated copy) can be read back.
//
// # Sealing and opening
//
// A [Shredder] knows, per event type, a [Rule]: which top-level field of
// the JSON data names the subject and which fields are protected (none
// listed: the whole data). [Shredder.Seal] encrypts an event before it is
// appended, with AES-256-GCM under the subject's key (created on first
// use) and the event's stream, ID, type and subject bound in the additional
// data, so a ciphertext moved to another event or stream fails to open
// ([ErrTampered]). Envelopes of format version 1, sealed before the stream
// was bound, still open. [Shredder.Open]
// decrypts a recorded event; events without an envelope pass through
// unchanged. The format of the envelope is documented in docs/gdpr.md.
//
// A Shredder implements codec.Transform (its Seal and Open methods), so
// every typed read path of package codec decrypts; for the raw Store use
// Open, or [Shredder.Handler] and [Shredder.Projection] for subscriptions.
//
// # Forgetting
//
// [Shredder.Forget] deletes the subject's key. Every read path then
// returns the subject's events with the protected data erased: protected
// fields are null (no field is left when the data was protected whole),
// the envelope is removed, and the data and the metadata hold
// "$erased": true: [Erased] reads the metadata of a raw event, and a typed
// event embedding [Erasure] decodes it.
// Erasure is never an error, so projections go on. A key store that fails
// (a transient error) is an error, never taken for an erasure, and a
// ciphertext that does not authenticate under its key is [ErrTampered].
//
// # Key stores
//
// Keys live in a [KeyStore]. An *eventstore.Store is one when its driver
// keeps keys (driver.KeyStore: memory, SQLite, PostgreSQL, DynamoDB): in the
// same backend as the events but outside the global log, so reads,
// subscriptions and migrations never see them. KurrentDB keeps none (its
// Store returns eventstore.ErrNotSupported): use another store's keys, or a
// key store of your own. [MemoryKeys] is for tests.
//
// Keys are cached in memory for at most [Options.CacheTTL] (30 s by default)
// and dropped at once by Forget in the same process; another process may
// still open the subject's events until its cached key expires. Keys are
// never logged and never part of an error.
package shred
