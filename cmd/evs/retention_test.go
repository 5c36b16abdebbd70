package main

import (
	"path/filepath"
	"testing"

	"github.com/eventkit/eventstore"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeleteAndTruncateStream runs evs truncate-stream and delete-stream on
// a SQLite store and reads what is left.
func TestDeleteAndTruncateStream(t *testing.T) {
	u := "sqlite:" + filepath.Join(t.TempDir(), "events.db")
	for range 3 {
		mustEVS(t, "", "append", "--url", u, "Order-1", "--type", "Placed", "{}")
	}
	assert.Equal(t, "truncated Order-1 before version 3\n", mustEVS(t, "", "truncate-stream", "--url", u, "Order-1", "--before", "3"))
	read := mustEVS(t, "", "read", "--url", u, "--json", "Order-1")
	evs := decodeLines[struct{ Version uint64 }](t, read)
	require.Len(t, evs, 1)
	assert.Equal(t, uint64(3), evs[0].Version)

	r := evs2(t, "delete-stream", "--url", u, "Order-1", "--expected", "2")
	assert.Equal(t, exitFailure, r.code)
	assert.Contains(t, r.stderr, "want 2, have 3")
	assert.Equal(t, `{"stream":"Order-1","done":"deleted"}`+"\n", mustEVS(t, "", "delete-stream", "--url", u, "--json", "Order-1", "--expected", "3"))
	assert.Empty(t, mustEVS(t, "", "read", "--url", u, "--json", "Order-1"))

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"delete-stream", "--url", u}, "want exactly one STREAM"},
		{[]string{"truncate-stream", "--url", u, "Order-1"}, "missing --before"},
		{[]string{"truncate-stream", "--url", u, "Order-1", "--before", "-1"}, "want a version"},
	} {
		r := evs2(t, c.args...)
		assert.Equal(t, exitUsage, r.code, "%q", c.args)
		assert.Contains(t, r.stderr, c.want, "%q", c.args)
	}
}

func evs2(t testing.TB, args ...string) result { t.Helper(); return evs(t, "", args...) }

// TestApplyRetention runs evs apply-retention on a SQLite store with a
// stream with a retention that keeps all of its events.
func TestApplyRetention(t *testing.T) {
	u := "sqlite:" + filepath.Join(t.TempDir(), "events.db")
	assert.Equal(t, "applied the retention of 0 streams: removed 0 events\n", mustEVS(t, "", "apply-retention", "--url", u))
	s, err := eventstore.Open(t.Context(), u)
	require.NoError(t, err)
	_, err = s.Append(t.Context(), "Sensor-1", eventstore.NoStream, eventstore.NewEvent("Read", []byte(`{}`)), eventstore.NewEvent("Read", []byte(`{}`)))
	require.NoError(t, err)
	require.NoError(t, s.SetStreamRetention(t.Context(), "Sensor-1", eventstore.Retention{MaxCount: 5}))
	require.NoError(t, s.Close())
	assert.Equal(t, `{"streams":1,"events":0}`+"\n", mustEVS(t, "", "apply-retention", "--url", u, "--json"))
	r := evs2(t, "apply-retention", "--url", u, "Sensor-1")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "want no arguments")
}
