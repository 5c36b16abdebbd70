package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/migrate"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runMainEnv makes the test binary run evs's main instead of the tests, so
// a test can run the command as a separate process (and kill it) without
// building it first.
const runMainEnv = "EVS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// sqliteURL returns the URL of a new SQLite file in a temporary directory.
func sqliteURL(t testing.TB, name string) string {
	return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), name))
}

// fillSource appends events events over streams streams to the store at
// rawURL, in interleaved appends of 1 to 3 events, so that the global log
// mixes streams as an application's does. Payloads are JSON with unicode,
// binary with NUL and 0xff bytes, and empty; some events carry metadata;
// every tenth stream gets a snapshot. It returns the number of snapshots.
func fillSource(t testing.TB, rawURL string, events, streams int) int {
	t.Helper()
	ctx := t.Context()
	s, err := eventstore.Open(ctx, rawURL)
	require.NoError(t, err)
	defer s.Close()
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", []string{"Order", "Kunde-Ü", "客户", "Emoji🙂", "with space"}[i%5], i)
	}
	versions := make([]uint64, streams)
	for written, i := 0, 0; written < events; i++ {
		k := i % streams
		if i >= streams {
			k = (i * 7919) % streams // every stream first, then scattered
		}
		batch := make([]eventstore.Event, min(1+i%3, events-written))
		for j := range batch {
			n := written + j
			ev := eventstore.Event{ID: uuid.New(), Type: "Happened"}
			switch n % 4 {
			case 0:
				ev.Data = fmt.Appendf(nil, `{"n": %d, "text":"ünïcødé 🙂 \u00e9"}`, n)
			case 1:
				ev.Type, ev.ContentType, ev.Data = "Blob", eventstore.Binary, []byte{0, 0xff, byte(n), 0, '\n'}
			case 2:
				ev.Type = "Empty" // no data at all
			case 3:
				ev.Data = []byte(`{"z":1,  "a":[true,null]}`)
				ev.Metadata = fmt.Appendf(nil, `{"$correlationId":"c-%d"}`, n)
			}
			batch[j] = ev
		}
		_, err := s.Append(ctx, names[k], eventstore.Exact(versions[k]), batch...)
		require.NoError(t, err)
		versions[k] += uint64(len(batch))
		written += len(batch)
	}
	snaps := 0
	for k := 0; k < streams; k += 10 {
		require.NoError(t, s.SaveSnapshot(ctx, names[k], eventstore.Snapshot{Version: versions[k], Data: []byte(`{"state":"ü"}`)}))
		snaps++
	}
	return snaps
}

