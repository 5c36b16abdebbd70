package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocs runs the ```console examples of docs/cli.md and README.md and
// checks that evs prints what they show. The evs on $PATH is this test
// binary running main (TestMain, runMainEnv), so nothing is built. Each document is
// one session in a fresh directory, with the default store
// (sqlite:events.db), so a block sees what the blocks before it wrote. A
// "$ " line is a command run with sh -c, with evs on $PATH, no standard
// input and stdout and stderr together, as a terminal shows them; the lines
// up to the next command are its output. Event IDs and recorded times differ
// from run to run: any UUID matches any UUID, and any recorded time any
// other (both still must have their fixed form). The migrate section of
// docs/cli.md is left to migrate's tests.
func TestDocs(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("needs sh in $PATH: %v", err)
	}
	self, err := os.Executable()
	require.NoError(t, err)
	bin := t.TempDir()
	wrapper := "#!" + sh + "\n" + runMainEnv + "=1 exec '" + self + "' \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "evs"), []byte(wrapper), 0o755))
	path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, doc := range []struct{ file, stopAt string }{
		{"../../docs/cli.md", "\n## `evs migrate"},
		{"../../README.md", ""},
	} {
		t.Run(filepath.Base(doc.file), func(t *testing.T) {
			text, err := os.ReadFile(doc.file)
			require.NoError(t, err)
			if doc.stopAt != "" {
				before, _, found := bytes.Cut(text, []byte(doc.stopAt))
				require.True(t, found, "%s has no %q", doc.file, doc.stopAt)
				text = before
			}
			blocks := consoleBlocks(string(text))
			require.NotEmpty(t, blocks)
			dir := t.TempDir()
			for _, b := range blocks {
				var got strings.Builder
				status := 0
				for _, c := range b.commands {
					got.WriteString("$ " + c.line + "\n")
					if c.line == "echo $?" {
						got.WriteString(strconv.Itoa(status) + "\n")
						continue
					}
					cmd := exec.CommandContext(t.Context(), sh, "-c", c.line)
					cmd.Dir = dir
					cmd.Env = append(os.Environ(), "PATH="+path, urlEnv+"=", "COLUMNS=80")
					var out bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &out
					err := cmd.Run()
					status = 0
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						status = ee.ExitCode()
					} else {
						require.NoError(t, err, "%s:%d: %s", doc.file, c.at, c.line)
					}
					got.Write(out.Bytes())
				}
				assert.Equalf(t, normalizeDoc(b.text), normalizeDoc(got.String()),
					"%s: the console block at line %d", doc.file, b.at)
			}
		})
	}
}

// consoleBlock is one ```console block of a document: its text (without the
// fences) and its commands.
type consoleBlock struct {
	at       int // line number of its first line
	text     string
	commands []consoleCommand
}

type consoleCommand struct {
	at   int
	line string // without the "$ "
}

func consoleBlocks(doc string) []consoleBlock {
	var (
		blocks []consoleBlock
		cur    *consoleBlock
	)
	for i, line := range strings.Split(doc, "\n") {
		switch {
		case cur == nil && line == "```console":
			cur = &consoleBlock{at: i + 2}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
			if cmd, ok := strings.CutPrefix(line, "$ "); ok {
				cur.commands = append(cur.commands, consoleCommand{i + 1, cmd})
			}
		}
	}
	return blocks
}

var (
	docUUID = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	docTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z`)
)

// normalizeDoc replaces what differs between runs: event IDs and recorded
// times.
func normalizeDoc(s string) string {
	s = docUUID.ReplaceAllString(s, "<uuid>")
	return docTime.ReplaceAllString(s, "<recorded_at>")
}
