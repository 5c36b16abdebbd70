package dynamodb_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Writer processes: BenchmarkAppendProcesses and TestAppendProcesses start
// copies of the test binary running TestAppendProcessWriter, each opening
// the store by URL on one shared table, as separate application processes
// (containers, Lambda functions) would.
//
// The protocol, one line each way:
//
//	parent → writer: "go DEADLINE MAX"  append until DEADLINE (Unix ns) or MAX appends (0: no limit)
//	writer → parent: "a ID START ACK STREAM VERSION"  one acknowledged append (times in Unix ns)
//	writer → parent: "done N"  the round is over, N appends acknowledged
//
// A closed stdin ends the writer (it closes its store first); an error is
// written to stderr and exits with status 1. Parent and writers share the
// machine's clock, so the parent compares the writers' acknowledgement
// times with the moments its own subscription delivers each event.

// appendWriterEnv holds the store's URL in a writer process, and is unset
// everywhere else.
const appendWriterEnv = "EVENTSTORE_DYNAMODB_APPEND_WRITER"

// processWindow is how long the writers of one benchmark iteration append.
const processWindow = 5 * time.Second

// appendsPerStream is how many appends a writer makes to a stream (at
// versions 0…99) before it moves on to a new one, as conformance.RunAppend
// does: the figures compare with BenchmarkAppend's.
const appendsPerStream = 100

// processLayout is a table layout the processes benchmark runs on: param is
// its URL query parameter (empty: the driver's default).
type processLayout struct{ name, param string }

// processLayouts are the layouts of the URL parameter `log`, and the
// indexed layout with appends that do not wait for their positions
// (`position=async`). The head layout is the default and is opened without
// the parameter, so the benchmark runs on drivers from before it too; a
// driver that does not know `log=indexed` or `position=async` rejects it
// as an unknown parameter, and the layout is skipped saying so.
var processLayouts = []processLayout{{"head", ""}, {"indexed", "log=indexed"}, {"async", "log=indexed&position=async"}}

// BenchmarkAppendProcesses: 1, 4 and 8 writer processes (copies of the
// test binary, each with its own driver opened by URL) append single events
// at exact versions to streams of their own on one table (a fresh one per
// layout and size) for 5 s per iteration, while a subscription in the
// benchmark's process follows the log (polling every 10 ms). appends/s
// counts the appends acknowledged within the window. Over every
// acknowledged append, p50-ms and p99-ms are the time from the call of
// Append in its writer to the event's delivery by the subscription (append
// → visible in the log), and acked-p50-ms and acked-p99-ms the time from
// the append's return to that delivery (how long after an acknowledgement
// a reader may still miss the event; negative when the reader had it
// first). With the head layout every process races for the head of the
// log: 4 processes append at about a third of the rate of one (178
// appends/s in docs/dynamodb.md). The indexed layout (`log=indexed`) is
// skipped with the driver's reason when the driver does not have it. In
// the column log=async (`position=async`) appends return once written,
// so p50-ms and p99-ms include the whole delay of the log, and
// acked-p50-ms the part of it after the append returned.
func BenchmarkAppendProcesses(b *testing.B) {
	for _, layout := range processLayouts {
		for _, procs := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("log=%s/processes=%d", layout.name, procs), func(b *testing.B) {
				run := startProcessRun(b, layout, procs)
				appends := 0
				var elapsed time.Duration
				var fromCall, fromAck []time.Duration
				for b.Loop() {
					round := run.round(b, processWindow, 0)
					appends += round.inWindow
					elapsed += processWindow
					call, ack := run.waitVisible(b, round.acks, time.Minute)
					fromCall, fromAck = append(fromCall, call...), append(fromAck, ack...)
				}
				b.ReportMetric(float64(appends)/elapsed.Seconds(), "appends/s")
				b.ReportMetric(ms(percentile(fromCall, 0.50)), "p50-ms")
				b.ReportMetric(ms(percentile(fromCall, 0.99)), "p99-ms")
				b.ReportMetric(ms(percentile(fromAck, 0.50)), "acked-p50-ms")
				b.ReportMetric(ms(percentile(fromAck, 0.99)), "acked-p99-ms")
			})
		}
	}
}

