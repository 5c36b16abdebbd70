package conformance_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/drivers/memory"
)

// The rules that need Persistence, and the rule on the harness itself.
const (
	declarations  = "HarnessDeclarations"
	reopenKeeps   = "ReopenKeepsEventsSnapshotsAndIdempotency"
	reopenResumes = "ReopenResumesSubscriptionAfterClose"
	retryElsewhre = "RetryWithDifferentContentThroughAnotherStoreRejected"
)

// declarationHarnesses are the harnesses TestHarnessDeclarations runs the
// suite on, in a child process, by name.
var declarationHarnesses = map[string]conformance.Harness{
	"NoReopener":                  conformance.HarnessFunc(newMemory),
	"NoReopenerPersistenceOptOut": declared{conformance.HarnessFunc(newMemory), persistenceOptOut},
	"Reopener":                    reopener{declared{conformance.HarnessFunc(newMemory), nil}},
	"ReopenerPersistenceOptOut":   reopener{declared{conformance.HarnessFunc(newMemory), persistenceOptOut}},
	"UnknownFeature": reopener{declared{conformance.HarnessFunc(newMemory), map[conformance.Feature]string{
		"persistance": "a typo, which would skip nothing",
	}}},
	"NoReason": reopener{declared{conformance.HarnessFunc(newMemory), map[conformance.Feature]string{
		conformance.ReadAllBackwards: " ",
	}}},
}

var persistenceOptOut = map[conformance.Feature]string{conformance.Persistence: "keeps nothing once closed"}

func newMemory(testing.TB) driver.Driver { return memory.New() }

// declared is a harness declaring the given features unsupported.
type declared struct {
	conformance.HarnessFunc
	unsupported map[conformance.Feature]string
}

func (d declared) Unsupported() map[conformance.Feature]string { return d.unsupported }

// reopener adds a Reopener whose every open returns one memory driver, whose
// Close keeps its contents.
type reopener struct{ declared }

func (reopener) NewStorage(testing.TB) func() driver.Driver {
	d := memory.New()
	return func() driver.Driver { return d }
}

// harnessEnv names the harness TestDeclarationsChild runs the suite on.
const harnessEnv = "CONFORMANCE_DECLARATIONS_HARNESS"

// TestDeclarationsChild runs the suite on one of declarationHarnesses when
// TestHarnessDeclarations starts this binary again; otherwise it does nothing.
func TestDeclarationsChild(t *testing.T) {
	name := os.Getenv(harnessEnv)
	if name == "" {
		t.Skip("runs only as the child process of TestHarnessDeclarations")
	}
	conformance.Run(t, declarationHarnesses[name])
}

// TestHarnessDeclarations checks that a harness cannot opt out of a rule
// without saying so: without a Reopener the Persistence rules fail unless
// Persistence is declared unsupported, and HarnessDeclarations fails on an
// unknown feature, an empty reason, or a Persistence opt-out beside a
// Reopener. Each harness runs in a child process, so the rules it fails do
// not fail this test.
func TestHarnessDeclarations(t *testing.T) {
	if os.Getenv(harnessEnv) != "" {
		t.Skip("this is the child process")
	}
	for _, tc := range []struct {
		harness string
		want    map[string]string // rule → PASS, FAIL or SKIP
		output  string            // in the child's output, when set
	}{
		{"NoReopener", map[string]string{declarations: "PASS", reopenKeeps: "FAIL", reopenResumes: "FAIL", retryElsewhre: "FAIL"},
			"the harness does not implement conformance.Reopener"},
		{"NoReopenerPersistenceOptOut", map[string]string{declarations: "PASS", reopenKeeps: "SKIP", reopenResumes: "SKIP", retryElsewhre: "SKIP"},
			"persistence: not supported by this driver: keeps nothing once closed"},
		{"Reopener", map[string]string{declarations: "PASS", reopenKeeps: "PASS", reopenResumes: "PASS", retryElsewhre: "PASS"}, ""},
		{"ReopenerPersistenceOptOut", map[string]string{declarations: "FAIL"}, "implements conformance.Reopener but declares \"persistence\" unsupported"},
		{"UnknownFeature", map[string]string{declarations: "FAIL"}, `declares "persistance", which is not a conformance.Feature`},
		{"NoReason", map[string]string{declarations: "FAIL"}, `declares "read-all-backwards" with no reason`},
	} {
		t.Run(tc.harness, func(t *testing.T) {
			t.Parallel()
			rules := make([]string, 0, len(tc.want))
			for r := range tc.want {
				rules = append(rules, regexp.QuoteMeta(r))
			}
			run := "^TestDeclarationsChild$/^(" + strings.Join(rules, "|") + ")$"
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), harnessEnv+"="+tc.harness)
			out, _ := cmd.CombinedOutput() // fails whenever a rule does; the lines below say which
			for rule, want := range tc.want {
				line := regexp.MustCompile(`--- (PASS|FAIL|SKIP): TestDeclarationsChild/` + regexp.QuoteMeta(rule) + ` `)
				m := line.FindSubmatch(out)
				switch {
				case m == nil:
					t.Errorf("harness %s: rule %s did not report a result; output:\n%s", tc.harness, rule, out)
				case string(m[1]) != want:
					t.Errorf("harness %s: rule %s: want %s, got %s; output:\n%s", tc.harness, rule, want, m[1], out)
				}
			}
			if tc.output != "" && !strings.Contains(string(out), tc.output) {
				t.Errorf("harness %s: want the output to say %q; output:\n%s", tc.harness, tc.output, out)
			}
		})
	}
}
