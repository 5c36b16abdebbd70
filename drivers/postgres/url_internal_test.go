package postgres

import (
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseConfig: our parameters come off the URL, pgx's pass through
// unchanged, the connect timeout defaults to 10 s, and a query that does
// not parse strictly, or is ambiguous, is rejected instead of losing pairs.
func TestParseConfig(t *testing.T) {
	const password = "Pw-8c1f0e"
	const base = "postgres://app:" + password + "@localhost:5432/db"
	for _, tc := range []struct {
		name      string
		conn      string
		opts      Options
		schema    string
		mustExist bool
		timeout   time.Duration
		maxConns  int32 // 0: DefaultMaxConns
		pageSize  int   // opts.PageSize after parsing (0: the driver's default)
		wantErr   bool  // an error matching ErrInvalidArgument
	}{
		{name: "Defaults", conn: base, timeout: DefaultConnectTimeout},
		{name: "Schema", conn: base + "?schema=orders", schema: "orders", timeout: DefaultConnectTimeout},
		{name: "MustExistTrue", conn: base + "?must_exist=true", mustExist: true, timeout: DefaultConnectTimeout},
		{name: "MustExistFalse", conn: base + "?must_exist=false", timeout: DefaultConnectTimeout},
		{name: "MustExistInOptions", conn: base, opts: Options{MustExist: true}, mustExist: true, timeout: DefaultConnectTimeout},
		{name: "ConnectTimeoutInURL", conn: base + "?connect_timeout=3", timeout: 3 * time.Second},
		{name: "ConnectTimeoutZeroInURL", conn: base + "?connect_timeout=0", timeout: 0},
		{name: "ConnectTimeoutInOptions", conn: base, opts: Options{ConnectTimeout: 1500 * time.Millisecond}, timeout: 1500 * time.Millisecond},
		{name: "ConnectTimeoutNegativeInOptions", conn: base, opts: Options{ConnectTimeout: -1}, timeout: 0},
		{name: "ConnectTimeoutAgrees", conn: base + "?connect_timeout=3", opts: Options{ConnectTimeout: 3 * time.Second}, timeout: 3 * time.Second},
		{name: "ConnectTimeoutConflicts", conn: base + "?connect_timeout=3", opts: Options{ConnectTimeout: 2 * time.Second}, wantErr: true},
		{name: "KeywordValue", conn: "host=localhost user=app password=" + password + " dbname=db", timeout: DefaultConnectTimeout},
		{name: "KeywordValueConnectTimeout", conn: "host=localhost user=app password=" + password + " connect_timeout = 4", timeout: 4 * time.Second},
		{name: "MaxConnsInURL", conn: base + "?pool_max_conns=3", timeout: DefaultConnectTimeout, maxConns: 3},
		{name: "MaxConnsInOptions", conn: base, opts: Options{MaxConns: 40}, timeout: DefaultConnectTimeout, maxConns: 40},
		{name: "MaxConnsAgrees", conn: base + "?pool_max_conns=5", opts: Options{MaxConns: 5}, timeout: DefaultConnectTimeout, maxConns: 5},
		{name: "MaxConnsConflicts", conn: base + "?pool_max_conns=5", opts: Options{MaxConns: 6}, wantErr: true},
		{name: "MaxConnsNegative", conn: base, opts: Options{MaxConns: -1}, wantErr: true},
		{name: "MinConnsAboveDefault", conn: base + "?pool_min_conns=20", timeout: DefaultConnectTimeout, maxConns: 20},
		{name: "KeywordValueMaxConns", conn: "host=localhost user=app password=" + password + " pool_max_conns = 2", timeout: DefaultConnectTimeout, maxConns: 2},
		{name: "PageSizeInURL", conn: base + "?page_size=1000", timeout: DefaultConnectTimeout, pageSize: 1000},
		{name: "PageSizeInOptions", conn: base, opts: Options{PageSize: 64}, timeout: DefaultConnectTimeout, pageSize: 64},
		{name: "PageSizeAgrees", conn: base + "?page_size=64", opts: Options{PageSize: 64}, timeout: DefaultConnectTimeout, pageSize: 64},
		{name: "PageSizeConflicts", conn: base + "?page_size=64", opts: Options{PageSize: 65}, wantErr: true},
		{name: "PageSizeZero", conn: base + "?page_size=0", wantErr: true},
		{name: "PageSizeNegative", conn: base + "?page_size=-1", wantErr: true},
		{name: "PageSizeNotANumber", conn: base + "?page_size=big", wantErr: true},
		{name: "EmptyPageSize", conn: base + "?page_size=", wantErr: true},

		// Hostile or ambiguous queries.
		{name: "Semicolon", conn: base + "?schema=orders;sslmode=require", wantErr: true},
		{name: "SemicolonAfterPassword", conn: base + "?password=" + password + ";sslmode=require", wantErr: true},
		{name: "BadEscape", conn: base + "?sslmode=require&application_name=%zz", wantErr: true},
		{name: "BadEscapeInPassword", conn: base + "?password=" + password + "%z", wantErr: true},
		{name: "RepeatedOurs", conn: base + "?schema=a&schema=b", wantErr: true},
		{name: "RepeatedPgx", conn: base + "?sslmode=disable&sslmode=require", wantErr: true},
		{name: "RepeatedMustExist", conn: base + "?must_exist=true&must_exist=true", wantErr: true},
		{name: "EmptySchema", conn: base + "?schema=", wantErr: true},
		{name: "EmptyMustExist", conn: base + "?must_exist=", wantErr: true},
		{name: "BareMustExist", conn: base + "?must_exist", wantErr: true},
		{name: "MustExistYes", conn: base + "?must_exist=yes", wantErr: true},
		{name: "MustExistUpperCase", conn: base + "?must_exist=TRUE", wantErr: true},
		{name: "EmptyConnectTimeout", conn: base + "?connect_timeout=", wantErr: true},
		{name: "ReservedPrefix", conn: base + "?eventstore_schema=x", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			cfg, err := parseConfig(tc.conn, &opts)
			if tc.wantErr {
				require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
				assert.NotContains(t, err.Error(), password)
				assert.NotContains(t, err.Error(), password[:len(password)-2], "part of the password")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.schema, opts.Schema)
			assert.Equal(t, tc.mustExist, opts.MustExist)
			assert.Equal(t, tc.timeout, cfg.ConnConfig.ConnectTimeout)
			if tc.maxConns == 0 {
				tc.maxConns = DefaultMaxConns
			}
			assert.Equal(t, tc.maxConns, cfg.MaxConns)
			assert.Equal(t, tc.pageSize, opts.PageSize)
			for _, k := range []string{"schema", "must_exist", "page_size"} {
				assert.NotContains(t, cfg.ConnConfig.RuntimeParams, k, "our parameter sent to the server")
			}
		})
	}
}

