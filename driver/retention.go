package driver

import (
	"context"
	"time"
)

// StreamDeleter is an optional Driver capability: deleting a stream.
// Without it, eventstore.Store.DeleteStream returns
// eventstore.ErrNotSupported before anything is done.
type StreamDeleter interface {
	// DeleteStream checks expected against the stream's version (0 when
	// it has no events: never written, or deleted and not appended to
	// since) and, if it holds, removes every event of the stream, all or
	// none: from ReadStream, ReadAll, ReadAllScan and ReadQuery, with their
	// tags, and from the retry detection of later appends (the stream's
	// event IDs are forgotten). It also removes the stream's snapshot and
	// its retention setting. On a mismatch it returns a
	// *eventstore.WrongExpectedVersionError (Actual as above) and changes
	// nothing. A stream at version 0 whose expectation holds (Any, or
	// exact 0) is left as it is and DeleteStream returns nil.
	//
	// The driver remembers the deleted stream's last version V. Until the
	// next append the stream has version 0 to every reader and to append
	// expectations (NoStream and Any hold; StreamExists and an exact
	// version above 0 fail with Actual 0), and ListStreams leaves it out.
	// The next append recreates it: its events get versions V+1, V+2, …,
	// so a version is never reused, and from then on the stream reads as
	// one truncated before V+1.
	//
	// Events a subscriber has not yet reached are not delivered; the
	// positions of deleted events are never given to other events, so a
	// subscriber past them skips nothing that remains.
	DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error
}

// StreamTruncater is an optional Driver capability: removing the oldest
// events of a stream. Without it, eventstore.Store.TruncateStream returns
// eventstore.ErrNotSupported before anything is done.
type StreamTruncater interface {
	// TruncateStream removes the events of stream whose version is below
	// before (from every read path, as DeleteStream does), all or none.
	// The stream's version and the versions of later appends do not
	// change; ReadStream starts at the first event kept. before is at
	// least 2 (the Store returns before smaller ones); a before past the
	// stream's version plus one removes every event and nothing after, so
	// later appends are kept. A stream with no events, or whose events
	// below before are gone already, is left as it is. Truncating never
	// recreates a deleted stream. A retry of an append whose first event
	// was removed, at an exact expectation, fails with a
	// *eventstore.WrongExpectedVersionError or returns the original result;
	// at Any or StreamExists it may also be written again as a new append
	// (a driver may forget the IDs of removed events).
	TruncateStream(ctx context.Context, stream string, before uint64) error
}

// Retention limits how many events of a stream are kept, and for how long.
// The zero value keeps everything.
type Retention struct {
	// MaxCount keeps only the MaxCount latest events (by version); 0 means
	// no limit.
	MaxCount uint64
	// MaxAge keeps only events recorded less than MaxAge ago (by
	// RecordedAt, compared with the clock of the process that enforces
	// it); 0 means no limit. It removes the oldest events of the stream,
	// in version order, up to the first one young enough: an event that
	// follows a younger one (imported with an older time) waits for it.
	MaxAge time.Duration
}

// IsZero reports whether r keeps everything.
func (r Retention) IsZero() bool { return r.MaxCount == 0 && r.MaxAge == 0 }

// Cutoff returns the first version a stream at version current must keep
// under r's MaxCount: 1 when MaxCount is 0 or the stream is short enough.
func (r Retention) Cutoff(current uint64) uint64 {
	if r.MaxCount == 0 || current <= r.MaxCount {
		return 1
	}
	return current - r.MaxCount + 1
}

// RetentionKeeper is an optional Driver capability: a durable retention
// setting per stream. Without it, eventstore.Store.SetStreamRetention and
// StreamRetention return eventstore.ErrNotSupported.
type RetentionKeeper interface {
	// SetStreamRetention stores r for stream, replacing what was stored
	// (the zero Retention removes the setting), and at once removes the
	// stream's events that r does not keep, as TruncateStream would. From
	// then on every append to the stream (Append, AppendMulti, Import)
	// removes the events r no longer keeps before it returns (in its own
	// transaction where the backend can), so a stream holds no more than
	// MaxCount events once an append returns. Events that grow older than MaxAge while nothing is
	// appended stay stored (and readable) until the next append, the next
	// SetStreamRetention, or the next ApplyRetention of a driver that is a
	// [RetentionApplier]. The setting of a stream with no events is stored too,
	// and applies once it has some. DeleteStream removes the setting.
	SetStreamRetention(ctx context.Context, stream string, r Retention) error
	// StreamRetention returns the stored setting: the zero Retention when
	// there is none.
	StreamRetention(ctx context.Context, stream string) (Retention, error)
}

// RetentionResult is what one [RetentionApplier.ApplyRetention] call did.
type RetentionResult struct {
	// Streams is how many streams with a stored retention were examined.
	Streams uint64
	// Events is how many events were removed (on some drivers the
	// versions that became removed, which counts the same events).
	Events uint64
}

// RetentionApplier is an optional Driver capability: applying every stored
// retention at once, so that streams nothing is appended to lose the events
// that aged past their MaxAge. Without it, eventstore.Store.ApplyRetention
// returns eventstore.ErrNotSupported (a driver that keeps retention but
// cannot list the streams having one leaves that to a job calling
// SetStreamRetention per stream).
type RetentionApplier interface {
	// ApplyRetention removes, from every stream with a stored retention,
	// the events it no longer keeps at the time of the call, as an append
	// to each would; it also finishes removals a driver left unfinished
	// (an interrupted DynamoDB sweep). It reads the streams having a
	// retention in pages, never the whole log, and checks ctx between
	// streams: a cancelled call returns the context's error with some
	// streams done. Each stream's removal is all or nothing as
	// TruncateStream's is.
	ApplyRetention(ctx context.Context) (RetentionResult, error)
}
