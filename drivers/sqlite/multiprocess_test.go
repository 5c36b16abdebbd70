package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Environment of a helper process started by TestMultiProcess.
const (
	helperEnv     = "EVENTSTORE_SQLITE_HELPER" // the role of the helper process
	helperPathEnv = "EVENTSTORE_SQLITE_HELPER_PATH"
)

// multiProcessRounds is how many rounds of appends each process makes; a
// round is four appends (six events).
const multiProcessRounds = 40

var idSpace = uuid.MustParse("7d444840-9dc0-11d1-b245-5ffdce74fad2")

// eventID is the ID of event k of round i of a role, known to every process.
func eventID(role, stream string, i, k int) uuid.UUID {
	return uuid.NewSHA1(idSpace, fmt.Appendf(nil, "%s/%s/%d/%d", role, stream, i, k))
}

// workload is what each process does: append to two streams every process
// shares and to one of its own, all at the same time as the others.
//   - Shared-1: one event per append, expectation Any.
//   - Shared-2: three events per append, optimistic: read the version,
//     append at Exact(version), and on a conflict read again and retry.
//   - Own_<role>-1: one event per append at Exact(i), which never conflicts.
//   - Shared-3: one event at StreamExists (after the first process created it).
func workload(ctx context.Context, s *eventstore.Store, role string) error {
	own := "Own_" + role + "-1"
	for i := range multiProcessRounds {
		ev := func(stream string, k int) eventstore.Event {
			return eventstore.Event{ID: eventID(role, stream, i, k), Type: "Appended",
				Data: fmt.Appendf(nil, `{"role":%q,"round":%d,"k":%d}`, role, i, k)}
		}
		if _, err := s.Append(ctx, "Shared-1", eventstore.Any, ev("Shared-1", 0)); err != nil {
			return fmt.Errorf("round %d, Shared-1: %w", i, err)
		}
		for attempt := 0; ; attempt++ {
			v, err := s.StreamVersion(ctx, "Shared-2")
			if err != nil {
				return err
			}
			_, err = s.Append(ctx, "Shared-2", eventstore.Exact(v), ev("Shared-2", 0), ev("Shared-2", 1), ev("Shared-2", 2))
			if err == nil {
				break
			}
			if !errors.Is(err, eventstore.ErrWrongExpectedVersion) || attempt > 1000 {
				return fmt.Errorf("round %d, Shared-2 attempt %d: %w", i, attempt, err)
			}
		}
		if _, err := s.Append(ctx, own, eventstore.Exact(uint64(i)), ev(own, 0)); err != nil {
			return fmt.Errorf("round %d, %s: %w", i, own, err)
		}
		exp := eventstore.StreamExists
		if i == 0 {
			exp = eventstore.Any
		}
		if _, err := s.Append(ctx, "Shared-3", exp, ev("Shared-3", 0)); err != nil {
			return fmt.Errorf("round %d, Shared-3: %w", i, err)
		}
	}
	return nil
}

// TestHelperProcess is the body of the processes TestMultiProcess starts; in
// a normal test run it returns at once. It opens the file, says "ready",
// waits for a line on stdin, runs the workload and exits.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		return
	}
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		os.Exit(1)
	}
	d, err := sqlite.Open(ctx, os.Getenv(helperPathEnv), sqlite.Options{})
	if err != nil {
		fail(err)
	}
	s := eventstore.New(d, eventstore.Options{})
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail(err)
	}
	if strings.HasPrefix(role, leaseRacer) {
		if err := leaseRace(ctx, d, role, os.Stdout); err != nil {
			fail(err)
		}
		os.Exit(0)
	}
	if err := workload(ctx, s, role); err != nil {
		fail(err)
	}
	if err := s.Close(); err != nil {
		fail(err)
	}
	os.Exit(0)
}

type helper struct {
	role   string
	cmd    *exec.Cmd
	stdin  *os.File
	stderr bytes.Buffer
	stdout []byte // after "ready"; read it after done
	done   chan error
}