// progressLine parses a plain progress line into its fields; ok is false
// for any other line.
func progressLine(line string) (fields map[string]string, live, ok bool) {
	words := strings.Fields(line)
	if len(words) == 0 || words[0] != "progress" {
		return nil, false, false
	}
	fields = map[string]string{}
	for _, w := range words[1:] {
		if w == "live" {
			live = true
			continue
		}
		k, v, found := strings.Cut(w, "=")
		if !found {
			return nil, false, false
		}
		fields[k] = v
	}
	return fields, live, true
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// checkProgressLines parses the plain progress lines in stderr: there is at
// least one, each is well formed, done (copied+skipped) never goes back, and
// the last one says the copy handled all total events.
func checkProgressLines(t testing.TB, stderr string, total int) {
	t.Helper()
	var lines []map[string]string
	for line := range strings.Lines(stderr) {
		f, _, ok := progressLine(line)
		if !ok {
			continue
		}
		for _, k := range []string{"read", "copied", "skipped", "total", "rate", "eta", "position"} {
			require.Containsf(t, f, k, "progress line %q", line)
		}
		_, err := eventstore.ParsePosition(f["position"])
		require.NoErrorf(t, err, "progress line %q", line)
		require.Truef(t, strings.HasSuffix(f["rate"], "/s"), "progress line %q", line)
		lines = append(lines, f)
	}
	require.NotEmpty(t, lines, "no progress lines in:\n%s", stderr)
	prev := 0
	for _, f := range lines {
		assert.Equal(t, strconv.Itoa(total), f["total"])
		d := atoi(t, f["copied"]) + atoi(t, f["skipped"])
		assert.GreaterOrEqual(t, d, prev, "progress goes forward")
		prev = d
	}
	assert.Equal(t, total, prev, "the last progress line has every event")
}

// migrated is the --json result of evs migrate.
type migrated struct {
	Total, Read, Copied, Skipped, Appends, Imports, Streams, Snapshots, Live int
	DryRun                                                                   bool   `json:"dry_run"`
	WouldCreate                                                              bool   `json:"would_create"`
	LastPosition                                                             string `json:"last_position"`
	Verify                                                                   *struct {
		Equal           bool
		Streams, Events int
		DigestFrom      string `json:"digest_from"`
		DigestTo        string `json:"digest_to"`
		Difference      string
		RecordedTimes   bool   `json:"recorded_times_equal"`
		TimeDifference  string `json:"time_difference"`
	}
}

func TestMigrate(t *testing.T) {
	const events, streams = 3000, 300
	destinations := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return sqliteURL(t, "dst.db") }},
		{"postgres", func(t *testing.T) string {
			// The test server trusts local connections and ignores the
			// password: it is only there to be hidden.
			u, err := url.Parse(postgresURL(t))
			require.NoError(t, err)
			u.User = url.UserPassword(u.User.Username(), "pw-s3cret")
			return u.String()
		}},
		{"dynamodb", dynamodbURL},
		{"kurrentdb", kurrentdbURL},
	}
	for _, d := range destinations {
		t.Run(d.name, func(t *testing.T) {
			dst := d.url(t)
			src := sqliteURL(t, "src.db?synchronous=normal")
			snaps := fillSource(t, src, events, streams)

			r := evs(t, "", "migrate", "--from", src, "--to", dst, "--verify", "--snapshots", "--json", "--batch", "100")
			require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
			res := decodeLines[migrated](t, r.stdout)
			require.Len(t, res, 1)
			assert.Equal(t, events, res[0].Total)
			assert.Equal(t, events, res[0].Copied)
			assert.Equal(t, 0, res[0].Skipped)
			assert.Positive(t, res[0].Imports+res[0].Appends, "writes")
			if d.name == "kurrentdb" {
				assert.Zero(t, res[0].Imports, "KurrentDB cannot import")
			} else {
				assert.Zero(t, res[0].Appends, "%s imports, keeping recorded times", d.name)
			}
			assert.Equal(t, streams, res[0].Streams)
			assert.Equal(t, snaps, res[0].Snapshots)
			require.NotNil(t, res[0].Verify)
			assert.True(t, res[0].Verify.Equal, "verify: %+v", res[0].Verify)
			assert.Equal(t, events, res[0].Verify.Events)
			assert.Equal(t, res[0].Verify.DigestFrom, res[0].Verify.DigestTo)
			assert.Equal(t, d.name != "kurrentdb", res[0].Verify.RecordedTimes, "recorded times kept where the destination imports")
			checkProgressLines(t, r.stderr, events)
			assert.NotContains(t, r.stdout+r.stderr, "s3cret")

			// A second run finds everything there and copies nothing.
			r = evs(t, "", "migrate", "--from", src, "--to", dst, "--verify", "--snapshots")
			require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stdout, fmt.Sprintf("copied 0 events; %d already in the destination; %d streams, 0 snapshots", events, streams))
			assert.Contains(t, r.stdout, fmt.Sprintf("verify: equal: %d streams, %d events, digest %s\n", streams, events, res[0].Verify.DigestFrom))
			checkProgressLines(t, r.stderr, events)
			assert.NotContains(t, r.stdout+r.stderr, "s3cret")
			if d.name == "postgres" {
				assert.Contains(t, r.stderr, ":xxxxx@", "the destination is shown without its password")
			}

			// The snapshots came along.
			s, err := eventstore.Open(t.Context(), dst)
			require.NoError(t, err)
			defer s.Close()
			snap, ok, err := s.LoadSnapshot(t.Context(), "Order-0")
			require.NoError(t, err)
			require.True(t, ok, "snapshot of Order-0 copied")
			assert.Equal(t, `{"state":"ü"}`, string(snap.Data))
		})
	}
}

