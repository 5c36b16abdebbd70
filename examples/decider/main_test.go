package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDecider runs the program on each backend and checks what it prints.
// How the 40 seats split into bookings depends on who won each race; the
// totals do not.
func TestDecider(t *testing.T) {
	tests := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"memory", func(*testing.T) string { return "memory://" }},
		{"sqlite", func(t *testing.T) string {
			return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "events.db"))
		}},
		{"postgres", func(t *testing.T) string {
			_, url := testenv.PostgresSchema(t, "decider_example")
			return url
		}},
	}
	want := regexp.MustCompile(`^opened [^\n]+
1\. 8 box offices sold 40 seats in (\d+) bookings; \d+ bookings were refused: sold out
   \d+ bookings lost a race and were decided again
   the concert: 40 of 40 seats sold, takings 1000\.00
2\. loaded at version (\d+) from the snapshot at version (\d+), reading (\d+) events
3\. version \d+: SeatsRefunded, caused by "refund-7", correlated with "request-81f3"
4\. refused: decider: handle "Concert-42": refund 100 of 38 sold: not that many seats sold
$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			require.NoError(t, run(t.Context(), []string{"--url", tc.url(t)}, &out), "output so far:\n%s", out.String())
			m := want.FindStringSubmatch(out.String())
			require.NotNil(t, m, "output:\n%s", out.String())
			bookings, version, snapshot, read := m[1], m[2], m[3], m[4]
			assert.Equal(t, atoi(t, bookings)+1, atoi(t, version), "the schedule and one event per booking")
			assert.Greater(t, atoi(t, snapshot), atoi(t, version)-10, "a snapshot every 10 events")
			assert.Equal(t, atoi(t, version)-atoi(t, snapshot), atoi(t, read), "only the events after the snapshot are read")
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