// Every pgx parameter survives the rewrite of the query: sslmode among
// them, and values with escaped characters.
func TestParseConfigKeepsPgxParameters(t *testing.T) {
	var opts Options
	cfg, err := parseConfig("postgres://app@localhost/db?schema=orders&sslmode=require&application_name=a%26b%3Bc&statement_timeout=5s", &opts)
	require.NoError(t, err)
	assert.Equal(t, "orders", opts.Schema)
	assert.NotNil(t, cfg.ConnConfig.TLSConfig, "sslmode=require kept")
	assert.Empty(t, cfg.ConnConfig.Fallbacks, "sslmode=require has no plain-text fallback")
	assert.Equal(t, "a&b;c", cfg.ConnConfig.RuntimeParams["application_name"])
	assert.Equal(t, "5s", cfg.ConnConfig.RuntimeParams["statement_timeout"])
}

// PGCONNECT_TIMEOUT, which pgx reads, counts as a timeout the user set.
func TestParseConfigConnectTimeoutFromEnvironment(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "0")
	var opts Options
	cfg, err := parseConfig("postgres://app@localhost/db", &opts)
	require.NoError(t, err)
	assert.Zero(t, cfg.ConnConfig.ConnectTimeout)
	opts = Options{ConnectTimeout: time.Second}
	cfg, err = parseConfig("postgres://app@localhost/db", &opts)
	require.NoError(t, err)
	assert.Equal(t, time.Second, cfg.ConnConfig.ConnectTimeout, "options win over the environment")
}
