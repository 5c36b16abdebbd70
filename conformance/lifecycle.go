package conformance

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Rules of docs/semantics.md "Lifecycle and errors": calls after Close fail
// with ErrClosed, a second Close returns nil, As is false for nil and unknown
// types, a done context fails a write without writing, and an append
// cancelled mid-way writes all of its events or none. (Reads with a done
// context are in read.go.)

func init() { ruleSets = append(ruleSets, lifecycleRules) }

func lifecycleRules() []rule {
	return []rule{
		{name: "CallsAfterCloseFailWithErrClosed", run: testCallsAfterClose},
		{name: "CloseTwiceReturnsNil", run: testCloseTwice},
		{name: "CloseDuringCallsFailsCleanly", run: testCloseDuringCalls},
		{name: "AsIsFalseForNilAndUnknownTypes", run: testAsUnknown},
		{name: "AsHandsOutDeclaredNativeTypes", run: testAsNative},
		{name: "DoneContextFailsWritesAndWritesNothing", run: testDoneContextWrites},
		{name: "CancelledAppendWritesAllOrNothing", run: testCancelledAppendAllOrNothing},
	}
}

// readErr ranges over a read and returns its error, failing t if it yields
// an event or ends without an error.
func readErr(t testing.TB, doing string, seq iter.Seq2[eventstore.RecordedEvent, error]) error {
	t.Helper()
	for ev, err := range seq {
		if err != nil {
			return err
		}
		t.Errorf("%s: want an error, got event %q version %d", doing, ev.StreamID, ev.Version)
		return nil
	}
	t.Errorf("%s: want an error, got none", doing)
	return nil
}

// subscribeErr runs Subscribe and returns its error; it fails t if Subscribe
// does not return.
func subscribeErr(t testing.TB, ctx context.Context, s *eventstore.Store, opts eventstore.SubscribeOptions, h eventstore.Handler) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, opts, h) }()
	return waitFor(t, done, raceTimeout, "Subscribe to return")
}

func testCallsAfterClose(t *testing.T, f *fixture) {
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(2, "Before")...)
	if err := f.store.SaveSnapshot(f.ctx, s, eventstore.Snapshot{Version: 1, Data: []byte("state")}); err != nil {
		t.Fatalf("SaveSnapshot at version 1 of a stream at version 2: %v", err)
	}
	if err := f.store.Close(); err != nil {
		t.Fatalf("Close: want nil, got %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Append", func() error {
			_, err := f.store.Append(f.ctx, s, eventstore.Exact(2), events(1, "After")...)
			return err
		}},
		{"Import", func() error {
			return f.store.Import(f.ctx, recorded(s, 3, 1, time.Now()))
		}},
		{"AppendToNewStream", func() error {
			_, err := f.store.Append(f.ctx, stream(""), eventstore.Any, events(1, "After")...)
			return err
		}},
		{"ReadStream", func() error {
			return readErr(t, "ReadStream after Close", f.store.ReadStream(f.ctx, s, eventstore.ReadStreamOptions{}))
		}},
		{"ReadAll", func() error {
			return readErr(t, "ReadAll after Close", f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{}))
		}},
		{"StreamVersion", func() error {
			_, err := f.store.StreamVersion(f.ctx, s)
			return err
		}},
		{"SaveSnapshot", func() error {
			return f.store.SaveSnapshot(f.ctx, s, eventstore.Snapshot{Version: 2, Data: []byte("state")})
		}},
		{"LoadSnapshot", func() error {
			_, _, err := f.store.LoadSnapshot(f.ctx, s)
			return err
		}},
		{"Subscribe", func() error {
			return subscribeErr(t, f.ctx, f.store, eventstore.SubscribeOptions{}, func(context.Context, eventstore.RecordedEvent) error {
				t.Errorf("Subscribe after Close: the handler was called")
				return nil
			})
		}},
		{"DurableSubscribe", func() error {
			return subscribeErr(t, f.ctx, f.store, eventstore.SubscribeOptions{Name: "after-close"}, func(context.Context, eventstore.RecordedEvent) error {
				t.Errorf("durable Subscribe after Close: the handler was called")
				return nil
			})
		}},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s after Close: want an error matching ErrClosed, got %v", c.name, err)
		}
	}
	if err := f.store.Close(); err != nil {
		t.Errorf("Close after Close: want nil, got %v", err)
	}
	if f.store.As(nil) {
		t.Errorf("As(nil) after Close: want false, got true")
	}
}

