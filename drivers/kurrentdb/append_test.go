package kurrentdb_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newStore opens a Store on a server; it is closed when t ends.
func newStore(t testing.TB, url string, opts kurrentdb.Options) *eventstore.Store {
	t.Helper()
	s := eventstore.New(openDriver(t, url, opts), eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// nativeClient returns a client of its own on a server.
func nativeClient(t testing.TB, url string) *kdb.Client {
	t.Helper()
	cfg, err := kdb.ParseConnectionString(url)
	require.NoError(t, err)
	cfg.Logger = kdb.NoopLogging()
	c, err := kdb.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func newEvents(n int) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent("Happened", []byte(`{"n":1}`))
	}
	return evs
}

func readIDs(t testing.TB, s *eventstore.Store, stream string) []string {
	t.Helper()
	var ids []string
	for ev, err := range s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		ids = append(ids, ev.ID.String())
	}
	return ids
}

// The server writes again a batch whose IDs are in the stream when the
// append expects the current version; docs/semantics.md makes it a wrong
// expected version, which the driver checks before writing — from its
// cache when it wrote the stream, by reading it otherwise.
func TestExactAppendOfStoredFirstIDConflicts(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	ctx := t.Context()
	writer := newStore(t, srv.URL(), kurrentdb.Options{})
	batch := newEvents(2)
	_, err := writer.Append(ctx, "Order-1", eventstore.NoStream, batch...)
	require.NoError(t, err)

	stranger := newStore(t, srv.URL(), kurrentdb.Options{}) // knows nothing of the stream
	for name, s := range map[string]*eventstore.Store{"WarmCache": writer, "ColdCache": stranger} {
		for _, retry := range [][]eventstore.Event{batch, {batch[0], eventstore.NewEvent("Other", nil)}, {batch[1]}} {
			_, err := s.Append(ctx, "Order-1", eventstore.Exact(2), retry...)
			var wev *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, err, &wev, name)
			assert.Equal(t, uint64(2), wev.Actual, name)
		}
	}
	assert.Len(t, readIDs(t, writer, "Order-1"), 2, "nothing written")

	// What the server alone does with that append.
	c := nativeClient(t, srv.URL())
	_, err = c.AppendToStream(ctx, "Order-1", kdb.AppendToStreamOptions{StreamState: kdb.StreamRevision{Value: 1}},
		kdb.EventData{EventID: batch[0].ID, EventType: "Happened", ContentType: kdb.ContentTypeJson})
	require.NoError(t, err)
	assert.Len(t, readIDs(t, writer, "Order-1"), 3, "the server writes the ID again")

	// The retry at the right version is still recognised, and the stream
	// goes on.
	res, err := stranger.Append(ctx, "Order-1", eventstore.NoStream, batch...)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res.Version)
	_, err = stranger.Append(ctx, "Order-1", eventstore.Exact(3), newEvents(1)...)
	require.NoError(t, err)
}

// fillStream appends n small events to a stream through the native client,
// in batches, and returns their IDs in version order.
func fillStream(t testing.TB, c *kdb.Client, stream string, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, 0, n)
	for len(ids) < n {
		batch := make([]kdb.EventData, min(1000, n-len(ids)))
		for i := range batch {
			batch[i] = kdb.EventData{EventID: uuid.New(), EventType: "Happened", ContentType: kdb.ContentTypeJson, Data: []byte(`{"n":1}`)}
			ids = append(ids, batch[i].EventID)
		}
		_, err := c.AppendToStream(t.Context(), stream, kdb.AppendToStreamOptions{StreamState: kdb.Any{}}, batch...)
		require.NoError(t, err)
	}
	return ids
}

