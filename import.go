package eventstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Import writes events that were recorded elsewhere, such as another store
// being migrated, keeping each event's stream, version, ID, type, content
// type, data, metadata and recorded time (a zero RecordedAt means now).
// Metadata need not be a JSON object here, as history written elsewhere
// (KurrentDB, other libraries) may hold other metadata: with
// MetadataContentType JSON it is empty or any valid JSON value (null, an
// array…), with Binary any bytes, and either is kept byte for byte with its
// content type. Appends still take only a JSON object.
// Events of several streams may interleave; the import writes them in the
// order given, all or none, and they get this store's positions in that
// order. Each stream's events in the slice must have consecutive versions,
// the first of them one more than the stream's version in the store.
//
// Errors: [ErrNotSupported] when the driver cannot import ([driver.Importer]) (the memory,
// SQLite, PostgreSQL and DynamoDB drivers can; KurrentDB cannot); [ErrWrongExpectedVersion] when a
// stream is not at the version before its first event; [ErrInvalidArgument]
// or a specific form of it for no events, a bad event, a zero event ID or
// one repeated in a stream, versions that are zero or not consecutive within a stream, or a
// request over [Store.Limits] (which apply to the whole request as to one
// append); [ErrClosed]; the context's error. In every error case nothing was
// written.
func (s *Store) Import(ctx context.Context, events []RecordedEvent) (err error) {
	start := time.Now()
	var span trace.Span
	if tr := s.tel.activeTracer(); tr != nil {
		ctx, span = s.tel.start(ctx, tr, opImport, trace.SpanKindClient, []attribute.KeyValue{attrCount.Int(len(events))})
	}
	defer func() {
		s.tel.imported(ctx, start, err)
		if span != nil {
			end(span, err)
		}
	}()
	return s.importEvents(s.tel.withDriverRetries(ctx, opImport), events)
}

// importEvents is Import without telemetry.
func (s *Store) importEvents(ctx context.Context, events []RecordedEvent) error {
	req, err := validateImport(events, s.limits)
	if err != nil {
		return importErr(err)
	}
	if s.querier == nil && slices.ContainsFunc(req.Events, func(e driver.RecordedEvent) bool { return len(e.Tags) > 0 }) {
		return importErr(fmt.Errorf("event tags: %w", ErrNotSupported))
	}
	if err := ctx.Err(); err != nil {
		return importErr(err)
	}
	if err := s.acquire(); err != nil {
		return importErr(err)
	}
	defer s.release()
	if s.importer == nil {
		return importErr(ErrNotSupported)
	}
	if err := s.importer.Import(ctx, req); err != nil {
		return importErr(err)
	}
	return nil
}

func importErr(err error) error { return fmt.Errorf("eventstore: import: %w", err) }

// validateImport checks an import against the rules and limits, and returns
// the request: a copy of the events with recorded times normalised, and
// where each stream's first event is.
func validateImport(events []RecordedEvent, lim Limits) (driver.ImportRequest, error) {
	if len(events) == 0 {
		return driver.ImportRequest{}, invalid(ErrInvalidArgument, "no events to import")
	}
	if lim.MaxAppendEvents > 0 && len(events) > lim.MaxAppendEvents {
		return driver.ImportRequest{}, invalid(ErrBatchTooLarge, "%d events, over the limit of %d per append", len(events), lim.MaxAppendEvents)
	}
	var firsts []int
	type at struct {
		stream string
		id     uuid.UUID
	}
	next := map[string]uint64{} // stream → the version its next event must have
	seen := make(map[at]int, len(events))
	total := 0
	for i, e := range events {
		if err := ValidateStreamID(e.StreamID); err != nil {
			return driver.ImportRequest{}, eventErr(i, err)
		}
		ev := Event{Type: e.Type, ContentType: e.ContentType, Data: e.Data, Metadata: e.Metadata, Tags: e.Tags}
		if err := checkEvent(ev, importedMetadata(e.MetadataContentType), lim); err != nil {
			return driver.ImportRequest{}, eventErr(i, err)
		}
		total += len(e.Data) + len(e.Metadata)
		if e.ID == uuid.Nil {
			return driver.ImportRequest{}, eventErr(i, invalid(ErrInvalidArgument, "zero event id: an imported event keeps its id"))
		}
		if j, dup := seen[at{e.StreamID, e.ID}]; dup {
			return driver.ImportRequest{}, eventErr(i, invalid(ErrInvalidArgument, "event id %s repeats event %d of stream %q", e.ID, j, e.StreamID))
		}
		seen[at{e.StreamID, e.ID}] = i
		if e.Version == 0 {
			return driver.ImportRequest{}, eventErr(i, invalid(ErrInvalidVersion, "version 0: versions start at 1"))
		}
		if want, ok := next[e.StreamID]; !ok {
			firsts = append(firsts, i)
		} else if e.Version != want {
			return driver.ImportRequest{}, eventErr(i, invalid(ErrInvalidVersion, "stream %q: version %d follows version %d in the request", e.StreamID, e.Version, want-1))
		}
		next[e.StreamID] = e.Version + 1
	}
	if err := checkAppendSize(total, lim); err != nil {
		return driver.ImportRequest{}, err
	}
	now := driver.Now()
	out := make([]driver.RecordedEvent, len(events))
	for i, e := range events {
		e.Position = Position{}
		if e.RecordedAt.IsZero() {
			e.RecordedAt = now
		} else {
			e.RecordedAt = e.RecordedAt.UTC().Truncate(time.Microsecond)
		}
		out[i] = recordedToDriver(e)
	}
	return driver.ImportRequest{Events: out, Firsts: firsts}, nil
}
