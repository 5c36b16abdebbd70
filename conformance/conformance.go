// Package conformance is the test suite every driver must pass, ours or a
// third party's. A driver's test calls [Run] with a [Harness]; a driver that
// keeps its data also implements [Reopener], so the rules that reopen its
// storage run:
//
//	type harness struct{}
//
//	func (harness) NewDriver(t testing.TB) driver.Driver {
//		return openMyDriver(t, filepath.Join(t.TempDir(), "events.db"))
//	}
//
//	func (harness) Unsupported() map[conformance.Feature]string { return nil }
//
//	func (harness) NewStorage(t testing.TB) func() driver.Driver {
//		path := filepath.Join(t.TempDir(), "events.db")
//		return func() driver.Driver { return openMyDriver(t, path) }
//	}
//
//	func TestConformance(t *testing.T) { conformance.Run(t, harness{}) }
//
// The suite wraps each driver in an [eventstore.Store] and tests through the
// public API. Its rules are the contract in docs/semantics.md; a failure names
// the rule and what happened. Subtests run in parallel, each on a fresh driver.
// The suite imports only the root package and the standard library.
//
// A rule is skipped only when the harness declares the [Feature] it needs
// unsupported, with a reason; the rule HarnessDeclarations checks those
// declarations. Nothing else lets a harness opt out: a harness without
// [Reopener] fails the rules that reopen storage unless it declares
// [Persistence] unsupported.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Harness makes drivers for the suite. A harness for a driver that keeps its
// data once closed also implements [Reopener].
type Harness interface {
	// NewDriver returns an empty, isolated driver for one subtest or
	// benchmark; teardown goes in t.Cleanup. The suite wraps it in a Store and
	// closes the Store when the subtest ends.
	NewDriver(t testing.TB) driver.Driver
	// Unsupported maps each optional Feature the driver lacks to the reason
	// printed when its rules are skipped. Every feature not listed must pass.
	// A feature the suite does not know, or an empty reason, fails the rule
	// HarnessDeclarations.
	Unsupported() map[Feature]string
}

// NativeTyper is implemented by the harness of a driver that hands out
// native clients through [eventstore.Store.As] ([driver.Aser]). The rule
// AsHandsOutDeclaredNativeTypes checks that each declared type comes back
// set, and fails a driver that implements driver.Aser when its harness does
// not declare its types.
type NativeTyper interface {
	// NativeTypes returns one target per native type the driver's
	// documentation lists: a pointer to a variable of that type, such as
	// new(*sql.DB).
	NativeTypes() []any
}

// Feature names an optional ability whose rules a driver may opt out of, by
// listing it in [Harness.Unsupported] with a reason. Each exists because a
// backend the library supports cannot keep the rule; docs/writing-a-driver.md
// says which and why.
type Feature string

// Optional features.
const (
	// Persistence: what a Store wrote is still there for a new Store over
	// the same storage, as after a restart. Its rules open the storage again
	// through [Reopener]; a harness without Reopener fails them unless it
	// declares Persistence unsupported. Only a driver that keeps nothing once
	// closed (an in-memory one) may declare it, and then it cannot also
	// implement Reopener. The rules of [DurableRetryContentCheck] need it too.
	Persistence Feature = "persistence"
	// ReadAllBackwards: reading the global log newest first.
	ReadAllBackwards Feature = "read-all-backwards"
	// DurableIdempotencyAny: an append with Any or StreamExists retried after
	// other appends to the stream is still recognised (KurrentDB only keeps
	// a bounded in-memory cache of recent event IDs for these).
	DurableIdempotencyAny Feature = "durable-idempotency-any"
	// DurableRetryContentCheck: an append that reuses the event IDs of an
	// earlier append with different content is rejected whichever Store
	// made the earlier append (another process, or before a restart). The
	// rules run on a second Store over the same storage (see [Reopener]).
	// KurrentDB's driver recognises such an append only from what its own
	// process has seen of the stream.
	DurableRetryContentCheck Feature = "durable-retry-content-check"
)

// features lists every Feature the suite knows.
var features = []Feature{Persistence, ReadAllBackwards, DurableIdempotencyAny, DurableRetryContentCheck}

// HarnessFunc is a Harness from a constructor that declares no feature
// unsupported. It has no [Reopener], so the [Persistence] rules fail with it:
// embed it in a type that adds NewStorage, or (for a driver that keeps
// nothing once closed) one whose Unsupported declares Persistence.
type HarnessFunc func(t testing.TB) driver.Driver

// NewDriver calls f.
func (f HarnessFunc) NewDriver(t testing.TB) driver.Driver { return f(t) }

// Unsupported returns nil: every feature is supported.
func (f HarnessFunc) Unsupported() map[Feature]string { return nil }

// rule is one named rule of the contract.
type rule struct {
	name     string
	requires Feature // optional feature the rule needs, or ""
	run      func(t *testing.T, h *fixture)
}

// ruleSets lists every rule group; each file adds its group in init.
var ruleSets []func() []rule

// Run runs every rule of the contract against the driver h makes, and
// first the rule HarnessDeclarations on h itself.
func Run(t *testing.T, h Harness) { RunMatching(t, h, nil) }

