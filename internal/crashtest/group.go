package crashtest

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// The consumer-group crash test: member processes of one group
// ([eventstore.Store.SubscribeGroup]) handle what writers append; one member
// is killed (SIGKILL) mid-batch and another started, again and again; at
// the end every event was handled at least once, each member handled each
// stream in order, and no two members ever handled one stream at the same
// time.

// Group is the name of the crash test's consumer group.
const Group = "crashgroup"

// Member settings: leases short enough for a take-over within the test.
const (
	groupPartitions = 8
	groupLease      = 1500 * time.Millisecond
	// DefaultGroupKills is how many members RunGroup kills when neither
	// GroupConfig.Kills nor KillsVar says.
	DefaultGroupKills = 1
	logVar            = "EVENTSTORE_CRASHTEST_LOG"
	memberVar         = "EVENTSTORE_CRASHTEST_MEMBER"
)

// GroupConfig is a driver's part of the consumer-group crash test.
type GroupConfig struct {
	// NewStore returns the URL of a fresh, empty store that several
	// processes can open at once, removed when t ends.
	NewStore func(t testing.TB) string
	// Kills is how many members are killed; 0 means KillsVar, else
	// DefaultGroupKills.
	Kills int
}

// handling is one line of a member's log: it began ("S") or ended ("E")
// handling a stream's version at a time.
type handling struct {
	member  string
	begin   bool
	stream  string
	version uint64
	at      int64 // Unix nanoseconds
}

// RunGroup runs the consumer-group crash test, or, in a member process,
// the member (and then exits the process).
func RunGroup(t *testing.T, cfg GroupConfig) {
	if os.Getenv(roleVar) == "member" {
		if err := member(os.Getenv(urlVar), os.Getenv(memberVar), os.Getenv(logVar)); err != nil {
			fmt.Fprintf(os.Stderr, "crashtest member: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	kills := cfg.Kills
	if kills == 0 && os.Getenv(KillsVar) == "" {
		kills = DefaultGroupKills
	}
	kills, err := killsWanted(kills)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	url := cfg.NewStore(t)
	s, err := eventstore.Open(ctx, url)
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	dir := t.TempDir()

	// Writers append to 16 streams until the kills are over.
	wr := startWriters(ctx, s, 4)
	defer wr.stop()

	running := map[string]*process{}
	killedAt := map[string]int64{} // member: when it was killed
	next := 0
	startMember := func() {
		next++
		name := fmt.Sprintf("m%d", next)
		running[name] = startRole(t, url, "member", memberVar+"="+name, logVar+"="+filepath.Join(dir, name+".log"))
	}
	for range 3 {
		startMember()
	}
	time.Sleep(groupLease) // the members split the partitions
	for range kills {
		// A member in the middle of a batch: one that is handling now.
		names := slices.Sorted(maps.Keys(running))
		victim := names[rand.IntN(len(names))]
		p := running[victim]
		p.next(p.begun, 2*time.Second)
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		p.kill(t)
		killedAt[victim] = time.Now().UnixNano()
		delete(running, victim)
		startMember()
		time.Sleep(groupLease + time.Duration(rand.Int64N(int64(groupLease))))
	}
	wr.stop()
	select {
	case err := <-wr.errs:
		t.Fatal(err)
	default:
	}

	// Every event handled by some member, within two minutes.
	var log []eventstore.RecordedEvent
	for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		log = append(log, ev)
	}
	if int64(len(log)) != wr.appended.Load() {
		t.Errorf("the log holds %d events, the writers appended %d", len(log), wr.appended.Load())
	}
	deadline := time.Now().Add(2 * time.Minute)
	var lines []handling
	for {
		lines = readLogs(t, dir)
		missing := unhandled(log, lines)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never handled within 2 minutes, for example %s", len(missing), len(log), missing[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range running {
		p.stop(t)
	}
	lines = readLogs(t, dir)
	checkGroupLog(t, lines, killedAt)
	t.Logf("4 writers appended %d events to 16 streams; %d members killed, %d started; %d handler calls for %d events",
		len(log), kills, next, len(lines)/2, len(log))
}

// member is a member process: it runs member name of Group on the store at
// url until its stdin is closed, writing to logPath a line when it begins
// and ends handling each event, and "begin" on stdout when it begins.
func member(url, name, logPath string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := eventstore.Open(ctx, url)
	if err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	defer s.Close()
	fmt.Println("ready")
	err = s.SubscribeGroup(ctx, eventstore.GroupOptions{
		SubscribeOptions: eventstore.SubscribeOptions{Name: Group, BatchSize: 20, PollInterval: 100 * time.Millisecond},
		Member:           name, Partitions: groupPartitions, LeaseDuration: groupLease,
	}, func(ctx context.Context, ev eventstore.RecordedEvent) error {
		// Unbuffered writes: a line written survives a SIGKILL.
		if _, err := fmt.Fprintf(f, "S %s %d %d\n", ev.StreamID, ev.Version, time.Now().UnixNano()); err != nil {
			return err
		}
		fmt.Println("begin")
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
		_, err := fmt.Fprintf(f, "E %s %d %d\n", ev.StreamID, ev.Version, time.Now().UnixNano())
		return err
	})
	if ctx.Err() != nil {
		return nil // asked to stop
	}
	return fmt.Errorf("subscribe group: %w", err)
}

// readLogs reads every member's log in dir; a last line cut by a kill is
// left out.
func readLogs(t *testing.T, dir string) []handling {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []handling
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(path), ".log")
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 4 {
				continue
			}
			v, err1 := strconv.ParseUint(fields[2], 10, 64)
			at, err2 := strconv.ParseInt(fields[3], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			out = append(out, handling{member: name, begin: fields[0] == "S", stream: fields[1], version: v, at: at})
		}
		f.Close()
	}
	return out
}

