// Package crashtest is a crash test of exactly-once projections
// ([eventstore.Store.Project]) that any driver with
// [driver.CheckpointTxer] and a native transaction can run: a projector
// process keeping per-stream counts and sums in a read model is killed
// (SIGKILL, kill -9) at random moments, again and again, while writers
// append; at the end the read model must equal the fold of the log
// exactly: for each stream, the number of its events and the sum of the
// numbers in their data.
//
// The projector is the test binary itself, started again with an
// environment variable that makes [Run] play the projector instead of the
// test. A driver's test supplies only what differs per driver: a fresh
// store's URL and its [ReadModel] (how to create the read model, how to add
// to it through the projection's native transaction, how to read it):
//
//	func TestCrashProjection(t *testing.T) {
//		crashtest.Run(t, crashtest.Config{
//			NewStore:  func(t testing.TB) string { return newStoreURL(t) },
//			ReadModel: func(url string) crashtest.ReadModel { return readModel(url) },
//		})
//	}
//
// [Statements] gives SQL that PostgreSQL and SQLite both run.
//
// Each run kills the projector [DefaultKills] times, or as many times as
// the variable EVENTSTORE_CRASH_KILLS ([KillsVar]) says.
package crashtest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// Environment variables.
const (
	// KillsVar sets how many times Run kills the projector (at least 1).
	KillsVar = "EVENTSTORE_CRASH_KILLS"
	// roleVar makes the test binary play the projector; urlVar names its store.
	roleVar = "EVENTSTORE_CRASHTEST_ROLE"
	urlVar  = "EVENTSTORE_CRASHTEST_URL"
)

// DefaultKills is how many times Run kills the projector when neither
// [Config.Kills] nor [KillsVar] says: a few seconds of `go test`.
const DefaultKills = 5

// Projection is the name of the projection, and of its checkpoint.
const Projection = "crashtest"

// Fold is a stream's row of the read model: how many of its events the
// projection applied, and the sum of their numbers.
type Fold struct{ Count, Sum int64 }

// ReadModel is the driver's part of the test. Its functions are called in
// the test process (Create, Load) and in the projector process (Add).
type ReadModel struct {
	// Create creates the empty read model in the store.
	Create func(ctx context.Context, s *eventstore.Store) error
	// Add adds count and sum to the row of stream, creating it, through
	// the native transaction of tx (from Tx.As).
	Add func(ctx context.Context, tx *eventstore.Tx, stream string, count, sum int64) error
	// Load returns every row of the read model.
	Load func(ctx context.Context, s *eventstore.Store) (map[string]Fold, error)
}

// Config is what Run needs from a driver's test.
type Config struct {
	// NewStore returns the URL (for eventstore.Open) of a fresh, empty
	// store, removed when t ends. It is called in the test process only:
	// the projector gets the URL from the environment.
	NewStore func(t testing.TB) string
	// ReadModel returns the read model of the store at url.
	ReadModel func(url string) ReadModel
	// Kills is how many times the projector is killed; 0 means [KillsVar],
	// else [DefaultKills].
	Kills int
	// Writers is how many goroutines append while the projector runs and
	// is killed; 0 means 8.
	Writers int
}

// Statements returns SQL for a read model in table: the CREATE TABLE, the
// upsert adding $2 events of sum $3 to stream $1, and the SELECT of stream,
// count and sum. PostgreSQL and SQLite both run them.
func Statements(table string) (create, add, load string) {
	create = `CREATE TABLE ` + table + ` (stream text PRIMARY KEY, n_events bigint NOT NULL, total bigint NOT NULL)`
	add = `INSERT INTO ` + table + ` AS f (stream, n_events, total) VALUES ($1, $2, $3)
		ON CONFLICT (stream) DO UPDATE SET n_events = f.n_events + excluded.n_events, total = f.total + excluded.total`
	load = `SELECT stream, n_events, total FROM ` + table
	return create, add, load
}

