package dynamodb_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeleteFencesExactPut: a single-event append at Exact(n), written as
// one PutItem after a read of version n (item layout 2), races a
// DeleteStream. The stale expectation must fail as on every other path,
// never recreate the stream the delete just deleted (the delete fences
// version n+1; see fence.go), and the stream then recreates at n+1.
//
// "between" runs the delete exactly between the append's read and its put
// (a hook of the driver), every time; "free" lets the two race on their
// own, many times. Either way the stream ends deleted: a delete that came
// after the put deletes the appended event too.
func TestDeleteFencesExactPut(t *testing.T) {
	client := newClient(t, nil)
	ctx := t.Context()
	od := newDriver(t, client, indexedOptions()) // orders the log
	opts := indexedOptions()
	opts.NoOrderer = true // every single-event append is one PutItem
	wd, err := dynamodb.New(ctx, client, od.Table(), opts)
	require.NoError(t, err)
	w := eventstore.New(wd, eventstore.Options{})
	t.Cleanup(func() { w.Close() })
	deleter := eventstore.New(od, eventstore.Options{})
	t.Cleanup(func() { deleter.Close() })

	seed := func(t *testing.T, stream string, n int) {
		t.Helper()
		evs := make([]eventstore.Event, n)
		for i := range evs {
			evs[i] = eventstore.NewEvent("Seeded", []byte(`{}`))
		}
		_, err := w.Append(ctx, stream, eventstore.NoStream, evs...)
		require.NoError(t, err)
	}
	deleted := func(t *testing.T, stream string, n uint64) {
		t.Helper()
		v, err := w.StreamVersion(ctx, stream)
		require.NoError(t, err)
		require.Zero(t, v, "%s: a stale Exact(%d) append recreated the stream a delete had just deleted", stream, n)
		for ev, err := range w.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
			require.NoError(t, err)
			t.Fatalf("%s: deleted, but reads %s@%d", stream, ev.Type, ev.Version)
		}
		// The stream recreates after its last version, the fence
		// replaced: by a single-event PutItem and by a transaction.
		res, err := w.Append(ctx, stream, eventstore.NoStream, eventstore.NewEvent("Again", []byte(`{}`)))
		require.NoError(t, err)
		require.Greater(t, res.Version, n, "%s: recreated", stream)
		_, err = w.Append(ctx, stream, eventstore.Exact(res.Version), eventstore.NewEvent("More", []byte(`{}`)), eventstore.NewEvent("More", []byte(`{}`)))
		require.NoError(t, err)
	}

	t.Run("between", func(t *testing.T) {
		for i := range 3 {
			stream := fmt.Sprintf("Fence-%d%s", i, uuid.NewString()[:8])
			n := uint64(2 + i)
			seed(t, stream, int(n))
			var once sync.Once
			dynamodb.SetBeforePut(wd, func(s string) {
				if s == stream {
					once.Do(func() { require.NoError(t, deleter.DeleteStream(ctx, stream, eventstore.Exact(n))) })
				}
			})
			_, err := w.Append(ctx, stream, eventstore.Exact(n), eventstore.NewEvent("Stale", []byte(`{}`)))
			dynamodb.SetBeforePut(wd, nil)
			var wrong *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, err, &wrong, "%s: the append at Exact(%d) after the delete", stream, n)
			assert.Zero(t, wrong.Actual, "actual version")
			deleted(t, stream, n)
		}
	})

	t.Run("free", func(t *testing.T) {
		const rounds = 20
		stale := 0
		for i := range rounds {
			stream := fmt.Sprintf("Race-%d%s", i, uuid.NewString()[:8])
			seed(t, stream, 1)
			var wg sync.WaitGroup
			var appendErr, deleteErr error
			wg.Go(func() {
				_, appendErr = w.Append(ctx, stream, eventstore.Exact(1), eventstore.NewEvent("Racer", []byte(`{}`)))
			})
			wg.Go(func() {
				time.Sleep(time.Duration(i%4) * time.Millisecond)
				deleteErr = deleter.DeleteStream(ctx, stream, eventstore.Any)
			})
			wg.Wait()
			require.NoError(t, deleteErr, "delete")
			if appendErr != nil {
				require.ErrorIs(t, appendErr, eventstore.ErrWrongExpectedVersion, "append")
				stale++
			}
			deleted(t, stream, 1)
		}
		t.Logf("%d of %d appends came after the delete", stale, rounds)
	})
}