// The check before an Exact(n) append looks only at the last RetryWindow
// versions up to n, so what it reads does not grow with the stream: on a
// stream of 50,000 events, a driver that has not seen it reads at most
// RetryWindow events plus the batch (and one more to report a conflict's
// actual version), and one that has seen it reads nothing. A retry at the
// current version whose first ID is further back is written again, as the
// server alone would (the difference docs/kurrentdb.md states).
func TestExactAppendCheckIsBounded(t *testing.T) {
	const length = 50_000
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{NoSeed: true})
	ids := fillStream(t, nativeClient(t, srv.URL()), "Long-1", length)
	end := uint64(length)
	for _, tc := range []struct {
		name     string
		expected func() uint64 // Exact(expected())
		reuse    func() uint64 // the version whose ID the batch's first event takes, or nil for new IDs
		conflict bool          // else written
	}{
		{"NewEventsAtTheEnd", func() uint64 { return end }, nil, false},
		{"RetryAtTheEndInsideTheWindow", func() uint64 { return end }, func() uint64 { return end - kurrentdb.RetryWindow + 1 }, true},
		{"StaleExpectation", func() uint64 { return 100 }, nil, true},
		{"RetryAtAStaleVersion", func() uint64 { return 100 }, func() uint64 { return 100 }, true},
		{"RetryAtTheEndBeyondTheWindow", func() uint64 { return end }, func() uint64 { return end - kurrentdb.RetryWindow }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, srv.URL(), kurrentdb.Options{}) // has not seen the stream
			batch := newEvents(2)
			if tc.reuse != nil {
				batch[0].ID = ids[tc.reuse()-1]
			}
			// appendCounting appends at Exact(expected) and returns how
			// many reads and events the driver read.
			appendCounting := func(expected uint64, batch []eventstore.Event) (reads, events uint64, err error) {
				before := srv.StreamReadStats()
				_, err = s.Append(t.Context(), "Long-1", eventstore.Exact(expected), batch...)
				after := srv.StreamReadStats()
				if err == nil {
					end += uint64(len(batch))
				}
				return after.Reads - before.Reads, after.Events - before.Events, err
			}
			reads, events, err := appendCounting(tc.expected(), batch)
			bound := uint64(kurrentdb.RetryWindow + len(batch))
			if tc.conflict {
				require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
				bound++ // the actual version
			} else {
				require.NoError(t, err)
			}
			t.Logf("%d reads, %d events read", reads, events)
			assert.LessOrEqual(t, reads, uint64(2), "reads")
			assert.LessOrEqual(t, events, bound, "events read")

			// The next append at the end reads at most the window (none
			// when the driver already read it), and the one after that,
			// checked from memory, nothing.
			reads, events, err = appendCounting(end, newEvents(1))
			require.NoError(t, err)
			assert.LessOrEqual(t, reads, uint64(1), "reads")
			assert.LessOrEqual(t, events, uint64(kurrentdb.RetryWindow+1), "events read")
			reads, events, err = appendCounting(end, newEvents(1))
			require.NoError(t, err)
			assert.Zero(t, reads+events, "reads and events read by a third append")
		})
	}
	assert.Equal(t, int(end), len(readIDs(t, newStore(t, srv.URL(), kurrentdb.Options{}), "Long-1")))
}

// The server counts an event's type twice against its limits; the Store
// does not. The driver applies the server's formula, so a batch the server
// would refuse mid-request (which the client reports as ErrorCodeUnknown)
// fails whole with ErrBatchTooLarge before anything is sent.
func TestAppendChecksTheServersSizeLimits(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{MaxAppendSize: 1 << 20, MaxAppendEventSize: -1}) // 24.10's defaults
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	lim := s.Limits()
	assert.Equal(t, (1<<20)-1024, lim.MaxEventSize)
	assert.Equal(t, 1<<20, lim.MaxAppendSize)
	longType := strings.Repeat("T", eventstore.MaxNameLength)

	_, err := s.Append(t.Context(), "Big-1", eventstore.NoStream,
		eventstore.Event{Type: longType, ContentType: eventstore.Binary, Data: make([]byte, lim.MaxEventSize)})
	require.NoError(t, err, "an event at the reported limit, with the longest type")

	batch := make([]eventstore.Event, 4)
	for i := range batch {
		batch[i] = eventstore.Event{Type: longType, ContentType: eventstore.Binary, Data: make([]byte, 261_700)}
	}
	_, err = s.Append(t.Context(), "Big-2", eventstore.NoStream, batch...)
	assert.ErrorIs(t, err, eventstore.ErrBatchTooLarge, "1,046,800 bytes of data, 1,048,840 as the server counts")
	v, err := s.StreamVersion(t.Context(), "Big-2")
	require.NoError(t, err)
	assert.Zero(t, v, "nothing written")

	c := nativeClient(t, srv.URL())
	evs := make([]kdb.EventData, len(batch))
	for i, e := range batch {
		evs[i] = kdb.EventData{EventType: e.Type, Data: e.Data}
	}
	_, err = c.AppendToStream(t.Context(), "Big-2", kdb.AppendToStreamOptions{}, evs...)
	require.Error(t, err, "the server refuses it")
}

