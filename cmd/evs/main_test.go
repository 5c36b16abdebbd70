package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shared holds the memory drivers behind "evstest://NAME" URLs: unlike
// "memory://", each of which is a new store, every open of the same NAME
// reaches the same events, so one test can run several commands against one
// store, as a user does with a SQLite file. Like every driver, it takes
// must_exist=true: then a NAME not opened before is eventstore.ErrStoreNotFound.
var shared sync.Map // NAME → *memory.Driver

func init() {
	eventstore.Register("evstest", func(_ context.Context, u *url.URL, _ driver.OpenOptions) (driver.Driver, error) {
		if u.Query().Get(eventstore.MustExistParam) == "true" {
			d, ok := shared.Load(u.Host)
			if !ok {
				return nil, fmt.Errorf("evstest: %q: %w", u.Host, eventstore.ErrStoreNotFound)
			}
			return d.(*memory.Driver), nil
		}
		d, _ := shared.LoadOrStore(u.Host, memory.New())
		return d.(*memory.Driver), nil
	})
}

// newStoreURL returns the URL of a fresh, empty store for one test. The
// store exists, as after evs init.
func newStoreURL(t testing.TB) string {
	t.Helper()
	u := missingStoreURL(t)
	shared.Store(strings.TrimPrefix(u, "evstest://"), memory.New())
	return u
}

// missingStoreURL returns the URL of a store that does not exist yet.
func missingStoreURL(t testing.TB) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	return "evstest://" + hex.EncodeToString(b[:])
}

// result is what one evs command line did.
type result struct {
	code           int
	stdout, stderr string
}

