package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeUsage(t *testing.T) {
	u := newStoreURL(t)
	t.Setenv(tokenEnv, "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"all interfaces without --allow-remote", []string{"--addr", ":8080"}, "reachable from other machines: add --allow-remote"},
		{"remote without --allow-remote", []string{"--addr", "0.0.0.0:8080", "--token", "0123456789abcdef"}, "add --allow-remote"},
		{"remote without a token", []string{"--addr", "0.0.0.0:8080", "--allow-remote"}, "--allow-remote needs a token"},
		{"short token", []string{"--token", "short"}, "want at least 16"},
		{"no port", []string{"--addr", "127.0.0.1"}, "want HOST:PORT"},
		{"page size", []string{"--page-size", "0"}, "invalid --page-size 0"},
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := evs(t, "", append([]string{"serve", "--url", u}, tc.args...)...)
			assert.Equal(t, exitUsage, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.want)
			assert.NotContains(t, r.stderr, "0123456789abcdef", "the token is never printed")
		})
	}
	r := evs(t, "", "serve", "--url", missingStoreURL(t), "--addr", "127.0.0.1:0")
	assert.Equal(t, exitFailure, r.code, "serve only reads: a store that does not exist fails")
	assert.Contains(t, r.stderr, "store not found")
}

// startServe runs evs serve on a free port until the test ends and returns
// the console's URL, which it prints with --json.
func startServe(t *testing.T, args ...string) (consoleURL string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := newLineReader(t)
	var stderr strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--json"}, args...), nil, out.w, &stderr)
	}()
	var started struct{ URL, Store string }
	require.NoError(t, json.Unmarshal([]byte(out.next(t, "the console's URL")), &started))
	stopped := false
	stop = func() int {
		stopped = true
		cancel()
		return waitCode(t, code)
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	assert.NotContains(t, started.Store, "hunter2")
	return started.URL, stop
}

func TestServe(t *testing.T) {
	u := newStoreURL(t)
	mustEVS(t, "", "append", "--url", u, "Order-1", "--type", "OrderPlaced", `{"n":1}`)
	mustEVS(t, "", "subscriptions", "--url", u, "set", "projector", "0/0")
	// The same store, with a password in its URL that no page may show.
	consoleURL, stop := startServe(t, "--url", strings.Replace(u, "evstest://", "evstest://app:hunter2@", 1))

	fetch := func(path string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, consoleURL+strings.TrimPrefix(path, "/"), nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := fetch("/stream?id=Order-1")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "OrderPlaced")
	assert.Contains(t, body, "evstest://app:xxxxx@")
	assert.NotContains(t, body, "hunter2")
	code, body = fetch("/metrics")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `eventstore_console_checkpoint_lag_events{checkpoint="projector"} 1`)

	// A live tail open while the server stops does not hold it up.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, consoleURL+"tail/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, exitInterrupted, stop(), "Ctrl-C stops the console with status 130")
}

func TestServeToken(t *testing.T) {
	const token = "0123456789abcdef0123"
	t.Setenv(tokenEnv, token)
	consoleURL, _ := startServe(t, "--url", newStoreURL(t), "--allow-remote")
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer " + token, http.StatusOK},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, consoleURL+"streams", nil)
		require.NoError(t, err)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.want, resp.StatusCode, "token from $%s, Authorization %q", tokenEnv, tc.auth)
	}
}
