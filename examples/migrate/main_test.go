package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMigrateExample runs the program into each destination backend and
// checks what it prints: the same program, only the URL differs.
func TestMigrateExample(t *testing.T) {
	tests := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string {
			return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "events.db"))
		}},
		{"memory", func(*testing.T) string { return "memory://" }},
		{"postgres", func(t *testing.T) string {
			_, url := testenv.PostgresSchema(t, "migrate_example")
			return url
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := example(t, "--to", tc.url(t))
			assert.Contains(t, out, ": 72 events in 4 streams, 1 snapshot\n")
			assert.Contains(t, out, "2. copied 72 events and 1 snapshot into ")
			assert.Contains(t, out, "3. verify: equal: 4 streams, 72 events\n")
			assert.Contains(t, out, "4. copied again: 0 copied, 72 already there\n")
			assert.Contains(t, out, "5. followed: 1 event copied live; verify: equal: 4 streams, 73 events\n")
		})
	}
}

// TestMigrateExampleDefault runs the program as a user does with no
// arguments: both stores in a temporary directory that is gone at the end.
func TestMigrateExampleDefault(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("EVENTSTORE_URL", "")
	out := example(t)
	assert.Contains(t, out, "/destination.db (")
	assert.Contains(t, out, "5. followed: 1 event copied live")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the temporary directory is removed")
}

func TestMigrateExampleNeedsAnEmptyDestination(t *testing.T) {
	u := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "events.db"))
	example(t, "--to", u)
	err := run(t.Context(), []string{"--to", u}, &strings.Builder{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "use an empty store")
}

// example runs the program with args and returns what it printed.
func example(t *testing.T, args ...string) string {
	t.Helper()
	var out strings.Builder
	require.NoError(t, run(t.Context(), args, &out), "output so far:\n%s", out.String())
	return out.String()
}

// A password in $EVENTSTORE_URL or in a query parameter is not printed: not
// in the usage text (whose flag default it is) nor in the program's output.
func TestMigrateExampleHidesPasswords(t *testing.T) {
	t.Run("usage", func(t *testing.T) {
		t.Setenv("EVENTSTORE_URL", "postgres://user:s3cret@localhost/x")
		r, w, err := os.Pipe()
		require.NoError(t, err)
		saved := os.Stderr
		os.Stderr = w
		got := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(r)
			got <- string(b)
		}()
		runErr := run(t.Context(), []string{"-bogus"}, &strings.Builder{})
		os.Stderr = saved
		w.Close()
		stderr := <-got
		require.Error(t, runErr)
		assert.Contains(t, stderr, "-to")
		assert.NotContains(t, stderr, "s3cret")
	})
	t.Run("query parameter", func(t *testing.T) {
		_, u := testenv.PostgresSchema(t, "migrate_example")
		out := example(t, "--to", u+"&password=s3cret")
		assert.Contains(t, out, "into postgres://")
		assert.NotContains(t, out, "s3cret")
	})
}
