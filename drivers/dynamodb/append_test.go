package dynamodb_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLimits(t *testing.T) {
	d := &dynamodb.Driver{}
	assert.Equal(t, driver.Limits{MaxEventSize: 408_064, MaxAppendEvents: 98, MaxAppendSize: 4_007_936}, d.Limits())
}

// TestAppendAtTheLimits writes what the reported limits allow with the
// longest stream ID and event type there are, so every byte of the
// driver's overhead estimate is needed: one event of MaxEventSize, and
// MaxAppendEvents events of MaxAppendSize in all at an exact version (the
// transaction's 100 items: the log entry, the version check, 98 events).
func TestAppendAtTheLimits(t *testing.T) {
	client := newClient(t, nil)
	store, _ := newStore(t, client, dynamodb.Options{})
	lim := store.Limits()
	stream := "Big-" + strings.Repeat("s", 251)
	typ := "T" + strings.Repeat("t", 254)
	require.Len(t, stream, 255)
	require.Len(t, typ, 255)
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}

	meta := []byte(`{"$correlationId":"` + uuid.NewString() + `"}`)
	one := eventstore.Event{ID: uuid.New(), Type: typ, ContentType: eventstore.Binary, Data: random(lim.MaxEventSize - len(meta)), Metadata: meta}
	_, err := store.Append(t.Context(), stream, eventstore.NoStream, one)
	require.NoError(t, err, "an event of exactly MaxEventSize (%d bytes)", lim.MaxEventSize)

	batch := make([]eventstore.Event, lim.MaxAppendEvents)
	for i := range batch {
		size := lim.MaxAppendSize / len(batch)
		if i == 0 {
			size += lim.MaxAppendSize % len(batch)
		}
		batch[i] = eventstore.Event{ID: uuid.New(), Type: typ, ContentType: eventstore.Binary, Data: random(size)}
	}
	res, err := store.Append(t.Context(), stream, eventstore.Exact(1), batch...)
	require.NoError(t, err, "%d events of %d bytes in all", len(batch), lim.MaxAppendSize)
	assert.Equal(t, uint64(1+len(batch)), res.Version)

	i := 0
	for ev, err := range store.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		want := one
		if i > 0 {
			want = batch[i-1]
		}
		assert.True(t, bytes.Equal(want.Data, ev.Data) && bytes.Equal(want.Metadata, ev.Metadata) && want.ID == ev.ID, "event %d round-trips", i)
		i++
	}
	assert.Equal(t, 1+len(batch), i)
}

// TestValidationErrorIsInvalidArgument goes around the Store's checks with
// an event over DynamoDB's 400 KB item limit: the service's
// ValidationException matches ErrInvalidArgument, and nothing is written.
func TestValidationErrorIsInvalidArgument(t *testing.T) {
	client := newClient(t, nil)
	d := newDriver(t, client, dynamodb.Options{})
	ev := driver.Event{ID: uuid.New(), Type: "Huge", ContentType: driver.Binary, Data: make([]byte, 410_000)}
	_, err := d.Append(t.Context(), driver.AppendRequest{Stream: "Huge-1", Events: []driver.Event{ev}, RecordedAt: driver.Now()})
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	var apiErr smithy.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "ValidationException", apiErr.ErrorCode())

	store := eventstore.New(d, eventstore.Options{})
	v, err := store.StreamVersion(t.Context(), "Huge-1")
	require.NoError(t, err)
	assert.Zero(t, v)
	res, err := store.Append(t.Context(), "Small-1", eventstore.NoStream, eventstore.NewEvent("Small", nil))
	require.NoError(t, err)
	assert.Equal(t, eventstore.Position{Commit: 1}, res.Position, "the failed append took no position")
}

// TestConflictFromTheServer races appenders in separate drivers (as separate
// processes) at the same exact version: the service's
// ConditionalCheckFailed becomes a WrongExpectedVersionError with the
// actual version, which unwraps to the native TransactionCanceledException.
func TestConflictFromTheServer(t *testing.T) {
	client := newClient(t, nil)
	first := newDriver(t, client, dynamodb.Options{})
	const racers = 4
	stores := make([]*eventstore.Store, racers)
	for i := range stores {
		d, err := dynamodb.New(t.Context(), client, first.Table(), dynamodb.Options{})
		require.NoError(t, err)
		stores[i] = eventstore.New(d, eventstore.Options{})
		t.Cleanup(func() { stores[i].Close() })
	}
	gate := make(chan struct{})
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-gate
			evs := []eventstore.Event{eventstore.NewEvent("Raced", nil), eventstore.NewEvent("Raced", nil)}
			_, errs[i] = stores[i].Append(t.Context(), "Race-1", eventstore.NoStream, evs...)
		})
	}
	close(gate)
	wg.Wait()
	winners := 0
	for _, err := range errs {
		if err == nil {
			winners++
			continue
		}
		var wev *eventstore.WrongExpectedVersionError
		require.ErrorAs(t, err, &wev)
		assert.Equal(t, uint64(2), wev.Actual)
		var tce *types.TransactionCanceledException
		assert.True(t, errors.As(err, &tce), "the native cause is reachable: %v", err)
	}
	assert.Equal(t, 1, winners)

	_, err := stores[0].Append(t.Context(), "Empty-1", eventstore.StreamExists, eventstore.NewEvent("X", nil))
	var wev *eventstore.WrongExpectedVersionError
	require.ErrorAs(t, err, &wev)
	assert.Zero(t, wev.Actual)
}

// TestRetryOfLargeBatch retries an append of events whose items add up to
// more than the 1 MB DynamoDB reads per Query page (a projection does not
// shrink what a page reads): the retry is recognised and returns the
// original result for every expectation, instead of a
// WrongExpectedVersionError because the IDs were read from the first page
// only.
func TestRetryOfLargeBatch(t *testing.T) {
	client := newClient(t, nil)
	store, _ := newStore(t, client, dynamodb.Options{})
	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.StreamExists} {
		t.Run(expected.String(), func(t *testing.T) {
			stream := "Large-" + uuid.NewString()
			if expected == eventstore.StreamExists {
				_, err := store.Append(t.Context(), stream, eventstore.NoStream, eventstore.NewEvent("First", nil))
				require.NoError(t, err)
			}
			batch := make([]eventstore.Event, 8)
			for i := range batch {
				batch[i] = eventstore.Event{ID: uuid.New(), Type: "Large", ContentType: eventstore.Binary, Data: make([]byte, 300_000)}
			}
			res, err := store.Append(t.Context(), stream, expected, batch...)
			require.NoError(t, err)
			again, err := store.Append(t.Context(), stream, expected, batch...)
			require.NoError(t, err, "the retry is recognised")
			assert.Equal(t, res.Version, again.Version)
			assert.Equal(t, res.Position, again.Position)
			v, err := store.StreamVersion(t.Context(), stream)
			require.NoError(t, err)
			assert.Equal(t, res.Version, v, "the retry wrote nothing")
		})
	}
}