// TestAppendProcesses covers the benchmark's plumbing quickly: one writer
// process makes 20 appends (crossing to a second stream after 100 would
// take longer; 20 at versions 0…19 of one stream), reports each, and the
// parent's subscription delivers exactly those events, once each, in
// version order; ReadAll returns them too.
func TestAppendProcesses(t *testing.T) {
	const appends = 20
	for _, layout := range processLayouts {
		t.Run("log="+layout.name, func(t *testing.T) {
			run := startProcessRun(t, layout, 1)
			round := run.round(t, time.Minute, appends)
			require.Len(t, round.acks, appends, "acknowledged appends")
			assert.Equal(t, appends, round.inWindow, "appends acknowledged before the deadline")
			fromCall, fromAck := run.waitVisible(t, round.acks, time.Minute)
			assert.Len(t, fromCall, appends)
			for i := range fromCall {
				assert.GreaterOrEqual(t, fromCall[i], fromAck[i], "append %d: visible later after its call than after its return", i)
			}

			delivered := run.seen.delivered()
			require.Len(t, delivered, appends, "events delivered by the subscription")
			for i, ev := range delivered {
				a := round.acks[i]
				assert.Equal(t, a.id, ev.ID, "event %d", i)
				assert.Equal(t, a.stream, ev.StreamID, "event %d", i)
				assert.Equal(t, a.version, ev.Version, "event %d", i)
			}
			var all []uuid.UUID
			for ev, err := range run.store.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
				require.NoError(t, err)
				all = append(all, ev.ID)
			}
			want := make([]uuid.UUID, len(round.acks))
			for i, a := range round.acks {
				want[i] = a.id
			}
			assert.Equal(t, want, all, "ReadAll")
		})
	}
}