// TestMigrateDryRun: a dry run to a destination that does not exist
// creates nothing (no file) and counts every source event as to be copied;
// against a partial copy it counts what is left. Needs must_exist in the
// SQLite driver.
func TestMigrateDryRun(t *testing.T) {
	dir := t.TempDir()
	dstPath := filepath.Join(dir, "dst.db")
	src, dst := sqliteURL(t, "src.db"), "sqlite://"+filepath.ToSlash(dstPath)
	fillSource(t, src, 120, 12)
	r := evs(t, "", "migrate", "--from", src, "--to", dst, "--dry-run", "--snapshots")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, "dry run: the destination does not exist: a copy would create it and copy 120 events; 12 streams, 2 snapshots to copy; nothing was written (")
	assert.Contains(t, r.stderr, "which does not exist: nothing will be written")
	assert.NoFileExists(t, dstPath, "a dry run creates nothing")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "a dry run creates no file at all (no journal either)")

	r = evs(t, "", "migrate", "--from", src, "--to", dst, "--dry-run", "--json")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	res := decodeLines[migrated](t, r.stdout)[0]
	assert.True(t, res.DryRun)
	assert.True(t, res.WouldCreate)
	assert.Equal(t, 120, res.Copied)
	assert.Equal(t, 0, res.Skipped)
	assert.NoFileExists(t, dstPath)

	// Against a partial copy, it counts what is left.
	mustEVS(t, "", "migrate", "--from", src, "--to", dst)
	mustEVS(t, "", "append", "--url", src, "Order-0", "--type", "Late", "{}")
	r = evs(t, "", "migrate", "--from", src, "--to", dst, "--dry-run", "--json")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	res = decodeLines[migrated](t, r.stdout)[0]
	assert.True(t, res.DryRun)
	assert.False(t, res.WouldCreate)
	assert.Equal(t, 1, res.Copied)
	assert.Equal(t, 120, res.Skipped)
	assert.Equal(t, 120, statsOf(t, dst).Events)
}

