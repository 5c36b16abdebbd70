package dynamodb_test

import (
	"net/http"
	"testing"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKnownStreamReads checks that an append to an indexed table at the
// end of a stream its driver wrote from version 1 skips the ID lookup
// (Query) and, written as one PutItem, the read of the previous version (a
// GetItem), leaving one GetItem (the stream's retention), while a head
// table's append still looks the ID up; and that every answer is still
// right when another driver wrote, retried or deleted in between (see
// known.go).
func TestKnownStreamReads(t *testing.T) {
	for _, layout := range []struct {
		name  string
		opts  dynamodb.Options
		skips bool // the reads known.go leaves out
	}{
		{"head", dynamodb.Options{}, false},
		{"indexed", dynamodb.Options{Log: dynamodb.LogIndexed}, true},
		{"async", dynamodb.Options{Log: dynamodb.LogIndexed, AsyncPositions: true}, true},
	} {
		t.Run(layout.name, func(t *testing.T) {
			ctx := t.Context()
			counter := &requestCounter{next: http.DefaultTransport, ops: map[string]int{}}
			table := randomTable()
			open := func(client *awsdynamodb.Client, opts dynamodb.Options) *eventstore.Store {
				d, err := dynamodb.New(ctx, client, table, opts)
				require.NoError(t, err)
				s := eventstore.New(d, eventstore.Options{})
				t.Cleanup(func() { s.Close() })
				return s
			}
			// b, opened first, creates the table and orders its log; a
			// has a client of its own whose requests are counted, and
			// no orderer, so they are its appends' only.
			plain := newClient(t, nil)
			deleteTableAtCleanup(t, plain, table)
			opts := layout.opts
			opts.CreateTable = true
			b := open(plain, opts)
			opts = layout.opts
			opts.NoOrderer = true
			a := open(newClient(t, counter), opts)
			ev := func() eventstore.Event { return eventstore.NewEvent("Noted", []byte(`{}`)) }
			appendCounted := func(s *eventstore.Store, stream string, exp eventstore.ExpectedVersion, e eventstore.Event) (eventstore.AppendResult, map[string]int, error) {
				t.Helper()
				counter.take()
				res, err := s.Append(ctx, stream, exp, e)
				return res, counter.take(), err
			}

			// A head table's committer reads the log's head once first.
			_, err := a.Append(ctx, "known-0", eventstore.NoStream, ev())
			require.NoError(t, err)

			// A new stream, then its end: no lookup, one GetItem each.
			first := ev()
			res1, ops, err := appendCounted(a, "known-1", eventstore.NoStream, first)
			require.NoError(t, err)
			if layout.skips {
				assert.Zero(t, ops["Query"], "ID lookups at NoStream: %v", ops)
			} else {
				assert.Equal(t, 1, ops["Query"], "ID lookups at NoStream: %v", ops)
			}
			second := ev()
			_, ops, err = appendCounted(a, "known-1", eventstore.Exact(1), second)
			require.NoError(t, err)
			if layout.skips {
				assert.Zero(t, ops["Query"], "ID lookups at the end of a stream the driver wrote: %v", ops)
			}
			if layout.name != "indexed" { // which reads its position with GetItems
				assert.Equal(t, 1, ops["GetItem"], "GetItems at the end of a stream the driver wrote: %v", ops)
			}

			// An ID already in the stream is still found: nothing written.
			_, ops, err = appendCounted(a, "known-1", eventstore.Exact(2), first)
			require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
			assert.Positive(t, ops["Query"], "the known ID is looked up: %v", ops)

			// A retry of the first append returns its result.
			again, _, err := appendCounted(a, "known-1", eventstore.NoStream, first)
			require.NoError(t, err)
			assert.Equal(t, res1.Version, again.Version)
			if !res1.Position.IsZero() {
				assert.Equal(t, res1.Position, again.Position)
			}

			// Another driver appends: a's stale expectation conflicts, and
			// its next append at the true end looks the ID up again.
			_, err = b.Append(ctx, "known-1", eventstore.Exact(2), ev())
			require.NoError(t, err)
			_, _, err = appendCounted(a, "known-1", eventstore.Exact(2), ev())
			var wrong *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, err, &wrong)
			assert.Equal(t, uint64(3), wrong.Actual)
			fourth := ev()
			res4, ops, err := appendCounted(a, "known-1", eventstore.Exact(3), fourth)
			require.NoError(t, err)
			assert.Positive(t, ops["Query"], "ID lookups after another driver wrote: %v", ops)
			retried, _, err := appendCounted(a, "known-1", eventstore.Exact(3), fourth)
			require.NoError(t, err, "retry after another driver wrote")
			assert.Equal(t, res4.Version, retried.Version)

			// Another driver deletes a stream a wrote: a's append at its
			// old end fails, and writes nothing.
			_, err = a.Append(ctx, "known-2", eventstore.NoStream, ev(), ev())
			require.NoError(t, err)
			require.NoError(t, b.DeleteStream(ctx, "known-2", eventstore.Exact(2)))
			_, err = a.Append(ctx, "known-2", eventstore.Exact(2), ev())
			require.ErrorAs(t, err, &wrong, "append to a stream another driver deleted")
			assert.Zero(t, wrong.Actual)

			var versions []uint64
			for e, err := range b.ReadStream(ctx, "known-1", eventstore.ReadStreamOptions{}) {
				require.NoError(t, err)
				versions = append(versions, e.Version)
			}
			assert.Equal(t, []uint64{1, 2, 3, 4}, versions, "known-1 as read by the other driver")
			n := 0
			for _, err := range b.ReadStream(ctx, "known-2", eventstore.ReadStreamOptions{}) {
				require.NoError(t, err)
				n++
			}
			assert.Zero(t, n, "events of the deleted known-2")
		})
	}
}