// TestAppendProcessWriter is the body of a writer process; in a normal test
// run it returns at once.
func TestAppendProcessWriter(t *testing.T) {
	storeURL := os.Getenv(appendWriterEnv)
	if storeURL == "" {
		return
	}
	if err := appendWriter(context.Background(), storeURL, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "append writer: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// appendWriter opens the store, says "ready" and runs the rounds in reads
// from in, reporting to out.
func appendWriter(ctx context.Context, storeURL string, in io.Reader, out io.Writer) error {
	store, err := eventstore.Open(ctx, storeURL)
	if err != nil {
		return err
	}
	defer store.Close()
	w := bufio.NewWriter(out)
	fmt.Fprintln(w, "ready")
	if err := w.Flush(); err != nil {
		return err
	}
	var stream string
	n := 0 // appends so far, over every round
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		var deadline int64
		var maxAppends int
		if _, err := fmt.Sscanf(lines.Text(), "go %d %d", &deadline, &maxAppends); err != nil {
			return fmt.Errorf("command %q: %w", lines.Text(), err)
		}
		done := 0
		for time.Now().UnixNano() < deadline && (maxAppends == 0 || done < maxAppends) {
			v := uint64(n % appendsPerStream)
			if v == 0 {
				stream = conformance.BenchStream("Proc")
			}
			start := time.Now()
			ev := eventstore.NewEvent(conformance.BenchEventType, fmt.Appendf(nil, `{"start":%d}`, start.UnixNano()))
			if _, err := store.Append(ctx, stream, eventstore.Exact(v), ev); err != nil {
				return fmt.Errorf("append %d: %w", n, err)
			}
			fmt.Fprintf(w, "a %s %d %d %s %d\n", ev.ID, start.UnixNano(), time.Now().UnixNano(), stream, v+1)
			n++
			done++
		}
		fmt.Fprintf(w, "done %d\n", done)
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if err := lines.Err(); err != nil {
		return err
	}
	return store.Close()
}

// processRun is a table, its writer processes, and a Store in the test's
// process whose subscription follows the log.
type processRun struct {
	store   *eventstore.Store
	writers []*writerProcess
	seen    *seenLog
}

// startProcessRun creates a table with the layout, starts procs writer
// processes on it and a subscription following it from the start, all
// stopped and deleted when tb ends. A layout the driver does not know
// skips tb with the driver's reason.
func startProcessRun(tb testing.TB, layout processLayout, procs int) *processRun {
	tb.Helper()
	endpoint := testenv.MustHaveDynamoDB(tb)
	processCredentials(tb)
	table := randomTable()
	deleteTableAtCleanup(tb, newClient(tb, nil), table)
	storeURL := "dynamodb://" + table + "?region=us-east-1&endpoint=" + url.QueryEscape(endpoint)
	if layout.param != "" {
		storeURL += "&" + layout.param
	}
	parentURL := storeURL + "&create_table=true"
	if layout.param != "" {
		// The writers order the log, as an application's processes do:
		// the one holding the orderer's lease places its own appends
		// directly, and this reader must not take the lease first.
		parentURL += "&orderer=off"
	}
	store, err := eventstore.Open(tb.Context(), parentURL)
	if errors.Is(err, eventstore.ErrInvalidArgument) && (strings.Contains(err.Error(), `unknown parameter "log"`) || strings.Contains(err.Error(), `unknown parameter "position"`)) {
		tb.Skipf("log=%s: this driver does not have the layout yet: %v", layout.name, err)
	}
	require.NoError(tb, err)
	tb.Cleanup(func() { store.Close() })

	run := &processRun{store: store, seen: &seenLog{at: map[uuid.UUID]time.Time{}}}
	for i := range procs {
		run.writers = append(run.writers, startWriterProcess(tb, i, storeURL))
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	subErr := make(chan error, 1)
	wg.Go(func() {
		subErr <- store.Subscribe(ctx, eventstore.SubscribeOptions{BatchSize: 512, PollInterval: 10 * time.Millisecond},
			func(_ context.Context, ev eventstore.RecordedEvent) error {
				run.seen.add(ev)
				return nil
			})
	})
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := <-subErr; !errors.Is(err, context.Canceled) {
			tb.Errorf("subscription: %v", err)
		}
	})
	return run
}

// processCredentials points the default AWS chain at dummy credentials for
// this process and the writers it starts (a URL never carries any).
func processCredentials(tb testing.TB) {
	tb.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		tb.Setenv(k, v)
	}
}

// ack is one append a writer reported.
type ack struct {
	id        uuid.UUID
	start, at time.Time // the append was called, and returned
	stream    string
	version   uint64
	writer    int
}

// roundResult is what the writers of one round reported.
type roundResult struct {
	acks     []ack // per writer in the order appended, writer after writer
	inWindow int   // acknowledged before the deadline
}

// round has every writer append for d (or max appends each, when max > 0)
// from the same moment, and returns what they acknowledged.
func (r *processRun) round(tb testing.TB, d time.Duration, maxAppends int) roundResult {
	tb.Helper()
	deadline := time.Now().Add(d)
	for _, w := range r.writers {
		if _, err := fmt.Fprintf(w.stdin, "go %d %d\n", deadline.UnixNano(), maxAppends); err != nil {
			tb.Fatalf("writer %d: %v; stderr:\n%s", w.index, err, w.stderr.String())
		}
	}
	var res roundResult
	for _, w := range r.writers {
		acks, err := w.collect(d + time.Minute)
		if err != nil {
			tb.Fatalf("writer %d: %v; stderr:\n%s", w.index, err, w.stderr.String())
		}
		for _, a := range acks {
			if !a.at.After(deadline) {
				res.inWindow++
			}
		}
		res.acks = append(res.acks, acks...)
	}
	return res
}