// Run runs the crash test, or, in the projector process, the projector
// (and then exits the process).
func Run(t *testing.T, cfg Config) {
	if os.Getenv(roleVar) == "projector" {
		url := os.Getenv(urlVar)
		if err := project(url, cfg.ReadModel(url)); err != nil {
			fmt.Fprintf(os.Stderr, "crashtest projector: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	kills, err := killsWanted(cfg.Kills)
	if err != nil {
		t.Fatal(err)
	}
	writers := cmp.Or(cfg.Writers, 8)
	ctx := t.Context()
	url := cfg.NewStore(t)
	s, err := eventstore.Open(ctx, url)
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	rm := cfg.ReadModel(url)
	if err := rm.Create(ctx, s); err != nil {
		t.Fatalf("create the read model: %v", err)
	}

	// The writers append until the kills are over.
	wr := startWriters(ctx, s, writers)
	defer wr.stop()

	var st stats
	for i := range kills {
		p := start(t, url)
		before := checkpoint(t, s)
		time.Sleep(time.Duration(rand.Int64N(int64(250 * time.Millisecond))))
		// Two kills in three aim at a batch (if one comes within a
		// second): inside its handler, or just after the handler
		// returned, while the transaction commits.
		switch i % 3 {
		case 1:
			p.next(p.begun, time.Second)
			time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
		case 2:
			p.next(p.ended, time.Second)
			time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
		}
		p.kill(t)
		if p.inBatch.Load() {
			st.inBatch++
		}
		st.batches += p.batches.Load()
		if checkpoint(t, s) != before {
			st.moved++
		}
		select {
		case err := <-wr.errs:
			t.Fatalf("after %d kills: %v", i+1, err)
		default:
		}
	}
	wr.stop()
	select {
	case err := <-wr.errs:
		t.Fatal(err)
	default:
	}

	// A last projector catches up with the log and stops cleanly.
	want, end := fold(t, s)
	p := start(t, url)
	deadline := time.Now().Add(2 * time.Minute)
	for checkpoint(t, s) != end {
		if time.Now().After(deadline) {
			t.Fatalf("the last projector did not reach the end of the log %s within 2 minutes (checkpoint %s); its stderr:\n%s", end, checkpoint(t, s), p.stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop(t)

	got, err := rm.Load(ctx, s)
	if err != nil {
		t.Fatalf("load the read model: %v", err)
	}
	var events int64
	for _, f := range want {
		events += f.Count
	}
	t.Logf("%d writers appended %d events to %d streams; the projector was killed %d times: %d times after it had moved the checkpoint, %d times inside a batch's handler (%d batches handled by the killed projectors)",
		writers, events, len(want), kills, st.moved, st.inBatch, st.batches)
	if events != wr.appended.Load() {
		t.Errorf("the log holds %d events, the writers appended %d", events, wr.appended.Load())
	}
	var wrong []string
	for _, stream := range slices.Sorted(mapsKeys(want, got)) {
		if want[stream] != got[stream] {
			wrong = append(wrong, fmt.Sprintf("%s: the log folds to %+v, the read model holds %+v", stream, want[stream], got[stream]))
		}
	}
	if len(wrong) > 0 {
		t.Fatalf("the read model is not the fold of the log (every event applied exactly once) in %d of %d streams:\n%s", len(wrong), len(want), strings.Join(wrong, "\n"))
	}
}

// stats tells how the kills landed.
type stats struct {
	moved, inBatch, batches int64
}

// killsWanted is how many kills the run makes.
func killsWanted(n int) (int, error) {
	if n > 0 {
		return n, nil
	}
	v := os.Getenv(KillsVar)
	if v == "" {
		return DefaultKills, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a number of kills, at least 1", KillsVar, v)
	}
	return n, nil
}

// writerSet is goroutines appending with write until stopped.
type writerSet struct {
	stopped  chan struct{}
	wg       sync.WaitGroup
	appended atomic.Int64 // events appended
	errs     chan error   // the first error of each writer that failed
}

// startWriters starts n writers on s.
func startWriters(ctx context.Context, s *eventstore.Store, n int) *writerSet {
	wr := &writerSet{stopped: make(chan struct{}), errs: make(chan error, n)}
	for w := range n {
		wr.wg.Go(func() {
			if err := write(ctx, s, w, wr.stopped, &wr.appended); err != nil {
				wr.errs <- fmt.Errorf("writer %d: %w", w, err)
			}
		})
	}
	return wr
}

// stop stops the writers and waits for them; it may be called again.
func (wr *writerSet) stop() {
	select {
	case <-wr.stopped:
	default:
		close(wr.stopped)
		wr.wg.Wait()
	}
}

// write appends events of one to three events each, with a number in each
// event's data, to one of 16 streams, until stop is closed.
func write(ctx context.Context, s *eventstore.Store, w int, stop <-chan struct{}, appended *atomic.Int64) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		events := make([]eventstore.Event, 1+rand.IntN(3))
		for k := range events {
			events[k] = eventstore.NewEvent("Counted", fmt.Appendf(nil, `{"n":%d,"writer":%d,"append":%d}`, rand.IntN(2001)-1000, w, i))
		}
		if _, err := s.Append(ctx, fmt.Sprintf("Crash-%d", rand.IntN(16)), eventstore.Any, events...); err != nil {
			return err
		}
		appended.Add(int64(len(events)))
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
	}
}

// number reads the number in an event's data.
func number(data []byte) (int64, error) {
	var v struct {
		N *int64 `json:"n"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, err
	}
	if v.N == nil {
		return 0, fmt.Errorf("no number in %s", data)
	}
	return *v.N, nil
}

// fold reads the whole log and folds it per stream; it also returns the
// position of the last event.
func fold(t *testing.T, s *eventstore.Store) (map[string]Fold, eventstore.Position) {
	t.Helper()
	out := map[string]Fold{}
	var end eventstore.Position
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		n, err := number(ev.Data)
		if err != nil {
			t.Fatalf("event %s of %s: %v", ev.ID, ev.StreamID, err)
		}
		f := out[ev.StreamID]
		f.Count++
		f.Sum += n
		out[ev.StreamID] = f
		end = ev.Position
	}
	return out, end
}

func checkpoint(t *testing.T, s *eventstore.Store) eventstore.Position {
	t.Helper()
	pos, _, err := s.Checkpoint(t.Context(), Projection)
	if err != nil {
		t.Fatalf("load the projection's checkpoint: %v", err)
	}
	return pos
}

// mapsKeys returns the keys of a and b.
func mapsKeys(a, b map[string]Fold) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for k := range a {
			if !yield(k) {
				return
			}
		}
		for k := range b {
			if _, ok := a[k]; !ok && !yield(k) {
				return
			}
		}
	}
}

// process is a running child: a projector or a group member.
type process struct {
	role    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	errBuf  bytes.Buffer // its stderr; read once it has exited
	done    chan error   // cmd.Wait's result
	ready   chan struct{}
	inBatch atomic.Bool  // between a batch's "begin" and "end"
	batches atomic.Int64 // batches begun
	// begun and ended get a value when a batch's handler begins and
	// returns (if they are empty).
	begun, ended chan struct{}
}

// next waits at most d for the next value on c (begun or ended).
func (p *process) next(c chan struct{}, d time.Duration) {
	select {
	case <-c: // an old one
	default:
	}
	select {
	case <-c:
	case <-time.After(d):
	}
}

// signal gives c a value unless it has one.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// start starts a projector on url and waits until it has opened the store.
func start(t *testing.T, url string) *process { return startRole(t, url, "projector") }

// startRole starts the test binary playing role on url, with env added to
// its environment, and waits until it has opened the store.
func startRole(t *testing.T, url, role string, env ...string) *process {
	t.Helper()
	p := &process{role: role, done: make(chan error, 1), ready: make(chan struct{}), begun: make(chan struct{}, 1), ended: make(chan struct{}, 1)}
	p.cmd = exec.Command(os.Args[0], "-test.run="+runPattern(t.Name()), "-test.count=1")
	p.cmd.Env = append(append(os.Environ(), roleVar+"="+role, urlVar+"="+url), env...)
	p.cmd.Stderr = &p.errBuf
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start the %s: %v", role, err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			switch sc.Text() {
			case "ready":
				close(p.ready)
			case "begin":
				p.inBatch.Store(true)
				p.batches.Add(1)
				signal(p.begun)
			case "end":
				p.inBatch.Store(false)
				signal(p.ended)
			}
		}
		p.done <- p.cmd.Wait()
		close(p.done)
	}()
	select {
	case <-p.ready:
	case err := <-p.done:
		t.Fatalf("the %s exited before it was ready: %v; its stderr:\n%s", role, err, &p.errBuf)
	case <-time.After(time.Minute):
		t.Fatalf("the %s was not ready within a minute", role)
	}
	return p
}

// kill kills the process with SIGKILL; it must still be running.
func (p *process) kill(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		t.Fatalf("the %s exited before it was killed: %v; its stderr:\n%s", p.role, err, &p.errBuf)
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill the %s: %v", p.role, err)
	}
	<-p.done
	if p.cmd.ProcessState.Exited() {
		t.Fatalf("the %s exited by itself (%v) before it was killed; its stderr:\n%s", p.role, p.cmd.ProcessState, &p.errBuf)
	}
}

// stop asks the process to stop (closing its stdin) and waits for it.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("the %s failed: %v; its stderr:\n%s", p.role, err, &p.errBuf)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the %s did not stop within a minute of being asked", p.role)
	}
}

// stderr is what the projector wrote to stderr so far.
func (p *process) stderr() string {
	select {
	case <-p.done:
		return p.errBuf.String()
	default:
		return "(still running)"
	}
}

// runPattern is a -test.run pattern matching exactly the test named name
// (t.Name(): its subtests' names are separated by "/").
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// project is the projector process: it runs the projection on the store at
// url, adding each batch's counts and sums per stream to rm through the
// batch's transaction, until its stdin is closed (the test asked it to stop,
// or died). It writes "ready" once the store is open, and "begin" and "end"
// around each batch's handler, one per line on stdout.
func project(url string, rm ReadModel) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	s, err := eventstore.Open(ctx, url)
	if err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	defer s.Close()
	fmt.Println("ready")
	err = s.Project(ctx, eventstore.SubscribeOptions{Name: Projection, BatchSize: 20}, func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
		fmt.Println("begin")
		folds := map[string]Fold{}
		for _, ev := range events {
			n, err := number(ev.Data)
			if err != nil {
				return fmt.Errorf("event %s of %s: %w", ev.ID, ev.StreamID, err)
			}
			f := folds[ev.StreamID]
			f.Count++
			f.Sum += n
			folds[ev.StreamID] = f
		}
		for _, stream := range slices.Sorted(mapsKeys(folds, nil)) {
			if err := rm.Add(ctx, tx, stream, folds[stream].Count, folds[stream].Sum); err != nil {
				return fmt.Errorf("add to %s: %w", stream, err)
			}
		}
		// Widen the window in which a kill finds the read model written
		// and the checkpoint not yet committed.
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		fmt.Println("end")
		return nil
	})
	if ctx.Err() != nil {
		return nil // asked to stop
	}
	return fmt.Errorf("project: %w", err)
}
