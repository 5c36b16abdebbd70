package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingConn counts the bytes read from the server.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// pageCost is what one driver read cost: the page it returned, the bytes
// that came from the server meanwhile, and the bytes the process allocated.
type pageCost struct {
	events, bytes, wire, alloc int
}

// costDriver is the postgres driver noting the cost of every read page.
// Reads must not overlap.
type costDriver struct {
	*postgres.Driver
	read *atomic.Int64 // bytes read from the server, by every connection

	mu    sync.Mutex
	pages []pageCost
}

func allocated() int {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

func (d *costDriver) measure(read func() ([]driver.RecordedEvent, error)) ([]driver.RecordedEvent, error) {
	wire, alloc := d.read.Load(), allocated()
	page, err := read()
	c := pageCost{events: len(page), bytes: driver.PageBytes(page), wire: int(d.read.Load() - wire), alloc: allocated() - alloc}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pages = append(d.pages, c)
	return page, err
}

func (d *costDriver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	return d.measure(func() ([]driver.RecordedEvent, error) { return d.Driver.ReadStream(ctx, q) })
}

func (d *costDriver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	return d.measure(func() ([]driver.RecordedEvent, error) { return d.Driver.ReadAll(ctx, q) })
}

func (d *costDriver) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	var p driver.ScanPage
	_, err := d.measure(func() ([]driver.RecordedEvent, error) {
		var err error
		p, err = d.Driver.ReadAllScan(ctx, q)
		return p.Events, err
	})
	return p, err
}

// newCostDriver returns a costDriver in a fresh schema, on a pool of its
// own whose connections count the bytes they read.
func newCostDriver(t *testing.T) *costDriver {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.MustHavePostgres(t))
	require.NoError(t, err)
	read := new(atomic.Int64)
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := new(net.Dialer).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, read: read}, nil
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &costDriver{Driver: newDriver(t, pool, postgres.Options{}), read: read}
}

// takePages returns the pages noted so far and forgets them.
func (d *costDriver) takePages() []pageCost {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pages
	d.pages = nil
	return p
}

