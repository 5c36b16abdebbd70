package driver

import (
	"context"
	"log/slog"
	"net/url"
)

// Driver is what a storage backend implements. Applications do not call it:
// they call an eventstore.Store, which validates every argument, fills
// defaults and wraps errors before a Driver method runs, so a driver may
// assume valid input. After the Store has called Close it calls no other
// method except As.
//
// The conformance package checks that a driver keeps this contract.
type Driver interface {
	// Append writes req.Events to req.Stream atomically if req.Expected
	// matches. On a mismatch it returns a *eventstore.WrongExpectedVersionError
	// and writes nothing. A retry of an append that already succeeded (same
	// expectation, same event IDs in order, see docs/semantics.md) returns the
	// original result and writes nothing, after [CheckRetry] found the same
	// content under those IDs.
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)
	// ReadStream returns up to q.Limit events of one stream starting at
	// q.From, stopping early once they hold q.MaxBytes bytes or more. A
	// stream with no events yields an empty page, not an error. A page that
	// is not full ([PageFull]: fewer than q.Limit events and fewer than
	// q.MaxBytes bytes) means no more follow, for both reads: the Store ends
	// the read there.
	ReadStream(ctx context.Context, q StreamQuery) ([]RecordedEvent, error)
	// ReadAll returns up to q.Limit events of the global log in the range and
	// direction of q that match q.Filter, stopping early once they hold
	// q.MaxBytes bytes or more. Once a caller has seen position P,
	// an event that becomes visible later must have a position after P.
	ReadAll(ctx context.Context, q AllQuery) ([]RecordedEvent, error)
	// StreamVersion returns the version of a stream: its last event's, 0 if
	// it has none. Events removed by truncation still count; a deleted
	// stream (see [StreamDeleter]) has version 0 until it is appended to.
	StreamVersion(ctx context.Context, stream string) (uint64, error)
	// SaveSnapshot stores snap for stream unless a snapshot with a higher
	// version is stored. The Store has checked the stream has that version.
	SaveSnapshot(ctx context.Context, stream string, snap Snapshot) error
	// LoadSnapshot returns the stored snapshot; ok is false when there is none.
	LoadSnapshot(ctx context.Context, stream string) (snap Snapshot, ok bool, err error)
	// SaveCheckpoint durably stores pos under a subscription name.
	SaveCheckpoint(ctx context.Context, name string, pos Position) error
	// LoadCheckpoint returns the checkpoint; ok is false when there is none.
	LoadCheckpoint(ctx context.Context, name string) (pos Position, ok bool, err error)
	// Close releases what the driver opened itself.
	Close() error
}

// Opener opens a driver from a URL whose scheme it was registered for with
// eventstore.Register. It rejects query parameters it does not know, and
// honours eventstore.MustExistParam.
type Opener func(ctx context.Context, u *url.URL, opts OpenOptions) (Driver, error)

// OpenOptions is what the Store passes on to a driver it opens by URL.
type OpenOptions struct {
	// Logger is the Store's logger (never nil): a driver logs what an
	// operator acts on through it, such as a client being rebuilt.
	Logger *slog.Logger
}