// waitVisible waits until the subscription has delivered every acknowledged
// append (at most timeout) and returns, for each, the time from the call of
// Append to its delivery, and from the append's return to its delivery
// (negative when the subscription delivered it before the writer had the
// answer).
func (r *processRun) waitVisible(tb testing.TB, acks []ack, timeout time.Duration) (fromCall, fromAck []time.Duration) {
	tb.Helper()
	ids := make([]uuid.UUID, len(acks))
	for i, a := range acks {
		ids[i] = a.id
	}
	seen, missing := r.seen.wait(tb.Context(), ids, timeout)
	if missing > 0 {
		tb.Fatalf("%d of %d acknowledged appends not delivered by the subscription within %s", missing, len(acks), timeout)
	}
	fromCall, fromAck = make([]time.Duration, len(acks)), make([]time.Duration, len(acks))
	for i, a := range acks {
		fromCall[i], fromAck[i] = seen[i].Sub(a.start), seen[i].Sub(a.at)
	}
	return fromCall, fromAck
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// seenLog records when the subscription delivered each event.
type seenLog struct {
	mu      sync.Mutex // protects everything below
	at      map[uuid.UUID]time.Time
	events  []eventstore.RecordedEvent // in delivery order
	changed chan struct{}              // closed and replaced at each delivery
}

func (s *seenLog) add(ev eventstore.RecordedEvent) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.at[ev.ID]; !dup {
		s.at[ev.ID] = now
	}
	s.events = append(s.events, ev)
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// delivered returns the events delivered so far, in order.
func (s *seenLog) delivered() []eventstore.RecordedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// wait waits until every ID has been delivered or timeout has passed, and
// returns the delivery times (zero for the missing) and how many are missing.
func (s *seenLog) wait(ctx context.Context, ids []uuid.UUID, timeout time.Duration) ([]time.Time, int) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		times := make([]time.Time, len(ids))
		missing := 0
		for i, id := range ids {
			t, ok := s.at[id]
			times[i] = t
			if !ok {
				missing++
			}
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		if missing == 0 {
			return times, 0
		}
		select {
		case <-changed:
		case <-timer.C:
			return times, missing
		case <-ctx.Done():
			return times, missing
		}
	}
}

// writerProcess is one running copy of the test binary in
// TestAppendProcessWriter.
type writerProcess struct {
	index  int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	lines  chan string // stdout, line by line; closed at its end
}

// startWriterProcess starts writer i on the store at storeURL and waits
// until it has opened it.
func startWriterProcess(tb testing.TB, i int, storeURL string) *writerProcess {
	tb.Helper()
	return startProcess(tb, i, "TestAppendProcessWriter", appendWriterEnv+"="+storeURL)
}

// startProcess starts writer i, a copy of the test binary running test
// with env added to its environment, and waits until it says it is ready.
func startProcess(tb testing.TB, i int, test, env string) *writerProcess {
	tb.Helper()
	w := &writerProcess{index: i, stderr: &lockedBuffer{}, lines: make(chan string, 1024)}
	w.cmd = exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	w.cmd.Env = append(os.Environ(), env)
	w.cmd.Stderr = w.stderr
	stdout, err := w.cmd.StdoutPipe()
	require.NoError(tb, err)
	w.stdin, err = w.cmd.StdinPipe()
	require.NoError(tb, err)
	require.NoError(tb, w.cmd.Start())
	exited := make(chan struct{})
	stop := make(chan struct{}) // closed at cleanup: nobody reads lines any more
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case w.lines <- sc.Text():
			case <-stop: // drop the rest, up to the end of the output
			}
		}
		close(w.lines)
		w.cmd.Wait() // after the last read: Wait closes the pipe
		close(exited)
	}()
	tb.Cleanup(func() {
		close(stop)
		w.stdin.Close() // the writer closes its store and exits
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			w.cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case line, ok := <-w.lines:
		if !ok || line != "ready" {
			tb.Fatalf("writer %d did not start (said %q); stderr:\n%s", i, line, w.stderr.String())
		}
	case <-time.After(time.Minute):
		tb.Fatalf("writer %d did not start within a minute; stderr:\n%s", i, w.stderr.String())
	}
	return w
}

