package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildEVS builds the evs binary into a temporary directory.
func buildEVS(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the evs binary: skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("building the evs binary needs the go command in $PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "evs")
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	require.NoErrorf(t, err, "go build: %s", out)
	return bin
}

// TestBinary runs the real program: exit statuses, stdout and stderr as a
// shell sees them, and Ctrl-C.
func TestBinary(t *testing.T) {
	bin := buildEVS(t)
	dir := t.TempDir()
	storeURL := "memory://"

	exitCode := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring; "" means stdout must be empty
		stderr string // a substring
	}{
		{"no arguments", nil, exitUsage, "", "Usage:"},
		{"bad flag", []string{"read", "--nope", "S-1"}, exitUsage, "", "flag provided but not defined"},
		{"missing type", []string{"append", "--url", storeURL, "S-1", "{}"}, exitUsage, "", "missing --type"},
		{"bad stream ID", []string{"append", "--url", storeURL, "$et", "--type", "T", "{}"}, exitFailure, "", `"$et": invalid stream id`},
		{"wrong expected version", []string{"append", "--url", storeURL, "S-1", "--type", "T", "--expected", "2", "{}"}, exitFailure, "", "want 2, have 0"},
		{"append", []string{"append", "--url", storeURL, "S-1", "--type", "T", "{}"}, exitOK, "appended T to S-1: version 1", ""},
		{"init", []string{"init", "--url", storeURL}, exitOK, "store ready", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, tc.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), urlEnv+"=")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			assert.Equal(t, tc.code, exitCode(cmd.Run()), "exit status; stderr: %s", stderr.String())
			if tc.stdout == "" {
				assert.Empty(t, stdout.String())
			} else {
				assert.Contains(t, stdout.String(), tc.stdout)
			}
			assert.Contains(t, stderr.String(), tc.stderr)
		})
	}

	t.Run("json is one object per line", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), bin, "append", "--url", storeURL, "--json", "S-1", "--type", "T", "-")
		cmd.Stdin = strings.NewReader("{\n  \"pretty\": true\n}\n")
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Equal(t, 1, strings.Count(string(out), "\n"))
		assert.True(t, strings.HasPrefix(string(out), `{"stream":"S-1","version":1,`), "%s", out)
	})

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run("tail stops on "+sig.String(), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, "tail", "--url", storeURL)
			cmd.Dir = dir
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			// The start message comes after the signal handler is installed.
			started := make(chan string, 1)
			go func() {
				line, _ := bufio.NewReader(stderr).ReadString('\n')
				started <- line
			}()
			select {
			case line := <-started:
				require.Contains(t, line, "following")
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("tail printed no start message within 30s")
			}
			require.NoError(t, cmd.Process.Signal(sig))
			assert.NoError(t, cmd.Wait(), "tail exits with status 0 on %s", sig)
		})
	}
}
