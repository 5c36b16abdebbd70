// Package testenv finds the servers that driver tests run against. Each
// backend has one MustHave… helper: it returns how to reach the server, or
// skips the test with the variable to set and how to start the service — but
// under CI=true a missing server fails the test instead, so a CI run can never
// pass by skipping a backend.
package testenv

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the CI environment variable is set to a true value
// (as CI=true, which `make test` sets by default).
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// missing skips t with reason, or fails it under CI.
func missing(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI=true: a missing backend is a failure, not a skip)", reason)
	}
	t.Skip(reason)
}
