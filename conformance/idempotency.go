package conformance

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/eventkit/eventstore"
)

// Rules of docs/semantics.md "Idempotent retries": retrying an append with
// the same event IDs in the same order returns the original result and
// writes nothing; anything else that reuses an append's first ID conflicts.
// A retry whose IDs match but whose content (type, content type, data or
// metadata) differs is not a retry: it fails with ErrDuplicateEventID.
// A batch whose first ID sits inside an earlier batch is left to the driver
// (the rule allows both answers), so no rule here appends one.

func init() { ruleSets = append(ruleSets, idempotencyRules) }

func idempotencyRules() []rule {
	return []rule{
		{name: "RetryReturnsOriginalResult", run: testRetryImmediately},
		{name: "RetryWithGeneratedIDsReturnsOriginalResult", run: testRetryWithGeneratedIDs},
		{name: "RetryOfLargeBatchReturnsOriginalResult", run: testRetryLargeBatch},
		{name: "RetryExactAfterLaterAppends", run: testRetryExactAfterLaterAppends},
		{name: "RetryAnyAfterLaterAppends", requires: DurableIdempotencyAny, run: testRetryAnyAfterLaterAppends},
		{name: "RetryWithDifferentLaterIDConflicts", run: testRetryDifferentLaterID},
		{name: "RetryWithLongerBatchConflicts", run: testRetryLongerBatch},
		{name: "RetryAtOtherExactVersionConflicts", run: testRetryOtherExactVersion},
		{name: "StaleAppendWithNewIDsConflicts", run: testStaleNewIDs},
		{name: "DuplicateIDsInBatchRejected", run: testDuplicateIDsInBatch},
		{name: "RetryWithDifferentContentRejected", run: testRetryDifferentContent},
		{name: "RetryWithDifferentContentAfterLaterAppendsRejected", run: testRetryDifferentContentLater},
		{name: "RetryWithEmptyForNilPayloadsReturnsOriginalResult", run: testRetryEmptyForNil},
		{name: "RetryWithOtherTraceContextReturnsOriginalResult", run: testRetryOtherTraceContext},
		{name: "RetryWithDifferentContentThroughAnotherStoreRejected", requires: DurableRetryContentCheck, run: testRetryDifferentContentElsewhere},
	}
}

// retryCase is an append made to a stream already holding prior events,
// then retried.
type retryCase struct {
	name     string
	prior    int // events in the stream before the append
	expected eventstore.ExpectedVersion
}

// retryCases covers every kind of expectation.
func retryCases() []retryCase {
	return []retryCase{
		{"NoStream", 0, eventstore.NoStream},
		{"Exact(0)", 0, eventstore.Exact(0)},
		{"Exact(3)", 3, eventstore.Exact(3)},
		{"AnyOnNewStream", 0, eventstore.Any},
		{"Any", 3, eventstore.Any},
		{"StreamExists", 3, eventstore.StreamExists},
	}
}

// setUpRetry makes a stream with tc.prior events, appends a batch of 3 with
// tc.expected and returns the stream, the batch and the result.
func setUpRetry(f *fixture, tc retryCase) (string, []eventstore.Event, eventstore.AppendResult) {
	f.t.Helper()
	s := stream("")
	if tc.prior > 0 {
		f.mustAppend(s, eventstore.NoStream, events(tc.prior, "Prior")...)
	}
	batch := events(3, "Retried")
	return s, batch, f.mustAppend(s, tc.expected, batch...)
}

// checkRetry retries batch at expected and checks it returns orig and writes nothing.
func checkRetry(f *fixture, doing, s string, expected eventstore.ExpectedVersion, batch []eventstore.Event, orig eventstore.AppendResult) {
	t := f.t
	t.Helper()
	before := f.state(s)
	res, err := f.store.Append(f.ctx, s, expected, batch...)
	if err != nil {
		t.Fatalf("%s: want the original result, got %v", doing, err)
	}
	if res.Version != orig.Version || res.Position != orig.Position || !sameIDs(idStrings(res.EventIDs), idStrings(orig.EventIDs)) {
		t.Errorf("%s: want the original result {Version: %d, Position: %s, EventIDs: %v}, got {Version: %d, Position: %s, EventIDs: %v}",
			doing, orig.Version, orig.Position, orig.EventIDs, res.Version, res.Position, res.EventIDs)
	}
	f.checkNothingWritten(doing, before)
}