func TestMigrateUsage(t *testing.T) {
	src, dst := newStoreURL(t), newStoreURL(t)
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no from", []string{"--to", dst}, "missing --from URL"},
		{"no to", []string{"--from", src}, "missing --to URL"},
		{"same store", []string{"--from", src, "--to", src}, "--from and --to are the same store"},
		{"url instead of from", []string{"--url", src, "--to", dst}, "migrate takes --from and --to, not --url"},
		{"zero batch", []string{"--from", src, "--to", dst, "--batch", "0"}, "invalid --batch 0"},
		{"batch not a number", []string{"--from", src, "--to", dst, "--batch", "lots"}, `invalid value "lots" for flag -batch`},
		{"dry run and verify", []string{"--from", src, "--to", dst, "--dry-run", "--verify"}, "nothing to --verify"},
		{"dry run and follow", []string{"--from", src, "--to", dst, "--dry-run", "--follow"}, "exclude each other"},
		{"verify only and dry run", []string{"--from", src, "--to", dst, "--verify-only", "--dry-run"}, "--verify-only copies nothing"},
		{"verify only and follow", []string{"--from", src, "--to", dst, "--verify-only", "--follow"}, "--verify-only copies nothing"},
		{"verify only and snapshots", []string{"--from", src, "--to", dst, "--verify-only", "--snapshots"}, "--verify-only copies nothing"},
		{"verify only and batch", []string{"--from", src, "--to", dst, "--verify-only", "--batch", "500"}, "--verify-only copies nothing"},
		{"argument", []string{"--from", src, "--to", dst, "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"--from", src, "--to", dst, "--fast"}, "flag provided but not defined: -fast"},
		{"unknown backend", []string{"--from", "nosuch://u:pw-s3cret@h/x", "--to", dst}, `--from nosuch://u:xxxxx@h/x: unknown backend "nosuch"`},
		{"not a URL", []string{"--from", src, "--to", "events.db"}, "--to events.db: not a store URL"},
		{"unparsable URL", []string{"--from", src, "--to", "postgres://u:pw-s3cret@h:port/x"}, "--to postgres:xxxxx: not a store URL"},
		{"keyword/value connection string", []string{"--from", "host=h user=u password=pw-s3cret", "--to", dst}, "--from xxxxx: not a store URL"},
		{"URL without //", []string{"--from", src, "--to", "u:pw-s3cret@h/x"}, `--to u:xxxxx: unknown backend "u"`},
		{"parameter the driver rejects", []string{"--from", src, "--to", "sqlite:x.db?synchronous=sometimes&password=pw-s3cret"}, "destination: open sqlite:x.db?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evs(t, "", append([]string{"migrate"}, tc.args...)...)
			assert.Equal(t, exitUsage, r.code, "exit status; stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tc.stderr)
			assert.Contains(t, r.stderr, "run 'evs help migrate' for usage")
			assert.Empty(t, r.stdout)
			assert.NotContains(t, r.stderr, "s3cret")
		})
	}
	assert.NoFileExists(t, "x.db", "a rejected URL creates nothing")
}

func TestMigrateFailures(t *testing.T) {
	t.Run("unreachable server, password hidden", func(t *testing.T) {
		r := evs(t, "", "migrate", "--from", newStoreURL(t), "--to", "postgres://u:pw-s3cret@127.0.0.1:1/x?connect_timeout=5")
		assert.Equal(t, exitFailure, r.code)
		assert.Contains(t, r.stderr, "evs: destination: ")
		assert.NotContains(t, r.stdout+r.stderr, "s3cret")
	})
	t.Run("conflict", func(t *testing.T) {
		src, dst := newStoreURL(t), newStoreURL(t)
		mustEVS(t, "", "append", "--url", src, "Order-1", "--type", "Placed", `{"n":1}`)
		mustEVS(t, "", "append", "--url", dst, "Order-1", "--type", "Placed", `{"n":2}`)
		r := evs(t, "", "migrate", "--from", src, "--to", dst)
		assert.Equal(t, exitFailure, r.code)
		assert.Equal(t, `evs: migrate: copy: stream "Order-1" version 1: destination holds a different event (event id differs); nothing was overwritten (the destination holds events of its own: copy into an empty store, or remove them)`+"\n",
			lastLine(r.stderr), "as docs/cli.md shows it")
		assert.Empty(t, r.stdout)
	})
	t.Run("verify finds a difference", func(t *testing.T) {
		src, dst := newStoreURL(t), newStoreURL(t)
		mustEVS(t, "", "append", "--url", src, "Order-1", "--type", "Placed", `{}`)
		mustEVS(t, "", "append", "--url", dst, "Extra-1", "--type", "Placed", `{}`)
		r := evs(t, "", "migrate", "--from", src, "--to", dst, "--verify")
		assert.Equal(t, exitFailure, r.code, "stderr: %s", r.stderr)
		assert.Contains(t, r.stdout, "copied 1 events in 1 imports (recorded times kept); ")
		assert.Contains(t, r.stdout, `verify: different: stream "Extra-1": missing in the source`)
		assert.Contains(t, r.stderr, `evs: verify: the stores differ: stream "Extra-1": missing in the source`)
	})
	t.Run("empty source", func(t *testing.T) {
		r := evs(t, "", "migrate", "--from", newStoreURL(t), "--to", newStoreURL(t))
		assert.Equal(t, exitOK, r.code)
		assert.Contains(t, r.stderr, "the source holds no events")
		assert.Contains(t, r.stdout, "copied 0 events")
	})
	for _, flag := range []string{"--verify", "--follow", "--dry-run"} {
		t.Run("interrupted before catching up with "+flag, func(t *testing.T) {
			src := newStoreURL(t)
			mustEVS(t, "", "append", "--url", src, "Order-1", "--type", "Placed", "{}")
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var stdout, stderr strings.Builder
			code := run(ctx, []string{"migrate", "--from", src, "--to", newStoreURL(t), flag}, nil, &stdout, &stderr)
			assert.Equal(t, exitInterrupted, code, "stderr: %s", stderr.String())
			assert.Contains(t, stderr.String(), "evs migrate: interrupted")
			assert.Empty(t, stdout.String())
		})
	}
}

// TestMigrateFollow copies, then keeps copying what is appended to the
// source until it is interrupted, which is its normal end.
func TestMigrateFollow(t *testing.T) {
	src, dst := newStoreURL(t), newStoreURL(t)
	for i := range 5 {
		mustEVS(t, "", "append", "--url", src, fmt.Sprintf("Order-%d", i%2), "--type", "Placed", "{}")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errOut := newLineReader(t)
	var stdout strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"migrate", "--from", src, "--to", dst, "--follow", "--verify"}, nil, &stdout, errOut.w)
	}()
	// waitFor returns the first progress line for which ok holds.
	waitFor := func(what string, ok func(f map[string]string, live bool) bool) {
		t.Helper()
		for {
			line := errOut.next(t, what)
			if f, live, isProgress := progressLine(line); isProgress && ok(f, live) {
				return
			}
		}
	}
	waitFor("caught up", func(f map[string]string, live bool) bool { return live && f["copied"] == "5" && f["since_live"] == "0" })
	mustEVS(t, "", "append", "--url", src, "Order-9", "--type", "Late", "{}")
	waitFor("the live event", func(f map[string]string, live bool) bool { return live && f["since_live"] == "1" })
	assert.Equal(t, 6, statsOf(t, dst).Events)

	cancel() // what Ctrl-C does
	deadline := time.After(30 * time.Second)
	var tail []string