func testCloseTwice(t *testing.T, f *fixture) {
	f.mustAppend(stream(""), eventstore.NoStream, events(1, "Before")...)
	// Concurrent Close calls: each returns nil.
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range cap(errs) {
		wg.Go(func() { errs <- f.store.Close() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("4 concurrent calls to Close: want nil from each, got %v", err)
		}
	}
	if err := f.store.Close(); err != nil {
		t.Errorf("Close after Close: want nil, got %v", err)
	}
}

func testCloseDuringCalls(t *testing.T, f *fixture) {
	// Appends and reads race with Close: each call either completes or fails
	// with ErrClosed, never with a driver's own "closed" error or a panic.
	const callers = 4
	s := stream("")
	f.mustAppend(s, eventstore.NoStream, events(1, "Before")...)
	gate := make(chan struct{})
	var closed atomic.Bool // set once Close has returned
	failures := make(chan string, 2*callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-gate
			for {
				after := closed.Load()
				_, err := f.store.Append(f.ctx, fmt.Sprintf("%s-%d", s, i), eventstore.Any, events(2, "During")...)
				switch {
				case err == nil && after:
					failures <- "an Append started after Close returned: want an error matching ErrClosed, got success"
					return
				case err == nil:
					continue
				case !errors.Is(err, eventstore.ErrClosed):
					failures <- fmt.Sprintf("an Append racing Close: want success or an error matching ErrClosed, got %v", err)
				}
				return
			}
		})
		wg.Go(func() {
			<-gate
			for {
				after := closed.Load()
				n := 0
				for _, err := range f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{Limit: 50}) {
					if err != nil {
						if !errors.Is(err, eventstore.ErrClosed) {
							failures <- fmt.Sprintf("a ReadAll racing Close: want success or an error matching ErrClosed, got %v", err)
						}
						return
					}
					n++
				}
				if after {
					failures <- fmt.Sprintf("a ReadAll started after Close returned: want an error matching ErrClosed, got %d events and no error", n)
					return
				}
			}
		})
	}
	close(gate)
	// Let the callers get going, then close under them.
	for range 20 {
		runtime.Gosched()
	}
	if err := f.store.Close(); err != nil {
		t.Errorf("Close while appends and reads run: want nil, got %v", err)
	}
	closed.Store(true)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	waitFor(t, finished, raceTimeout, "appends and reads to stop after Close")
	close(failures)
	for msg := range failures {
		t.Error(msg)
	}
}

// unknownClient is a type no driver can know.
type unknownClient struct{ _ int }

func testAsUnknown(t *testing.T, f *fixture) {
	if f.store.As(nil) {
		t.Errorf("As(nil): want false, got true")
	}
	for _, target := range []any{new(unknownClient), new(*unknownClient), new(int), new(error), unknownClient{}, "not a pointer"} {
		if f.store.As(target) {
			t.Errorf("As(%T): want false for a type no driver knows, got true", target)
		}
	}
}

// testAsNative checks the positive side of As: every native type the
// harness declares comes back set, and a driver that hands out native types
// declares them.
func testAsNative(t *testing.T, f *fixture) {
	nt, declared := f.harness.(NativeTyper)
	if !declared {
		if _, ok := f.harness.NewDriver(t).(driver.Aser); ok {
			t.Errorf("the driver implements driver.Aser but the harness does not implement conformance.NativeTyper: declare the native types Store.As hands out")
		}
		return
	}
	targets := nt.NativeTypes()
	if len(targets) == 0 {
		t.Errorf("NativeTypes returned no targets: a harness that implements NativeTyper declares at least one type")
	}
	for _, target := range targets {
		v := reflect.ValueOf(target)
		if v.Kind() != reflect.Pointer || v.IsNil() {
			t.Errorf("NativeTypes: %T is not a non-nil pointer to a variable of the native type", target)
			continue
		}
		if !f.store.As(target) {
			t.Errorf("As(%T): want true for a native type the harness declares, got false", target)
			continue
		}
		if v.Elem().IsZero() {
			t.Errorf("As(%T) reported true but left the target zero", target)
		}
	}
}

