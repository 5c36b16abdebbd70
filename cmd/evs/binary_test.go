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

// TestBinary runs the real program on its default store, sqlite:events.db in
// the working directory: exit statuses, stdout and stderr as a shell sees
// them, events kept between processes, and tail following another process's
// appends until Ctrl-C (status 130).
func TestBinary(t *testing.T) {
	bin := buildEVS(t)
	dir := t.TempDir()
	command := func(t *testing.T, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), urlEnv+"=") // the default URL
		return cmd
	}
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
		{"help", []string{"help"}, exitOK, "Usage:", ""},
		{"version", []string{"--version"}, exitOK, "evs ", ""},
		{"read before init", []string{"read", "S-1"}, exitFailure, "", "store not found"},
		{"bad flag", []string{"read", "--nope", "S-1"}, exitUsage, "", "flag provided but not defined"},
		{"missing type", []string{"append", "S-1", "{}"}, exitUsage, "", "missing --type"},
		{"init", []string{"init"}, exitOK, "store ready: sqlite:events.db (backend sqlite)", ""},
		{"bad stream ID", []string{"append", "$et", "--type", "T", "{}"}, exitFailure, "", `"$et": invalid stream id`},
		{"wrong expected version", []string{"append", "S-1", "--type", "T", "--expected", "2", "{}"}, exitFailure, "", "want 2, have 0"},
		{"append", []string{"append", "S-1", "--type", "T", `{"n":1}`}, exitOK, "appended T to S-1: version 1", ""},
		{"read in another process", []string{"read", "S-1"}, exitOK, `S-1@1  T  `, ""},
		{"stale expected version", []string{"append", "S-1", "--type", "T", "--expected", "no-stream", "{}"}, exitFailure, "", "want no-stream, have 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, tc.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			assert.Equal(t, tc.code, exitCode(cmd.Run()), "exit status; stderr: %s", stderr.String())
			if tc.stdout == "" {
				assert.Empty(t, stdout.String())
			} else {
				assert.Contains(t, stdout.String(), tc.stdout)
			}
			assert.Contains(t, stderr.String(), tc.stderr)
			switch tc.name {
			case "read before init":
				assert.NoFileExists(t, filepath.Join(dir, "events.db"), "read creates no store")
			case "init":
				assert.FileExists(t, filepath.Join(dir, "events.db"), "init creates the default store")
			}
		})
	}

	t.Run("json is one object per line", func(t *testing.T) {
		cmd := command(t, "append", "--json", "J-1", "--type", "T", "-")
		cmd.Stdin = strings.NewReader("{\n  \"pretty\": true\n}\n")
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Equal(t, 1, strings.Count(string(out), "\n"))
		assert.True(t, strings.HasPrefix(string(out), `{"stream":"J-1","version":1,`), "%s", out)
	})

	t.Run("append leaves a script's standard input alone", func(t *testing.T) {
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Skipf("needs sh in $PATH: %v", err)
		}
		cmd := exec.CommandContext(t.Context(), sh, "-c", `while read n; do "$0" append Loop-1 --type Counted "{\"n\":$n}"; done`, bin)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), urlEnv+"=")
		cmd.Stdin = strings.NewReader("1\n2\n3\n")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, 3, strings.Count(string(out), "appended Counted to Loop-1"), "one append per input line: %s", out)
	})

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run("tail follows another process and stops on "+sig.String(), func(t *testing.T) {
			category := "Tail_" + sig.String() // each run starts with an empty category
			cmd := command(t, "tail", "--category", category)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { cmd.Process.Kill() }) // if the test fails before Wait
			lines := make(chan string, 10)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			// The start message comes after the signal handler is installed.
			started := make(chan string, 1)
			go func() {
				line, _ := bufio.NewReader(stderr).ReadString('\n')
				started <- line
			}()
			select {
			case line := <-started:
				require.Contains(t, line, "following sqlite:events.db")
			case <-time.After(30 * time.Second):
				t.Fatal("tail printed no start message within 30s")
			}

			stream := category + "-1"
			require.NoError(t, command(t, "append", stream, "--type", "Happened", "{}").Run())
			select {
			case line := <-lines:
				assert.Contains(t, line, stream+"@1  Happened")
			case <-time.After(30 * time.Second):
				t.Fatal("tail printed no event within 30s of another process appending one")
			}

			require.NoError(t, cmd.Process.Signal(sig))
			assert.Equal(t, exitInterrupted, exitCode(cmd.Wait()), "tail exits with status 130 on %s", sig)
		})
	}
}
