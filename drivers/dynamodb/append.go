package dynamodb

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

// maxConflicts bounds how often one append is evaluated again after
// concurrent appends to its stream took the versions it wanted (only Any and
// StreamExists appends can lose more than once).
const maxConflicts = 100

// Append implements [driver.Driver]. It first looks the batch's first
// event ID up in the stream (a strongly consistent query of the by_id
// index), so a retry of an append that already succeeded returns the original
// result. Otherwise it finds the version to write at (for Any and
// StreamExists, by reading the stream's version) and hands the append to the
// committer, which writes it in one transaction. When a concurrent append took
// the versions first, the append is evaluated again: it returns a
// *[eventstore.WrongExpectedVersionError] with the actual version, or, for Any
// and StreamExists, tries at the new version.
func (d *Driver) Append(ctx context.Context, req driver.AppendRequest) (driver.AppendResult, error) {
	if n := eventsTagsBytes(req.Events); n > maxEntryTagsBytes {
		return driver.AppendResult{}, fmt.Errorf("dynamodb: %w: the append's tags take %d bytes, over %d per log entry", eventstore.ErrBatchTooLarge, n, maxEntryTagsBytes)
	}
	ret := d.readRetention(ctx, req.Stream) // see retention.go
	defer ret.wait()
	// A single-event append at Exact(n) written as one PutItem reads
	// version n first: in parallel with the ID lookup (see unplaced.go).
	prev := d.prefetchPrevious(ctx, req)
	defer prev.wait()
	var conflict error // the native error of the last conflict
	for attempt := 0; ; attempt++ {
		if attempt > 0 || !d.indexed || req.Expected.Kind() != driver.ExpectExact || d.known.lookupNeeded(req.Stream, req.Expected.Version(), req.Events[0].ID) {
			res, found, err := d.retried(ctx, req, conflict)
			if err != nil || found {
				return res, err
			}
		}
		var first uint64
		check, recreate := false, false
		if req.Expected.Kind() == driver.ExpectExact {
			v := req.Expected.Version()
			first, check = v+1, v > 0
			if attempt > 0 {
				t, err := d.top(ctx, req.Stream)
				if err != nil {
					return driver.AppendResult{}, wrapNative(err)
				}
				if t.version != v {
					return driver.AppendResult{}, wrongVersion(req, t.version, conflict)
				}
				if t.last != v {
					// A deleted stream (version 0) is recreated after its
					// last version (see retention.go).
					first, check, recreate = t.last+1, false, t.deleted
				}
			}
		} else {
			t, err := d.top(ctx, req.Stream)
			if err != nil {
				return driver.AppendResult{}, wrapNative(err)
			}
			if !req.Expected.Matches(t.version) {
				return driver.AppendResult{}, wrongVersion(req, t.version, conflict)
			}
			first, recreate = t.last+1, t.deleted
		}
		r := newRequest(req.Stream, first, check, req.Events, req.RecordedAt)
		r.runs[0].overFence = recreate // in place of its fence (see fence.go)
		r.plain = true
		if attempt == 0 {
			r.prev = prev
		}
		o := d.submit(ctx, r)
		switch {
		case o.err != nil && !o.conflict:
			return driver.AppendResult{}, o.err
		case !o.conflict:
			if d.indexed {
				d.known.appended(req.Stream, first, req.Events) // see known.go
			}
			d.afterAppend(ctx, req.Stream, ret, req.RecordedAt)
			return driver.AppendResult{
				Version:  first + uint64(len(req.Events)) - 1,
				Position: driver.Position{Commit: o.last},
			}, nil
		}
		conflict = o.err
		if attempt >= maxConflicts {
			return driver.AppendResult{}, fmt.Errorf("dynamodb: gave up after %d concurrent appends took the versions first: %w", attempt+1, o.err)
		}
	}
}

func wrongVersion(req driver.AppendRequest, actual uint64, native error) error {
	return &eventstore.WrongExpectedVersionError{Stream: req.Stream, Expected: eventstore.ExpectedVersion(req.Expected), Actual: actual, Err: native}
}