func testDoneContextWrites(t *testing.T, f *fixture) {
	cancelled, cancel := context.WithCancel(f.ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(f.ctx, time.Now().Add(-time.Second))
	defer cancel2()
	contexts := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"expired", expired, context.DeadlineExceeded},
	}
	existing := stream("")
	f.mustAppend(existing, eventstore.NoStream, events(2, "Before")...)
	for _, c := range contexts {
		for _, tc := range []struct {
			stream string
			exp    eventstore.ExpectedVersion
		}{{stream(""), eventstore.NoStream}, {existing, eventstore.Exact(2)}, {existing, eventstore.Any}} {
			before := f.state(tc.stream)
			doing := fmt.Sprintf("append 3 events at %s to a stream at version %d with a %s context", expectationName(tc.exp), before.version, c.name)
			_, err := f.store.Append(c.ctx, tc.stream, tc.exp, events(3, "Done")...)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: want an error matching %v, got %v", doing, c.want, err)
			}
			f.checkNothingWritten(doing, before)
		}

		if f.canImport() {
			before := f.state(existing)
			doing := fmt.Sprintf("import of 2 events of a stream at version 2 and 1 of a new one with a %s context", c.name)
			err := f.store.Import(c.ctx, append(recorded(existing, 3, 2, time.Now()), recorded(stream(""), 1, 1, time.Now())...))
			if !errors.Is(err, c.want) {
				t.Errorf("%s: want an error matching %v, got %v", doing, c.want, err)
			}
			f.checkNothingWritten(doing, before)
		}

		doing := fmt.Sprintf("SaveSnapshot with a %s context", c.name)
		if err := f.store.SaveSnapshot(c.ctx, existing, eventstore.Snapshot{Version: 2, Data: []byte("state")}); !errors.Is(err, c.want) {
			t.Errorf("%s: want an error matching %v, got %v", doing, c.want, err)
		}
		if _, ok, err := f.store.LoadSnapshot(f.ctx, existing); err != nil || ok {
			t.Errorf("%s, then LoadSnapshot: want no snapshot, got ok=%v err=%v", doing, ok, err)
		}

		doing = fmt.Sprintf("Subscribe with a %s context", c.name)
		err := subscribeErr(t, c.ctx, f.store, eventstore.SubscribeOptions{}, func(context.Context, eventstore.RecordedEvent) error { return nil })
		if !errors.Is(err, c.want) {
			t.Errorf("%s: want an error matching %v, got %v", doing, c.want, err)
		}
	}
	// The store still works.
	f.mustAppend(existing, eventstore.Exact(2), events(1, "After")...)
}

// cancelSoon returns a context that attempt i cancels at a random moment,
// in one of three ways by i: by a timer anywhere in the first 2ms, from
// another goroutine after a random number of yields, or at once. The caller
// must call cancel when the attempt is over.
func cancelSoon(parent context.Context, i int) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	switch i % 3 {
	case 0:
		timer := time.AfterFunc(rand.N(2*time.Millisecond), cancel)
		return ctx, func() { timer.Stop(); cancel() }
	case 1:
		go func() {
			for range rand.IntN(50) {
				runtime.Gosched()
			}
			cancel()
		}()
	default:
		cancel()
	}
	return ctx, cancel
}

func testCancelledAppendAllOrNothing(t *testing.T, f *fixture) {
	// Each append is cancelled at a random moment: before it starts, while it
	// runs, or after it returned. Whatever the moment, the stream then holds
	// the whole batch or nothing, and a retry with the same IDs completes it.
	const attempts, batchSize = 40, 5
	type attempt struct {
		stream string
		batch  []eventstore.Event
		err    error
	}
	tries := make([]attempt, attempts)
	for i := range tries {
		a := &tries[i]
		a.stream = stream("Cancel")
		a.batch = events(batchSize, "Cancelled")
		ctx, cancel := cancelSoon(f.ctx, i)
		_, a.err = f.store.Append(ctx, a.stream, eventstore.NoStream, a.batch...)
		cancel()
	}
	var written, cancelled int
	for i, a := range tries {
		want := idsOfEvents(a.batch)
		got := idsOf(f.readStream(a.stream))
		doing := fmt.Sprintf("attempt %d: append %d events with a context cancelled at a random moment", i, batchSize)
		switch {
		case a.err == nil && !sameIDs(got, want):
			t.Errorf("%s: the append succeeded, but the stream holds %d of its events", doing, len(got))
		case a.err != nil && !errors.Is(a.err, context.Canceled):
			t.Errorf("%s: want success or an error matching context.Canceled, got %v", doing, a.err)
		case len(got) != 0 && !sameIDs(got, want):
			t.Errorf("%s: failed with %v and left %d of %d events: want all or none", doing, a.err, len(got), batchSize)
		}
		if len(got) > 0 {
			written++
		}
		if a.err != nil {
			cancelled++
		}
		// The client does not know whether the append happened: it retries.
		res, err := f.store.Append(f.ctx, a.stream, eventstore.NoStream, a.batch...)
		if err != nil {
			t.Errorf("%s (error %v), then retry with the same IDs: want success, got %v", doing, a.err, err)
			continue
		}
		if res.Version != batchSize {
			t.Errorf("%s, then retry with the same IDs: want version %d, got %d", doing, batchSize, res.Version)
		}
		f.checkStreamIDs(doing+", then retry", a.stream, want)
	}
	t.Logf("%d appends with a cancelled context: %d failed, %d were written before the retry", attempts, cancelled, written)
	all := f.readAll()
	if len(all) != attempts*batchSize {
		t.Fatalf("after %d cancelled appends and their retries: read all returned %d events, want %d", attempts, len(all), attempts*batchSize)
	}
	for i := 0; i < len(all); i += batchSize {
		for j := i; j < i+batchSize; j++ {
			if all[j].StreamID != all[i].StreamID || all[j].Version != uint64(j-i+1) {
				t.Fatalf("after cancelled appends and their retries: read all events %d..%d are not one whole batch: %s",
					i, i+batchSize-1, describeEvents(all[i:i+batchSize]))
			}
		}
	}
}
