package dynamodb_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// DynamoDB Local never throttles and never reports transaction conflicts.
// faulty sits in front of it (as the client's HTTP transport) and answers
// the first n requests of one operation with an injected failure, the way
// DynamoDB would answer them, so the driver's retries meet real responses.
type faulty struct {
	next http.RoundTripper

	mu    sync.Mutex // protects everything below
	op    string     // operation to fail, e.g. "TransactWriteItems"
	fault fault
	left  int            // requests still to fail
	sent  map[string]int // requests per operation, failed or not
}

// fault is what the transport does to a request it fails.
type fault int

const (
	throttle    fault = iota // 400 ThrottlingException
	provisioned              // 400 ProvisionedThroughputExceededException
	conflict                 // 400 TransactionCanceledException, every item TransactionConflict
	serverError              // 500 InternalServerError, the request never reaches the server
	lost                     // the server handles the request, the client gets a 500 instead
)

func (f fault) String() string {
	return [...]string{"Throttling", "ProvisionedThroughputExceeded", "TransactionConflict", "500", "ResponseLost"}[f]
}

func newFaulty() *faulty {
	return &faulty{next: http.DefaultTransport, sent: map[string]int{}}
}

// arm fails the next n requests of op with f.
func (t *faulty) arm(op string, f fault, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.op, t.fault, t.left = op, f, n
	clear(t.sent)
}

// remaining returns how many injected failures are still to come.
func (t *faulty) remaining() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.left
}

func (t *faulty) count(op string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent[op]
}

func (t *faulty) RoundTrip(req *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	t.mu.Lock()
	t.sent[op]++
	fail := op == t.op && t.left > 0
	if fail {
		t.left--
	}
	f := t.fault
	t.mu.Unlock()
	if !fail {
		return t.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body.Close()
	switch f {
	case throttle:
		return response(req, 400, "ThrottlingException", nil), nil
	case provisioned:
		return response(req, 400, "ProvisionedThroughputExceededException", nil), nil
	case conflict:
		var in struct{ TransactItems []json.RawMessage }
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		reasons := make([]map[string]string, len(in.TransactItems))
		for i := range reasons {
			reasons[i] = map[string]string{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
		}
		return response(req, 400, "TransactionCanceledException", map[string]any{"CancellationReasons": reasons}), nil
	case lost:
		req.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := t.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return response(req, 500, "InternalServerError", nil), nil
}

// response builds a DynamoDB error response (JSON 1.0 protocol).
func response(req *http.Request, status int, code string, fields map[string]any) *http.Response {
	body := map[string]any{"__type": "com.amazonaws.dynamodb.v20120810#" + code, "message": "injected by the test"}
	for k, v := range fields {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	return &http.Response{
		StatusCode:    status,
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)),
		Request:       req,
	}
}

// faultyStore returns a store whose driver talks through a faulty transport.
func faultyStore(t *testing.T, opts dynamodb.Options) (*eventstore.Store, *faulty, *[]string) {
	t.Helper()
	tr := newFaulty()
	store, d := newStore(t, newClient(t, tr), opts)
	var mu sync.Mutex
	var retried []string
	dynamodb.SetRetryHook(d, func(op string, err error) {
		mu.Lock()
		defer mu.Unlock()
		retried = append(retried, op)
	})
	return store, tr, &retried
}

// TestTransientFailuresAreRetried injects each kind of transient failure a
// few times and checks the operation then succeeds, exactly once.
func TestTransientFailuresAreRetried(t *testing.T) {
	cases := []struct {
		op    string
		fault fault
		n     int
	}{
		{"TransactWriteItems", throttle, 3},
		{"TransactWriteItems", provisioned, 2},
		{"TransactWriteItems", conflict, 3},
		{"TransactWriteItems", serverError, 2},
		{"TransactWriteItems", lost, 1},
		{"Query", throttle, 3},
		{"Query", serverError, 2},
		{"BatchGetItem", provisioned, 2},
	}
	for _, tc := range cases {
		t.Run(tc.op+"/"+tc.fault.String(), func(t *testing.T) {
			t.Parallel()
			store, tr, retried := faultyStore(t, dynamodb.Options{})
			ctx := t.Context()
			_, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
			require.NoError(t, err)

			tr.arm(tc.op, tc.fault, tc.n)
			batch := []eventstore.Event{eventstore.NewEvent("Paid", []byte(`{"n":1}`)), eventstore.NewEvent("Shipped", []byte(`{"n":2}`))}
			res, err := store.Append(ctx, "Order-1", eventstore.Exact(1), batch...)
			require.NoError(t, err, "append with %d injected %s on %s", tc.n, tc.fault, tc.op)
			assert.Equal(t, uint64(3), res.Version)
			assert.Equal(t, eventstore.Position{Commit: 3}, res.Position)
			all := readAllAfter(t, store, eventstore.Position{})
			require.Len(t, all, 3, "the append is written once")
			for i, ev := range all {
				assert.Equal(t, uint64(i+1), ev.Version)
				assert.Equal(t, uint64(i+1), ev.Position.Commit)
			}
			assert.Zero(t, tr.remaining(), "every injected failure was met")
			assert.Len(t, *retried, tc.n, "one retry per injected failure: %v", *retried)

			// The store goes on: the next append takes the next position.
			res, err = store.Append(ctx, "Order-1", eventstore.Exact(3), eventstore.NewEvent("Closed", nil))
			require.NoError(t, err)
			assert.Equal(t, eventstore.Position{Commit: 4}, res.Position)
		})
	}
}

// TestRetriesGiveUpAfterTheBound keeps failing and checks the driver stops
// after MaxAttempts tries, returns the native error, and wrote nothing.
func TestRetriesGiveUpAfterTheBound(t *testing.T) {
	cases := []struct {
		fault  fault
		native any
	}{
		{throttle, new(*types.ThrottlingException)},
		{provisioned, new(*types.ProvisionedThroughputExceededException)},
		{conflict, new(*types.TransactionCanceledException)},
		{serverError, new(*types.InternalServerError)},
	}
	for _, tc := range cases {
		t.Run(tc.fault.String(), func(t *testing.T) {
			t.Parallel()
			store, tr, _ := faultyStore(t, dynamodb.Options{MaxAttempts: 3})
			ctx := t.Context()
			tr.arm("TransactWriteItems", tc.fault, 1000)
			_, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
			require.Error(t, err)
			assert.True(t, errors.As(err, tc.native), "want the native %T in %v", tc.native, err)
			assert.False(t, errors.Is(err, eventstore.ErrWrongExpectedVersion))
			assert.Equal(t, 3, tr.count("TransactWriteItems"), "MaxAttempts tries, no more")

			tr.arm("", throttle, 0)
			v, err := store.StreamVersion(ctx, "Order-1")
			require.NoError(t, err)
			assert.Zero(t, v, "nothing written")
			res, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
			require.NoError(t, err)
			assert.Equal(t, eventstore.Position{Commit: 1}, res.Position)
		})
	}
	t.Run("Read", func(t *testing.T) {
		t.Parallel()
		store, tr, _ := faultyStore(t, dynamodb.Options{MaxAttempts: 2})
		tr.arm("Query", throttle, 1000)
		var err error
		for _, err = range store.ReadStream(t.Context(), "Order-1", eventstore.ReadStreamOptions{}) {
		}
		var throttled *types.ThrottlingException
		require.ErrorAs(t, err, &throttled)
		assert.Equal(t, 2, tr.count("Query"))
	})
}