wait:
	for {
		select {
		case c := <-code:
			assert.Equal(t, exitOK, c, "a follow stopped by Ctrl-C ends with status 0")
			break wait
		case line := <-errOut.lines: // the last lines, so its writes do not block
			tail = append(tail, line)
		case <-deadline:
			t.Fatal("migrate --follow did not stop within 30s of its context being cancelled")
		}
	}
	assert.Contains(t, tail, "evs migrate: stopped following")
	assert.Contains(t, stdout.String(), "copied 6 events (1 of them live) in ")
	assert.Contains(t, stdout.String(), "verify: equal: 3 streams, 6 events")
}

// evsProcess is evs migrate running as a separate process.
type evsProcess struct {
	cmd    *exec.Cmd
	lines  chan string // standard error, line by line; closed at its end
	stderr strings.Builder
	stdout strings.Builder
}

// startEVS runs evs with args in a new process: the test binary itself,
// which runs main when runMainEnv is set.
func startEVS(t *testing.T, args ...string) *evsProcess {
	t.Helper()
	if testing.Short() {
		t.Skip("runs evs as a separate process: skipped with -short")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	p := &evsProcess{cmd: exec.Command(exe, args...), lines: make(chan string, 1024)}
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() { p.cmd.Process.Kill() }) // if the test fails before Wait
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			select {
			case p.lines <- sc.Text():
			default: // nobody is waiting for lines any more
			}
		}
	}()
	return p
}

// waitCopying waits for the n-th progress line saying events were copied.
// The first comes with the first append, the next ones a second apart.
func (p *evsProcess) waitCopying(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			require.True(t, ok, "evs ended before %d progress lines", n)
			if f, _, isProgress := progressLine(line); isProgress && f["copied"] != "0" {
				if n--; n == 0 {
					return
				}
			}
		case <-deadline:
			require.FailNow(t, "no progress line with copied > 0 within 60s")
		}
	}
}

// wait waits for the process to end and returns its exit status, -1 when a
// signal ended it.
func (p *evsProcess) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		err := p.cmd.Wait()
		for range p.lines { // the reader is done once the pipe closes
		}
		done <- err
	}()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(5 * time.Minute):
		require.FailNow(t, "evs did not end within 5 minutes")
		return 0
	}
}

// TestMigrateKilledAndRerun kills the command part-way through a copy, then
// runs it again: the second run finishes the copy, and the stores are equal
// with no event lost or written twice. Then the same with Ctrl-C, which
// stops the copy cleanly with status 130.
func TestMigrateKilledAndRerun(t *testing.T) {
	const events, streams = 10000, 400
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			src, dst := sqliteURL(t, "src.db?synchronous=normal"), sqliteURL(t, "dst.db")
			fillSource(t, src, events, streams)
			// Small appends, so the copy takes long enough to be stopped.
			args := []string{"migrate", "--from", src, "--to", dst, "--batch", "2"}

			p := startEVS(t, args...)
			// Stop it a second in, in the middle of the copy.
			p.waitCopying(t, 2)
			require.NoError(t, p.cmd.Process.Signal(sig))
			code := p.wait(t)
			if sig == syscall.SIGINT {
				assert.Equal(t, exitInterrupted, code, "stderr: %s", p.stderr.String())
				assert.Contains(t, p.stderr.String(), "interrupted: ")
				assert.Contains(t, p.stderr.String(), "run the same command again to continue")
			} else {
				assert.Equal(t, -1, code, "killed")
			}
			before := statsOf(t, dst).Events
			require.Less(t, before, events, "the copy was stopped part-way")
			t.Logf("stopped by %s with %d of %d events copied", sig, before, events)

			p = startEVS(t, append(args, "--json")...)
			require.Equal(t, exitOK, p.wait(t), "stderr: %s", p.stderr.String())
			res := decodeLines[migrated](t, p.stdout.String())[0]
			assert.Equal(t, before, res.Skipped, "the rerun skips what the first run copied")
			assert.Equal(t, events-before, res.Copied, "and copies the rest")
			checkProgressLines(t, p.stderr.String(), events)
			checkCopy(t, src, dst)
		})
	}
}

