package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTransientFailedConnects: a server that cannot be reached is a
// transient failure for every operation; one that refuses the role is not.
func TestTransientFailedConnects(t *testing.T) {
	ctx := t.Context()
	pool, breakConn, port := breakablePool(t)
	s := eventstore.New(newDriver(t, pool, postgres.Options{}), eventstore.Options{})

	for _, tc := range []struct {
		name      string
		brk       func(*pgx.ConnConfig)
		transient bool
	}{
		{"NothingListens", func(cc *pgx.ConnConfig) { cc.Port = uint16(port); cc.Fallbacks = nil }, true},
		{"RoleDoesNotExist", func(cc *pgx.ConnConfig) { cc.User = "no_such_role_" + strconv.Itoa(port) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			breakConn.Store(&tc.brk)
			pool.Reset()
			t.Cleanup(func() { breakConn.Store(nil); pool.Reset() })
			_, appendErr := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
			_, versionErr := s.StreamVersion(ctx, "Order-1")
			var readErr error
			for _, readErr = range s.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
			}
			_, listErr := s.Checkpoints(ctx)
			deleteErr := s.DeleteCheckpoint(ctx, "sub")
			for op, err := range map[string]error{"append": appendErr, "stream version": versionErr, "read stream": readErr,
				"list checkpoints": listErr, "delete checkpoint": deleteErr} {
				require.Error(t, err, op)
				assert.Equal(t, tc.transient, errors.Is(err, eventstore.ErrTransient), "%s: errors.Is(%v, ErrTransient)", op, err)
				var ce *pgconn.ConnectError
				assert.True(t, errors.As(err, &ce), "%s: the native error is reachable in %v", op, err)
			}
		})
	}
}

// TestTransientConnectionCut: an append whose connection the server
// terminates (57P01) fails with ErrTransient; an append the caller cancels
// fails with context.Canceled and is not transient.
func TestTransientConnectionCut(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stop      func(t *testing.T, pool *pgxpool.Pool, victim uint32, cancel context.CancelFunc)
		transient bool
		want      error
	}{
		{"Terminated", func(t *testing.T, pool *pgxpool.Pool, victim uint32, _ context.CancelFunc) {
			_, err := pool.Exec(t.Context(), "SELECT pg_terminate_backend($1)", victim)
			require.NoError(t, err)
		}, true, eventstore.ErrTransient},
		{"CallerCancels", func(_ *testing.T, _ *pgxpool.Pool, _ uint32, cancel context.CancelFunc) { cancel() }, false, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t)
			s, d := newStore(t, pool)
			holder, pid := beginHolder(t, pool)
			rawEvent(t, holder, d.Schema(), "Order-1", 1) // the append blocks on version 1
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
				done <- err
			}()
			victim := waitBlockedBy(t, pool, pid)
			tc.stop(t, pool, victim, cancel)
			err := waitFor(t, done, 30*time.Second, "the stopped append")
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.transient, errors.Is(err, eventstore.ErrTransient), "errors.Is(%v, ErrTransient)", err)
			if tc.transient {
				var pe *pgconn.PgError
				if errors.As(err, &pe) {
					assert.Equal(t, "57P01", pe.Code)
				}
			}
		})
	}
}
