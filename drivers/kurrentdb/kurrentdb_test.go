package kurrentdb_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/internal/kurrentdbtest"
	"github.com/eventkit/eventstore/internal/testenv"
)

// unsupported is what KurrentDB cannot do of the optional contract.
var unsupported = map[conformance.Feature]string{
	conformance.DurableIdempotencyAny: "KurrentDB recognises a retry expecting Any or StreamExists only from " +
		"a bounded in-memory cache of recent event IDs, which a restart or leader change empties",
	conformance.DurableRetryContentCheck: "KurrentDB takes an append for a retry by its event IDs alone; the driver " +
		"compares the content only when it knows the IDs were written (it wrote or read those versions, or the " +
		"earlier append went unanswered in this process), not for an append another process made",
}

// serverVersion is the version the doubles of the conformance runs claim:
// one with AppendRecords, which the driver's AppendMulti needs.
const serverVersion = "26.1.0"

// openDriver opens a driver on a server; the suite closes it.
func openDriver(t testing.TB, url string, opts kurrentdb.Options) *kurrentdb.Driver {
	t.Helper()
	d, err := kurrentdb.Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return d
}

// doubleHarness gives every driver a double of its own, so stores are
// empty and isolated without a namespace.
type doubleHarness struct{ opts kurrentdbtest.Options }

func (h doubleHarness) NewDriver(t testing.TB) driver.Driver {
	return openDriver(t, kurrentdbtest.Start(t, h.opts).URL(), kurrentdb.Options{})
}

func (doubleHarness) Unsupported() map[conformance.Feature]string { return unsupported }

func (doubleHarness) NativeTypes() []any { return []any{new(*kdb.Client)} }

// NewStorage implements conformance.Reopener: drivers over one double.
func (h doubleHarness) NewStorage(t testing.TB) func() driver.Driver {
	srv := kurrentdbtest.Start(t, h.opts)
	return func() driver.Driver { return openDriver(t, srv.URL(), kurrentdb.Options{}) }
}

// TestConformance runs the suite against the in-process double, one double
// per store.
func TestConformance(t *testing.T) {
	conformance.Run(t, doubleHarness{opts: kurrentdbtest.Options{ServerVersion: serverVersion}})
}

// namespaceHarness gives every driver a fresh namespace on one shared
// server, as a real server is shared.
type namespaceHarness struct{ url string }

func (h namespaceHarness) NewDriver(t testing.TB) driver.Driver {
	return openDriver(t, h.url, kurrentdb.Options{Namespace: newNamespace()})
}

func (namespaceHarness) Unsupported() map[conformance.Feature]string { return unsupported }

func (namespaceHarness) NativeTypes() []any { return []any{new(*kdb.Client)} }

func (h namespaceHarness) NewStorage(t testing.TB) func() driver.Driver {
	ns := newNamespace()
	return func() driver.Driver { return openDriver(t, h.url, kurrentdb.Options{Namespace: ns}) }
}

func newNamespace() string {
	var b [6]byte
	rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

// TestConformanceNamespaces runs the suite with every store in its own
// namespace of one double: the configuration of the real-server run.
func TestConformanceNamespaces(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{ServerVersion: serverVersion})
	conformance.Run(t, namespaceHarness{url: srv.URL()})
}

// TestConformanceRealServer runs the suite against the KurrentDB server
// named by EVENTSTORE_KURRENTDB_URL, each store in its own namespace.
func TestConformanceRealServer(t *testing.T) {
	conformance.Run(t, namespaceHarness{url: testenv.MustHaveKurrentDB(t)})
}