// checkCopy checks that dst holds what src does: migrate.Verify says equal,
// every stream's versions run 1, 2, 3… and no event ID shows up twice.
func checkCopy(t *testing.T, srcURL, dstURL string) {
	t.Helper()
	ctx := t.Context()
	src, err := eventstore.Open(ctx, srcURL)
	require.NoError(t, err)
	defer src.Close()
	dst, err := eventstore.Open(ctx, dstURL)
	require.NoError(t, err)
	defer dst.Close()
	report, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
	require.NoError(t, err)
	assert.True(t, report.Equal, "verify: %s", report)

	versions := map[string]uint64{}
	ids := map[uuid.UUID]bool{}
	for ev, err := range dst.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		require.Equalf(t, versions[ev.StreamID]+1, ev.Version, "stream %q: versions are contiguous", ev.StreamID)
		versions[ev.StreamID] = ev.Version
		require.Falsef(t, ids[ev.ID], "event ID %s appears twice", ev.ID)
		ids[ev.ID] = true
	}
}

// TestMigrateFollowProcess follows a SQLite source from another process,
// sees an event appended here copied live, and stops on Ctrl-C with status 0.
func TestMigrateFollowProcess(t *testing.T) {
	src, dst := sqliteURL(t, "src.db"), sqliteURL(t, "dst.db")
	fillSource(t, src, 50, 5)
	p := startEVS(t, "migrate", "--from", src, "--to", dst, "--follow", "--verify")
	waitLine := func(what string, ok func(f map[string]string, live bool) bool) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case line, open := <-p.lines:
				require.Truef(t, open, "evs ended while waiting for %s", what)
				if f, live, isProgress := progressLine(line); isProgress && ok(f, live) {
					return
				}
			case <-deadline:
				require.FailNowf(t, "timeout", "no progress line showing %s within 60s", what)
			}
		}
	}
	waitLine("caught up", func(f map[string]string, live bool) bool { return live && f["copied"] == "50" })

	s, err := eventstore.Open(t.Context(), src)
	require.NoError(t, err)
	_, err = s.Append(t.Context(), "Late-1", eventstore.NoStream, eventstore.NewEvent("Happened", []byte(`{"late":true}`)))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	waitLine("the live event", func(f map[string]string, live bool) bool { return live && f["since_live"] == "1" })

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, exitOK, p.wait(t), "Ctrl-C ends a follow with status 0; stderr: %s", p.stderr.String())
	assert.Contains(t, p.stdout.String(), "copied 51 events (1 of them live)")
	assert.Contains(t, p.stdout.String(), "verify: equal: 6 streams, 51 events")
	checkCopy(t, src, dst)
}

// TestMigrateMissingStore: migrate only reads the source, so a mistyped
// --from fails with status 1 and creates nothing, whatever the mode; so does
// a mistyped --to with --verify-only. Needs must_exist in the SQLite driver.
func TestMigrateMissingStore(t *testing.T) {
	existing := sqliteURL(t, "existing.db")
	fillSource(t, existing, 10, 2)
	tests := []struct {
		name   string
		args   func(missing string) []string
		stderr string
	}{
		{"source", func(m string) []string { return []string{"--from", m, "--to", newStoreURL(t)} }, "check --from; nothing was created"},
		{"source, verify", func(m string) []string { return []string{"--from", m, "--to", newStoreURL(t), "--verify"} }, "check --from; nothing was created"},
		{"source, dry run", func(m string) []string { return []string{"--from", m, "--to", newStoreURL(t), "--dry-run"} }, "check --from; nothing was created"},
		{"source, verify only", func(m string) []string { return []string{"--from", m, "--to", existing, "--verify-only"} }, "check --from; nothing was created"},
		{"destination, verify only", func(m string) []string { return []string{"--from", existing, "--to", m, "--verify-only"} }, "check --to; nothing was created"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mistyped.db")
			r := evs(t, "", append([]string{"migrate"}, tc.args("sqlite://"+filepath.ToSlash(path))...)...)
			assert.Equal(t, exitFailure, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tc.stderr)
			assert.Empty(t, r.stdout)
			assert.NoFileExists(t, path)
		})
	}
}

