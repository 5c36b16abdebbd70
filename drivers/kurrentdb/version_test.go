package kurrentdb

import (
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStreamState(t *testing.T) {
	for _, tc := range []struct {
		expected driver.ExpectedVersion
		want     kdb.StreamState
	}{
		{driver.ExpectedVersion(eventstore.Any), kdb.Any{}},
		{driver.ExpectedVersion(eventstore.StreamExists), kdb.StreamExists{}},
		{driver.ExpectedVersion(eventstore.NoStream), kdb.NoStream{}},
		{driver.ExpectedVersion(eventstore.Exact(0)), kdb.NoStream{}},
		{driver.ExpectedVersion{}, kdb.NoStream{}},
		{driver.ExpectedVersion(eventstore.Exact(1)), kdb.StreamRevision{Value: 0}},
		{driver.ExpectedVersion(eventstore.Exact(5)), kdb.StreamRevision{Value: 4}},
		{driver.ExpectedVersion(eventstore.Exact(1 << 62)), kdb.StreamRevision{Value: 1<<62 - 1}},
	} {
		assert.Equal(t, tc.want, streamState(tc.expected), "expected version %s", tc.expected)
	}
}

func TestVersionsAndRevisions(t *testing.T) {
	for rev := range uint64(4) {
		assert.Equal(t, rev+1, versionOf(rev), "the event at revision %d", rev)
		assert.Equal(t, rev, revisionOf(versionOf(rev)))
	}
}

func TestPositions(t *testing.T) {
	p := kdb.Position{Commit: 1042, Prepare: 1040}
	assert.Equal(t, driver.Position{Commit: 1042, Prepare: 1040}, positionOf(p), "both parts are kept")
	assert.Equal(t, kdb.AllPosition(p), allPosition(positionOf(p)))
	assert.Equal(t, kdb.AllPosition(kdb.Start{}), allPosition(driver.Position{}), "zero: the start of $all")
}

func TestRecordedAt(t *testing.T) {
	created := time.Unix(0, 17_000_000_123_456_789).In(time.FixedZone("X", 3600))
	got := recordedAt(created)
	assert.Equal(t, time.UTC, got.Location())
	assert.Equal(t, 0, got.Nanosecond()%1000, "microsecond precision")
	assert.True(t, got.Equal(created.Truncate(time.Microsecond)))
}

func TestRecordedHidesWhatIsNotOurs(t *testing.T) {
	ns := &Driver{prefix: "tenant/"}
	plain := &Driver{}
	ev := func(stream, typ string) *kdb.RecordedEvent {
		return &kdb.RecordedEvent{EventID: uuid.New(), StreamID: stream, EventType: typ, EventNumber: 2, ContentType: "application/json"}
	}
	for _, tc := range []struct {
		d      *Driver
		ev     *kdb.RecordedEvent
		stream string // "" when hidden
	}{
		{plain, ev("Order-1", "Placed"), "Order-1"},
		{plain, ev("$settings", "$settings"), ""},
		{plain, ev("$$Order-1", "$metadata"), ""},
		{plain, ev("$ce-Order", "$>"), ""},
		{plain, ev("Order-1", "$streamDeleted"), ""},
		{plain, ev(SnapshotStream("", "Order-1"), "snapshot"), ""},
		{plain, ev(CheckpointStream("", "projection"), "checkpoint"), ""},
		{plain, ev(SnapshotStream("tenant", "Order-1"), "snapshot"), ""},
		{plain, ev("tenant/Order-1", "Placed"), "tenant/Order-1"},
		{ns, ev("tenant/Order-1", "Placed"), "Order-1"},
		{ns, ev("Order-1", "Placed"), ""},
		{ns, ev("tenant2/Order-1", "Placed"), ""},
		{ns, ev(CheckpointStream("tenant", "p"), "checkpoint"), ""},
		{ns, ev("tenant/$x", "Placed"), ""},
		{plain, nil, ""},
	} {
		got, ok := tc.d.recorded(tc.ev)
		if tc.stream == "" {
			assert.False(t, ok, "%+v in a store with prefix %q: want it hidden", tc.ev, tc.d.prefix)
			continue
		}
		require.True(t, ok, "%+v in a store with prefix %q", tc.ev, tc.d.prefix)
		assert.Equal(t, tc.stream, got.StreamID)
		assert.Equal(t, uint64(3), got.Version)
		assert.Equal(t, driver.JSON, got.ContentType)
	}
}
