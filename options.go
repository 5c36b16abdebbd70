package eventstore

import (
	"log/slog"
	"time"

	"github.com/eventkit/eventstore/driver"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Options configures a [Store]. The zero value is ready to use.
type Options struct {
	// Logger receives what an operator acts on (a subscription falling back
	// to polling, a failed checkpoint write). Nil discards.
	Logger *slog.Logger
	// MaxEventSize caps len(Data)+len(Metadata) of one event. Zero means
	// [DefaultMaxEventSize]; the driver's own limit, when lower, wins.
	MaxEventSize int
	// MaxPageBytes bounds what one page of a read or one subscription batch
	// holds in memory, in bytes of data and metadata: a page ends once it
	// reaches the bound (always one event at least), so large events never
	// multiply into gigabytes. Zero means [DefaultMaxPageBytes].
	MaxPageBytes int
	// TracerProvider receives the Store's spans (append, reads, import,
	// subscription batches and handler calls); see docs/observability.md.
	// Nil means the global provider, otel.GetTracerProvider(), which
	// records nothing unless the application installed an SDK: then no
	// span is started at all.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the Store's metrics (appends, events and
	// bytes appended, conflicts, retries, durations, subscription lag).
	// Nil means the global provider, otel.GetMeterProvider(), a no-op
	// unless the application installed an SDK.
	MeterProvider metric.MeterProvider
}

// DefaultMaxPageBytes is the default bound of a read page or subscription
// batch: 16 MiB of data and metadata.
const DefaultMaxPageBytes = 16 << 20

// DefaultMaxEventSize is the per-event size limit (data plus metadata) when
// neither the options nor the driver set a lower one: 1 MiB, KurrentDB's default.
const DefaultMaxEventSize = 1 << 20

// Limits are the effective limits of a Store. Appends over them fail with
// [ErrEventTooLarge] or [ErrBatchTooLarge] and write nothing.
type Limits struct {
	MaxEventSize    int // bytes of data plus metadata in one event
	MaxAppendEvents int // events in one append; 0 means no limit
	MaxAppendSize   int // bytes of data plus metadata in one append; 0 means no limit
}

// ReadStreamOptions selects events of one stream. The zero value reads the
// whole stream forwards.
type ReadStreamOptions struct {
	// From is the first version to return (inclusive). Zero means the first
	// event when reading forwards and the last when reading backwards.
	From uint64
	// Limit caps how many events are returned; zero means no limit.
	Limit int
	// Backwards reads from From towards version 1.
	Backwards bool
}

// ReadAllOptions selects events of the global log. The zero value reads the
// whole log forwards.
type ReadAllOptions struct {
	// After excludes events at or before this position. Zero: from the start.
	After Position
	// Before excludes events at or after this position. Zero: to the end.
	Before Position
	// Backwards returns events from the newest to the oldest.
	Backwards bool
	// Limit caps how many events are returned; zero means no limit.
	Limit int
	// Filter keeps only some events.
	Filter Filter
}

// Filter selects events of the global log. An empty list does not filter;
// values in one list are alternatives (OR); the two lists combine with AND.
type Filter struct {
	Categories []string // stream categories, see [Category]
	EventTypes []string // exact event types
}

// IsEmpty reports whether f keeps every event.
func (f Filter) IsEmpty() bool { return len(f.Categories) == 0 && len(f.EventTypes) == 0 }

// Matches reports whether f keeps ev.
func (f Filter) Matches(ev RecordedEvent) bool { return driver.Filter(f).Keeps(ev.StreamID, ev.Type) }

// Group makes a subscription one member of a consumer group: member Member of
// Size members receives the events of exactly the streams whose ID hashes
// (FNV-1a, 32 bit) to Member modulo Size, each stream in order. The zero value
// (or Size 1) means no group.
type Group struct {
	Member int
	Size   int
}

// SubscribeOptions configures [Store.Subscribe]. The zero value subscribes to
// the whole log from the start, without a durable checkpoint.
type SubscribeOptions struct {
	// Name makes the subscription durable: its checkpoint is stored in the
	// store under this name (and the group member, if any) and a restart
	// resumes after it. Same rules as a stream ID. Empty: no checkpoint.
	Name string
	// After is where to start when there is no checkpoint: events after it
	// are delivered. Zero: from the start. Ignored when FromEnd is set.
	After Position
	// FromEnd starts at the current end of the log (only new events) when
	// there is no checkpoint. A durable subscription saves that start as its
	// checkpoint at once, so a restart delivers what was appended meanwhile.
	FromEnd bool
	// Filter keeps only some events.
	Filter Filter
	// Group makes this subscription one member of a consumer group.
	Group Group
	// BatchSize is how many events are read per page and handled between
	// checkpoints. Zero means 100.
	BatchSize int
	// PollInterval is the longest wait between polls of the log. Drivers that
	// signal new events wake the subscription at once and the poll only backs
	// them up. Zero means one second.
	PollInterval time.Duration
	// MaxRetryWait is the longest wait between tries after a transient
	// failure (an error matching [ErrTransient]): the waits grow from 50 ms,
	// doubling, with full jitter, up to it. Zero means [DefaultMaxRetryWait].
	MaxRetryWait time.Duration
	// OnCaughtUp, when set, is called once, from the subscription's
	// goroutine, the first time it has read to the end of the log: what was
	// stored when it started has been handled (a readiness probe, a test).
	// It must return quickly; delivery waits for it.
	OnCaughtUp func(SubscriptionState)
}