// The errors.go table, provoked on the server.
func TestNativeErrors(t *testing.T) {
	t.Run("RacingAppendersWrongExpectedVersion", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		s := newStore(t, srv.URL(), kurrentdb.Options{})
		gate := make(chan struct{})
		errs := make(chan error, 8)
		var wg sync.WaitGroup
		for range cap(errs) {
			wg.Go(func() {
				<-gate
				_, err := s.Append(context.Background(), "Race-1", eventstore.NoStream, newEvents(2)...)
				errs <- err
			})
		}
		close(gate)
		wg.Wait()
		close(errs)
		wins := 0
		for err := range errs {
			if err == nil {
				wins++
				continue
			}
			var wev *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, err, &wev)
			assert.Equal(t, uint64(2), wev.Actual)
			var native *kdb.Error
			require.ErrorAs(t, err, &native, "the native error is kept")
			assert.Equal(t, kdb.ErrorCodeWrongExpectedVersion, native.Code())
		}
		assert.Equal(t, 1, wins)
	})
	t.Run("ResourceNotFoundReadsEmpty", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		s := newStore(t, srv.URL(), kurrentdb.Options{})
		_, err := s.Append(t.Context(), "Deleted-1", eventstore.NoStream, newEvents(2)...)
		require.NoError(t, err)
		_, err = nativeClient(t, srv.URL()).DeleteStream(t.Context(), "Deleted-1", kdb.DeleteStreamOptions{})
		require.NoError(t, err)
		for _, stream := range []string{"Never-1", "Deleted-1"} {
			assert.Empty(t, readIDs(t, s, stream), stream)
			v, err := s.StreamVersion(t.Context(), stream)
			require.NoError(t, err)
			assert.Zero(t, v, stream)
		}
	})
	t.Run("DeadlineExceeded", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		s := newStore(t, srv.URL()+"&defaultDeadline=100", kurrentdb.Options{})
		_, err := s.Append(t.Context(), "Slow-1", eventstore.NoStream, newEvents(1)...)
		require.NoError(t, err)
		release := srv.HoldAppends()
		defer release()
		batch := newEvents(1)
		_, err = s.Append(t.Context(), "Slow-1", eventstore.Exact(1), batch...)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var native *kdb.Error
		require.ErrorAs(t, err, &native)
		assert.Equal(t, kdb.ErrorCodeDeadlineExceeded, native.Code())
		release()
		// The server may still have written it, all or nothing: a retry
		// with the same IDs tells.
		v, err := s.StreamVersion(t.Context(), "Slow-1")
		require.NoError(t, err)
		assert.Contains(t, []uint64{1, 2}, v)
		res, err := s.Append(t.Context(), "Slow-1", eventstore.Exact(1), batch...)
		require.NoError(t, err)
		assert.Equal(t, uint64(2), res.Version)
	})
	t.Run("StreamDeleted", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		s := newStore(t, srv.URL(), kurrentdb.Options{})
		_, err := s.Append(t.Context(), "Gone-1", eventstore.NoStream, newEvents(1)...)
		require.NoError(t, err)
		_, err = nativeClient(t, srv.URL()).TombstoneStream(t.Context(), "Gone-1", kdb.TombstoneStreamOptions{})
		require.NoError(t, err)
		_, err = s.Append(t.Context(), "Gone-1", eventstore.Any, newEvents(1)...)
		var native *kdb.Error
		require.ErrorAs(t, err, &native)
		assert.Equal(t, kdb.ErrorCodeStreamDeleted, native.Code())
		for _, err := range s.ReadStream(t.Context(), "Gone-1", eventstore.ReadStreamOptions{}) {
			require.ErrorAs(t, err, &native)
			assert.Equal(t, kdb.ErrorCodeStreamDeleted, native.Code())
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		s := newStore(t, srv.URL(), kurrentdb.Options{})
		release := srv.HoldAppends()
		defer release()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := s.Append(ctx, "Cancel-1", eventstore.NoStream, newEvents(1)...)
			done <- err
		}()
		cancel()
		err := <-done
		assert.True(t, errors.Is(err, context.Canceled), "want context.Canceled, got %v", err)
	})
}

// withData returns a copy of evs whose first event has other data.
func withData(evs []eventstore.Event) []eventstore.Event {
	out := append([]eventstore.Event(nil), evs...)
	out[0].Data = []byte(`{"n":2}`)
	return out
}

