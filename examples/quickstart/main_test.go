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

// TestQuickstart runs the program on each backend and checks what it prints:
// the same program, only the URL differs.
func TestQuickstart(t *testing.T) {
	tests := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"memory", func(*testing.T) string { return "memory://" }},
		{"sqlite", func(t *testing.T) string {
			return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "events.db"))
		}},
		{"postgres", postgresURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := quickstart(t, "--url", tc.url(t))
			assert.Contains(t, out, "insufficient funds")
			assert.Contains(t, out, "conflict (want 2, have 3)")
			assert.Contains(t, out, "27 events read without the snapshot, 2 with it")
			assert.Contains(t, out, "live deposit to bob")
			assert.True(t, strings.HasSuffix(out, "final balances:\n"+
				"   Account-alice      17440.00\n"+
				"   Account-bob          175.00\n"), "output ends with the final balances:\n%s", out)
		})
	}
}

// TestQuickstartDefault runs the program as `make demo` does: on a SQLite
// file in a temporary directory that is gone when it ends.
func TestQuickstartDefault(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("EVENTSTORE_URL", "")
	out := quickstart(t)
	assert.Contains(t, out, "1. opened sqlite:///")
	assert.Contains(t, out, "Account-bob          175.00\n")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the temporary directory is removed")
}

func TestQuickstartNeedsAnEmptyStore(t *testing.T) {
	u := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "events.db"))
	quickstart(t, "--url", u)
	err := run(t.Context(), []string{"--url", u}, &strings.Builder{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "run the quickstart on an empty store")
}

func TestQuickstartBadURL(t *testing.T) {
	var out strings.Builder
	err := run(t.Context(), []string{"--url", "nosuch://user:s3cret@localhost/x"}, &out)
	require.Error(t, err)
	assert.NotContains(t, err.Error()+out.String(), "s3cret")
}

// quickstart runs the program with args and returns what it printed.
func quickstart(t *testing.T, args ...string) string {
	t.Helper()
	var out strings.Builder
	require.NoError(t, run(t.Context(), args, &out), "output so far:\n%s", out.String())
	return out.String()
}

// postgresURL returns the test server's URL with a fresh schema, dropped
// when t ends. Without a server it skips t (fails it under CI=true).
func postgresURL(t *testing.T) string {
	_, url := testenv.PostgresSchema(t, "evs_test")
	return url
}

// A password in $EVENTSTORE_URL or in a query parameter is not printed: not
// in the usage text (whose flag default it is) nor in the program's output.
func TestQuickstartHidesPasswords(t *testing.T) {
	t.Run("usage", func(t *testing.T) {
		t.Setenv("EVENTSTORE_URL", "postgres://user:s3cret@localhost/x")
		stderr := captureStderr(t, func() {
			require.Error(t, run(t.Context(), []string{"-bogus"}, &strings.Builder{}))
		})
		assert.Contains(t, stderr, "-url")
		assert.NotContains(t, stderr, "s3cret")
	})
	t.Run("query parameter", func(t *testing.T) {
		out := quickstart(t, "--url", postgresURL(t)+"&password=s3cret")
		assert.Contains(t, out, "1. opened postgres://")
		assert.NotContains(t, out, "s3cret")
	})
}

// captureStderr returns what f writes to os.Stderr.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	saved := os.Stderr
	os.Stderr = w
	defer func() { os.Stderr = saved }()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	f()
	w.Close()
	return <-got
}