func testRetryImmediately(t *testing.T, f *fixture) {
	for _, tc := range retryCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			s, batch, orig := setUpRetry(f, tc)
			doing := fmt.Sprintf("retry an append of 3 events at %s to a stream at version %d", expectationName(tc.expected), tc.prior)
			checkRetry(f, doing, s, tc.expected, batch, orig)
			checkRetry(f, doing+" a second time", s, tc.expected, batch, orig)
			// The stream is not wedged by the retries.
			next := f.mustAppend(s, eventstore.Exact(orig.Version), events(1, "Next")...)
			if next.Version != orig.Version+1 {
				t.Errorf("append after the retries: want version %d, got %d", orig.Version+1, next.Version)
			}
		})
	}
}

func testRetryLargeBatch(t *testing.T, f *fixture) {
	// A batch of several megabytes, within the limits: more than one page of
	// what a backend reads back to recognise the retry (DynamoDB's 1 MB).
	const n = 5
	size := f.largeEventSize(n)
	for _, tc := range retryCases() {
		if tc.name == "Exact(0)" || tc.name == "AnyOnNewStream" {
			continue // as NoStream, for this rule
		}
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			s := stream("")
			if tc.prior > 0 {
				f.mustAppend(s, eventstore.NoStream, events(tc.prior, "Prior")...)
			}
			batch := make([]eventstore.Event, n)
			for i := range batch {
				batch[i] = eventstore.Event{ID: eventstore.NewEvent("", nil).ID, Type: "Large", ContentType: eventstore.Binary, Data: randomBytes(size)}
			}
			orig := f.mustAppend(s, tc.expected, batch...)
			doing := fmt.Sprintf("retry an append of %d events of %d bytes at %s to a stream at version %d", n, size, expectationName(tc.expected), tc.prior)
			checkRetry(f, doing, s, tc.expected, batch, orig)
		})
	}
}

// largeEventSize returns the size of data, up to 300 kB, that n events of
// one write can each have within the store's limits, leaving room for a
// driver's own overhead per event (names, types). It skips the rule when
// the store takes fewer than n events per write.
func (f *fixture) largeEventSize(n int) int {
	f.t.Helper()
	lim := f.store.Limits()
	if lim.MaxAppendEvents > 0 && lim.MaxAppendEvents < n {
		f.t.Skipf("the driver takes at most %d events per write", lim.MaxAppendEvents)
	}
	size := min(lim.MaxEventSize, 300_000)
	if lim.MaxAppendSize > 0 {
		size = min(size, lim.MaxAppendSize/n-1024)
	}
	return size
}

func testRetryWithGeneratedIDs(t *testing.T, f *fixture) {
	s := stream("")
	batch := events(2, "Generated")
	batch[0].ID, batch[1].ID = noID, noID
	orig := f.mustAppend(s, eventstore.NoStream, batch...)
	// The client learns the IDs from the result and retries with them.
	for i := range batch {
		batch[i].ID = orig.EventIDs[i]
	}
	checkRetry(f, "retry at NoStream an append whose IDs the store generated, with those IDs", s, eventstore.NoStream, batch, orig)
}

func testRetryExactAfterLaterAppends(t *testing.T, f *fixture) {
	for _, tc := range retryCases() {
		if !isExact(tc.expected) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			s, batch, orig := setUpRetry(f, tc)
			f.mustAppend(s, eventstore.Exact(orig.Version), events(2, "Later")...)
			doing := fmt.Sprintf("retry an append of 3 events at %s after 2 later events", expectationName(tc.expected))
			checkRetry(f, doing, s, tc.expected, batch, orig)
			f.mustAppend(s, eventstore.Any, events(1, "Later")...)
			checkRetry(f, doing+" and 1 more", s, tc.expected, batch, orig)
		})
	}
}