// RunMatching is [Run] limited to the rules whose names match reports
// true for (every rule when match is nil), HarnessDeclarations always: for
// a variant of a backend whose driver runs the whole suite already, where
// only some rules exercise what the variant changes.
func RunMatching(t *testing.T, h Harness, match func(rule string) bool) {
	unsupported := h.Unsupported()
	t.Run(declarationsRule, func(t *testing.T) { checkDeclarations(t, h, unsupported) })
	if len(unsupported) > 0 {
		keys := make([]string, 0, len(unsupported))
		for f, why := range unsupported {
			keys = append(keys, fmt.Sprintf("%s (%s)", f, why))
		}
		sort.Strings(keys)
		t.Logf("driver declares unsupported features: %v", keys)
	}
	for _, set := range ruleSets {
		for _, r := range set() {
			if match != nil && !match(r.name) {
				continue
			}
			t.Run(r.name, func(t *testing.T) {
				t.Parallel()
				if r.requires != "" {
					if why, ok := unsupported[r.requires]; ok {
						t.Skipf("%s: not supported by this driver: %s", r.requires, why)
					}
				}
				r.run(t, newFixture(t, h))
			})
		}
	}
}

// declarationsRule is the name of the rule that checks what a harness
// declares: every unsupported Feature is one the suite knows and has a
// reason, and a harness that declares [Persistence] unsupported does not
// implement [Reopener] (whose rules would then never run).
const declarationsRule = "HarnessDeclarations"

func checkDeclarations(t *testing.T, h Harness, unsupported map[Feature]string) {
	for f, why := range unsupported {
		if !slices.Contains(features, f) {
			t.Errorf("Harness.Unsupported declares %q, which is not a conformance.Feature (known: %v): it skips nothing", f, features)
		}
		if strings.TrimSpace(why) == "" {
			t.Errorf("Harness.Unsupported declares %q with no reason: say why the backend cannot keep its rules", f)
		}
	}
	if _, ok := h.(Reopener); ok {
		if _, declared := unsupported[Persistence]; declared {
			t.Errorf("the harness implements conformance.Reopener but declares %q unsupported: "+
				"a driver that can reopen its storage keeps the rules that reopen it; drop the declaration", Persistence)
		}
	}
}

// fixture gives a rule a fresh store and helpers bound to it.
type fixture struct {
	t       *testing.T
	harness Harness
	store   *eventstore.Store
	driver  driver.Driver // the driver of store, for the rules of capabilities
	ctx     context.Context
}

func newFixture(t *testing.T, h Harness) *fixture {
	f := &fixture{t: t, harness: h, ctx: t.Context()}
	f.driver = h.NewDriver(t)
	f.store = f.storeOver(f.driver)
	return f
}

// newStore opens another Store on a fresh driver, closed at cleanup.
func (f *fixture) newStore() *eventstore.Store {
	f.t.Helper()
	return f.storeOver(f.harness.NewDriver(f.t))
}

// storeOver returns a Store over d, closed at cleanup.
func (f *fixture) storeOver(d driver.Driver) *eventstore.Store {
	f.t.Helper()
	s := eventstore.New(d, eventstore.Options{})
	f.t.Cleanup(func() {
		if err := s.Close(); err != nil {
			f.t.Errorf("Store.Close: %v", err)
		}
	})
	return s
}

// stream returns a fresh random stream ID in category cat ("Test" when empty).
func stream(cat string) string {
	if cat == "" {
		cat = "Test"
	}
	var b [8]byte
	rand.Read(b[:])
	return cat + "-" + hex.EncodeToString(b[:])
}

// events returns n JSON events of type typ with distinct IDs and data {"n":i}.
func events(n int, typ string) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent(typ, []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	return evs
}

// mustAppend appends and fails the test on error.
func (f *fixture) mustAppend(stream string, exp eventstore.ExpectedVersion, evs ...eventstore.Event) eventstore.AppendResult {
	f.t.Helper()
	res, err := f.store.Append(f.ctx, stream, exp, evs...)
	if err != nil {
		f.t.Fatalf("append %d events to %q at %s: %v", len(evs), stream, exp, err)
	}
	return res
}

// collect drains a read, failing the test on error.
func collect(t testing.TB, seq iter.Seq2[eventstore.RecordedEvent, error]) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for ev, err := range seq {
		if err != nil {
			t.Fatalf("read failed after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

// readStream reads a whole stream forwards.
func (f *fixture) readStream(stream string) []eventstore.RecordedEvent {
	f.t.Helper()
	return collect(f.t, f.store.ReadStream(f.ctx, stream, eventstore.ReadStreamOptions{}))
}

// readAll reads the whole global log forwards.
func (f *fixture) readAll() []eventstore.RecordedEvent {
	f.t.Helper()
	return collect(f.t, f.store.ReadAll(f.ctx, eventstore.ReadAllOptions{}))
}

// waitFor waits on ch for up to d, failing with what when it does not arrive.
func waitFor[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
		var zero T
		return zero
	}
}

// withCapability runs a rule only for drivers that implement capability C;
// for the others it skips, naming the rule checkedBy that checks the Store
// returns ErrNotSupported without it.
func withCapability[C any](checkedBy string, run func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		if _, ok := f.driver.(C); !ok {
			t.Skipf("the driver does not implement %s (%s checks that the Store says so)", reflect.TypeFor[C](), checkedBy)
		}
		run(t, f)
	}
}
