package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/sqlite"
	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBusyIsTransient: while another connection holds the file's write lock
// past the busy timeout, an append fails with ErrTransient (the native
// SQLITE_BUSY reachable) and writes nothing; an append whose caller's
// deadline ends the wait fails with context.DeadlineExceeded and is not
// transient.
func TestBusyIsTransient(t *testing.T) {
	for _, tc := range []struct {
		name      string
		busy      time.Duration // Options.BusyTimeout
		timeout   time.Duration // the append's context
		want      error
		transient bool
	}{
		{"BusyTimeout", 20 * time.Millisecond, time.Hour, eventstore.ErrTransient, true},
		{"CallersDeadline", time.Hour, 20 * time.Millisecond, context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			d, err := sqlite.Open(t.Context(), path, sqlite.Options{BusyTimeout: tc.busy})
			require.NoError(t, err)
			s := eventstore.New(d, eventstore.Options{})
			t.Cleanup(func() { s.Close() })
			_, err = s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
			require.NoError(t, err, "creates the schema")

			db, err := sql.Open("sqlite3", path)
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			conn, err := db.Conn(t.Context())
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			_, err = conn.ExecContext(t.Context(), "BEGIN IMMEDIATE")
			require.NoError(t, err, "take the write lock")
			t.Cleanup(func() { conn.ExecContext(context.Background(), "ROLLBACK") })

			ctx, cancel := context.WithTimeout(t.Context(), tc.timeout)
			defer cancel()
			_, err = s.Append(ctx, "Order-1", eventstore.Exact(1), eventstore.NewEvent("Paid", nil))
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.transient, errors.Is(err, eventstore.ErrTransient), "errors.Is(%v, ErrTransient)", err)
			if tc.transient {
				var se sqlite3.Error
				require.ErrorAs(t, err, &se, "the native error is reachable")
				assert.Equal(t, sqlite3.ErrBusy, se.Code)
			}
			v, err := s.StreamVersion(t.Context(), "Order-1")
			require.NoError(t, err)
			assert.Equal(t, uint64(1), v, "nothing written")
		})
	}
}
