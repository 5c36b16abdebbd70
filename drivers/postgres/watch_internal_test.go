package postgres

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"testing/synctest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// Subscriptions that start together all wait for the listener's first
// LISTEN. When it fails, each of their Watch calls fails (the Store then
// polls with back-off): none may get a channel that no listener serves,
// which would leave that subscription to its slow safety-net poll. A later
// Watch tries again.
func TestWatchersOfAFailedFirstListenAllFail(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://app@127.0.0.1:1/app?sslmode=disable")
	require.NoError(t, err)
	// The channels are made inside the bubble, so a dial waiting on them
	// is durably blocked (synctest.Wait).
	var dialing, refuse chan struct{}
	cfg.ConnConfig.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
		dialing <- struct{}{}
		select {
		case <-refuse:
		case <-ctx.Done():
		}
		return nil, errors.New("connection refused")
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg) // connects lazily: never here
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	synctest.Test(t, func(t *testing.T) {
		dialing, refuse = make(chan struct{}, 8), make(chan struct{})
		d := &Driver{pool: pool, logger: slog.New(slog.DiscardHandler), sql: newStatements(DefaultSchema)}
		d.listener.init(d)
		defer d.listener.close()
		const watchers = 3
		errs := make(chan error, watchers)
		for range watchers {
			go func() {
				_, err := d.Watch(t.Context())
				errs <- err
			}()
		}
		synctest.Wait() // every Watch waits for the first LISTEN, which is dialing
		require.Len(t, dialing, 1, "one listener connects")
		close(refuse)
		for i := range watchers {
			require.Error(t, <-errs, "watch %d of %d returned a channel, but its listener failed", i+1, watchers)
		}
		_, err := d.Watch(t.Context())
		require.Error(t, err)
		require.Len(t, dialing, 2, "a later Watch starts the listener again")
	})
}