// collect reads the writer's reports of one round, up to its "done" line,
// waiting at most timeout.
func (w *writerProcess) collect(timeout time.Duration) ([]ack, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var acks []ack
	for {
		select {
		case line, ok := <-w.lines:
			if !ok {
				return nil, errors.New("exited before the end of the round")
			}
			if n, found := strings.CutPrefix(line, "done "); found {
				if n != strconv.Itoa(len(acks)) {
					return nil, fmt.Errorf("reported %d appends, said %s", len(acks), n)
				}
				return acks, nil
			}
			a, err := parseAck(line)
			if err != nil {
				return nil, err
			}
			a.writer = w.index
			acks = append(acks, a)
		case <-timer.C:
			return nil, fmt.Errorf("round not over within %s", timeout)
		}
	}
}

// parseAck reads an "a ID START ACK STREAM VERSION" line.
func parseAck(line string) (ack, error) {
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "a" {
		return ack{}, fmt.Errorf("unexpected line %q", line)
	}
	id, err := uuid.Parse(f[1])
	if err != nil {
		return ack{}, fmt.Errorf("line %q: %w", line, err)
	}
	var ns [2]int64
	for i := range ns {
		if ns[i], err = strconv.ParseInt(f[2+i], 10, 64); err != nil {
			return ack{}, fmt.Errorf("line %q: %w", line, err)
		}
	}
	v, err := strconv.ParseUint(f[5], 10, 64)
	if err != nil {
		return ack{}, fmt.Errorf("line %q: %w", line, err)
	}
	return ack{id: id, start: time.Unix(0, ns[0]), at: time.Unix(0, ns[1]), stream: f[4], version: v}, nil
}

// percentile returns the q-quantile of ds by nearest rank (the smallest
// value with at least q of them at or below it), 0 for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// lockedBuffer is a bytes.Buffer safe for the writer of a process's stderr
// and a reader of it.
type lockedBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The raw ceiling of DynamoDB Local from separate processes:
// BenchmarkRawProcesses starts the same writer processes as
// BenchmarkAppendProcesses, but each writes with the SDK alone (no driver,
// no Store), one request shape at a time, one request in flight per
// process, to keys of its own (nothing contends):
//
//   - put: one conditional PutItem of an event item (what the leanest
//     possible append writes);
//   - query+put: the by_id Query of the event's ID, then that PutItem (an
//     append's lookup and write, nothing else);
//   - txn=N: one TransactWriteItems of N conditional puts of items of
//     the event's size (2: an event and an inbox entry; 3: with the
//     version check's share; 5: the lease holder's direct placement).
//
// What it settles is written in docs/dynamodb.md ("The raw ceiling").

// rawWriterEnv holds "SHAPE ENDPOINT TABLE" in a raw writer process.
const rawWriterEnv = "EVENTSTORE_DYNAMODB_RAW_WRITER"

// rawShapes are the request shapes of BenchmarkRawProcesses.
var rawShapes = []string{"put", "query+put", "txn=2", "txn=3", "txn=5"}

func BenchmarkRawProcesses(b *testing.B) {
	for _, shape := range rawShapes {
		for _, procs := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("shape=%s/processes=%d", shape, procs), func(b *testing.B) {
				endpoint := testenv.MustHaveDynamoDB(b)
				processCredentials(b)
				client := newClient(b, nil)
				table := randomTable()
				_, err := client.CreateTable(b.Context(), dynamodb.CreateTableInput(table))
				require.NoError(b, err)
				deleteTableAtCleanup(b, client, table)
				var writers []*writerProcess
				for i := range procs {
					writers = append(writers, startRawWriter(b, i, shape+" "+endpoint+" "+table))
				}
				run := &processRun{writers: writers}
				ops := 0
				var elapsed time.Duration
				var lat []time.Duration
				for b.Loop() {
					round := run.round(b, processWindow, 0)
					ops += round.inWindow
					elapsed += processWindow
					for _, a := range round.acks {
						lat = append(lat, a.at.Sub(a.start))
					}
				}
				b.ReportMetric(float64(ops)/elapsed.Seconds(), "ops/s")
				b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
				b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
			})
		}
	}
}