// startHelper starts a copy of the test binary running TestHelperProcess and
// waits until it has opened the file.
func startHelper(t *testing.T, role, path string) *helper {
	t.Helper()
	h := &helper{role: role, done: make(chan error, 1)}
	h.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	h.cmd.Env = append(os.Environ(), helperEnv+"="+role, helperPathEnv+"="+path)
	h.cmd.Stderr = &h.stderr
	stdout, err := h.cmd.StdoutPipe()
	require.NoError(t, err)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	h.cmd.Stdin = r
	h.stdin = w
	require.NoError(t, h.cmd.Start())
	r.Close()
	t.Cleanup(func() {
		w.Close()
		h.cmd.Process.Kill()
	})
	ready := make(chan error, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, err := r.ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		h.stdout, _ = io.ReadAll(r) // before Wait, which closes the pipe
		h.done <- h.cmd.Wait()
	}()
	select {
	case err := <-ready:
		require.NoError(t, err, "helper %s did not start; stderr:\n%s", role, &h.stderr)
	case <-time.After(time.Minute):
		t.Fatalf("helper %s did not start within a minute", role)
	}
	return h
}

// TestMultiProcess has three processes append to one file at once, two of
// them separate copies of the test binary. No append may fail (in particular
// not with SQLITE_BUSY: waiting for the write lock must absorb the
// contention), and afterwards versions are contiguous, positions unique and
// increasing, every event is stored exactly once, the events of each append
// are adjacent in the log, and SQLite finds the file intact.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: skipped in -short mode")
	}
	t.Parallel()
	ctx := t.Context()
	_, path := openDriver(t, sqlite.Options{}) // creates the schema
	roles := []string{"parent", "child1", "child2"}
	helpers := []*helper{startHelper(t, roles[1], path), startHelper(t, roles[2], path)}
	s := openStore(t, path, sqlite.Options{})

	for _, h := range helpers {
		_, err := h.stdin.WriteString("go\n")
		require.NoError(t, err)
	}
	parentErr := workload(ctx, s, roles[0])
	for _, h := range helpers {
		select {
		case err := <-h.done:
			require.NoError(t, err, "helper %s failed; stderr:\n%s", h.role, &h.stderr)
		case <-time.After(5 * time.Minute):
			t.Fatalf("helper %s did not finish within five minutes", h.role)
		}
	}
	require.NoError(t, parentErr)

	log := readAll(t, s, eventstore.ReadAllOptions{})
	want := map[uuid.UUID]string{}
	for _, role := range roles {
		for i := range multiProcessRounds {
			want[eventID(role, "Shared-1", i, 0)] = "Shared-1"
			for k := range 3 {
				want[eventID(role, "Shared-2", i, k)] = "Shared-2"
			}
			want[eventID(role, "Own_"+role+"-1", i, 0)] = "Own_" + role + "-1"
			want[eventID(role, "Shared-3", i, 0)] = "Shared-3"
		}
	}
	assert.Len(t, log, len(want), "events in the log")
	seen := map[uuid.UUID]bool{}
	versions := map[string]uint64{}
	for i, ev := range log {
		assert.False(t, seen[ev.ID], "event %s stored twice", ev.ID)
		seen[ev.ID] = true
		assert.Equal(t, want[ev.ID], ev.StreamID, "event %s", ev.ID)
		versions[ev.StreamID]++
		assert.Equal(t, versions[ev.StreamID], ev.Version, "stream %s: versions must be contiguous in log order", ev.StreamID)
		if i > 0 {
			assert.True(t, log[i-1].Position.Less(ev.Position), "positions %s then %s", log[i-1].Position, ev.Position)
		}
		// The three events of a Shared-2 append are adjacent, in order.
		if ev.StreamID == "Shared-2" && (ev.Version-1)%3 == 0 {
			var d struct {
				Role  string
				Round int
			}
			require.NoError(t, json.Unmarshal(ev.Data, &d))
			require.Less(t, i+2, len(log))
			for k := range 3 {
				assert.Equal(t, eventID(d.Role, "Shared-2", d.Round, k), log[i+k].ID, "the events of one append must be adjacent")
			}
		}
	}
	for id := range want {
		assert.True(t, seen[id], "event %s (%s) missing", id, want[id])
	}
	for _, stream := range []string{"Shared-1", "Shared-2", "Shared-3"} {
		v, err := s.StreamVersion(ctx, stream)
		require.NoError(t, err)
		assert.Equal(t, versions[stream], v, stream)
	}

	var check string
	require.NoError(t, rawDB(t, path).QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check))
	assert.Equal(t, "ok", check)
}