// TestMigrateVerifyOnly compares two stores without copying: equal, with
// recorded times that differ, and different (naming stream, version and
// field), as text and as JSON.
func TestMigrateVerifyOnly(t *testing.T) {
	ctx := t.Context()
	srcURL, dstURL := newStoreURL(t), newStoreURL(t)
	src, err := eventstore.Open(ctx, srcURL)
	require.NoError(t, err)
	defer src.Close()
	dst, err := eventstore.Open(ctx, dstURL)
	require.NoError(t, err)
	defer dst.Close()
	placed := eventstore.NewEvent("Placed", []byte(`{"total":10}`))
	paid := eventstore.NewEvent("Paid", []byte(`{"amount":10}`))
	_, err = src.Append(ctx, "Order-42", eventstore.NoStream, placed, paid)
	require.NoError(t, err)
	recorded := readAllEvents(t, src)
	require.NoError(t, dst.Import(ctx, recorded))

	r := evs(t, "", "migrate", "--from", srcURL, "--to", dstURL, "--verify-only")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Regexp(t, `^verify: equal: 1 streams, 2 events, digest [0-9a-f]{64}\nverify: recorded times equal\n$`, r.stdout)
	assert.Contains(t, r.stderr, "evs migrate: verifying "+dstURL+" against "+srcURL+", copying nothing\n")
	assert.Equal(t, 2, statsOf(t, dstURL).Events, "nothing copied")

	// The same events, one recorded a second later: equal, and the first
	// event whose time differs is named, without guessing why.
	other := newStoreURL(t)
	o, err := eventstore.Open(ctx, other)
	require.NoError(t, err)
	defer o.Close()
	moved := slices.Clone(recorded)
	moved[1].RecordedAt = moved[1].RecordedAt.Add(time.Second)
	require.NoError(t, o.Import(ctx, moved))
	r = evs(t, "", "migrate", "--from", srcURL, "--to", other, "--verify-only")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, `verify: recorded times differ, first: stream "Order-42" version 2: recorded time (source `)
	assert.NotContains(t, r.stdout, "import")

	// Other data under the same event ID.
	paid.Data = []byte(`{"amount":12}`)
	changed := newStoreURL(t)
	c, err := eventstore.Open(ctx, changed)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Append(ctx, "Order-42", eventstore.NoStream, placed, paid)
	require.NoError(t, err)
	r = evs(t, "", "migrate", "--from", srcURL, "--to", changed, "--verify-only")
	assert.Equal(t, exitFailure, r.code)
	assert.Equal(t, "verify: different: stream \"Order-42\" version 2: data\n", r.stdout)
	assert.Contains(t, r.stderr, `evs: verify: the stores differ: stream "Order-42" version 2: data`)

	r = evs(t, "", "migrate", "--from", srcURL, "--to", changed, "--verify-only", "--json")
	assert.Equal(t, exitFailure, r.code)
	var res struct {
		From, To string
		Verify   struct {
			Equal      bool
			Difference string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, srcURL, res.From)
	assert.False(t, res.Verify.Equal)
	assert.Equal(t, `stream "Order-42" version 2: data`, res.Verify.Difference)
}