// startRawWriter starts a writer process running TestRawProcessWriter
// with spec ("SHAPE ENDPOINT TABLE").
func startRawWriter(tb testing.TB, i int, spec string) *writerProcess {
	tb.Helper()
	return startProcess(tb, i, "TestRawProcessWriter", rawWriterEnv+"="+spec)
}

// TestRawProcessWriter is the body of a raw writer process; in a normal
// test run it returns at once.
func TestRawProcessWriter(t *testing.T) {
	spec := os.Getenv(rawWriterEnv)
	if spec == "" {
		return
	}
	if err := rawWriter(context.Background(), spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "raw writer: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// rawWriter runs the rounds of a raw writer process, as appendWriter does,
// sending one request shape with the SDK.
func rawWriter(ctx context.Context, spec string, in io.Reader, out io.Writer) error {
	f := strings.Fields(spec)
	if len(f) != 3 {
		return fmt.Errorf("spec %q: want SHAPE ENDPOINT TABLE", spec)
	}
	shape, endpoint, table := f[0], f[1], f[2]
	client := awsdynamodb.New(awsdynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	txnItems := 0
	if n, ok := strings.CutPrefix(shape, "txn="); ok {
		var err error
		if txnItems, err = strconv.Atoi(n); err != nil {
			return fmt.Errorf("shape %q: %w", shape, err)
		}
	} else if shape != "put" && shape != "query+put" {
		return fmt.Errorf("unknown shape %q", shape)
	}
	w := bufio.NewWriter(out)
	fmt.Fprintln(w, "ready")
	if err := w.Flush(); err != nil {
		return err
	}
	notExists := aws.String("attribute_not_exists(pk)")
	stream := conformance.BenchStream("Raw")
	n := uint64(0)
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		var deadline int64
		var maxOps int
		if _, err := fmt.Sscanf(lines.Text(), "go %d %d", &deadline, &maxOps); err != nil {
			return fmt.Errorf("command %q: %w", lines.Text(), err)
		}
		done := 0
		for time.Now().UnixNano() < deadline && (maxOps == 0 || done < maxOps) {
			n++
			start := time.Now()
			ev := eventstore.NewEvent(conformance.BenchEventType, fmt.Appendf(nil, `{"start":%d}`, start.UnixNano()))
			item := dynamodb.EventItem(stream, n, 0, ev, start)
			var err error
			switch {
			case txnItems > 0:
				items := []types.TransactWriteItem{{Put: &types.Put{TableName: aws.String(table), Item: item, ConditionExpression: notExists}}}
				for k := 1; k < txnItems; k++ {
					// Items of the event's size on keys of their own.
					other := dynamodb.EventItem(fmt.Sprintf("%s-%d", stream, k), n, 0, ev, start)
					items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(table), Item: other, ConditionExpression: notExists}})
				}
				_, err = client.TransactWriteItems(ctx, &awsdynamodb.TransactWriteItemsInput{TransactItems: items, ClientRequestToken: aws.String(uuid.NewString())})
			default:
				if shape == "query+put" {
					_, err = client.Query(ctx, &awsdynamodb.QueryInput{
						TableName: aws.String(table), IndexName: aws.String("by_id"), ConsistentRead: aws.Bool(true),
						KeyConditionExpression: aws.String("pk = :s AND id = :i"),
						ExpressionAttributeValues: map[string]types.AttributeValue{
							":s": &types.AttributeValueMemberS{Value: stream}, ":i": &types.AttributeValueMemberB{Value: ev.ID[:]},
						},
					})
				}
				if err == nil {
					_, err = client.PutItem(ctx, &awsdynamodb.PutItemInput{TableName: aws.String(table), Item: item, ConditionExpression: notExists})
				}
			}
			if err != nil {
				return fmt.Errorf("%s %d: %w", shape, n, err)
			}
			fmt.Fprintf(w, "a %s %d %d %s %d\n", ev.ID, start.UnixNano(), time.Now().UnixNano(), stream, n)
			done++
		}
		fmt.Fprintf(w, "done %d\n", done)
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return lines.Err()
}
