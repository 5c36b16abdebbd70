package kurrentdb

import (
	"bytes"
	"errors"
	"log"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConnString(t *testing.T) {
	for _, tc := range []struct {
		url   string
		opts  Options // what the URL sets
		check func(t *testing.T, cfg *kdb.Configuration)
	}{
		{url: "kurrentdb://127.0.0.1:2113?tls=false", check: func(t *testing.T, cfg *kdb.Configuration) {
			assert.Equal(t, "127.0.0.1:2113", cfg.Address)
			assert.True(t, cfg.DisableTLS)
		}},
		{url: "esdb://db.example", check: func(t *testing.T, cfg *kdb.Configuration) {
			assert.Equal(t, "db.example:2113", cfg.Address, "the default port")
			assert.False(t, cfg.DisableTLS, "TLS by default")
		}},
		{url: "KDB://h:1?TLS=False&NodePreference=follower", check: func(t *testing.T, cfg *kdb.Configuration) {
			assert.True(t, cfg.DisableTLS, "case-insensitive keys")
			assert.Equal(t, kdb.NodePreferenceFollower, cfg.NodePreference)
		}},
		{url: "kurrent+discover://cluster.example:2113", check: func(t *testing.T, cfg *kdb.Configuration) {
			assert.True(t, cfg.DnsDiscover)
		}},
		{url: "esdb://a:2113,b:2114,c:2115?tls=false", check: func(t *testing.T, cfg *kdb.Configuration) {
			require.Len(t, cfg.GossipSeeds, 3)
			assert.Equal(t, "b:2114", cfg.GossipSeeds[1].String())
		}},
		{url: "kurrentdb://admin:changeit@h:2113", check: func(t *testing.T, cfg *kdb.Configuration) {
			assert.Equal(t, "admin", cfg.Username)
			assert.Equal(t, "changeit", cfg.Password)
		}},
		{url: "kurrentdb://h?namespace=orders&maxAppendSize=268435456&MAXAPPENDEVENTSIZE=1000000",
			opts: Options{Namespace: "orders", MaxAppendSize: 256 << 20, MaxAppendEventSize: 1_000_000}},
		{url: "kurrentdb://h?keepAliveInterval=5000&keepAliveTimeout=2000&defaultDeadline=3000", check: func(t *testing.T, cfg *kdb.Configuration) {
			assert.Equal(t, 5*time.Second, cfg.KeepAliveInterval)
			assert.Equal(t, 2*time.Second, cfg.KeepAliveTimeout)
			require.NotNil(t, cfg.DefaultDeadline)
			assert.Equal(t, 3*time.Second, *cfg.DefaultDeadline)
		}},
		{url: "kurrentdb://h?must_exist=true&connect_timeout=3", opts: Options{MustExist: true, ConnectTimeout: 3 * time.Second}},
		{url: "kurrentdb://h?MUST_EXIST=1&namespace=a.b", opts: Options{MustExist: true, Namespace: "a.b"}},
		{url: "kurrentdb://h?must_exist=false", opts: Options{}},
		{url: "kurrentdb://h?keepAliveInterval=-1", check: func(t *testing.T, cfg *kdb.Configuration) {
			assert.Equal(t, time.Duration(-1), cfg.KeepAliveInterval)
		}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			var opts Options
			cfg, err := parseConnString(tc.url, &opts)
			require.NoError(t, err)
			assert.Equal(t, tc.opts, opts)
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func TestParseConnStringRejects(t *testing.T) {
	for _, url := range []string{
		"postgres://h",
		"kurrentdb://h?unknown=1",
		"kurrentdb://h?eventstore_schema=x",
		"kurrentdb://h?tls=false&tls=true",
		"kurrentdb://h?namespace=",
		"kurrentdb://h?namespace=a/b",
		"kurrentdb://h?namespace=$sys",
		"kurrentdb://h?maxAppendSize=0",
		"kurrentdb://h?maxAppendSize=1024",
		"kurrentdb://h?maxAppendEventSize=-5",
		"kurrentdb://h?maxAppendSize=1MiB",
		"kurrentdb://h?defaultDeadline=soon",
		"kurrentdb://h?defaultDeadline=0",
		"kurrentdb://h?keepAliveInterval=-2",
		"kurrentdb://h?tls=maybe",
		"kurrentdb://h/path",
		"kurrentdb://[::1]:2113",
		"kurrentdb://h:port",
		"kurrentdb://:pw@h",
		"kurrentdb://",
		"%zz",
		// Strict query parsing: a lenient parser drops the pair, and the
		// namespace with it.
		"kurrentdb://h?namespace=a;b",
		"kurrentdb://h?tls=false;namespace=x",
		"kurrentdb://h?namespace=x&tls=false;",
		"kurrentdb://h?namespace=%zz",
		"kurrentdb://h?namespace=x&tls=%",
		"kurrentdb://h?namespace=a&NAMESPACE=b",
		"kurrentdb://h?must_exist=yes",
		"kurrentdb://h?must_exist=",
		"kurrentdb://h?must_exist=true&must_exist=true",
		"kurrentdb://h?connect_timeout=0",
		"kurrentdb://h?connect_timeout=-1",
		"kurrentdb://h?connect_timeout=1.5",
		"kurrentdb://h?connect_timeout=10s",
		"kurrentdb://h?connect_timeout=99999999999999999",
	} {
		t.Run(url, func(t *testing.T) {
			_, err := Open(t.Context(), url, Options{})
			require.Error(t, err)
			assert.True(t, errors.Is(err, eventstore.ErrInvalidArgument), "want ErrInvalidArgument, got %v", err)
		})
	}
	_, err := Open(t.Context(), "kurrentdb://h?namespace=a", Options{Namespace: "b"})
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument, "namespace in the URL and the options")
	_, err = Open(t.Context(), "kurrentdb://h", Options{MaxAppendEventSize: -1})
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument, "a negative limit")
	_, err = Open(t.Context(), "kurrentdb://h", Options{ConnectTimeout: -time.Second})
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument, "a negative connect timeout")
}

func TestParseConnStringHidesPasswords(t *testing.T) {
	for _, url := range []string{
		"kurrentdb://admin:s3cr3t-pw@h:2113?unknown=1",
		"kurrentdb://admin:s3cr3t-pw@h:2113?tls=maybe",
		"kurrentdb://admin:s3cr3t-pw@h:bad",
		"kurrentdb://admin:s3cr3t-pw@[::1]:2113",
		"kurrentdb://admin:s3cr3t-pw@h:2113/path",
		"kurrentdb://admin:s3cr3t-pw@h:2113?namespace=a/b",
		"kurrentdb://admin:s3cr3t-pw@h%zz",
		"kurrentdb://admin:s3cr3t-pw@h:2113?namespace=a;b",
		"kurrentdb://admin:s3cr3t-pw@h:2113?namespace=%zz",
		"kurrentdb://admin:s3cr3t-pw@h:2113?namespace=a&must_exist=yes",
	} {
		_, err := eventstore.Open(t.Context(), url)
		require.Error(t, err, url)
		assert.NotContains(t, err.Error(), "s3cr3t", "the error for %s shows the password", url)
	}
	// The driver's own errors show no query at all: a malformed one may
	// hide anything. (eventstore.Open adds the URL as internal/redact
	// shows it.)
	for _, url := range []string{
		"kurrentdb://h:2113?password=s3cr3t-pw;x",
		"kurrentdb://h:2113?namespace=s3cr3t-pw%zz",
		"kurrentdb://h:2113?namespace=ok&token=s3cr3t-pw",
	} {
		_, err := Open(t.Context(), url, Options{})
		require.Error(t, err, url)
		assert.NotContains(t, err.Error(), "s3cr3t", "the error for %s shows the password", url)
	}
}

// The client logs through the standard logger while it parses (an unknown
// key, a keep-alive under 10 s); library code must not print.
func TestParseConnStringPrintsNothing(t *testing.T) {
	var buf bytes.Buffer
	out, flags := log.Writer(), log.Flags()
	log.SetOutput(&buf)
	defer func() { log.SetOutput(out); log.SetFlags(flags) }()
	for _, url := range []string{"kurrentdb://h?keepAliveInterval=1000&connect_timeout=1", "kurrentdb://h?whatever=1"} {
		d, err := Open(t.Context(), url, Options{})
		if err == nil {
			d.Close()
		}
	}
	assert.Empty(t, buf.String())
}

func FuzzParseConnString(f *testing.F) {
	for _, s := range []string{
		"kurrentdb://127.0.0.1:2113?tls=false", "esdb://a:1,b:2?namespace=x", "kdb+discover://u:p@h?maxAppendSize=10",
		"kurrent://h?keepAliveInterval=-1&defaultDeadline=5", "kurrentdb://h:99999", "esdb://,", "kurrentdb://h?%zz",
		"kurrentdb://h?namespace=a;b", "kurrentdb://h?must_exist=true&connect_timeout=5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var opts Options
		cfg, err := parseConnString(s, &opts)
		if err != nil {
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Fatalf("parseConnString(%q): an error not matching ErrInvalidArgument: %v", s, err)
			}
			if u, perr := url.Parse(s); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Contains(err.Error(), pw) &&
					!strings.Contains(u.Host+u.Path+u.User.Username(), pw) {
					t.Fatalf("parseConnString(%q): the error shows the password: %v", s, err)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatalf("parseConnString(%q): no error and no configuration", s)
		}
		// Accepted: the query parses strictly, so no pair was dropped.
		u, _ := url.Parse(s)
		if _, err := url.ParseQuery(u.RawQuery); err != nil {
			t.Fatalf("parseConnString(%q) accepted a query that does not parse: %v", s, err)
		}
	})
}
