package eventstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pageRecorder is the memory driver noting the bytes of every page read.
type pageRecorder struct {
	*memory.Driver
	mu    sync.Mutex
	pages []int
}

func (d *pageRecorder) note(page []driver.RecordedEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pages = append(d.pages, driver.PageBytes(page))
}

func (d *pageRecorder) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	page, err := d.Driver.ReadAll(ctx, q)
	d.note(page)
	return page, err
}

func (d *pageRecorder) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	page, err := d.Driver.ReadStream(ctx, q)
	d.note(page)
	return page, err
}

// TestLargeEventsStayWithinPageBytes appends 4 MB events and reads and
// subscribes with the default page bound: no page holds more than the bound
// plus one event, and every event comes back.
func TestLargeEventsStayWithinPageBytes(t *testing.T) {
	const size, n = 4 << 20, 12
	d := &pageRecorder{Driver: memory.New()}
	s := eventstore.New(d, eventstore.Options{MaxEventSize: size})
	defer s.Close()
	ctx := t.Context()
	for i := range n {
		ev := eventstore.Event{Type: "Large", ContentType: eventstore.Binary, Data: make([]byte, size)}
		_, err := s.Append(ctx, "Blob-1", eventstore.Exact(uint64(i)), ev)
		require.NoError(t, err)
	}
	count := func(seq func(func(eventstore.RecordedEvent, error) bool)) int {
		c := 0
		for _, err := range seq {
			require.NoError(t, err)
			c++
		}
		return c
	}
	assert.Equal(t, n, count(s.ReadAll(ctx, eventstore.ReadAllOptions{})))
	assert.Equal(t, n, count(s.ReadStream(ctx, "Blob-1", eventstore.ReadStreamOptions{})))
	subCtx, cancel := context.WithCancel(ctx)
	handled := 0
	err := s.Subscribe(subCtx, eventstore.SubscribeOptions{BatchSize: 500}, func(context.Context, eventstore.RecordedEvent) error {
		if handled++; handled == n {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	d.mu.Lock()
	defer d.mu.Unlock()
	require.NotEmpty(t, d.pages)
	for i, b := range d.pages {
		assert.LessOrEqual(t, b, eventstore.DefaultMaxPageBytes+size, "page %d holds %d bytes", i, b)
	}
}