func testRetryAnyAfterLaterAppends(t *testing.T, f *fixture) {
	for _, tc := range retryCases() {
		if isExact(tc.expected) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			s, batch, orig := setUpRetry(f, tc)
			// Another writer appends in between.
			f.mustAppend(s, eventstore.Any, events(2, "Later")...)
			doing := fmt.Sprintf("retry an append of 3 events at %s after 2 later events", expectationName(tc.expected))
			checkRetry(f, doing, s, tc.expected, batch, orig)
		})
	}
}

// checkRetryConflicts appends batch at expected and checks it is rejected as
// a wrong expected version for a stream at version actual, writing nothing.
func checkRetryConflicts(f *fixture, doing, s string, expected eventstore.ExpectedVersion, actual uint64, batch []eventstore.Event) {
	f.t.Helper()
	before := f.state(s)
	_, err := f.store.Append(f.ctx, s, expected, batch...)
	checkWrongVersion(f.t, doing, err, s, expected, actual)
	f.checkNothingWritten(doing, before)
}

func testRetryDifferentLaterID(t *testing.T, f *fixture) {
	for _, tc := range retryCases() {
		for _, changed := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/Event%d", tc.name, changed), func(t *testing.T) {
				f := f.sub(t)
				s, batch, orig := setUpRetry(f, tc)
				retry := append([]eventstore.Event(nil), batch...)
				retry[changed] = eventstore.NewEvent("Retried", []byte(`{}`))
				doing := fmt.Sprintf("retry at %s an append of 3 events with event %d's ID changed", expectationName(tc.expected), changed)
				checkRetryConflicts(f, doing, s, tc.expected, orig.Version, retry)
				// Nor does the rejection spoil a true retry.
				checkRetry(f, "after that was rejected, retry with the original IDs", s, tc.expected, batch, orig)
			})
		}
	}
}

func testRetryLongerBatch(t *testing.T, f *fixture) {
	for _, tc := range retryCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			s, batch, orig := setUpRetry(f, tc)
			longer := append(append([]eventstore.Event(nil), batch...), events(1, "Extra")...)
			doing := fmt.Sprintf("retry at %s an append of 3 events with a 4th event added", expectationName(tc.expected))
			checkRetryConflicts(f, doing, s, tc.expected, orig.Version, longer)
		})
	}
}

func testRetryOtherExactVersion(t *testing.T, f *fixture) {
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(2, "Prior")...)
	batch := events(2, "Retried")
	f.mustAppend(s, eventstore.Exact(2), batch...)
	// The batch sits at versions 3 and 4: a retry must expect version 2.
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exact(1), eventstore.Exact(3), eventstore.Exact(4), eventstore.Exact(9)} {
		doing := fmt.Sprintf("append at %s the 2 events already at versions 3 and 4 of a stream at version 4", expectationName(exp))
		checkRetryConflicts(f, doing, s, exp, 4, batch)
	}
}

func testStaleNewIDs(t *testing.T, f *fixture) {
	s := stream("")
	first := f.mustAppend(s, eventstore.NoStream, events(2, "First")...)
	f.mustAppend(s, eventstore.Exact(first.Version), events(2, "Second")...)
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exact(2)} {
		doing := fmt.Sprintf("append new events at the stale %s to a stream at version 4", expectationName(exp))
		checkRetryConflicts(f, doing, s, exp, 4, events(2, "Stale"))
	}
	// Reusing an ID of the stream anywhere but first does not make a retry.
	reuse := events(2, "Stale")
	reuse[1].ID = f.readStream(s)[0].ID
	checkRetryConflicts(f, "append at the stale Exact(2) a batch whose 2nd ID is already at version 1", s, eventstore.Exact(2), 4, reuse)
}

func testDuplicateIDsInBatch(t *testing.T, f *fixture) {
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(1, "Prior")...)
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Exact(1), eventstore.Any} {
		batch := events(3, "Twice")
		batch[2].ID = batch[0].ID
		doing := fmt.Sprintf("append at %s a batch of 3 events whose 1st and 3rd share an ID", expectationName(exp))
		before := f.state(s)
		_, err := f.store.Append(f.ctx, s, exp, batch...)
		checkInvalid(t, doing, err, eventstore.ErrInvalidArgument)
		f.checkNothingWritten(doing, before)
	}
}