func readAllEvents(t testing.TB, s *eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

// TestVerifyText: the verify lines blame the destination's import ability
// only when this run appended, which it does only when the destination
// cannot import.
func TestVerifyText(t *testing.T) {
	const diff = `stream "S-1" version 1: recorded time (source 2026-01-02T03:04:05.000001Z, destination 2026-01-02T03:04:06.000001Z)`
	v := verifyResult{Equal: true, Streams: 1, Events: 1, DigestFrom: "d", TimeDifference: diff}
	assert.Equal(t, "verify: equal: 1 streams, 1 events, digest d\nverify: recorded times differ, first: "+diff+"\n", v.text(false))
	assert.Equal(t, "verify: equal: 1 streams, 1 events, digest d\nverify: recorded times differ: the destination cannot import, so the events appended got its own times; first: "+diff+"\n", v.text(true))
	v.RecordedTimesEqual, v.TimeDifference = true, ""
	assert.Equal(t, "verify: equal: 1 streams, 1 events, digest d\nverify: recorded times equal\n", v.text(true))
}

// TestMigrateDocSamples runs the commands whose output docs/cli.md and
// docs/migration.md show, and checks that the documents show each line
// they print (times, rates and digests aside), so the samples are what the
// program prints. Needs must_exist in the SQLite driver (every source is
// opened with it).
func TestMigrateDocSamples(t *testing.T) {
	docs := ""
	for _, f := range []string{"cli.md", "migration.md"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", f))
		require.NoError(t, err)
		docs += string(b)
	}
	docs = normalizeSample(docs)
	t.Chdir(t.TempDir())
	fillSource(t, "sqlite:bank.db", 1000, 80)
	small, err := eventstore.Open(t.Context(), "sqlite:small.db")
	require.NoError(t, err)
	for _, s := range []string{"Order-1", "Order-2"} {
		_, err := small.Append(t.Context(), s, eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)), eventstore.NewEvent("Paid", []byte(`{}`)))
		require.NoError(t, err)
	}
	// half.db holds Order-1 as small.db does, and not Order-2.
	half, err := eventstore.Open(t.Context(), "sqlite:half.db")
	require.NoError(t, err)
	var order1 []eventstore.RecordedEvent
	for ev, err := range small.ReadStream(t.Context(), "Order-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		order1 = append(order1, ev)
	}
	require.NoError(t, half.Import(t.Context(), order1))
	require.NoError(t, half.Close())
	require.NoError(t, small.Close())

	tests := []struct {
		cmd  string
		code int
	}{
		{"evs migrate --from sqlite:bank.db --to sqlite:bank-copy.db --dry-run", exitOK},
		{"evs migrate --from sqlite:bank.db --to sqlite:bank-copy.db --verify", exitOK},
		{"evs migrate --from sqlite:bank.db --to sqlite:bank-copy.db --dry-run", exitOK},
		{"evs migrate --from sqlite:bank.db --to sqlite:bank-copy.db --verify-only", exitOK},
		{"evs migrate --from sqlite:small.db --to sqlite:half.db --verify-only", exitFailure},
		{"evs migrate --from sqlite:small.db --to sqlite:small-copy.db --verify --json", exitOK},
	}
	for _, tc := range tests {
		assert.Truef(t, strings.Contains(docs, "$ "+tc.cmd+"\n"), "the docs do not show the command %q", tc.cmd)
		r := evs(t, "", strings.Fields(tc.cmd)[1:]...)
		require.Equal(t, tc.code, r.code, "%s: stderr: %s", tc.cmd, r.stderr)
		for line := range strings.Lines(r.stdout + r.stderr) {
			if _, _, progress := progressLine(line); progress {
				continue // docs/cli.md, "Progress", shows them separately
			}
			assert.Truef(t, strings.Contains(docs, normalizeSample(line)), "%s: the docs do not show the line %q", tc.cmd, line)
		}
	}
}

var (
	sampleDigest  = regexp.MustCompile(`[0-9a-f]{64}`)
	sampleTime    = regexp.MustCompile(`\((\d+(\.\d+)?(ms|µs|s))(, \d+ events/s)?\)`)
	sampleSeconds = regexp.MustCompile(`"seconds":[0-9.e-]+`)
	sampleAbsPath = regexp.MustCompile(`"/[^"]*/(\w+\.db)"`)
)

// normalizeSample replaces what changes from run to run: digests, times,
// rates, and the directory of a file.
func normalizeSample(s string) string {
	s = sampleDigest.ReplaceAllString(s, "DIGEST")
	s = sampleTime.ReplaceAllString(s, "(TIME)")
	s = sampleAbsPath.ReplaceAllString(s, `"$1"`)
	return sampleSeconds.ReplaceAllString(s, `"seconds":S`)
}

// lastLine returns the last line of s, with its newline.
func lastLine(s string) string {
	lines := slices.Collect(strings.Lines(s))
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}
