package kurrentdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnavailableIsTransient: with the server stopped, calls fail with
// ErrTransient; a call whose caller's deadline ends it fails with
// context.DeadlineExceeded and is not transient.
func TestUnavailableIsTransient(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := newStore(t, srv.URL(), kurrentdb.Options{})
	appendRetrying(t, s, "Order-1", eventstore.NoStream, newEvents(1)...)
	srv.Stop()
	t.Cleanup(func() { srv.Restart() })

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, appendErr := s.Append(ctx, "Order-1", eventstore.Exact(1), newEvents(1)...)
	_, versionErr := s.StreamVersion(ctx, "Order-1")
	_, listErr := s.Checkpoints(ctx)
	deleteErr := s.DeleteCheckpoint(ctx, "sub")
	for op, err := range map[string]error{
		"append": appendErr, "stream version": versionErr, "checkpoints": listErr, "delete checkpoint": deleteErr,
	} {
		require.Error(t, err, op)
		require.NoError(t, ctx.Err(), "%s hung until the test's deadline", op)
		assert.True(t, errors.Is(err, eventstore.ErrTransient), "%s: want ErrTransient in %v", op, err)
	}

	// A deadline shorter than the driver's tries: the caller gave up, and
	// that is not transient. The clients built after the earlier calls may
	// give up on the stopped server even sooner (a refused connection is
	// quick): then the call fails as transient before the deadline.
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := s.StreamVersion(short, "Order-1")
	require.Error(t, err)
	if errors.Is(err, context.DeadlineExceeded) {
		assert.NotErrorIs(t, err, eventstore.ErrTransient)
	} else {
		assert.ErrorIs(t, err, eventstore.ErrTransient)
	}
}
