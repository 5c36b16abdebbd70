package dynamodb_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// Environment variables of TestCrashOrderer's child processes.
const (
	ordererRoleVar  = "EVENTSTORE_DYNAMODB_CRASH_ORDERER"       // the table the child orders
	ordererLeaseVar = "EVENTSTORE_DYNAMODB_CRASH_ORDERER_LEASE" // its lease, as a duration
)

// crashLease is the orderer's lease in TestCrashOrderer.
const crashLease = 2 * time.Second

// TestCrashOrderer kills (SIGKILL) the process that orders an indexed
// table's log while writers append, as many times as EVENTSTORE_CRASH_KILLS
// says (1 by default; make crash runs more). Two child processes (this test
// binary again) run orderers; the writers' driver runs none. After each
// kill a new child is started, and the other child takes over once the
// lease lapses. At the end every acknowledged append is in the log exactly
// once, at the position its append returned, the log is dense, and a
// subscription that ran throughout saw every position in order. It runs
// with writers that wait for their positions (the default) and with
// writers that do not (AsyncPositions: they go on appending while no
// orderer runs, and their appends return zero positions).
func TestCrashOrderer(t *testing.T) {
	if table := os.Getenv(ordererRoleVar); table != "" {
		runOrdererChild(t, table)
		return
	}
	t.Run("wait", func(t *testing.T) { crashOrderer(t, false) })
	t.Run("async", func(t *testing.T) { crashOrderer(t, true) })
}