// contentChange changes one field of an event's content.
type contentChange struct {
	field  string // as DuplicateEventIDError.Field names it
	change func(e *eventstore.Event)
}

// contentChanges covers every field of an event's content. Each change is
// small: the data gains a trailing space, still the same JSON value.
func contentChanges() []contentChange {
	return []contentChange{
		{"type", func(e *eventstore.Event) { e.Type += "Changed" }},
		{"content type", func(e *eventstore.Event) { e.ContentType = eventstore.Binary }},
		{"data", func(e *eventstore.Event) { e.Data = append(slices.Clone(e.Data), ' ') }},
		{"metadata", func(e *eventstore.Event) { e.Metadata = []byte(`{"changed":true}`) }},
	}
}

// changed returns a copy of batch whose event i has ch applied.
func changed(batch []eventstore.Event, i int, ch contentChange) []eventstore.Event {
	out := slices.Clone(batch)
	ch.change(&out[i])
	return out
}

// checkRetryRejected appends retry, a batch with the IDs of an earlier
// append whose event at version want.Version has other content in field
// want.Field, and checks it fails with a *DuplicateEventIDError saying so,
// leaving the stream and the log exactly as they were.
func checkRetryRejected(f *fixture, doing, s string, expected eventstore.ExpectedVersion, retry []eventstore.Event, want eventstore.DuplicateEventIDError) {
	t := f.t
	t.Helper()
	before := f.state(s)
	_, err := f.store.Append(f.ctx, s, expected, retry...)
	if !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("%s: want an error matching ErrDuplicateEventID, got %v", doing, err)
	}
	var de *eventstore.DuplicateEventIDError
	if !errors.As(err, &de) {
		t.Fatalf("%s: want a *DuplicateEventIDError, got %T: %v", doing, err, err)
	}
	if de.Stream != s || de.ID != want.ID || de.Version != want.Version || de.Field != want.Field {
		t.Errorf("%s: want DuplicateEventIDError{Stream: %q, ID: %s, Version: %d, Field: %q}, got {Stream: %q, ID: %s, Version: %d, Field: %q}",
			doing, s, want.ID, want.Version, want.Field, de.Stream, de.ID, de.Version, de.Field)
	}
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Errorf("%s: the error also matches ErrWrongExpectedVersion: %v", doing, err)
	}
	sameEvents(t, doing+": the stream afterwards", f.readStream(s), before.events)
	f.checkNothingWritten(doing, before)
}

func testRetryDifferentContent(t *testing.T, f *fixture) {
	// Every expectation with every field changed; the changed event moves
	// through the batch with the field, so each position is covered too
	// without running every combination.
	for _, tc := range retryCases() {
		for n, ch := range contentChanges() {
			i := n % 3
			t.Run(fmt.Sprintf("%s/Event%d/%s", tc.name, i, ch.field), func(t *testing.T) {
				f := f.sub(t)
				s, batch, orig := setUpRetry(f, tc)
				doing := fmt.Sprintf("retry at %s an append of 3 events with the %s of event %d changed", expectationName(tc.expected), ch.field, i)
				want := eventstore.DuplicateEventIDError{ID: batch[i].ID, Version: orig.Version - 2 + uint64(i), Field: ch.field}
				checkRetryRejected(f, doing, s, tc.expected, changed(batch, i, ch), want)
				// Nor does the rejection spoil a true retry.
				checkRetry(f, "after that was rejected, retry with the original events", s, tc.expected, batch, orig)
			})
		}
	}
}

