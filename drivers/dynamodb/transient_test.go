package dynamodb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTransientAfterRetries: once the driver's tries are spent, a throttled,
// conflicting or failing request is reported with ErrTransient, the native
// error still reachable; a caller whose deadline ends the retries gets
// context.DeadlineExceeded, not ErrTransient.
func TestTransientAfterRetries(t *testing.T) {
	cases := []struct {
		name   string
		op     string
		fault  fault
		native any
	}{
		{"append/throttled", "TransactWriteItems", throttle, new(*types.ThrottlingException)},
		{"append/provisioned", "TransactWriteItems", provisioned, new(*types.ProvisionedThroughputExceededException)},
		{"append/conflict", "TransactWriteItems", conflict, new(*types.TransactionCanceledException)},
		{"append/500", "TransactWriteItems", serverError, new(*types.InternalServerError)},
		{"read/throttled", "Query", throttle, new(*types.ThrottlingException)},
		{"read/500", "Query", serverError, new(*types.InternalServerError)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store, tr, _ := faultyStore(t, dynamodb.Options{MaxAttempts: 2})
			tr.arm(tc.op, tc.fault, 1000)
			var err error
			if tc.op == "Query" {
				for _, err = range store.ReadStream(t.Context(), "Order-1", eventstore.ReadStreamOptions{}) {
				}
			} else {
				_, err = store.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
			}
			require.ErrorIs(t, err, eventstore.ErrTransient)
			assert.True(t, errors.As(err, tc.native), "want the native %T in %v", tc.native, err)
			assert.Equal(t, 2, tr.count(tc.op), "MaxAttempts tries")
		})
	}
	t.Run("callers deadline", func(t *testing.T) {
		t.Parallel()
		store, tr, retried := faultyStore(t, dynamodb.Options{MaxAttempts: 1 << 20})
		tr.arm("Query", throttle, 1<<30)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		var err error
		for _, err = range store.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
		}
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, eventstore.ErrTransient)
		assert.NotEmpty(t, *retried, "the driver was retrying when the deadline came")
	})
}
