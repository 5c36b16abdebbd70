package main

import (
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
