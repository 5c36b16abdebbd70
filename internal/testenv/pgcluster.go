package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PostgresCluster is a private PostgreSQL cluster a test may restart.
type PostgresCluster struct {
	URL    string
	script string
	dir    string
}

// StartPostgresCluster starts a private throw-away cluster with
// scripts/postgres.sh (found from the module root) and stops it when t
// ends. Without PostgreSQL binaries it skips t, or fails it under CI=true.
func StartPostgresCluster(t testing.TB) *PostgresCluster {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	script := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "scripts", "postgres.sh")
	dir, err := os.MkdirTemp("", "es-pg-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil { // postgres.sh creates it, with the owner it needs
		t.Fatal(err)
	}
	c := &PostgresCluster{script: script, dir: dir}
	url, err := exec.Command(script, "start", dir).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && strings.Contains(string(ee.Stderr), "binaries not found") {
			missing(t, "PostgreSQL binaries are not installed: "+string(ee.Stderr))
		}
		t.Fatalf("%s start: %v: %s", script, err, stderr(err))
	}
	c.URL = strings.TrimSpace(string(url))
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("%s stop: %v: %s", script, err, out)
		}
	})
	return c
}

// Restart stops the cluster with mode ("fast", or "immediate": a crash)
// and starts it again on the same port.
func (c *PostgresCluster) Restart(t testing.TB, mode string) {
	t.Helper()
	if out, err := exec.Command(c.script, "restart", c.dir, mode).CombinedOutput(); err != nil {
		t.Fatalf("%s restart %s: %v: %s", c.script, mode, err, out)
	}
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