// With events of 4 MB and the Store's default page bound (16 MiB, 512
// events), each page stops at the event that brings it to the bound: 5
// events, 20 MB. The server sends nothing past that event, so what comes over
// the wire for a page, and what the process allocates to read it, stays
// within the bound plus one event (plus pgx's buffer for the row it is
// reading), whichever way the log or a stream is read.
func TestLargeEventsPageWithinMaxBytes(t *testing.T) {
	const size, n = 4_000_000, 12
	const maxPage = eventstore.DefaultMaxPageBytes
	d := newCostDriver(t)
	s := eventstore.New(d, eventstore.Options{MaxEventSize: 5 << 20})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()

	stream := "Blob-" + randomSchema()
	rng := rand.NewChaCha8([32]byte{1})
	for i := range n {
		data := make([]byte, size)
		rng.Read(data) // incompressible, as the server stores it
		_, err := s.Append(ctx, stream, eventstore.Exact(uint64(i)), eventstore.Event{Type: "Large", ContentType: eventstore.Binary, Data: data})
		require.NoError(t, err)
	}
	d.takePages()

	collect := func(seq func(func(eventstore.RecordedEvent, error) bool)) []uint64 {
		var versions []uint64
		for ev, err := range seq {
			require.NoError(t, err)
			require.Len(t, ev.Data, size)
			versions = append(versions, ev.Version)
		}
		return versions
	}
	forwards, backwards := make([]uint64, n), make([]uint64, n)
	for i := range n {
		forwards[i], backwards[n-1-i] = uint64(i+1), uint64(i+1)
	}
	for _, tc := range []struct {
		name string
		read func() []uint64
		want []uint64
	}{
		{"ReadStream forwards", func() []uint64 {
			return collect(s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}))
		}, forwards},
		{"ReadStream backwards", func() []uint64 {
			return collect(s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Backwards: true}))
		}, backwards},
		{"ReadAll forwards", func() []uint64 {
			return collect(s.ReadAll(ctx, eventstore.ReadAllOptions{}))
		}, forwards},
		{"ReadAll backwards", func() []uint64 {
			return collect(s.ReadAll(ctx, eventstore.ReadAllOptions{Backwards: true}))
		}, backwards},
		{"ReadAll filtered", func() []uint64 {
			return collect(s.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Blob"}}}))
		}, forwards},
		{"Subscribe", func() []uint64 {
			subCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			var versions []uint64
			err := s.Subscribe(subCtx, eventstore.SubscribeOptions{BatchSize: 500}, func(_ context.Context, ev eventstore.RecordedEvent) error {
				if versions = append(versions, ev.Version); len(versions) == n {
					cancel()
				}
				return nil
			})
			require.ErrorIs(t, err, context.Canceled)
			return versions
		}, forwards},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.read())
			pages := d.takePages()
			require.NotEmpty(t, pages)
			for i, p := range pages {
				t.Logf("page %d: %d events, %d bytes of events, %d bytes from the server, %d bytes allocated", i, p.events, p.bytes, p.wire, p.alloc)
				if p.events == 0 {
					continue // the end of the read (or a subscription's poll)
				}
				assert.LessOrEqual(t, p.events, 5, "page %d: events (16 MiB / 4 MB, rounded up)", i)
				assert.LessOrEqual(t, p.bytes, maxPage+size, "page %d: bytes of events", i)
				// The rows and the protocol around them: a few hundred bytes
				// a row, and the statement's other messages.
				assert.LessOrEqual(t, p.wire, p.bytes+64<<10, "page %d: bytes from the server beyond the page's", i)
				// The page's copy of the events, and pgx's buffer of the
				// row being read: one per connection, from a pool that
				// may drop it, so at worst one for each row.
				assert.LessOrEqual(t, p.alloc, p.bytes+p.events*(4<<20)+1<<20, "page %d: bytes allocated", i)
			}
			assert.Equal(t, 5, pages[0].events, "the first page stops at the event that brings it to 16 MiB")
		})
	}
}