// retried recognises a retry of an append that already succeeded: the
// batch's first event ID is in the stream. If, from one of its occurrences,
// the stream holds the batch's IDs in order (and, for an exact expectation,
// the first one at the expected version + 1), the append already happened:
// with the batch's content it returns the original result with found set,
// and with other content a *DuplicateEventIDError. If the ID is in the
// stream otherwise, the append conflicts. The lookup does not depend on how
// long ago the append was made (unlike a ClientRequestToken, which DynamoDB
// remembers for ten minutes).
func (d *Driver) retried(ctx context.Context, req driver.AppendRequest, native error) (driver.AppendResult, bool, error) {
	versions, err := d.versionsOf(ctx, req.Stream, req.Events[0].ID)
	if err != nil || len(versions) == 0 {
		return driver.AppendResult{}, false, wrapNative(err)
	}
	// The IDs of a deleted stream's events are forgotten, also while its
	// sweep is removing them; those of truncated events are kept in stubs
	// (see retention.go), which make the retry fail below.
	m, err := d.meta(ctx, req.Stream)
	if err != nil {
		return driver.AppendResult{}, false, wrapNative(err)
	}
	if m.forget {
		if versions = slices.DeleteFunc(versions, func(v uint64) bool { return v < m.firstKept }); len(versions) == 0 {
			return driver.AppendResult{}, false, nil
		}
	}
	var changed error // the first occurrence with the batch's IDs but other content
	for _, v := range versions {
		if req.Expected.Kind() == driver.ExpectExact && v != req.Expected.Version()+1 {
			continue
		}
		stored, err := d.eventsFrom(ctx, req.Stream, v, len(req.Events))
		if err != nil {
			return driver.AppendResult{}, false, wrapNative(err)
		}
		if len(stored) != len(req.Events) || !slices.EqualFunc(stored, req.Events, func(s driver.RecordedEvent, e driver.Event) bool { return s.ID == e.ID }) {
			continue
		}
		if err := driver.CheckRetry(stored, req.Events); err != nil {
			if changed == nil {
				changed = err
			}
			continue
		}
		last := stored[len(stored)-1]
		if d.indexed && last.Position.IsZero() {
			// Written, not placed yet: wait for it as the append did.
			p, err := d.awaitPlaced(ctx, req.Stream, last.Version)
			if err != nil {
				return driver.AppendResult{}, false, err
			}
			last.Position = driver.Position{Commit: p}
		}
		return driver.AppendResult{Version: last.Version, Position: last.Position}, true, nil
	}
	if changed != nil {
		return driver.AppendResult{}, false, changed
	}
	actual, err := d.streamVersion(ctx, req.Stream)
	if err != nil {
		return driver.AppendResult{}, false, wrapNative(err)
	}
	return driver.AppendResult{}, false, wrongVersion(req, actual, native)
}

// versionsOf returns the versions at which an event ID occurs in a stream,
// from a strongly consistent query of the by_id index.
func (d *Driver) versionsOf(ctx context.Context, stream string, id uuid.UUID) ([]uint64, error) {
	in := &awsdynamodb.QueryInput{
		IndexName:              aws.String(indexByID),
		KeyConditionExpression: aws.String("pk = :s AND id = :i"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s": str(stream), ":i": bin(bytes.Clone(id[:])),
		},
	}
	var versions []uint64
	for {
		out, err := d.query(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, item := range out.Items {
			v, err := getNum(item, attrSK)
			if err != nil {
				return nil, err
			}
			versions = append(versions, v)
		}
		if out.LastEvaluatedKey == nil {
			return versions, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// eventsFrom returns up to n events of a stream from version from on, with
// their content, for comparing them with a retry. A Query page reads at most
// 1 MB of items, so a batch of large events takes several pages.
func (d *Driver) eventsFrom(ctx context.Context, stream string, from uint64, n int) ([]driver.RecordedEvent, error) {
	in := &awsdynamodb.QueryInput{
		KeyConditionExpression: aws.String("pk = :s AND sk BETWEEN :a AND :b"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s": str(stream), ":a": num(from), ":b": num(from + uint64(n) - 1),
		},
	}
	evs := make([]driver.RecordedEvent, 0, n)
	for {
		out, err := d.query(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, item := range out.Items {
			if isStub(item) {
				continue // a removed event (see retention.go)
			}
			ev, err := decodeEvent(item)
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev)
		}
		if out.LastEvaluatedKey == nil {
			return evs, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
