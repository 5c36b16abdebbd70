package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSubscriptionSurvivesRestarts runs writers and one durable
// subscription on a private cluster while every backend connection is
// terminated again and again and the server restarts, fast and then
// immediate (a crash). The one Subscribe call survives it all and handles
// every appended event, in log order, none skipped.
func TestSubscriptionSurvivesRestarts(t *testing.T) {
	cluster := testenv.StartPostgresCluster(t)
	ctx := t.Context()
	var logMu sync.Mutex
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	s, err := eventstore.OpenWith(ctx, cluster.URL+"&schema=survive", eventstore.Options{Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })

	// Writers append with fixed IDs and retry transient failures: a retry
	// of an append that was written returns the original result.
	const writers, perWriter = 2, 60
	var written sync.Map // event ID → true
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("Order-%d", w)
			for i := range perWriter {
				ev := eventstore.Event{ID: uuid.New(), Type: "Placed", Data: []byte(`{}`)}
				for {
					_, err := s.Append(ctx, stream, eventstore.Exact(uint64(i)), ev)
					if err == nil {
						break
					}
					if !errors.Is(err, eventstore.ErrTransient) {
						errs <- fmt.Errorf("append %d to %s: %w", i, stream, err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				written.Store(ev.ID, true)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}

	subCtx, stop := context.WithCancel(ctx)
	var mu sync.Mutex
	var got []eventstore.RecordedEvent
	subDone := make(chan error, 1)
	go func() {
		subDone <- s.Subscribe(subCtx, eventstore.SubscribeOptions{Name: "survivor", BatchSize: 10, MaxRetryWait: 500 * time.Millisecond},
			func(_ context.Context, ev eventstore.RecordedEvent) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, ev)
				return nil
			})
	}()

	// The chaos: kill every other backend a few times, then restart.
	admin := func() *pgx.Conn {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			c, err := pgx.Connect(ctx, cluster.URL)
			if err == nil {
				return c
			}
			require.True(t, time.Now().Before(deadline), "server back: %v", err)
		}
	}
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		c := admin()
		_, err := c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
		require.NoError(t, err)
		c.Close(ctx)
	}
	cluster.Restart(t, "fast")
	time.Sleep(300 * time.Millisecond)
	cluster.Restart(t, "immediate")

	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	want := 0
	written.Range(func(any, any) bool { want++; return true })
	require.Equal(t, writers*perWriter, want)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen := map[uuid.UUID]bool{}
		for _, ev := range got {
			seen[ev.ID] = true
		}
		return len(seen) == want
	}, time.Minute, 50*time.Millisecond, "the subscription handles every appended event")
	select {
	case err := <-subDone:
		t.Fatalf("Subscribe returned during the outages: %v", err)
	default:
	}
	stop()
	require.ErrorIs(t, <-subDone, context.Canceled)
	logMu.Lock()
	assert.Contains(t, logs.String(), "subscription retrying after a transient failure", "the outages reached the subscription")
	logMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		assert.True(t, got[i-1].Position.Less(got[i].Position), "log order at %d", i)
	}
	written.Range(func(id, _ any) bool {
		assert.True(t, containsID(got, id.(uuid.UUID)), "event %s handled", id)
		return true
	})
}

func containsID(evs []eventstore.RecordedEvent, id uuid.UUID) bool {
	for _, ev := range evs {
		if ev.ID == id {
			return true
		}
	}
	return false
}