// The cut at MaxBytes, at its edges, in both statements of ReadAll (with
// and without a filter), of ReadAllScan (walking the category index, and
// checking events one by one) and of ReadStream, through the binary decoder
// and through pgx's Scan (the simple protocol).
func TestPagesStopAtMaxBytes(t *testing.T) {
	const size, n = 1000, 6
	url := testenv.MustHavePostgres(t)
	schema := randomSchema()
	ctx := t.Context()
	for i, mode := range []string{"cache_statement", "simple_protocol"} {
		// Both drivers share the schema until the test ends.
		cfg, err := pgxpool.ParseConfig(url + "&default_query_exec_mode=" + mode)
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		d := newDriver(t, pool, postgres.Options{Schema: schema})
		t.Run(mode, func(t *testing.T) {
			if i == 0 {
				s := eventstore.New(d, eventstore.Options{})
				t.Cleanup(func() { s.Close() })
				evs := make([]eventstore.Event, n)
				for j := range evs {
					// Data and metadata both count.
					evs[j] = eventstore.Event{Type: "Sized", ContentType: eventstore.Binary, Data: make([]byte, size-10), Metadata: []byte(`{"k":"ab"}`)}
				}
				_, err := s.Append(ctx, "Sized-1", eventstore.NoStream, evs...)
				require.NoError(t, err)
			}
			filter := driver.Filter{Categories: []string{"Sized"}}
			many := driver.Filter{Categories: []string{"Sized"}}
			for j := range 40 {
				many.Categories = append(many.Categories, fmt.Sprintf("Absent%d", j))
			}
			scan := func(q driver.AllQuery) ([]driver.RecordedEvent, error) {
				p, err := d.ReadAllScan(ctx, q)
				if n := len(p.Events); err == nil && n > 0 && p.Scanned.Less(p.Events[n-1].Position) {
					return nil, fmt.Errorf("scanned %s, before the last event %s", p.Scanned, p.Events[n-1].Position)
				}
				return p.Events, err
			}
			for _, tc := range []struct {
				name           string
				limit, maxByte int
				want           int
			}{
				{"no bound", 100, 0, n},
				{"below one event", 100, 1, 1},
				{"one byte short of one event", 100, size - 1, 1},
				{"exactly two events", 100, 2 * size, 2},
				{"one byte over two events", 100, 2*size + 1, 3},
				{"exactly all events", 100, n * size, n},
				{"the limit first", 4, n * size, 4},
				{"room for all", 100, 1 << 30, n},
			} {
				for _, r := range []struct {
					name string
					read func() ([]driver.RecordedEvent, error)
				}{
					{"ReadStream forwards", func() ([]driver.RecordedEvent, error) {
						return d.ReadStream(ctx, driver.StreamQuery{Stream: "Sized-1", From: 1, Limit: tc.limit, MaxBytes: tc.maxByte})
					}},
					{"ReadStream backwards", func() ([]driver.RecordedEvent, error) {
						return d.ReadStream(ctx, driver.StreamQuery{Stream: "Sized-1", Limit: tc.limit, Backwards: true, MaxBytes: tc.maxByte})
					}},
					{"ReadAll forwards", func() ([]driver.RecordedEvent, error) {
						return d.ReadAll(ctx, driver.AllQuery{Limit: tc.limit, MaxBytes: tc.maxByte})
					}},
					{"ReadAll backwards", func() ([]driver.RecordedEvent, error) {
						return d.ReadAll(ctx, driver.AllQuery{Limit: tc.limit, Backwards: true, MaxBytes: tc.maxByte})
					}},
					{"ReadAll filtered", func() ([]driver.RecordedEvent, error) {
						return d.ReadAll(ctx, driver.AllQuery{Limit: tc.limit, Filter: filter, MaxBytes: tc.maxByte})
					}},
					{"ReadAll filtered backwards", func() ([]driver.RecordedEvent, error) {
						return d.ReadAll(ctx, driver.AllQuery{Limit: tc.limit, Backwards: true, Filter: filter, MaxBytes: tc.maxByte})
					}},
					{"ReadAllScan", func() ([]driver.RecordedEvent, error) {
						return scan(driver.AllQuery{Limit: tc.limit, Filter: filter, MaxBytes: tc.maxByte})
					}},
					{"ReadAllScan 41 categories", func() ([]driver.RecordedEvent, error) {
						return scan(driver.AllQuery{Limit: tc.limit, Filter: many, MaxBytes: tc.maxByte})
					}},
				} {
					page, err := r.read()
					require.NoError(t, err, "%s, %s", tc.name, r.name)
					want := make([]uint64, tc.want)
					for j := range want {
						want[j] = uint64(j + 1)
						if strings.HasSuffix(r.name, "backwards") {
							want[j] = uint64(n - j)
						}
					}
					got := make([]uint64, len(page))
					for j, ev := range page {
						got[j] = ev.Version
					}
					assert.Equal(t, want, got, "%s, %s: versions", tc.name, r.name)
				}
			}
		})
	}
}

