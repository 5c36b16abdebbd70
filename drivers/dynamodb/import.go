package dynamodb

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

var _ driver.Importer = (*Driver)(nil)

// Import implements [driver.Importer]: the whole request is one
// TransactWriteItems, sent by the committer like an append. The request's
// events are cut into runs (consecutive events of one stream); the
// transaction puts one log entry covering all of them at the next free
// positions, in request order (a single run's entry looks like an append's;
// several runs' entry lists them), and one conditional put per event with
// its given version, ID and recorded time. The committer treats the import
// as one request with several streams: it may share a transaction with
// appends of other streams, but it is never split, so its events share one
// fate, and a cancelled transaction writes none of them.
//
// Each stream must be at the version before its first event. Version first
// itself is guarded by the put's attribute_not_exists; that version first-1
// exists is read before the transaction, with one strongly consistent
// BatchGetItem for the streams that do not start at version 1 (a version,
// once seen, never goes away), instead of a ConditionCheck per stream in the
// transaction. So an import takes its events plus one item, and every
// request within [Driver.Limits] fits DynamoDB's 100 items per transaction,
// however its streams interleave. Only its bytes can exceed the 4 MB: an
// import near MaxAppendSize whose log entry lists many runs of long stream
// IDs and event types is rejected whole with [eventstore.ErrBatchTooLarge].
//
// When a stream is not at the version, Import returns a
// *[eventstore.WrongExpectedVersionError] for the first such stream of the
// request, with the actual version read after the failed check or the
// cancelled transaction. The by_id index is maintained by DynamoDB from the
// event items, so a later retried append of the same events is recognised.
// Watchers are signalled once the transaction commits.
func (d *Driver) Import(ctx context.Context, req driver.ImportRequest) error {
	runs, streams := importRuns(req.Events)
	r := newRunsRequest(runs, false)
	if r.actions > maxTxnItems || r.size > maxTxnSize || r.tagBytes > maxEntryTagsBytes {
		return fmt.Errorf("dynamodb: %w: an import of %d events in %d runs takes %d items and about %d bytes, over a transaction's %d items and %d bytes",
			eventstore.ErrBatchTooLarge, r.count, len(runs), r.actions, r.size, maxTxnItems, maxTxnSize)
	}
	if err := d.checkImportVersions(ctx, streams); err != nil {
		return err
	}
	rets := make([]*retentionAfterAppend, len(streams))
	for i, s := range streams {
		rets[i] = d.readRetention(ctx, s.stream) // see retention.go
		defer rets[i].wait()
	}
	o := d.submit(ctx, r)
	if o.err == nil && !o.conflict {
		for i, s := range streams {
			d.afterAppend(ctx, s.stream, rets[i], time.Now())
		}
		return nil
	}
	if !o.conflict {
		return o.err
	}
	return d.importConflict(ctx, streams, o.err)
}

// importStream is what an import writes to one stream: its events from
// version first on, in order.
type importStream struct {
	stream string
	first  uint64
	events []driver.Event
}

// importRuns cuts events into runs of consecutive events of one stream and
// lists the streams in the order they first appear.
func importRuns(events []driver.RecordedEvent) ([]run, []importStream) {
	var runs []run
	var streams []importStream
	index := map[string]int{}
	for i, e := range events {
		if i == 0 || e.StreamID != events[i-1].StreamID {
			// An import may write a deleted stream after its last
			// version (see importGap), in place of its fence.
			runs = append(runs, run{stream: e.StreamID, first: e.Version, overFence: true})
		}
		rn := &runs[len(runs)-1]
		ev := driver.Event{ID: e.ID, Type: e.Type, ContentType: e.ContentType, Data: e.Data, Metadata: e.Metadata, Tags: e.Tags}
		rn.events = append(rn.events, ev)
		rn.times = append(rn.times, e.RecordedAt)
		if e.MetadataContentType != driver.JSON && rn.metaTypes == nil {
			rn.metaTypes = make([]driver.ContentType, len(rn.events)-1, cap(rn.events))
		}
		if rn.metaTypes != nil {
			rn.metaTypes = append(rn.metaTypes, e.MetadataContentType)
		}
		k, ok := index[e.StreamID]
		if !ok {
			k = len(streams)
			index[e.StreamID] = k
			streams = append(streams, importStream{stream: e.StreamID, first: e.Version})
		}
		streams[k].events = append(streams[k].events, ev)
	}
	return runs, streams
}

// checkImportVersions checks that every stream that does not start at
// version 1 has the version before its first event, with one strongly
// consistent read of those items (an import has at most maxTxnItems-2
// events, so at most that many such streams, within one BatchGetItem).
func (d *Driver) checkImportVersions(ctx context.Context, streams []importStream) error {
	var keys []eventKey
	for _, s := range streams {
		if s.first > 1 {
			keys = append(keys, eventKey{stream: s.stream, version: s.first - 1})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	found := map[string]bool{}
	for chunk := range slices.Chunk(keys, maxBatchGet) {
		items, err := d.batchGet(ctx, chunk, "pk, sk")
		if err != nil {
			return wrapNative(err)
		}
		for _, item := range items {
			s, err := getStr(item, attrPK)
			if err != nil {
				return fmt.Errorf("dynamodb: import: %w", err)
			}
			found[s] = true
		}
	}
	for _, s := range streams {
		if s.first > 1 && !found[s.stream] {
			// A stream at version 0 may start later (see importGap).
			ok, actual, err := d.importGap(ctx, s.stream, s.first)
			if err != nil {
				return err
			}
			if !ok {
				return &eventstore.WrongExpectedVersionError{Stream: s.stream, Expected: eventstore.Exact(s.first - 1), Actual: actual}
			}
		}
	}
	return nil
}

// importConflict sorts out an import whose transaction was cancelled by a
// failed condition on an event item: a stream that is no longer at the
// version before its first event gets the error. If every stream holds the
// import's own events (the same IDs with the same content), the import was
// written after all (a transaction whose response was lost, sent again, and
// not recognised by its token), and it succeeded.
func (d *Driver) importConflict(ctx context.Context, streams []importStream, native error) error {
	ours := 0
	for _, s := range streams {
		actual, err := d.streamVersion(ctx, s.stream)
		if err != nil {
			return wrapNative(err)
		}
		if actual == s.first-1 {
			continue
		}
		if actual >= s.first+uint64(len(s.events))-1 {
			stored, err := d.eventsFrom(ctx, s.stream, s.first, len(s.events))
			if err != nil {
				return wrapNative(err)
			}
			sameIDs := slices.EqualFunc(stored, s.events, func(st driver.RecordedEvent, e driver.Event) bool { return st.ID == e.ID })
			if sameIDs && driver.CheckRetry(stored, s.events) == nil {
				ours++
				continue
			}
		}
		return &eventstore.WrongExpectedVersionError{Stream: s.stream, Expected: eventstore.Exact(s.first - 1), Actual: actual, Err: native}
	}
	if ours == len(streams) {
		return nil
	}
	return fmt.Errorf("dynamodb: import: the transaction was cancelled by a failed condition, yet no stream has moved past the import's versions: %w", native)
}