// Watcher is an optional Driver capability: the driver signals when new
// events may be visible, so subscriptions wake at once. Without it the
// subscription engine polls with back-off up to the PollInterval.
type Watcher interface {
	// Watch returns a channel that receives a value after events may have
	// been appended (signals may coalesce; spurious ones are fine). The
	// channel stops receiving when ctx is done. A driver that can signal no
	// more (a lost connection) may close it: the subscription then polls.
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// LimitReporter is an optional Driver capability that states the backend's
// own limits. The Store checks them before calling Append, so a batch over a
// limit is rejected whole with eventstore.ErrEventTooLarge or
// eventstore.ErrBatchTooLarge. Without it only the Store's own limits apply.
type LimitReporter interface {
	Limits() Limits
}

// Limits are a backend's own limits; a zero field means no limit.
type Limits struct {
	MaxEventSize    int // bytes of data plus metadata in one event
	MaxAppendEvents int // events in one append
	MaxAppendSize   int // bytes of data plus metadata in one append
}

// Importer is an optional Driver capability: writing events recorded
// elsewhere with their stream versions, event IDs and recorded times, as a
// migration does. Without it, eventstore.Store.Import returns
// eventstore.ErrNotSupported and callers fall back to Append, which stamps
// its own times.
type Importer interface {
	// Import writes req.Events in order, all or none, giving them positions
	// in that order (with the same no-skip guarantee as Append). For each
	// stream in the request, the stream's version must be one less than the
	// version of its first event in the request, except that a driver that
	// is also a StreamTruncater lets a stream at version 0 start later,
	// after every version it ever had (a deleted stream's last one): the
	// versions before count as truncated, which is how a truncated stream
	// is copied. Otherwise Import returns a
	// *eventstore.WrongExpectedVersionError for such a stream (Expected is
	// eventstore.Exact of that version, Actual the stream's) and writes
	// nothing. Recorded times are stored as given. Watchers are signalled as
	// after an append.
	Import(ctx context.Context, req ImportRequest) error
}

// PageSizer is an optional Driver capability: how many events the Store
// asks for in one page of ReadStream, ReadAll and ReadAllScan (the Limit
// of a StreamQuery or AllQuery), when the read wants that many or more.
// A backend whose pages cost mostly their round trip reads more per page.
// Pages stay bounded in bytes (MaxBytes) whatever their size. Without it,
// or when PageSize returns less than 1, the Store reads pages of 512 events.
type PageSizer interface {
	PageSize() int
}

// ScanReader is an optional Driver capability for filtered reads of the
// global log: a page that also says how far the driver looked. With it a
// filtered subscription moves its checkpoint past events it does not want,
// instead of scanning them again on every wake-up, and a read costs a
// bounded scan per page. Without it the Store pages with ReadAll, whose
// filtered pages say nothing about what was passed over.
type ScanReader interface {
	// ReadAllScan reads forwards (q.Backwards is false) like ReadAll, and
	// may stop early after examining a bounded number of events of its
	// choosing (a few thousand), returning fewer than q.Limit events.
	// Scanned in the result must never pass a position where an event not
	// yet visible could still appear: reading after Scanned later must see
	// every event after it, as for the positions of events read.
	ReadAllScan(ctx context.Context, q AllQuery) (ScanPage, error)
}

// ScanPage is the result of ScanReader.ReadAllScan.
type ScanPage struct {
	// Events are the events that match q.Filter, in position order, at most
	// q.Limit of them and bounded by q.MaxBytes as ReadAll's.
	Events []RecordedEvent
	// Scanned is the position of the last event examined, matching or not
	// (at or after the last of Events); zero when none was examined. The
	// next page may start after it.
	Scanned Position
	// End reports that the scan reached the end of the range: nothing after
	// Scanned (up to q.Before) was visible. It is false when the driver
	// stopped at q.Limit, q.MaxBytes or its own scan bound.
	End bool
}

// CheckpointManager is an optional Driver capability: listing and deleting
// the checkpoints saved with SaveCheckpoint. Without it,
// eventstore.Store.Checkpoints and DeleteCheckpoint return
// eventstore.ErrNotSupported; reading and setting one work with every driver
// (LoadCheckpoint, SaveCheckpoint).
type CheckpointManager interface {
	// Checkpoints returns every stored checkpoint, sorted by name.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// DeleteCheckpoint removes the checkpoint saved under name, so that
	// LoadCheckpoint reports none and Checkpoints leaves it out. Deleting a
	// checkpoint that does not exist is not an error. A later
	// SaveCheckpoint under the same name saves it again.
	DeleteCheckpoint(ctx context.Context, name string) error
}

// Checkpoint is a stored checkpoint: the name a subscription saves it under
// and its position.
type Checkpoint struct {
	Name     string
	Position Position
}

// Aser is an optional Driver capability giving access to the native client;
// see eventstore.Store.As. The driver's documentation lists its types.
type Aser interface {
	As(target any) bool
}

// SystemNamer is an optional Driver capability: it names the backend for
// telemetry, as the OpenTelemetry attribute db.system.name ("sqlite",
// "postgresql", "aws.dynamodb", …). Without it the Store uses the URL
// scheme the driver was opened with, or "unknown" for a driver passed to
// eventstore.New.
type SystemNamer interface {
	SystemName() string
}