// A page whose limit times 4,096 bytes fits in its bound is read without
// counting its rows only when no event of the read's range is larger
// (pageRows); an event of 30,000 bytes in the range, even after small
// ones, and the server sends no row past the cut, which falls where
// driver.Page puts it. Uncounted, each case's statement would send rows up
// to its limit (the client would drop those past the cut), 30,000 bytes
// or more beyond the page.
func TestPagesWithLargeEventsAhead(t *testing.T) {
	const large = 30_000
	d := newCostDriver(t)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	sized := func(n, size int) []eventstore.Event {
		evs := make([]eventstore.Event, n)
		for i := range evs {
			evs[i] = eventstore.Event{Type: "Sized", ContentType: eventstore.Binary, Data: make([]byte, size)}
		}
		return evs
	}
	// The log: 6 small events of Small-1, then Mixed-1: 1 small, 4 large.
	_, err := s.Append(ctx, "Small-1", eventstore.NoStream, sized(6, 100)...)
	require.NoError(t, err)
	_, err = s.Append(ctx, "Mixed-1", eventstore.NoStream, sized(1, 100)...)
	require.NoError(t, err)
	_, err = s.Append(ctx, "Mixed-1", eventstore.Exact(1), sized(4, large)...)
	require.NoError(t, err)
	log, err := d.ReadAll(ctx, driver.AllQuery{Limit: 100})
	require.NoError(t, err)
	require.Len(t, log, 11)

	for _, tc := range []struct {
		name            string
		read            func(limit, maxBytes int) ([]driver.RecordedEvent, error)
		limit, maxBytes int
		want            int
	}{
		{"stream of small events", func(limit, maxBytes int) ([]driver.RecordedEvent, error) {
			return d.ReadStream(ctx, driver.StreamQuery{Stream: "Small-1", From: 1, Limit: limit, MaxBytes: maxBytes})
		}, 4, 4 * 4096, 4},
		{"stream, large events after a small one", func(limit, maxBytes int) ([]driver.RecordedEvent, error) {
			return d.ReadStream(ctx, driver.StreamQuery{Stream: "Mixed-1", From: 1, Limit: limit, MaxBytes: maxBytes})
		}, 4, 4 * 4096, 2},
		{"stream backwards", func(limit, maxBytes int) ([]driver.RecordedEvent, error) {
			return d.ReadStream(ctx, driver.StreamQuery{Stream: "Mixed-1", Backwards: true, Limit: limit, MaxBytes: maxBytes})
		}, 4, 4 * 4096, 1},
		{"log, large events past small ones", func(limit, maxBytes int) ([]driver.RecordedEvent, error) {
			return d.ReadAll(ctx, driver.AllQuery{Limit: limit, MaxBytes: maxBytes})
		}, 10, 10 * 4096, 9},
		{"log, large events next", func(limit, maxBytes int) ([]driver.RecordedEvent, error) {
			return d.ReadAll(ctx, driver.AllQuery{After: log[6].Position, Limit: limit, MaxBytes: maxBytes})
		}, 4, 4 * 4096, 1},
		{"log backwards", func(limit, maxBytes int) ([]driver.RecordedEvent, error) {
			return d.ReadAll(ctx, driver.AllQuery{Backwards: true, Limit: limit, MaxBytes: maxBytes})
		}, 4, 4 * 4096, 1},
		{"log, no large event in the range", func(limit, maxBytes int) ([]driver.RecordedEvent, error) {
			return d.ReadAll(ctx, driver.AllQuery{Before: log[7].Position, Limit: limit, MaxBytes: maxBytes})
		}, 4, 4 * 4096, 4},
		{"scan", func(limit, maxBytes int) ([]driver.RecordedEvent, error) {
			p, err := d.ReadAllScan(ctx, driver.AllQuery{After: log[5].Position, Limit: limit, MaxBytes: maxBytes})
			return p.Events, err
		}, 4, 4 * 4096, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.takePages()
			page, err := tc.read(tc.limit, tc.maxBytes)
			require.NoError(t, err)
			assert.Len(t, page, tc.want)
			cost := d.takePages()
			require.Len(t, cost, 1)
			// The rows' other columns and the statement's other messages:
			// a few hundred bytes a row.
			assert.LessOrEqual(t, cost[0].wire, cost[0].bytes+8<<10, "bytes from the server beyond the page's")
			// The rule of driver.Page over the same events without a bound.
			all, err := tc.read(tc.limit, 0)
			require.NoError(t, err)
			p := driver.NewPage(tc.limit, tc.maxBytes)
			for _, ev := range all {
				if p.Add(ev) {
					break
				}
			}
			assert.Equal(t, p.Events, page)
		})
	}
}
