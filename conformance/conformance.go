// Package conformance is the test suite every driver must pass, ours or a
// third party's. A driver's test calls [Run] with a [Harness]:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.HarnessFunc(func(t testing.TB) eventstore.Driver {
//			return memory.New()
//		}))
//	}
//
// The suite wraps each driver in an [eventstore.Store] and tests through the
// public API. Its rules are the contract in docs/semantics.md; a failure names
// the rule and what happened. Subtests run in parallel, each on a fresh driver.
// The suite imports only the root package and the standard library.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"iter"
	"sort"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

// Harness makes drivers for the suite.
type Harness interface {
	// NewDriver returns an empty, isolated driver for one subtest or
	// benchmark; teardown goes in t.Cleanup. The suite wraps it in a Store and
	// closes the Store when the subtest ends.
	NewDriver(t testing.TB) eventstore.Driver
	// Unsupported maps each optional Feature the driver lacks to the reason
	// printed when its rules are skipped. Every feature not listed must pass.
	Unsupported() map[Feature]string
}

// Feature names an optional ability whose rules a driver may opt out of.
type Feature string

// Optional features.
const (
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

// HarnessFunc is a Harness from a constructor, for drivers that support
// every optional feature.
type HarnessFunc func(t testing.TB) eventstore.Driver

// NewDriver calls f.
func (f HarnessFunc) NewDriver(t testing.TB) eventstore.Driver { return f(t) }

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

// Run runs every rule of the contract against the driver h makes.
func Run(t *testing.T, h Harness) {
	unsupported := h.Unsupported()
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

// fixture gives a rule a fresh store and helpers bound to it.
type fixture struct {
	t       *testing.T
	harness Harness
	store   *eventstore.Store
	ctx     context.Context
}

func newFixture(t *testing.T, h Harness) *fixture {
	f := &fixture{t: t, harness: h, ctx: t.Context()}
	f.store = f.newStore()
	return f
}

// newStore opens another Store on a fresh driver, closed at cleanup.
func (f *fixture) newStore() *eventstore.Store {
	f.t.Helper()
	s := eventstore.New(f.harness.NewDriver(f.t), eventstore.Options{})
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
