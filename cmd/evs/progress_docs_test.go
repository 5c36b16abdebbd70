package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/migrate"
)

// The plain progress lines docs/cli.md shows are the ones the program
// prints for those figures.
func TestProgressLinesInDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for line := range strings.Lines(string(doc)) {
		if strings.HasPrefix(line, "progress ") {
			documented = append(documented, strings.TrimSpace(line))
		}
	}
	now := time.Now()
	catchUp := newProgress(io.Discard, false, func() time.Time { return now }, 10000)
	catchUp.stats = migrate.Stats{Read: 4600, Copied: 4400, Skipped: 100, Last: eventstore.Position{Commit: 4512}}
	live := newProgress(io.Discard, false, func() time.Time { return now }, 10000)
	live.stats = migrate.Stats{Read: 10012, Copied: 10012, Last: eventstore.Position{Commit: 10024}}
	live.live, live.liveFrom = true, 10000
	want := []string{catchUp.plainLine(5400), live.plainLine(3)}
	if strings.Join(documented, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/cli.md shows these progress lines:\n%s\nthe program prints:\n%s",
			strings.Join(documented, "\n"), strings.Join(want, "\n"))
	}
}