// unhandled returns the events of log no member finished handling.
func unhandled(log []eventstore.RecordedEvent, lines []handling) []string {
	done := map[string]bool{}
	for _, h := range lines {
		if !h.begin {
			done[h.stream+"@"+strconv.FormatUint(h.version, 10)] = true
		}
	}
	var out []string
	for _, ev := range log {
		if k := ev.StreamID + "@" + strconv.FormatUint(ev.Version, 10); !done[k] {
			out = append(out, k)
		}
	}
	return out
}

// checkGroupLog checks the members' logs: each member handled each stream
// in version order, and the handler calls of different members on one
// stream never overlapped in time (a killed member's last call lasts until
// its kill).
func checkGroupLog(t *testing.T, lines []handling, killedAt map[string]int64) {
	t.Helper()
	type call struct {
		member     string
		version    uint64
		begin, end int64
	}
	type key struct{ member, stream string }
	last := map[key]uint64{}
	calls := map[string][]call{} // stream: its handler calls
	open := map[key]int{}        // the index in calls of an unfinished call
	for _, h := range lines {
		k := key{h.member, h.stream}
		if h.begin {
			if v, ok := last[k]; ok && h.version <= v {
				t.Errorf("member %s handled %s version %d after version %d", h.member, h.stream, h.version, v)
			}
			last[k] = h.version
			open[k] = len(calls[h.stream])
			calls[h.stream] = append(calls[h.stream], call{member: h.member, version: h.version, begin: h.at, end: -1})
			continue
		}
		if i, ok := open[k]; ok {
			calls[h.stream][i].end = h.at
			delete(open, k)
		}
	}
	for k, i := range open {
		at, ok := killedAt[k.member]
		if !ok {
			t.Errorf("member %s began handling %s version %d and never ended, though it was not killed", k.member, k.stream, calls[k.stream][i].version)
			continue
		}
		calls[k.stream][i].end = at
	}
	overlaps := 0
	for stream, cs := range calls {
		slices.SortFunc(cs, func(a, b call) int { return cmp.Compare(a.begin, b.begin) })
		for i := 1; i < len(cs); i++ {
			if prev := cs[i-1]; prev.member != cs[i].member && prev.end > cs[i].begin {
				if overlaps++; overlaps <= 10 {
					t.Errorf("%s: member %s handled version %d until %d, member %s began version %d at %d",
						stream, prev.member, prev.version, prev.end, cs[i].member, cs[i].version, cs[i].begin)
				}
			}
		}
	}
	if overlaps > 0 {
		t.Errorf("%d times two members handled one stream at once", overlaps)
	}
}
