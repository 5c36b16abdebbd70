package migrate_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/eventkit/eventstore/migrate"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// dataset describes a generated source store.
type dataset struct {
	events    int
	streams   []string
	snapshots map[string]eventstore.Snapshot
}

// datasetSize is the full data set the issue asks for, or a smaller one
// under -short.
func datasetSize() (events, streams int) {
	if testing.Short() {
		return 2_000, 100
	}
	return 10_000, 500
}

var streamPrefixes = []string{"Order", "Kunde-Ü", "客户", "Emoji🙂", "with space", "quote'\"", "Ωmega"}

// newSource returns a memory store holding a generated data set: events
// events spread unevenly over streams streams, appended in interleaved
// batches of 1 to 5, with JSON (various key orders and whitespace), unicode,
// binary and empty payloads, empty and JSON metadata, and snapshots of about
// one stream in five.
func newSource(t testing.TB, seed uint64, events, streams int) (*eventstore.Store, dataset) {
	t.Helper()
	ctx := t.Context()
	s := eventstore.New(memory.New(), eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ds := dataset{events: events, snapshots: map[string]eventstore.Snapshot{}}
	for i := range streams {
		ds.streams = append(ds.streams, fmt.Sprintf("%s-%d", streamPrefixes[i%len(streamPrefixes)], i))
	}
	versions := make([]uint64, streams)
	for written, appends := 0, 0; written < events; appends++ {
		// Skew towards low stream numbers so some streams are long.
		i := min(rng.IntN(streams), rng.IntN(streams))
		if appends < streams {
			i = appends // every stream gets at least one event
		}
		n := min(1+rng.IntN(5), events-written)
		batch := make([]eventstore.Event, n)
		for j := range batch {
			batch[j] = genEvent(rng)
		}
		_, err := s.Append(ctx, ds.streams[i], eventstore.Exact(versions[i]), batch...)
		require.NoError(t, err)
		versions[i] += uint64(n)
		written += n
	}
	for i, id := range ds.streams {
		if i%5 != 0 {
			continue
		}
		snap := eventstore.Snapshot{Version: 1 + rng.Uint64N(versions[i]), Data: genBytes(rng)}
		require.NoError(t, s.SaveSnapshot(ctx, id, snap))
		ds.snapshots[id] = snap
	}
	return s, ds
}

func genEvent(rng *rand.Rand) eventstore.Event {
	var id uuid.UUID
	for i := range id {
		id[i] = byte(rng.Uint32())
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	ev := eventstore.Event{ID: id, Type: []string{"Created", "Renamed", "Ünïcode✓", "Binary.Blob", "Empty"}[rng.IntN(5)]}
	switch rng.IntN(6) {
	case 0:
		ev.Data = []byte(fmt.Sprintf(`{"z":%d,"a":"x"}`, rng.IntN(1000)))
	case 1:
		ev.Data = []byte(fmt.Sprintf("{ \"name\" :\t\"Zoë 🙂 %d\",\n  \"b\": [1, 2.50, null] }", rng.IntN(1000)))
	case 2:
		ev.ContentType = eventstore.Binary
		ev.Data = genBytes(rng)
	case 3:
		ev.ContentType = eventstore.Binary
		ev.Data = nil
	case 4:
		ev.Data = []byte(`{}`)
	default:
		ev.Data = []byte(`"just a string with \u0000 escaped"`)
	}
	switch rng.IntN(3) {
	case 0:
		ev.Metadata = []byte(fmt.Sprintf(`{"$correlationId":"%s", "tenant":"ß-%d"}`, uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(rng.Uint32())}), rng.IntN(9)))
	case 1:
		ev.Metadata = []byte(`{}`)
	}
	return ev
}

// genBytes returns 0 to 300 random bytes, often with NULs and invalid UTF-8.
func genBytes(rng *rand.Rand) []byte {
	b := make([]byte, rng.IntN(301))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if len(b) > 2 {
		b[0], b[1] = 0, 0xff
	}
	return b
}

// newKurrentDB returns an empty KurrentDB store on an in-process double of
// a 26.1 server, which has AppendRecords, so Copy appends several streams'
// events at once.
func newKurrentDB(t testing.TB) *eventstore.Store {
	t.Helper()
	return storetest.KurrentDBWith(t, kurrentdbtest.Options{ServerVersion: "26.1.0"})
}

// newKurrentDBWithoutMulti is newKurrentDB on a 25.1 server, without
// AppendRecords: Copy appends run by run.
func newKurrentDBWithoutMulti(t testing.TB) *eventstore.Store {
	t.Helper()
	return storetest.KurrentDBWith(t, kurrentdbtest.Options{ServerVersion: "25.1.0"})
}

// requireEqualStores fails t unless Verify finds a and b equal.
func requireEqualStores(t testing.TB, a, b *eventstore.Store) {
	t.Helper()
	r, err := migrate.Verify(t.Context(), migrate.From(a), migrate.To(b))
	require.NoError(t, err)
	require.True(t, r.Equal, "%s", r)
	require.Equal(t, r.SourceDigest, r.DestinationDigest)
}
