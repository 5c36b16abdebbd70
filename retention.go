package eventstore

import (
	"context"
	"fmt"

	"github.com/eventkit/eventstore/driver"
)

// Retention limits how many events of a stream are kept (MaxCount, the
// latest by version) and for how long (MaxAge, by RecordedAt). A zero field
// means no limit; the zero Retention keeps everything. See
// [Store.SetStreamRetention] and docs/retention.md.
type Retention = driver.Retention

// DeleteStream removes every event of stream if the stream is at the
// expected version, all or none, and its snapshot and retention setting
// with them. Deleted events are gone from ReadStream, ReadAll, ReadQuery
// and from subscriptions that have not reached them yet; a subscription
// past them goes on without skipping any event that remains.
//
// A deleted stream reads as one that never existed: [Store.StreamVersion]
// returns 0, ReadStream yields nothing, ListStreams leaves it out, and
// appends see version 0 (ExpectNoStream and ExpectAny hold,
// ExpectStreamExists and Exact of a version above 0 fail). An append
// recreates it, numbering its events after the last version the stream
// had before the delete, so a version is never reused: a stale writer's
// expected version cannot match, and the recreated stream reads like one
// truncated before its first new version. The deleted stream's event IDs
// are forgotten: retrying an append made before the delete is a new append.
//
// Deleting a stream that has no events (never written, or deleted already)
// does nothing and returns nil when expected holds for version 0
// (ExpectAny or ExpectNoStream), so a delete retried with ExpectAny is
// safe. How completely the data leaves the backend (write-ahead logs,
// backups, a KurrentDB scavenge) is the driver's: see docs/retention.md.
//
// Errors: [ErrWrongExpectedVersion] (a *[WrongExpectedVersionError]) when
// the expectation fails; [ErrInvalidArgument] for a bad stream ID or
// expectation; [ErrNotSupported] when the driver cannot delete streams
// ([driver.StreamDeleter]); [ErrClosed]; the context's error.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	wrap := func(err error) error { return fmt.Errorf("eventstore: delete stream %q: %w", stream, err) }
	if err := ValidateStreamID(stream); err != nil {
		return wrap(err)
	}
	exp := driver.ExpectedVersion(expected)
	if exp.Kind() > driver.ExpectStreamExists {
		return wrap(invalid(ErrInvalidVersion, "unknown expected version kind %d", exp.Kind()))
	}
	if s.deleter == nil {
		return wrap(ErrNotSupported)
	}
	return s.retentionCall(ctx, wrap, func() error { return s.deleter.DeleteStream(ctx, stream, exp) })
}

// TruncateStream removes the events of stream whose version is below
// before, all or none. The stream's version does not change, and neither do
// the versions later appends get: ReadStream starts at the first event
// kept (a read From an earlier version starts there too). A before of 0 or
// 1 removes nothing; one past the stream's version plus one removes every
// event but does not affect later appends. Truncating a stream with no
// events does nothing; it never recreates a deleted stream. Removed events
// leave every read path as with [Store.DeleteStream]. A retry of an append
// whose events were removed, at an exact expectation, fails with
// [ErrWrongExpectedVersion] or returns the original result; at ExpectAny or
// ExpectStreamExists some drivers write it again as a new append (they
// forget the IDs of removed events; see docs/retention.md).
//
// Errors: [ErrInvalidArgument] for a bad stream ID; [ErrNotSupported] when
// the driver cannot truncate streams ([driver.StreamTruncater]);
// [ErrClosed]; the context's error.
func (s *Store) TruncateStream(ctx context.Context, stream string, before uint64) error {
	wrap := func(err error) error { return fmt.Errorf("eventstore: truncate stream %q: %w", stream, err) }
	if err := ValidateStreamID(stream); err != nil {
		return wrap(err)
	}
	if s.truncater == nil {
		return wrap(ErrNotSupported)
	}
	if before <= 1 {
		return s.retentionCall(ctx, wrap, func() error { return nil })
	}
	return s.retentionCall(ctx, wrap, func() error { return s.truncater.TruncateStream(ctx, stream, before) })
}

