package testenv

import (
	"os"
	"testing"
)

// KurrentDBURLVar is the variable that names a real KurrentDB server for
// tests, as a connection string ("kurrentdb://127.0.0.1:2113?tls=false").
const KurrentDBURLVar = "EVENTSTORE_KURRENTDB_URL"

// MustHaveKurrentDB returns the connection string of the real KurrentDB
// server to test against, from EVENTSTORE_KURRENTDB_URL. When it is unset
// it skips t, saying how to start one. Unlike the other helpers it skips
// under CI=true too: no KurrentDB can be installed where CI runs, so CI
// runs the KurrentDB driver against the in-process double
// (internal/kurrentdbtest) and a real server is opt-in (`make
// test-kurrentdb`, which sets the variable, so there a missing server
// fails). Tests use their own namespaces on that server.
func MustHaveKurrentDB(t testing.TB) string {
	t.Helper()
	u := os.Getenv(KurrentDBURLVar)
	if u == "" {
		t.Skip(KurrentDBURLVar + " is not set: this test needs a real KurrentDB server; start one with " +
			"`docker compose up -d kurrentdb` and run `make test-kurrentdb` (the driver's other tests run against the in-process double)")
	}
	return u
}