func testRetryDifferentContentLater(t *testing.T, f *fixture) {
	for _, tc := range retryCases() {
		if !isExact(tc.expected) {
			continue // Any and StreamExists: see RetryAnyAfterLaterAppends
		}
		for _, i := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/Event%d", tc.name, i), func(t *testing.T) {
				f := f.sub(t)
				s, batch, orig := setUpRetry(f, tc)
				f.mustAppend(s, eventstore.Exact(orig.Version), events(2, "Later")...)
				ch := contentChanges()[2]
				doing := fmt.Sprintf("retry at %s after 2 later events an append of 3 events with the data of event %d changed", expectationName(tc.expected), i)
				want := eventstore.DuplicateEventIDError{ID: batch[i].ID, Version: orig.Version - 2 + uint64(i), Field: ch.field}
				checkRetryRejected(f, doing, s, tc.expected, changed(batch, i, ch), want)
				checkRetry(f, "after that was rejected, retry with the original events", s, tc.expected, batch, orig)
			})
		}
	}
}

func testRetryEmptyForNil(t *testing.T, f *fixture) {
	for _, tc := range retryCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			s := stream("")
			if tc.prior > 0 {
				f.mustAppend(s, eventstore.NoStream, events(tc.prior, "Prior")...)
			}
			ids := events(2, "")
			batch := []eventstore.Event{
				{ID: ids[0].ID, Type: "Empty"},
				{ID: ids[1].ID, Type: "Empty", Data: []byte{}, Metadata: []byte{}},
			}
			orig := f.mustAppend(s, tc.expected, batch...)
			swapped := []eventstore.Event{
				{ID: ids[0].ID, Type: "Empty", Data: []byte{}, Metadata: []byte{}},
				{ID: ids[1].ID, Type: "Empty"},
			}
			doing := fmt.Sprintf("retry at %s an append of events with nil payloads, sending empty ones instead (and the other way round)", expectationName(tc.expected))
			checkRetry(f, doing, s, tc.expected, swapped, orig)
		})
	}
}

// testRetryOtherTraceContext: the trace context the Store records first in
// the metadata ($traceparent, $tracestate) differs when a retry runs in
// another span, or outside one; it is left out of the comparison
// (docs/semantics.md, docs/observability.md). The events here carry it
// themselves, in the form the Store writes, so the rule runs without a
// tracer.
func testRetryOtherTraceContext(t *testing.T, f *fixture) {
	const (
		first  = `"$traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"`
		second = `"$traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","$tracestate":"k=v"`
	)
	retries := []struct{ name, metadata, emptyMetadata string }{
		{"OtherSpan", `{` + second + `,"n":1}`, `{` + second + `}`},
		{"NoSpan", `{"n":1}`, ``},
	}
	for _, tc := range retryCases() {
		for _, r := range retries {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				f := f.sub(t)
				s := stream("")
				if tc.prior > 0 {
					f.mustAppend(s, eventstore.NoStream, events(tc.prior, "Prior")...)
				}
				batch := events(2, "Traced")
				batch[0].Metadata = []byte(`{` + first + `,"n":1}`)
				batch[1].Metadata = []byte(`{` + first + `}`)
				orig := f.mustAppend(s, tc.expected, batch...)
				retry := slices.Clone(batch)
				retry[0].Metadata, retry[1].Metadata = []byte(r.metadata), []byte(r.emptyMetadata)
				doing := fmt.Sprintf("retry at %s an append whose metadata differs only in the $traceparent first in it (%s)", expectationName(tc.expected), r.name)
				checkRetry(f, doing, s, tc.expected, retry, orig)
			})
		}
	}
}

func testRetryDifferentContentElsewhere(t *testing.T, f *fixture) {
	open := f.reopenable()
	first, second := *f, *f
	first.store, second.store = open(), open()
	for _, tc := range retryCases() {
		t.Run(tc.name, func(t *testing.T) {
			s, batch, orig := setUpRetry(first.sub(t), tc)
			g := second.sub(t)
			ch := contentChanges()[2]
			doing := fmt.Sprintf("retry at %s through another store an append of 3 events with the data of event 0 changed", expectationName(tc.expected))
			want := eventstore.DuplicateEventIDError{ID: batch[0].ID, Version: orig.Version - 2, Field: ch.field}
			checkRetryRejected(g, doing, s, tc.expected, changed(batch, 0, ch), want)
			checkRetry(g, "after that was rejected, retry the original events through that store", s, tc.expected, batch, orig)
		})
	}
}