// SetStreamRetention stores r as the retention of stream, durably,
// replacing the previous setting (the zero Retention removes it), and
// removes at once the events r does not keep. From then on each append to
// the stream removes the events that fall out of r before it returns (in
// the append's transaction on SQLite and PostgreSQL), so a stream holds no
// more than MaxCount events after an append returns. Events that age past MaxAge while nothing is appended stay
// readable until the next append, the next call of SetStreamRetention, or
// [Store.ApplyRetention] (run it from a periodic job to remove them from
// quiet streams; some drivers also hide them from reads, see
// docs/retention.md). Removed
// events leave every read path as with [Store.DeleteStream]. The setting
// of a stream with no events is kept for when it has some; DeleteStream
// removes it.
//
// MaxAge is kept to the microsecond, rounded up (one nanosecond is one
// microsecond, never no limit), and at most [MaxRetentionAge]; MaxCount at
// most math.MaxInt64. [Store.StreamRetention] returns these values (the
// KurrentDB driver's MaxAge in whole seconds, rounded up).
//
// Errors: [ErrInvalidArgument] for a bad stream ID or a negative MaxAge;
// [ErrNotSupported] when the driver keeps no retention
// ([driver.RetentionKeeper]); [ErrClosed]; the context's error.
func (s *Store) SetStreamRetention(ctx context.Context, stream string, r Retention) error {
	wrap := func(err error) error { return fmt.Errorf("eventstore: set stream retention %q: %w", stream, err) }
	if err := ValidateStreamID(stream); err != nil {
		return wrap(err)
	}
	r, err := normalizeRetention(r)
	if err != nil {
		return wrap(err)
	}
	if s.retention == nil {
		return wrap(ErrNotSupported)
	}
	return s.retentionCall(ctx, wrap, func() error { return s.retention.SetStreamRetention(ctx, stream, r) })
}

// StreamRetention returns the retention stored for stream with
// [Store.SetStreamRetention]: the zero Retention when there is none.
//
// Errors: [ErrInvalidArgument] for a bad stream ID; [ErrNotSupported] when
// the driver keeps no retention; [ErrClosed]; the context's error.
func (s *Store) StreamRetention(ctx context.Context, stream string) (Retention, error) {
	wrap := func(err error) error { return fmt.Errorf("eventstore: stream retention %q: %w", stream, err) }
	if err := ValidateStreamID(stream); err != nil {
		return Retention{}, wrap(err)
	}
	if s.retention == nil {
		return Retention{}, wrap(ErrNotSupported)
	}
	var r Retention
	err := s.retentionCall(ctx, wrap, func() (err error) {
		r, err = s.retention.StreamRetention(ctx, stream)
		return err
	})
	return r, err
}

// RetentionResult is what [Store.ApplyRetention] did: how many streams
// with a retention it examined, and how many events it removed.
type RetentionResult = driver.RetentionResult

// ApplyRetention applies the stored retention of every stream that has one
// ([Store.SetStreamRetention]) as of now, removing the events each no
// longer keeps, as an append to the stream would. Run it from a periodic
// job: it is how streams nothing is appended to lose the events that aged
// past their MaxAge. It also finishes removals a driver left unfinished (a
// DynamoDB sweep cut short by a crash). Its cost grows with the number of
// streams having a retention (it reads them in pages) and the events it
// removes, never with the length of the log. Removed events leave every
// read path as with [Store.DeleteStream].
//
// A cancelled context stops it between streams: it returns the context's
// error, and the streams done by then stay done (each stream's removal is
// all or nothing). On KurrentDB it removes nothing: the server applies
// $maxAge and $maxCount on every read, and a scavenge frees the space (see
// docs/retention.md).
//
// Errors: [ErrNotSupported] when the driver cannot apply retention to every
// stream ([driver.RetentionApplier]); [ErrClosed]; the context's error.
func (s *Store) ApplyRetention(ctx context.Context) (RetentionResult, error) {
	wrap := func(err error) error { return fmt.Errorf("eventstore: apply retention: %w", err) }
	if s.applier == nil {
		return RetentionResult{}, wrap(ErrNotSupported)
	}
	var res RetentionResult
	err := s.retentionCall(ctx, wrap, func() (err error) {
		res, err = s.applier.ApplyRetention(ctx)
		return err
	})
	return res, err
}

// retentionCall runs f as a driver call and wraps its error.
func (s *Store) retentionCall(ctx context.Context, wrap func(error) error, f func() error) error {
	if err := s.do(ctx, f); err != nil {
		return wrap(err)
	}
	return nil
}
