package sqlite

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url     string
		path    string
		opts    Options
		wantErr string // substring of the error; "" means success
	}{
		{url: "sqlite:events.db", path: "events.db"},
		{url: "sqlite:data/events.db", path: "data/events.db"},
		{url: "sqlite:./events.db", path: "./events.db"},
		{url: "sqlite:///var/data/events.db", path: "/var/data/events.db"},
		{url: "sqlite:/var/data/events.db", path: "/var/data/events.db"},
		{url: "SQLITE:///var/events.db", path: "/var/events.db"},
		{url: "sqlite:///var/my%20events%23%3F.db", path: "/var/my events#?.db"},
		{url: "sqlite:my%20events.db", path: "my events.db"},
		{url: "sqlite:///e.db?synchronous=normal", path: "/e.db", opts: Options{Synchronous: SynchronousNormal}},
		{url: "sqlite:///e.db?synchronous=FULL", path: "/e.db", opts: Options{Synchronous: SynchronousFull}},
		{url: "sqlite:e.db?busy_timeout=250ms&watch_interval=2ms&max_read_conns=9", path: "e.db",
			opts: Options{BusyTimeout: 250 * time.Millisecond, WatchInterval: 2 * time.Millisecond, MaxReadConns: 9}},

		{url: "sqlite:", wantErr: "empty database path"},
		{url: "sqlite://", wantErr: "empty database path"},
		{url: "sqlite:///", wantErr: ""}, // a directory: SQLite fails to open it, not the parser
		{url: "sqlite://data/events.db", wantErr: `has a host "data"`},
		{url: "sqlite://localhost/events.db", wantErr: "has a host"},
		{url: "sqlite://user:secret@/events.db", wantErr: "no user or password"},
		{url: "sqlite:events.db#frag", wantErr: "fragment"},
		{url: "sqlite::memory:", wantErr: "want a file path"},
		{url: "sqlite:file:events.db", wantErr: "want a file path"},
		{url: "sqlite:e%00.db", wantErr: "NUL"},
		{url: "sqlite:e.db?synchronous=off", wantErr: "want full or normal"},
		{url: "sqlite:e.db?synchronous=", wantErr: "want full or normal"},
		{url: "sqlite:e.db?busy_timeout=5", wantErr: "positive duration"},
		{url: "sqlite:e.db?busy_timeout=-1s", wantErr: "positive duration"},
		{url: "sqlite:e.db?watch_interval=0s", wantErr: "positive duration"},
		{url: "sqlite:e.db?max_read_conns=0", wantErr: "positive number"},
		{url: "sqlite:e.db?max_read_conns=x", wantErr: "positive number"},
		{url: "sqlite:e.db?synchronous=full&synchronous=normal", wantErr: "given 2 times"},
		{url: "sqlite:e.db?_journal_mode=DELETE", wantErr: `unknown parameter "_journal_mode"`},
		{url: "sqlite:e.db?cache=shared", wantErr: `unknown parameter "cache"`},
		{url: "sqlite:e.db?Synchronous=full", wantErr: `unknown parameter "Synchronous"`},
		{url: "sqlite:e.db?a=%zz", wantErr: "malformed query"},
		{url: "sqlite:e.db?must_exist=true", path: "e.db", opts: Options{MustExist: true}},
		{url: "sqlite:e.db?must_exist=false", path: "e.db"},
		{url: "sqlite:e.db?must_exist=yes", wantErr: "want true or false"},
		{url: "sqlite:e.db?must_exist=TRUE", wantErr: "want true or false"},
		{url: "sqlite:e.db?must_exist=", wantErr: "want true or false"},
		{url: "sqlite:e.db?must_exist", wantErr: "want true or false"},
		{url: "sqlite:e.db?must_exist=true&must_exist=false", wantErr: "given 2 times"},
		{url: "sqlite:e.db?must_exist=true;synchronous=normal", wantErr: "malformed query"},
		{url: "sqlite:e.db?synchronous=normal%3", wantErr: "malformed query"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			path, opts, err := parseURL(u)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.url != "sqlite:///" {
				assert.Equal(t, tc.path, path)
			}
			assert.Equal(t, tc.opts, opts)
		})
	}
}

func TestOpenURLErrorsAreRedacted(t *testing.T) {
	t.Parallel()
	_, err := eventstore.Open(t.Context(), "sqlite://admin:hunter2@/x.db")
	require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	assert.NotContains(t, err.Error(), "hunter2")
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"sqlite:events.db", "sqlite:///var/e.db?synchronous=normal", "sqlite://h/e.db",
		"sqlite:e.db?busy_timeout=1s&watch_interval=1ms&max_read_conns=2", "sqlite:%41.db#x", "sqlite::memory:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		path, opts, err := parseURL(u)
		if err != nil {
			if !strings.Contains(err.Error(), "sqlite: ") || !isInvalid(err) {
				t.Fatalf("parseURL(%q): error %v does not match ErrInvalidArgument", raw, err)
			}
			return
		}
		if path == "" || strings.ContainsRune(path, 0) {
			t.Fatalf("parseURL(%q) accepted path %q", raw, path)
		}
		if _, err := opts.withDefaults(); err != nil {
			t.Fatalf("parseURL(%q) returned options %+v that Open rejects: %v", raw, opts, err)
		}
	})
}