func crashOrderer(t *testing.T, async bool) {
	client := newClient(t, nil)
	kills := 1
	if s := os.Getenv("EVENTSTORE_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "EVENTSTORE_CRASH_KILLS")
		kills = max(n, 1)
	}
	opts := indexedOptions()
	opts.NoOrderer = true
	opts.OrderTimeout = time.Minute
	opts.AsyncPositions = async
	w := newDriver(t, client, opts)
	store := eventstore.New(w, eventstore.Options{})
	t.Cleanup(func() { store.Close() })
	ctx := t.Context()

	children := map[int]*exec.Cmd{}
	var childMu sync.Mutex // protects children
	startChild := func() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashOrderer$", "-test.count=1")
		cmd.Env = append(os.Environ(), ordererRoleVar+"="+w.Table(), ordererLeaseVar+"="+crashLease.String())
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			stdin.Close()
			cmd.Process.Kill()
			cmd.Wait()
		})
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err, "the orderer process did not start")
		require.Equal(t, "ready\n", line)
		go io.Copy(io.Discard, stdout)
		childMu.Lock()
		children[cmd.Process.Pid] = cmd
		childMu.Unlock()
	}
	// holder returns the pid and generation of the orderer's lease holder,
	// once one holds it unexpired.
	holder := func(notPid int) (int, uint64) {
		var pid int
		var gen uint64
		require.Eventually(t, func() bool {
			leases, now, err := w.Leases(ctx, "$orderer")
			require.NoError(t, err)
			for _, l := range leases {
				p, _, ok := strings.Cut(l.Owner, "@")
				if n, err := strconv.Atoi(p); ok && err == nil && n != notPid && l.Expires.After(now) {
					pid, gen = n, l.Generation
					return true
				}
			}
			return false
		}, 4*crashLease, 10*time.Millisecond, "no orderer holds the lease")
		return pid, gen
	}
	startChild()
	startChild()

	// A subscription from the start, recording what it is handed.
	var subMu sync.Mutex // protects seen
	var seen []eventstore.RecordedEvent
	subCtx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- store.Subscribe(subCtx, eventstore.SubscribeOptions{PollInterval: 50 * time.Millisecond},
			func(ctx context.Context, ev eventstore.RecordedEvent) error {
				subMu.Lock()
				defer subMu.Unlock()
				seen = append(seen, ev)
				return nil
			})
	}()

	// Writers: appends of 1 to 3 events to their own streams, until stopped.
	type ack struct {
		stream  string
		version uint64
		n       int
		pos     eventstore.Position
	}
	var ackMu sync.Mutex // protects acks
	var acks []ack
	stopWriters := make(chan struct{})
	var writers sync.WaitGroup
	for wr := range 4 {
		writers.Go(func() {
			stream := fmt.Sprintf("Crash-%d%s", wr, uuid.NewString()[:8])
			for v := uint64(0); ; {
				select {
				case <-stopWriters:
					return
				default:
				}
				n := 1 + int(v%3)
				evs := make([]eventstore.Event, n)
				for i := range evs {
					evs[i] = eventstore.Event{ID: uuid.New(), Type: "Tick", Data: []byte(`{}`)}
				}
				res, err := store.Append(ctx, stream, eventstore.Exact(v), evs...)
				if err != nil {
					t.Errorf("append to %s at %d: %v", stream, v, err)
					return
				}
				ackMu.Lock()
				acks = append(acks, ack{stream, v + 1, n, res.Position})
				ackMu.Unlock()
				v += uint64(n)
			}
		})
	}

	pid, gen := holder(0)
	for k := range kills {
		time.Sleep(crashLease / 2) // appends under this holder
		childMu.Lock()
		cmd := children[pid]
		delete(children, pid)
		childMu.Unlock()
		require.NotNil(t, cmd, "the lease holder %d is not a child", pid)
		killed := time.Now()
		require.NoError(t, cmd.Process.Kill())
		next, nextGen := holder(pid)
		tookOver := time.Since(killed)
		startChild() // the next standby
		t.Logf("kill %d: orderer %d killed; %d took over (generation %d → %d) after %s (lease %s)",
			k+1, pid, next, gen, nextGen, tookOver.Round(time.Millisecond), crashLease)
		require.Greater(t, nextGen, gen)
		pid, gen = next, nextGen
	}
	time.Sleep(crashLease / 2)
	close(stopWriters)
	writers.Wait()
	require.False(t, t.Failed())

	// Every acknowledged append is in the log once, where it was acknowledged.
	ackMu.Lock()
	defer ackMu.Unlock()
	total := 0
	want := map[string]eventstore.Position{} // "stream/version" of each append's last event
	for _, a := range acks {
		total += a.n
		if async {
			// Not waited for: every event of the append must be in the log.
			for v := a.version; v < a.version+uint64(a.n); v++ {
				want[fmt.Sprintf("%s/%d", a.stream, v)] = eventstore.Position{}
			}
			continue
		}
		require.False(t, a.pos.IsZero(), "append to %s at %d acknowledged without a position", a.stream, a.version)
		want[fmt.Sprintf("%s/%d", a.stream, a.version+uint64(a.n)-1)] = a.pos
	}
	if async {
		// The log catches up with the appends made while no orderer ran.
		require.Eventually(t, func() bool {
			n := 0
			for _, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
				require.NoError(t, err)
				n++
			}
			return n >= total
		}, time.Minute, 20*time.Millisecond, "the log did not catch up with %d acknowledged events", total)
	}
	var log []eventstore.RecordedEvent
	for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		require.NoError(t, err)
		log = append(log, ev)
	}
	require.Len(t, log, total, "events in the log, against %d acknowledged in %d appends", total, len(acks))
	once := map[string]bool{}
	for i, ev := range log {
		require.Equal(t, uint64(i+1), ev.Position.Commit, "the log is not dense at event %d", i)
		k := fmt.Sprintf("%s/%d", ev.StreamID, ev.Version)
		require.False(t, once[k], "%s is in the log twice", k)
		once[k] = true
		if p, ok := want[k]; ok {
			if !p.IsZero() {
				require.Equal(t, p, ev.Position, "%s: acknowledged at %s, in the log at %s", k, p, ev.Position)
			}
			delete(want, k)
		}
	}
	require.Empty(t, want, "acknowledged appends missing from the log")

	// The subscription saw every position, in order.
	require.Eventually(t, func() bool {
		subMu.Lock()
		defer subMu.Unlock()
		return len(seen) >= total
	}, time.Minute, 20*time.Millisecond, "the subscription did not catch up")
	stopSub()
	<-subDone
	subMu.Lock()
	defer subMu.Unlock()
	for i, ev := range seen {
		require.Equal(t, uint64(i+1), ev.Position.Commit, "the subscription skipped or repeated at event %d", i)
	}
	t.Logf("%d kills, %d appends, %d events", kills, len(acks), total)
}

// runOrdererChild is the orderer process of TestCrashOrderer: it opens the
// table with the orderer on, writes "ready", and runs until killed or its
// stdin closes.
func runOrdererChild(t *testing.T, table string) {
	lease, err := time.ParseDuration(os.Getenv(ordererLeaseVar))
	require.NoError(t, err)
	client := newClient(t, nil)
	opts := indexedOptions()
	opts.OrdererLease = lease
	opts.OrderPoll = 20 * time.Millisecond
	d, err := dynamodb.New(context.Background(), client, table, opts)
	require.NoError(t, err)
	defer d.Close()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}