// checkDuplicateID checks err says the stream's event at version v is
// batch[0] with other data, and that stream still holds want.
func checkDuplicateID(t *testing.T, s *eventstore.Store, stream string, err error, batch []eventstore.Event, v uint64) {
	t.Helper()
	var dup *eventstore.DuplicateEventIDError
	require.ErrorAs(t, err, &dup)
	assert.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
	assert.Equal(t, eventstore.DuplicateEventIDError{Stream: stream, ID: batch[0].ID, Version: v, Field: "data"}, *dup)
	for ev, err := range s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{From: v, Limit: 1}) {
		require.NoError(t, err)
		assert.Equal(t, batch[0].Data, ev.Data, "the stored event keeps its data")
	}
}

// The server takes an append for a retry by its IDs alone. The driver
// compares the content when it knows the events were there before it sent
// them, or that an earlier append with the same first ID went unanswered;
// what it does not know of (an append another process made, at NoStream,
// Any or StreamExists) it cannot tell from a new write without a read on
// every append, so that retry succeeds with the stored content (the gap its
// conformance harness declares as durable-retry-content-check).
func TestRetryWithOtherContent(t *testing.T) {
	t.Run("WrittenByThisDriver", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		s := newStore(t, srv.URL(), kurrentdb.Options{})
		for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
			stream := "Mine-" + exp.String()
			batch := newEvents(2)
			_, err := s.Append(t.Context(), stream, exp, batch...)
			require.NoError(t, err)
			_, err = s.Append(t.Context(), stream, exp, withData(batch)...)
			checkDuplicateID(t, s, stream, err, batch, 1)
		}
	})
	t.Run("ExactReadFromTheServer", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		writer := newStore(t, srv.URL(), kurrentdb.Options{})
		_, err := writer.Append(t.Context(), "Order-1", eventstore.NoStream, newEvents(2)...)
		require.NoError(t, err)
		batch := newEvents(2)
		_, err = writer.Append(t.Context(), "Order-1", eventstore.Exact(2), batch...)
		require.NoError(t, err)
		stranger := newStore(t, srv.URL(), kurrentdb.Options{}) // reads versions 1..2+2 before the append
		_, err = stranger.Append(t.Context(), "Order-1", eventstore.Exact(2), withData(batch)...)
		checkDuplicateID(t, stranger, "Order-1", err, batch, 3)
	})
	t.Run("Unanswered", func(t *testing.T) {
		for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.StreamExists} {
			t.Run(exp.String(), func(t *testing.T) {
				srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
				s := newStore(t, srv.URL()+"&defaultDeadline=100", kurrentdb.Options{})
				c := nativeClient(t, srv.URL())
				const stream = "Slow-1"
				if exp == eventstore.StreamExists {
					_, err := c.AppendToStream(t.Context(), stream, kdb.AppendToStreamOptions{}, kdb.EventData{EventID: uuid.New(), EventType: "Prior", ContentType: kdb.ContentTypeJson})
					require.NoError(t, err)
				}
				batch := newEvents(2)
				release := srv.HoldAppends()
				_, err := s.Append(t.Context(), stream, exp, batch...)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				release()
				// The append reached the server after all: here another
				// client writes it, as the held one gave up.
				data := make([]kdb.EventData, len(batch))
				for i, e := range batch {
					data[i] = kdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: kdb.ContentTypeJson, Data: e.Data}
				}
				_, err = c.AppendToStream(t.Context(), stream, kdb.AppendToStreamOptions{StreamState: kdb.Any{}}, data...)
				require.NoError(t, err)
				first := uint64(1)
				if exp == eventstore.StreamExists {
					first = 2
				}
				_, err = s.Append(t.Context(), stream, exp, withData(batch)...)
				checkDuplicateID(t, s, stream, err, batch, first)
				res, err := s.Append(t.Context(), stream, exp, batch...)
				require.NoError(t, err, "the true retry")
				assert.Equal(t, first+1, res.Version)
			})
		}
	})
	t.Run("WrittenElsewhere", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		writer := newStore(t, srv.URL(), kurrentdb.Options{})
		batch := newEvents(2)
		_, err := writer.Append(t.Context(), "Order-1", eventstore.NoStream, batch...)
		require.NoError(t, err)
		stranger := newStore(t, srv.URL(), kurrentdb.Options{})
		res, err := stranger.Append(t.Context(), "Order-1", eventstore.NoStream, withData(batch)...)
		require.NoError(t, err, "not detected: the gap the driver declares")
		assert.Equal(t, uint64(2), res.Version)
		for ev, err := range stranger.ReadStream(t.Context(), "Order-1", eventstore.ReadStreamOptions{Limit: 1}) {
			require.NoError(t, err)
			assert.Equal(t, batch[0].Data, ev.Data, "nothing written")
		}
	})
}
