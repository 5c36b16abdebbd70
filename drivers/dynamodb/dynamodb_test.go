package dynamodb_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/stretchr/testify/require"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, harness{client: newClient(t, nil)})
}

// TestConformanceSmallLogPartitions runs the suite with 100 positions per log
// partition (the smallest allowed), so appends and reads cross partitions
// all the time.
func TestConformanceSmallLogPartitions(t *testing.T) {
	var opts dynamodb.Options
	dynamodb.SetLogBucketSize(&opts, 100)
	conformance.Run(t, harness{client: newClient(t, nil), opts: opts})
}

// TestConformanceIndexed runs the suite on tables of the indexed log
// layout: appends write an inbox item, and each driver's orderer places
// them in the log.
func TestConformanceIndexed(t *testing.T) {
	conformance.Run(t, harness{client: newClient(t, nil), opts: indexedOptions()})
}

// indexedOptions are the options of the tests on indexed tables: the
// orderer polls the inbox at most every second (appends through the driver
// wake it at once; dozens of tables are tested at a time), and its lease
// is short, so a test that closes a driver and opens another is quick.
func indexedOptions() dynamodb.Options {
	return dynamodb.Options{Log: dynamodb.LogIndexed, OrderPoll: time.Second, OrdererLease: 2 * time.Second}
}

// harness gives each rule a driver on a table of its own, and reopens a
// table with a new driver as a restarted process would.
type harness struct {
	client *awsdynamodb.Client
	opts   dynamodb.Options
}

func (h harness) NewDriver(t testing.TB) driver.Driver { return newDriver(t, h.client, h.opts) }

func (h harness) Unsupported() map[conformance.Feature]string { return nil }

func (harness) NativeTypes() []any { return []any{new(*awsdynamodb.Client)} }

func (h harness) NewStorage(t testing.TB) func() driver.Driver {
	table := randomTable()
	opts := h.opts
	opts.CreateTable = true
	deleteTableAtCleanup(t, h.client, table)
	return func() driver.Driver {
		d, err := dynamodb.New(t.Context(), h.client, table, opts)
		require.NoError(t, err)
		return d
	}
}

// newClient returns a client for the test server with dummy static
// credentials in us-east-1. A non-nil transport sits in front of the network;
// optFns edit the client's options last.
func newClient(t testing.TB, transport http.RoundTripper, optFns ...func(*awsdynamodb.Options)) *awsdynamodb.Client {
	t.Helper()
	if transport != nil {
		optFns = append([]func(*awsdynamodb.Options){func(o *awsdynamodb.Options) {
			o.HTTPClient = &http.Client{Transport: transport}
		}}, optFns...)
	}
	return storetest.DynamoDBClient(t, optFns...)
}

// randomTable returns a fresh table name.
func randomTable() string {
	var b [6]byte
	rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

// newDriver opens a driver on a fresh table, created for it and deleted when
// t ends. The driver itself is closed by whoever wraps it in a Store, or at
// cleanup.
func newDriver(t testing.TB, client *awsdynamodb.Client, opts dynamodb.Options) *dynamodb.Driver {
	t.Helper()
	table := randomTable()
	opts.CreateTable = true
	d, err := dynamodb.New(t.Context(), client, table, opts)
	require.NoError(t, err)
	deleteTableAtCleanup(t, client, table)
	t.Cleanup(func() { d.Close() })
	return d
}

// deleteTableAtCleanup deletes table when t ends, under its own deadline:
// t.Context() is already done then.
func deleteTableAtCleanup(t testing.TB, client *awsdynamodb.Client, table string) {
	storetest.DeleteTableAtCleanup(t, client, table)
}

// newStore returns a Store over a fresh driver, closed when t ends.
func newStore(t testing.TB, client *awsdynamodb.Client, opts dynamodb.Options) (*eventstore.Store, *dynamodb.Driver) {
	t.Helper()
	d := newDriver(t, client, opts)
	s := eventstore.New(d, eventstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s, d
}