// evs runs the command line args in-process with stdin as standard input.
func evs(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// mustEVS runs evs and requires it to succeed.
func mustEVS(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	r := evs(t, stdin, args...)
	require.Equalf(t, exitOK, r.code, "evs %q: stderr: %s", args, r.stderr)
	return r.stdout
}

// decodeLines parses one JSON object per line.
func decodeLines[T any](t testing.TB, out string) []T {
	t.Helper()
	var all []T
	for line := range strings.Lines(out) {
		var v T
		require.NoErrorf(t, json.Unmarshal([]byte(line), &v), "line %q", line)
		all = append(all, v)
	}
	return all
}

// event is the --json form of an event as a script reads it.
type event struct {
	Stream      string          `json:"stream"`
	Version     uint64          `json:"version"`
	Position    string          `json:"position"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	ContentType string          `json:"content_type"`
	Data        json.RawMessage `json:"data"`
	Metadata    json.RawMessage `json:"metadata"`
	RecordedAt  string          `json:"recorded_at"`
}

type appended struct {
	Stream   string `json:"stream"`
	Version  uint64 `json:"version"`
	Position string `json:"position"`
	ID       string `json:"id"`
}

func TestInit(t *testing.T) {
	u := newStoreURL(t)
	out := mustEVS(t, "", "init", "--url", u)
	assert.Equal(t, "store ready: "+u+" (backend evstest)\n", out)

	var got struct{ URL, Backend string }
	require.NoError(t, json.Unmarshal([]byte(mustEVS(t, "", "init", "--url", u, "--json")), &got))
	assert.Equal(t, u, got.URL)
	assert.Equal(t, "evstest", got.Backend)
}

func TestAppendThenRead(t *testing.T) {
	u := newStoreURL(t)
	const id = "0b9e6a4c-8d8f-4bb7-9a53-6c0a5a1f4d11"
	steps := []struct {
		name    string
		stdin   string
		args    []string
		version uint64
	}{
		{"json argument", "", []string{"Order-42", "--type", "Placed", `{"b": 1, "a": [true, null]}`}, 1},
		{"flags after data", "", []string{"Order-42", `{"n":2}`, "--type", "Paid", "--expected", "1", "--metadata", `{"$correlationId":"c-1"}`}, 2},
		{"stdin with dash", `{"from":"stdin"}`, []string{"--type", "Shipped", "Order-42", "-"}, 3},
		{"stdin with --data-file -", `{"n":4}`, []string{"Order-42", "--type", "Noted", "--expected", "stream-exists", "--data-file", "-"}, 4},
		{"binary", "\x00\x01\xff", []string{"Order-42", "--type", "Blob", "--binary", "-", "--id", id}, 5},
		{"no data: stdin is not read", `{"not":"read"}`, []string{"Order-42", "--type", "Closed", "--expected", "5"}, 6},
		{"data starting with a dash", "", []string{"Order-42", "--type", "Adjusted", "--", "-7"}, 7},
	}
	var results []appended
	for _, st := range steps {
		out := mustEVS(t, st.stdin, append([]string{"append", "--url", u, "--json"}, st.args...)...)
		res := decodeLines[appended](t, out)
		require.Lenf(t, res, 1, "%s: output %q", st.name, out)
		assert.Equalf(t, "Order-42", res[0].Stream, "%s: stream", st.name)
		assert.Equalf(t, st.version, res[0].Version, "%s: version", st.name)
		results = append(results, res[0])
	}
	assert.Equal(t, id, results[4].ID, "--id is the event's ID")

	got := decodeLines[event](t, mustEVS(t, "", "read", "--url", u, "--json", "Order-42"))
	require.Len(t, got, len(steps))
	wantData := []string{`{"b":1,"a":[true,null]}`, `{"n":2}`, `{"from":"stdin"}`, `{"n":4}`, "", "null", "-7"}
	for i, ev := range got {
		assert.Equalf(t, "Order-42", ev.Stream, "event %d stream", i)
		assert.Equalf(t, uint64(i+1), ev.Version, "event %d version", i)
		assert.Equalf(t, results[i].Position, ev.Position, "event %d position: read and append agree", i)
		assert.Equalf(t, results[i].ID, ev.ID, "event %d id", i)
		_, err := eventstore.ParsePosition(ev.Position)
		assert.NoErrorf(t, err, "event %d position %q", i, ev.Position)
		at, err := time.Parse(time.RFC3339Nano, ev.RecordedAt)
		if assert.NoErrorf(t, err, "event %d recorded_at %q", i, ev.RecordedAt) {
			assert.Equalf(t, time.UTC, at.Location(), "event %d recorded_at is UTC", i)
			assert.Lenf(t, ev.RecordedAt, len("2026-12-02T16:17:25.123400Z"), "event %d recorded_at %q has a fixed width", i, ev.RecordedAt)
		}
		if i != 4 {
			assert.Equalf(t, "json", ev.ContentType, "event %d content type", i)
			assert.JSONEqf(t, wantData[i], string(ev.Data), "event %d data", i)
		}
	}
	assert.Equal(t, []string{"Placed", "Paid", "Shipped", "Noted", "Blob", "Closed", "Adjusted"},
		[]string{got[0].Type, got[1].Type, got[2].Type, got[3].Type, got[4].Type, got[5].Type, got[6].Type})
	assert.Equal(t, `{"b":1,"a":[true,null]}`, string(got[0].Data), "JSON data keeps its key order")
	assert.JSONEq(t, `{"$correlationId":"c-1"}`, string(got[1].Metadata))
	assert.Equal(t, "null", string(got[0].Metadata), "no metadata is null")

	// Binary data is a base64 string.
	assert.Equal(t, "binary", got[4].ContentType)
	var b64 string
	require.NoError(t, json.Unmarshal(got[4].Data, &b64))
	raw, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	assert.Equal(t, []byte("\x00\x01\xff"), raw)

	// Readable form: one line per event.
	lines := strings.Split(strings.TrimSuffix(mustEVS(t, "", "read", "--url", u, "Order-42"), "\n"), "\n")
	require.Len(t, lines, len(steps))
	assert.Contains(t, lines[0], "Order-42@1  Placed  ")
	assert.Contains(t, lines[0], `{"b":1,"a":[true,null]}`)
	assert.Contains(t, lines[1], `meta={"$correlationId":"c-1"}`)
	assert.Contains(t, lines[4], "base64:AAH/")
	assert.Contains(t, lines[5], "(empty)")
	assert.True(t, strings.HasPrefix(lines[0], results[0].Position+"  "), "line starts with the position: %q", lines[0])
}

func TestRead(t *testing.T) {
	u := newStoreURL(t)
	for range 5 {
		mustEVS(t, "", "append", "--url", u, "Cart-1", "--type", "Added", "{}")
	}
	versions := func(out string) []uint64 {
		var vs []uint64
		for _, ev := range decodeLines[event](t, out) {
			vs = append(vs, ev.Version)
		}
		return vs
	}
	tests := []struct {
		name string
		args []string
		want []uint64
	}{
		{"all", nil, []uint64{1, 2, 3, 4, 5}},
		{"from", []string{"--from", "4"}, []uint64{4, 5}},
		{"limit", []string{"--limit", "2"}, []uint64{1, 2}},
		{"from and limit", []string{"--from", "2", "--limit", "2"}, []uint64{2, 3}},
		{"backwards", []string{"--backwards"}, []uint64{5, 4, 3, 2, 1}},
		{"backwards from", []string{"--backwards", "--from", "2"}, []uint64{2, 1}},
		{"from beyond the end", []string{"--from", "9"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evs(t, "", append([]string{"read", "--url", u, "--json", "Cart-1"}, tc.args...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, tc.want, versions(r.stdout))
		})
	}

	t.Run("missing stream", func(t *testing.T) {
		r := evs(t, "", "read", "--url", u, "Cart-404")
		require.Equal(t, exitOK, r.code, "a stream with no events reads as empty")
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, `no events in stream "Cart-404"`)
	})
}

func TestAppendWrongExpectedVersion(t *testing.T) {
	u := newStoreURL(t)
	mustEVS(t, "", "append", "--url", u, "Account-1", "--type", "Opened", "--expected", "no-stream", "{}")

	tests := []struct {
		name, expected, want string
	}{
		{"no-stream on an existing stream", "no-stream", "wrong expected version: want no-stream, have 1"},
		{"stale version", "3", "wrong expected version: want 3, have 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evs(t, "", "append", "--url", u, "Account-1", "--type", "Deposited", "--expected", tc.expected, "{}")
			assert.Equal(t, exitFailure, r.code)
			assert.Contains(t, r.stderr, `append "Account-1": `+tc.want)
			assert.Empty(t, r.stdout)
		})
	}
	r := evs(t, "", "append", "--url", u, "Account-1", "--type", "Opened", "--expected", "stream-exists", "{}")
	require.Equal(t, exitOK, r.code, "the stream is not wedged by rejected appends: %s", r.stderr)

	t.Run("stream-exists on a new stream", func(t *testing.T) {
		r := evs(t, "", "append", "--url", u, "Account-2", "--type", "Deposited", "--expected", "stream-exists", "{}")
		assert.Equal(t, exitFailure, r.code)
		assert.Contains(t, r.stderr, "want stream-exists, have 0")
	})
}

func TestAppendRetryWithSameID(t *testing.T) {
	u := newStoreURL(t)
	args := []string{"append", "--url", u, "--json", "Order-7", "--type", "Placed", "--expected", "no-stream",
		"--id", "6f1c2a4e-0000-4000-8000-000000000001", "{}"}
	first := decodeLines[appended](t, mustEVS(t, "", args...))
	again := decodeLines[appended](t, mustEVS(t, "", args...))
	assert.Equal(t, first, again, "a retry with the same --id returns the original result")
	assert.Len(t, decodeLines[event](t, mustEVS(t, "", "read", "--url", u, "--json", "Order-7")), 1, "and writes nothing")
}

func TestExitCodes(t *testing.T) {
	u := newStoreURL(t)
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr string // a substring of the diagnostic
	}{
		{"no command", nil, "", exitUsage, "Usage:"},
		{"unknown command", []string{"frobnicate"}, "", exitUsage, `unknown command "frobnicate"`},
		{"help for an unknown command", []string{"help", "frobnicate"}, "", exitUsage, `unknown command "frobnicate"`},
		{"help with two commands", []string{"help", "read", "tail"}, "", exitUsage, `unexpected argument "tail"`},
		{"version with an argument", []string{"version", "x"}, "", exitUsage, `unexpected argument "x"`},
		{"append with data and --data-file", []string{"append", "--url", u, "S-1", "--type", "T", "--data-file", "-", "{}"}, "", exitUsage, "both a DATA argument and --data-file"},
		{"tail negative limit", []string{"tail", "--url", u, "--limit", "-2"}, "", exitUsage, "invalid --limit -2"},
		{"tail backwards from the end", []string{"tail", "--url", u, "--backwards", "--from-end"}, "", exitUsage, "prints nothing"},
		{"unknown flag", []string{"read", "--url", u, "--bogus", "S-1"}, "", exitUsage, "flag provided but not defined: -bogus"},
		{"flag without value", []string{"read", "S-1", "--limit"}, "", exitUsage, "flag needs an argument"},
		{"negative limit", []string{"read", "--url", u, "S-1", "--limit", "-1"}, "", exitUsage, "invalid --limit"},
		{"bad version", []string{"read", "--url", u, "S-1", "--from", "x"}, "", exitUsage, `invalid value "x" for flag -from`},
		{"read without stream", []string{"read", "--url", u}, "", exitUsage, "missing STREAM"},
		{"read two streams", []string{"read", "--url", u, "A-1", "B-1"}, "", exitUsage, `unexpected argument "B-1"`},
		{"append without stream", []string{"append", "--url", u, "--type", "T"}, "", exitUsage, "missing STREAM"},
		{"append without type", []string{"append", "--url", u, "S-1", "{}"}, "", exitUsage, "missing --type"},
		{"bad expected", []string{"append", "--url", u, "S-1", "--type", "T", "--expected", "soon"}, "", exitUsage, "want any, no-stream, stream-exists or a version number"},
		{"bad id", []string{"append", "--url", u, "S-1", "--type", "T", "--id", "42"}, "", exitUsage, `invalid --id "42"`},
		{"too many arguments", []string{"append", "--url", u, "S-1", "--type", "T", "{}", "{}"}, "", exitUsage, `unexpected argument "{}"`},
		{"bad position", []string{"tail", "--url", u, "--from", "17"}, "", exitUsage, "want a position such as 42/0"},
		{"from and from-end", []string{"tail", "--url", u, "--from", "1/0", "--from-end"}, "", exitUsage, "exclude each other"},
		{"stats with argument", []string{"stats", "--url", u, "x"}, "", exitUsage, `unexpected argument "x"`},

		{"reserved stream ID", []string{"append", "--url", u, "$all", "--type", "T", "{}"}, "", exitFailure, `append "$all": invalid stream id`},
		{"stream ID with a control character", []string{"read", "--url", u, "Order\x01-1"}, "", exitFailure, `read stream "Order\x01-1": invalid stream id`},
		{"empty stream ID", []string{"append", "--url", u, "--type", "T", "", "{}"}, "", exitFailure, `append "": invalid stream id`},
		{"reserved type", []string{"append", "--url", u, "S-1", "--type", "$T", "{}"}, "", exitFailure, "invalid event type"},
		{"invalid JSON data", []string{"append", "--url", u, "S-1", "--type", "T", "not json"}, "", exitFailure, "--binary"},
		{"JSON string of invalid UTF-8", []string{"append", "--url", u, "S-1", "--type", "T", "\"\xff\""}, "", exitFailure, "--binary"},
		{"metadata not an object", []string{"append", "--url", u, "S-1", "--type", "T", "--metadata", "[1]", "{}"}, "", exitFailure, "metadata is not a JSON object"},
		{"metadata not an object, with JSON data", []string{"append", "--url", u, "S-1", "--type", "T", "--metadata", "[1]", "{}"}, "", exitFailure, "metadata is not a JSON object\n"},
		{"bad filter", []string{"tail", "--url", u, "--no-follow", "--category", "$sys"}, "", exitFailure, "invalid stream id"},
		{"unknown backend", []string{"stats", "--url", "nosuch://x"}, "", exitFailure, `unknown scheme "nosuch"`},
		{"missing data file", []string{"append", "--url", u, "S-1", "--type", "T", "--data-file", "/nonexistent/data.json"}, "", exitFailure, `append "S-1": read data: open /nonexistent/data.json: no such file`},
		{"data on stdin too large", []string{"append", "--url", u, "S-1", "--type", "T", "-"}, strings.Repeat(" ", maxData+1), exitFailure, "data on stdin is over the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evs(t, tc.stdin, tc.args...)
			assert.Equal(t, tc.code, r.code, "exit status; stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tc.stderr)
			if tc.code != exitOK {
				assert.Empty(t, r.stdout, "nothing on stdout on failure")
			}
		})
	}
	// Nothing above was written.
	assert.Equal(t, "0/0", statsOf(t, u).LastPosition)
}

func TestSecretsAreNotPrinted(t *testing.T) {
	const secret = "s3cret-pw"
	for _, args := range [][]string{
		{"init", "--url", "postgres://user:" + secret + "@127.0.0.1:1/events?connect_timeout=5"},
		{"stats", "--url", "nosuch://u:" + secret + "@h/x?token=" + secret},
		// Connection strings whose scheme no driver has: a keyword/value
		// string, and a URL without "//", hide their password too.
		{"stats", "--url", "host=127.0.0.1 user=app password=" + secret + " dbname=events"},
		{"read", "--url", "app:" + secret + "@127.0.0.1/events", "Order-1"},
		{"tail", "--url", "postgres://user:" + secret + "@127.0.0.1:1/events?connect_timeout=5", "--json"},
	} {
		r := evs(t, "", args...)
		assert.Equal(t, exitFailure, r.code)
		assert.NotContains(t, r.stderr+r.stdout, secret)
		assert.Contains(t, r.stderr, "xxxxx")
	}
	// Nor in help, whose flag defaults come from the environment.
	t.Setenv(urlEnv, "postgres://user:"+secret+"@127.0.0.1:1/events?connect_timeout=5")
	r := evs(t, "", "help", "stats")
	assert.NotContains(t, r.stderr+r.stdout, secret)
}

func TestURLFromEnvironment(t *testing.T) {
	u := newStoreURL(t)
	t.Setenv(urlEnv, u)
	mustEVS(t, "", "append", "Env-1", "--type", "T", "{}")
	assert.Equal(t, 1, statsOf(t, u).Events, "$EVENTSTORE_URL chose the store")
	assert.Equal(t, 0, statsOf(t, newStoreURL(t)).Events)
	// --url wins over the environment.
	other := newStoreURL(t)
	mustEVS(t, "", "append", "--url", other, "Env-1", "--type", "T", "{}")
	assert.Equal(t, 1, statsOf(t, u).Events)
	assert.Equal(t, 1, statsOf(t, other).Events)
}

func statsOf(t testing.TB, u string) stats {
	t.Helper()
	var st stats
	require.NoError(t, json.Unmarshal([]byte(mustEVS(t, "", "stats", "--url", u, "--json")), &st))
	return st
}

func TestStats(t *testing.T) {
	u := newStoreURL(t)
	assert.Equal(t, stats{LastPosition: "0/0", Categories: []categoryStats{}}, statsOf(t, u), "empty store")

	var last appended
	for _, s := range []string{"Order-1", "Order-2", "Order-1", "Cart-9", "Order-1", "singleton"} {
		last = decodeLines[appended](t, mustEVS(t, "", "append", "--url", u, "--json", s, "--type", "T", "{}"))[0]
	}
	assert.Equal(t, stats{
		Events:       6,
		Streams:      4,
		LastPosition: last.Position,
		Categories: []categoryStats{
			{Category: "Cart", Streams: 1, Events: 1},
			{Category: "Order", Streams: 2, Events: 4},
			{Category: "singleton", Streams: 1, Events: 1},
		},
	}, statsOf(t, u))

	out := mustEVS(t, "", "stats", "--url", u)
	assert.Contains(t, out, "events         6\n")
	assert.Contains(t, out, "last position  "+last.Position+"\n")
	assert.Contains(t, out, "Order      2        4\n")
}

func TestTailNoFollow(t *testing.T) {
	u := newStoreURL(t)
	var positions []string
	for _, a := range [][2]string{
		{"Order-1", "Placed"}, {"Cart-1", "Added"}, {"Order-2", "Placed"},
		{"Order-1", "Paid"}, {"Invoice-1", "Sent"}, {"Order-1", "Shipped"},
	} {
		res := decodeLines[appended](t, mustEVS(t, "", "append", "--url", u, "--json", a[0], "--type", a[1], "{}"))
		positions = append(positions, res[0].Position)
	}
	type got struct{ Stream, Type string }
	tests := []struct {
		name string
		args []string
		want []got
	}{
		{"all", nil, []got{{"Order-1", "Placed"}, {"Cart-1", "Added"}, {"Order-2", "Placed"}, {"Order-1", "Paid"}, {"Invoice-1", "Sent"}, {"Order-1", "Shipped"}}},
		{"one category", []string{"--category", "Order"}, []got{{"Order-1", "Placed"}, {"Order-2", "Placed"}, {"Order-1", "Paid"}, {"Order-1", "Shipped"}}},
		{"categories", []string{"--category", "Cart", "--category", "Invoice"}, []got{{"Cart-1", "Added"}, {"Invoice-1", "Sent"}}},
		{"types", []string{"--type", "Placed", "--type", "Sent"}, []got{{"Order-1", "Placed"}, {"Order-2", "Placed"}, {"Invoice-1", "Sent"}}},
		{"category and type", []string{"--category", "Order", "--type", "Paid"}, []got{{"Order-1", "Paid"}}},
		{"from a position", []string{"--from", positions[3]}, []got{{"Invoice-1", "Sent"}, {"Order-1", "Shipped"}}},
		{"from the last position", []string{"--from", positions[5]}, nil},
		{"limit", []string{"--limit", "2"}, []got{{"Order-1", "Placed"}, {"Cart-1", "Added"}}},
		{"backwards", []string{"--backwards"}, []got{{"Order-1", "Shipped"}, {"Invoice-1", "Sent"}, {"Order-1", "Paid"}, {"Order-2", "Placed"}, {"Cart-1", "Added"}, {"Order-1", "Placed"}}},
		{"the last two", []string{"--backwards", "--limit", "2"}, []got{{"Order-1", "Shipped"}, {"Invoice-1", "Sent"}}},
		{"the last two of a category", []string{"--backwards", "--limit", "2", "--category", "Order"}, []got{{"Order-1", "Shipped"}, {"Order-1", "Paid"}}},
		{"backwards from a position: before it", []string{"--backwards", "--from", positions[3], "--limit", "2"}, []got{{"Order-2", "Placed"}, {"Cart-1", "Added"}}},
		{"limit 0 is no limit", []string{"--backwards", "--limit", "0", "--type", "Placed"}, []got{{"Order-2", "Placed"}, {"Order-1", "Placed"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"tail", "--url", u, "--json"}
			if !slices.Contains(tc.args, "--backwards") {
				args = append(args, "--no-follow") // --backwards implies it
			}
			out := mustEVS(t, "", append(args, tc.args...)...)
			var evs []got
			for _, ev := range decodeLines[event](t, out) {
				evs = append(evs, got{ev.Stream, ev.Type})
			}
			assert.Equal(t, tc.want, evs)
		})
	}
}

// tail --limit N without --no-follow follows until it has printed N events,
// then exits 0.
func TestTailFollowLimit(t *testing.T) {
	u := newStoreURL(t)
	mustEVS(t, "", "append", "--url", u, "Order-1", "--type", "Placed", "{}")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newLineReader(t)
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"tail", "--url", u, "--json", "--limit", "2"}, nil, out.w, io.Discard)
	}()
	assert.Equal(t, "Order-1", decodeLines[event](t, out.next(t, "the stored event"))[0].Stream)
	mustEVS(t, "", "append", "--url", u, "Order-2", "--type", "Placed", "{}")
	assert.Equal(t, "Order-2", decodeLines[event](t, out.next(t, "the live event"))[0].Stream)
	assert.Equal(t, exitOK, waitCode(t, code), "tail stops by itself after --limit events")
}

// lineReader delivers the lines a running command writes, one at a time.
type lineReader struct {
	w     *io.PipeWriter
	lines chan string
}

func newLineReader(t testing.TB) *lineReader {
	r, w := io.Pipe()
	lr := &lineReader{w: w, lines: make(chan string)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lr.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		w.Close()
		// Drain what is left so the scanner goroutine ends.
		for range lr.lines {
		}
		<-done
	})
	return lr
}

// next returns the next line, failing the test if none comes in time.
func (lr *lineReader) next(t testing.TB, what string) string {
	t.Helper()
	select {
	case l, ok := <-lr.lines:
		require.Truef(t, ok, "output ended while waiting for %s", what)
		return l
	case <-time.After(10 * time.Second):
		require.FailNowf(t, "timeout", "no line after 10s waiting for %s", what)
		return ""
	}
}

func TestTailFollowsLiveEvents(t *testing.T) {
	u := newStoreURL(t)
	mustEVS(t, "", "append", "--url", u, "Order-1", "--type", "Placed", `{"n":1}`)
	mustEVS(t, "", "append", "--url", u, "Cart-1", "--type", "Added", `{"n":2}`)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newLineReader(t)
	var stderr strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"tail", "--url", u, "--json", "--category", "Order", "--category", "Invoice"}, nil, out.w, &stderr)
	}()

	// Catch-up: the stored Order event, not the Cart one.
	ev := decodeLines[event](t, out.next(t, "the stored event"))[0]
	assert.Equal(t, "Order-1", ev.Stream)
	assert.JSONEq(t, `{"n":1}`, string(ev.Data))

	// Live: appended while tail runs, filtered the same way.
	mustEVS(t, "", "append", "--url", u, "Cart-1", "--type", "Added", `{"n":3}`)
	mustEVS(t, "", "append", "--url", u, "Invoice-1", "--type", "Sent", `{"n":4}`)
	mustEVS(t, "", "append", "--url", u, "Order-1", "--type", "Paid", `{"n":5}`)
	for _, want := range []string{"Invoice-1", "Order-1"} {
		ev := decodeLines[event](t, out.next(t, "a live event on "+want))[0]
		assert.Equal(t, want, ev.Stream)
	}

	cancel() // what Ctrl-C does
	select {
	case c := <-code:
		assert.Equal(t, exitInterrupted, c, "tail ends with status 130 when interrupted; stderr: %s", stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not return within 10s of its context being cancelled")
	}
	assert.Contains(t, stderr.String(), "following "+u+" from the start of the log")
	assert.Contains(t, stderr.String(), "evs tail: interrupted after 3 events\n")
}

func TestTailFromEnd(t *testing.T) {
	u := newStoreURL(t)
	mustEVS(t, "", "append", "--url", u, "Order-1", "--type", "Placed", "{}")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newLineReader(t)
	errOut := newLineReader(t)
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"tail", "--url", u, "--from-end"}, nil, out.w, errOut.w) }()
	assert.Contains(t, errOut.next(t, "the start message"), "from the end of the log")

	// tail may still be finding the end of the log when the message shows,
	// and an event appended before it has is not new to it: append until a
	// line shows up, then check it is a new event, not the old one.
	var line string
	for i := 0; line == ""; i++ {
		require.Less(t, i, 200, "no event printed after %d appends", i)
		mustEVS(t, "", "append", "--url", u, "Order-2", "--type", "Placed", "{}")
		select {
		case line = <-out.lines:
		case <-time.After(50 * time.Millisecond):
		}
	}
	assert.Contains(t, line, "  Order-2@", "only events appended after tail started: %q", line)
	cancel()
	assert.Equal(t, exitInterrupted, <-code)
}

// The advice on a wrong expected version names append's flag; from migrate,
// whose writes carry versions of their own, it would mislead.
func TestDescribeWrongExpectedVersion(t *testing.T) {
	wrong := &eventstore.WrongExpectedVersionError{Stream: "Order-1", Expected: eventstore.Exact(3), Actual: 5}
	got := describe("append", fmt.Errorf("eventstore: append %q: %w", "Order-1", wrong))
	assert.Contains(t, got, "--expected any")
	got = describe("migrate", fmt.Errorf("migrate: copy: eventstore: import: %w", wrong))
	assert.NotContains(t, got, "--expected")
	assert.Contains(t, got, "wrong expected version: want 3, have 5")
}

// Help and the version are what was asked for: standard output, status 0.
// Usage printed because the command line was wrong goes to standard error.
func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stdout string // a substring
	}{
		{"help", []string{"help"}, "Usage:\n  evs init"},
		{"-h", []string{"-h"}, "Usage:\n  evs init"},
		{"--help", []string{"--help"}, "Usage:\n  evs init"},
		{"help for a command", []string{"help", "append"}, "Usage: evs append"},
		{"-h on a command", []string{"read", "-h"}, "Usage: evs read"},
		{"--help on a command", []string{"tail", "--help"}, "-backwards"},
		{"version", []string{"version"}, "evs "},
		{"--version", []string{"--version"}, "evs "},
		{"-version", []string{"-version"}, "evs "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evs(t, "", tc.args...)
			assert.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stdout, tc.stdout)
			assert.Empty(t, r.stderr)
		})
	}
	v := evs(t, "", "version").stdout
	assert.Regexp(t, `^evs \S+( \S+)? go\S+\n$`, v)
	assert.Equal(t, v, evs(t, "", "--version").stdout)

	r := evs(t, "")
	assert.Equal(t, exitUsage, r.code, "no command is a wrong command line")
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "Usage:")
}

// The commands that only read open an existing store: a mistyped URL fails
// with status 1 and creates nothing. init and append create.
func TestReadOnlyCommandsNeedAStore(t *testing.T) {
	for _, args := range [][]string{
		{"read", "Order-1"},
		{"read", "--json", "Order-1"},
		{"tail", "--no-follow"},
		{"tail"},
		{"tail", "--backwards", "--limit", "1"},
		{"stats"},
		{"stats", "--json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			u := missingStoreURL(t)
			r := evs(t, "", append(args, "--url", u)...)
			assert.Equal(t, exitFailure, r.code, "stderr: %s", r.stderr)
			assert.Empty(t, r.stdout)
			assert.Contains(t, r.stderr, "store not found")
			assert.Contains(t, r.stderr, "evs init")
			_, created := shared.Load(strings.TrimPrefix(u, "evstest://"))
			assert.False(t, created, "the store was created")
		})
	}
	for _, args := range [][]string{
		{"init"},
		{"append", "Order-1", "--type", "Placed", "{}"},
	} {
		t.Run(args[0]+" creates", func(t *testing.T) {
			u := missingStoreURL(t)
			mustEVS(t, "", append(args, "--url", u)...)
			assert.Equal(t, exitOK, evs(t, "", "stats", "--url", u).code, "then stats reads it")
			_, created := shared.Load(strings.TrimPrefix(u, "evstest://"))
			assert.True(t, created)
		})
	}
}

// The same on SQLite, where the store is a file: read, tail and stats on a
// path that holds none fail, matching eventstore.ErrStoreNotFound, and leave
// no file behind. It needs the SQLite driver's must_exist support.
func TestReadOnlyCommandsCreateNoSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "typo.db")
	u := "sqlite://" + filepath.ToSlash(path)
	for _, args := range [][]string{{"read", "Order-1"}, {"tail", "--no-follow"}, {"stats"}} {
		r := evs(t, "", append(args, "--url", u)...)
		assert.Equal(t, exitFailure, r.code, "%s: stderr: %s", args[0], r.stderr)
		assert.Contains(t, r.stderr, "store not found", args[0])
		assert.NoFileExists(t, path, "%s created the database", args[0])
	}
	_, err := eventstore.Open(t.Context(), existingURL(u))
	assert.ErrorIs(t, err, eventstore.ErrStoreNotFound)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no file at all: not the database, not a journal")

	mustEVS(t, "", "init", "--url", u)
	assert.FileExists(t, path)
	assert.Equal(t, 0, statsOf(t, u).Events)
}

// Ctrl-C (ctx cancelled) ends every command with status 130, whatever it is
// doing: opening the store, reading, following, waiting for data.
func TestInterrupted(t *testing.T) {
	u := newStoreURL(t)
	mustEVS(t, "", "append", "--url", u, "Order-1", "--type", "Placed", "{}")

	t.Run("before the command runs", func(t *testing.T) {
		for _, args := range [][]string{
			{"append", "--url", u, "Order-1", "--type", "Paid", "{}"},
			{"read", "--url", u, "Order-1"},
			{"tail", "--url", u},
			{"tail", "--url", u, "--no-follow"},
			{"tail", "--url", u, "--backwards", "--limit", "1"},
			{"stats", "--url", u},
		} {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var stdout, stderr strings.Builder
			code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
			assert.Equal(t, exitInterrupted, code, "%q: stderr: %s", args, stderr.String())
			assert.Contains(t, stderr.String(), "evs "+args[0]+": interrupted", "%q", args)
		}
		assert.Equal(t, 1, statsOf(t, u).Events, "the interrupted append wrote nothing")
	})

	// Each case starts the command, waits until it is blocked at its stage,
	// then cancels.
	t.Run("while reading data from stdin", func(t *testing.T) {
		stdin, w := io.Pipe()
		defer w.Close()
		ctx, cancel := context.WithCancel(t.Context())
		var stderr strings.Builder
		code := make(chan int, 1)
		go func() {
			code <- run(ctx, []string{"append", "--url", u, "Order-1", "--type", "Paid", "-"}, stdin, io.Discard, &stderr)
		}()
		// The first write returns once append is reading stdin.
		_, err := w.Write([]byte("{"))
		require.NoError(t, err)
		cancel()
		assert.Equal(t, exitInterrupted, waitCode(t, code))
		assert.Equal(t, "evs append: interrupted while reading the data from stdin; nothing was written\n", stderr.String())
	})

	t.Run("while opening a store that does not answer", func(t *testing.T) {
		// A server that accepts connections and never says a word.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		accepted := make(chan net.Conn, 4)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
		defer func() {
			for len(accepted) > 0 {
				(<-accepted).Close()
			}
		}()
		for _, cmd := range []string{"init", "stats"} {
			ctx, cancel := context.WithCancel(t.Context())
			var stderr strings.Builder
			code := make(chan int, 1)
			go func() {
				code <- run(ctx, []string{cmd, "--url", "postgres://app@" + ln.Addr().String() + "/events?connect_timeout=60"}, nil, io.Discard, &stderr)
			}()
			select {
			case c := <-accepted:
				defer c.Close()
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no connection within 10s", cmd)
			}
			cancel()
			assert.Equal(t, exitInterrupted, waitCode(t, code), "%s: stderr: %s", cmd, stderr.String())
			assert.Equal(t, "evs "+cmd+": interrupted\n", stderr.String())
		}
	})
}

// waitCode returns the exit status a command sends on code, failing the
// test if it takes more than 10s.
func waitCode(t testing.TB, code <-chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not return within 10s of its context being cancelled")
		return -1
	}
}
