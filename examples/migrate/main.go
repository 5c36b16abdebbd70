// Command migrate moves an event history from one store to another with
// package migrate, the way an application switches backends.
//
// The program
//
//  1. creates a source store (a SQLite file) with a few accounts' events,
//     binary and empty payloads among them, and a snapshot,
//  2. copies it into the destination, with its snapshots, showing progress,
//  3. verifies that both stores hold the same events,
//  4. copies again: everything is there already, so nothing is written (this
//     is how a stopped copy is resumed),
//  5. follows the source, as during a cut-over without downtime: an event
//     appended to the source while the copy follows is copied live, then the
//     follow is stopped and the stores are verified again.
//
// By default the destination is a second SQLite file; the source and the
// destination live in a temporary directory removed at exit. Any other
// backend works the same (the destination must be empty):
//
//	go run ./examples/migrate
//	go run ./examples/migrate --to postgres://localhost/events
//	EVENTSTORE_URL=postgres://localhost/events go run ./examples/migrate
//
// The evs command does the same from the shell: evs migrate --from URL --to
// URL --verify (docs/cli.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/migrate"

	// Drivers register their URL scheme when imported.
	_ "github.com/eventkit/eventstore/drivers/memory"
	_ "github.com/eventkit/eventstore/drivers/postgres"
	_ "github.com/eventkit/eventstore/drivers/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("migrate", flag.ContinueOnError)
	toURL := flags.String("to", "",
		"destination store URL (default $EVENTSTORE_URL, else a SQLite file in a temporary directory)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	// Not the flag's default: the usage text would print it, password and all.
	if *toURL == "" {
		*toURL = os.Getenv("EVENTSTORE_URL")
	}
	dir, err := os.MkdirTemp("", "migrate-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fromURL := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "source.db"))
	if *toURL == "" {
		*toURL = "sqlite://" + filepath.ToSlash(filepath.Join(dir, "destination.db"))
	}

	// 1. A source store with some history.
	src, err := eventstore.Open(ctx, fromURL)
	if err != nil {
		return err
	}
	defer src.Close()
	versions, n, err := seed(ctx, src)
	if err != nil {
		return err
	}
	step(out, 1, "source %s: %d events in %d streams, 1 snapshot", fromURL, n, len(accounts))

	dst, err := eventstore.Open(ctx, *toURL)
	if err != nil {
		return err
	}
	defer dst.Close()
	if v, err := dst.StreamVersion(ctx, "Account-alice"); err != nil || v > 0 {
		if err == nil {
			err = errors.New("the destination already has events: use an empty store")
		}
		return err
	}

	// 2. Copy. Progress is called after every write; a real program would
	// redraw a progress bar here (evs migrate does).
	var reports int
	stats, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{
		Snapshots: true,
		BatchSize: 10,
		Progress:  func(migrate.Stats) { reports++ },
	})
	if err != nil {
		// Whatever happened (Ctrl-C, a lost connection), dst is at a batch
		// boundary: running the copy again continues from there.
		return err
	}
	step(out, 2, "copied %d events and %d snapshot into %s (%d progress reports)",
		stats.Copied, stats.Snapshots, eventstore.RedactURL(*toURL), reports)

	// 3. Verify: both logs are read and compared stream by stream.
	report, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
	if err != nil {
		return err
	}
	if !report.Equal {
		return fmt.Errorf("verify: %s", report)
	}
	step(out, 3, "verify: equal: %d streams, %d events", report.Streams, report.Events)

	// 4. Copy again: the destination's streams are the checkpoint, so every
	// event is found there, compared and skipped.
	again, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
	if err != nil {
		return err
	}
	step(out, 4, "copied again: %d copied, %d already there", again.Copied, again.Skipped)

	// 5. Follow: keep copying what the application still appends to the
	// source, until the cut-over is done. Copy runs in its own goroutine
	// until its context is cancelled; Progress says when it has caught up
	// and what it copied.
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	progress := make(chan migrate.Stats, 1)
	done := make(chan error, 1)
	go func() {
		_, err := migrate.Copy(followCtx, migrate.From(src), migrate.To(dst), migrate.Options{
			Follow: true,
			Progress: func(s migrate.Stats) {
				select {
				case <-progress: // keep only the latest
				default:
				}
				progress <- s
			},
		})
		done <- err
	}()
	if _, err := waitFor(ctx, progress, func(s migrate.Stats) bool { return s.Live }); err != nil {
		return err
	}
	// The application appends one more event to the old store...
	if _, err := src.Append(ctx, "Account-bob", eventstore.Exact(versions["Account-bob"]),
		eventstore.NewEvent("MoneyDeposited", []byte(`{"amount":75}`))); err != nil {
		return err
	}
	// ...and the follow copies it.
	last, err := waitFor(ctx, progress, func(s migrate.Stats) bool { return s.Copied > 0 })
	if err != nil {
		return err
	}
	// Cut-over: stop writing to the source (here, nothing else writes), let
	// the follow catch up (it has), stop it, verify, switch the application.
	stopFollow()
	if err := <-done; !errors.Is(err, context.Canceled) {
		return fmt.Errorf("follow: %w", err)
	}
	report, err = migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
	if err != nil {
		return err
	}
	if !report.Equal {
		return fmt.Errorf("verify after the follow: %s", report)
	}
	step(out, 5, "followed: %d event copied live; verify: equal: %d streams, %d events", last.Copied, report.Streams, report.Events)
	return nil
}

// waitFor returns the first progress report for which ok holds, giving up
// after ten seconds.
func waitFor(ctx context.Context, progress <-chan migrate.Stats, ok func(migrate.Stats) bool) (migrate.Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		select {
		case s := <-progress:
			if ok(s) {
				return s, nil
			}
		case <-ctx.Done():
			return migrate.Stats{}, fmt.Errorf("waiting for the follow: %w", ctx.Err())
		}
	}
}

// accounts are the source's streams.
var accounts = []string{"Account-alice", "Account-bob", "Account-carol", "Audit-2026"}

// seed appends the source's history: interleaved appends to several streams,
// with JSON, binary and empty payloads and metadata, and a snapshot. It
// returns each stream's version and the number of events.
func seed(ctx context.Context, s *eventstore.Store) (map[string]uint64, int, error) {
	versions := map[string]uint64{}
	n := 0
	for month := range 6 {
		for _, id := range accounts {
			events := []eventstore.Event{
				eventstore.NewEvent("MoneyDeposited", fmt.Appendf(nil, `{"amount": %d, "memo": "salaire d'été ☀"}`, 1000+month)),
				{Type: "StatementRendered", ContentType: eventstore.Binary, Data: []byte{0x25, 0x50, 0x44, 0x46, 0x00, 0xff}},
				{Type: "Checked", Metadata: []byte(`{"$correlationId":"audit-` + fmt.Sprint(month) + `"}`)},
			}
			if _, err := s.Append(ctx, id, eventstore.Exact(versions[id]), events...); err != nil {
				return nil, 0, err
			}
			versions[id] += uint64(len(events))
			n += len(events)
		}
	}
	err := s.SaveSnapshot(ctx, "Account-alice", eventstore.Snapshot{Version: versions["Account-alice"], Data: []byte(`{"balance":6015}`)})
	return versions, n, err
}

func step(out io.Writer, n int, format string, args ...any) {
	fmt.Fprintf(out, "%d. "+format+"\n", append([]any{n}, args...)...)
}
