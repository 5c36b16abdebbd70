package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/migrate"
)

// exitInterrupted is the exit status after Ctrl-C stopped a command that had
// not finished (128 + SIGINT, the shell's convention).
const exitInterrupted = 130

// exitError ends a command with a status of its own, such as
// exitInterrupted, and a message for standard error.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// migrateFlags are the flags of evs migrate.
type migrateFlags struct {
	from, to                          string
	verify, follow, dryRun, snapshots bool
	verifyOnly                        bool
	batch                             int
	set                               map[string]bool // the flags given
}

// setupMigrate: evs migrate --from URL --to URL [--verify] [--follow]
// [--batch N] [--dry-run] [--snapshots] [--verify-only].
func setupMigrate(fs *flag.FlagSet) runFunc {
	var f migrateFlags
	fs.StringVar(&f.from, "from", "", "source store `URL` (only read; it must exist)")
	fs.StringVar(&f.to, "to", "", "destination store `URL` (created if missing, except by --dry-run and --verify-only)")
	fs.BoolVar(&f.verify, "verify", false, "after the copy, compare both stores and fail (status 1) if they differ")
	fs.BoolVar(&f.verifyOnly, "verify-only", false, "compare both stores without copying; fail (status 1) if they differ")
	fs.BoolVar(&f.follow, "follow", false, "after catching up, keep copying new source events until Ctrl-C")
	fs.IntVar(&f.batch, "batch", migrate.DefaultBatchSize, "write at most `N` events at a time")
	fs.Lookup("url").Usage = "not used: migrate takes --from and --to"
	fs.BoolVar(&f.dryRun, "dry-run", false, "read and compare as a copy would, count what it would copy, write nothing")
	fs.BoolVar(&f.snapshots, "snapshots", false, "also copy the latest snapshot of each stream")
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		f.set = map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
		if err := f.check(); err != nil {
			return err
		}
		if f.verifyOnly {
			return runVerifyOnly(ctx, e, cf, f)
		}
		return runMigrate(ctx, e, cf, f)
	}
}

// check reports a wrong combination of flags or a URL that cannot name a
// store as a usage error.
func (f migrateFlags) check() error {
	switch {
	case f.set["url"]:
		return usagef("migrate takes --from and --to, not --url")
	case f.from == "":
		return usagef("missing --from URL (the source store)")
	case f.to == "":
		return usagef("missing --to URL (the destination store)")
	case f.from == f.to:
		return usagef("--from and --to are the same store")
	case f.batch <= 0:
		return usagef("invalid --batch %d: want a number of events, 1 or more", f.batch)
	case f.dryRun && f.verify:
		return usagef("--dry-run writes nothing, so there is nothing to --verify")
	case f.dryRun && f.follow:
		return usagef("--dry-run and --follow exclude each other")
	case f.verifyOnly && (f.dryRun || f.follow || f.snapshots || f.set["batch"]):
		return usagef("--verify-only copies nothing: it takes no --dry-run, --follow, --snapshots or --batch")
	}
	for _, u := range []struct{ flag, url string }{{"--from", f.from}, {"--to", f.to}} {
		if err := checkStoreURL(u.url); err != nil {
			return usagef("%s %s: %v", u.flag, displayURL(u.url), err)
		}
	}
	return nil
}

// checkStoreURL reports a URL that does not parse or whose scheme no
// compiled-in driver has.
func checkStoreURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("not a store URL (want e.g. sqlite:events.db or postgres://host/db)")
	}
	schemes := eventstore.Schemes()
	if !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
		return fmt.Errorf("unknown backend %q (known: %s)", u.Scheme, strings.Join(schemes, ", "))
	}
	return nil
}

// sideError names the store an error comes from.
type sideError struct {
	side string // "source" or "destination"
	err  error
}

func (e *sideError) Error() string {
	return e.side + ": " + strings.TrimPrefix(e.err.Error(), "eventstore: ")
}

func (e *sideError) Unwrap() error { return e.err }

// openStore opens one side of the migration; with mustExist, only a store
// that exists (the driver's must_exist=true), creating nothing. A URL the
// driver rejects (an unknown or wrong query parameter) is a usage error. A
// store that does not exist gives an error matching
// eventstore.ErrStoreNotFound.
func openStore(ctx context.Context, e *env, side, rawURL string, mustExist bool) (*eventstore.Store, error) {
	if mustExist {
		rawURL = existingURL(rawURL)
	}
	s, err := eventstore.OpenWith(ctx, rawURL, e.storeOptions()) // its errors hold no password
	switch {
	case errors.Is(err, eventstore.ErrInvalidArgument):
		return nil, usagef("%s", (&sideError{side, err}).Error())
	case err != nil:
		return nil, &sideError{side, err}
	}
	return s, nil
}

// notFound explains a store that does not exist: migrate created nothing.
func notFound(err error, flag string) error {
	return fmt.Errorf("%w (check %s; nothing was created)", err, flag)
}

// openSource opens the source, which must exist: migrate only reads it.
func openSource(ctx context.Context, e *env, rawURL string) (*eventstore.Store, error) {
	s, err := openStore(ctx, e, "source", rawURL, true)
	if errors.Is(err, eventstore.ErrStoreNotFound) {
		return nil, notFound(err, "--from")
	}
	return s, err
}

func runMigrate(ctx context.Context, e *env, cf commonFlags, f migrateFlags) (err error) {
	src, err := openSource(ctx, e, f.from)
	if err != nil {
		return err
	}
	defer src.Close()
	// A dry run opens an existing destination only, so that it creates
	// nothing; a missing one stands for an empty store.
	dst, err := openStore(ctx, e, "destination", f.to, f.dryRun)
	wouldCreate := f.dryRun && errors.Is(err, eventstore.ErrStoreNotFound)
	if wouldCreate {
		dst, err = eventstore.Open(ctx, "memory://")
	}
	if err != nil {
		return err
	}
	defer func() {
		// A failure to close may mean lost writes.
		if cerr := dst.Close(); cerr != nil && err == nil {
			err = &sideError{"destination", cerr}
		}
	}()

	switch {
	case f.dryRun && wouldCreate:
		fmt.Fprintf(e.stderr, "evs migrate: dry run from %s to %s, which does not exist: nothing will be written\n", displayURL(f.from), displayURL(f.to))
	case f.dryRun:
		fmt.Fprintf(e.stderr, "evs migrate: dry run from %s to %s: nothing will be written\n", displayURL(f.from), displayURL(f.to))
	case f.follow:
		fmt.Fprintf(e.stderr, "evs migrate: copying from %s to %s, then following (Ctrl-C to stop)\n", displayURL(f.from), displayURL(f.to))
	default:
		fmt.Fprintf(e.stderr, "evs migrate: copying from %s to %s (Ctrl-C stops it; running the command again continues)\n", displayURL(f.from), displayURL(f.to))
	}

	start := time.Now()
	// The total for the percentage and the ETA: one quick read of the log.
	total := 0
	for _, err := range src.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			if ctx.Err() != nil {
				return &exitError{exitInterrupted, "interrupted while counting the source's events; nothing was copied"}
			}
			return &sideError{"source", err}
		}
		total++
	}
	if total == 0 {
		fmt.Fprintf(e.stderr, "evs migrate: the source holds no events (is --from right?)\n")
	}

	p := newProgress(e.stderr, writesToTerminal(e.stderr), time.Now, total)
	stats, err := copyWithProgress(ctx, src, dst, p, migrate.Options{
		BatchSize: f.batch,
		Snapshots: f.snapshots,
		DryRun:    f.dryRun,
		Follow:    f.follow,
		Logger:    e.storeOptions().Logger,
	})
	elapsed := time.Since(start)
	res := migrateResult{
		From: displayURL(f.from), To: displayURL(f.to), DryRun: f.dryRun, WouldCreate: wouldCreate, Follow: f.follow,
		Total: total, Read: stats.Read, Copied: stats.Copied, Skipped: stats.Skipped,
		Appends: stats.Appends, Imports: stats.Imports, Streams: stats.Streams, Snapshots: stats.Snapshots,
		LastPosition: stats.Last.String(), Seconds: elapsed.Seconds(),
	}
	if stats.Live {
		res.Live = stats.Copied - p.liveFrom
	}
	// Once ctx is done (Ctrl-C), whatever error Copy returns comes from it:
	// drivers do not all wrap context.Canceled.
	stopped := err != nil && ctx.Err() != nil
	switch {
	case stopped && f.follow && stats.Live:
		// Ctrl-C is how a follow ends, once it has caught up.
		fmt.Fprintf(e.stderr, "evs migrate: stopped following\n")
	case stopped && f.dryRun:
		return &exitError{exitInterrupted, fmt.Sprintf("interrupted after checking %d of %d events; nothing was written", stats.Copied+stats.Skipped, total)}
	case stopped:
		return &exitError{exitInterrupted, fmt.Sprintf(
			"interrupted: %d events copied and %d already there, up to source position %s; each write is atomic, so the destination stopped at a batch boundary: run the same command again to continue",
			stats.Copied, stats.Skipped, stats.Last)}
	case err != nil:
		var conflict *migrate.ConflictError
		if errors.As(err, &conflict) {
			return fmt.Errorf("%w; nothing was overwritten (the destination holds events of its own: copy into an empty store, or remove them)", err)
		}
		return err
	}

	if f.verify {
		// After a follow ended by Ctrl-C, ctx is done; a second Ctrl-C
		// still kills the process (main restores the default handling).
		vctx := context.WithoutCancel(ctx)
		if !stopped {
			vctx = ctx
		}
		fmt.Fprintf(e.stderr, "evs migrate: verifying\n")
		r, err := migrate.Verify(vctx, migrate.From(src), migrate.To(dst))
		if err != nil && vctx.Err() != nil {
			return &exitError{exitInterrupted, "interrupted while verifying; the copy itself is complete"}
		}
		if err != nil {
			return err
		}
		res.Verify = newVerifyResult(r)
	}
	if err := res.print(e, cf.json); err != nil {
		return err
	}
	if res.Verify != nil && !res.Verify.Equal {
		return fmt.Errorf("verify: the stores differ: %s", res.Verify.Difference)
	}
	return nil
}

// runVerifyOnly compares two existing stores without copying: evs migrate
// --verify-only. It opens both with must_exist, so it creates nothing.
func runVerifyOnly(ctx context.Context, e *env, cf commonFlags, f migrateFlags) error {
	src, err := openSource(ctx, e, f.from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openStore(ctx, e, "destination", f.to, true)
	if errors.Is(err, eventstore.ErrStoreNotFound) {
		return notFound(err, "--to")
	}
	if err != nil {
		return err
	}
	defer dst.Close()
	fmt.Fprintf(e.stderr, "evs migrate: verifying %s against %s, copying nothing\n", displayURL(f.to), displayURL(f.from))
	start := time.Now()
	r, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
	if err != nil && ctx.Err() != nil {
		return &exitError{exitInterrupted, "interrupted while verifying; nothing was written"}
	}
	if err != nil {
		return err
	}
	res := verifyOnlyResult{From: displayURL(f.from), To: displayURL(f.to), Verify: newVerifyResult(r), Seconds: time.Since(start).Seconds()}
	if cf.json {
		if err := newJSONEncoder(e.stdout).Encode(res); err != nil {
			return err
		}
	} else if _, err := io.WriteString(e.stdout, res.Verify.text(false)); err != nil {
		return err
	}
	if !res.Verify.Equal {
		return fmt.Errorf("verify: the stores differ: %s", res.Verify.Difference)
	}
	return nil
}

// verifyOnlyResult is what evs migrate --verify-only prints with --json.
type verifyOnlyResult struct {
	From    string        `json:"from"` // without secrets
	To      string        `json:"to"`
	Verify  *verifyResult `json:"verify"`
	Seconds float64       `json:"seconds"`
}

// copyWithProgress runs migrate.Copy, showing its progress on p: on every
// report Copy makes and, between reports, on a ticker (so the rate and the
// ETA keep moving while Copy reads without writing).
func copyWithProgress(ctx context.Context, src, dst *eventstore.Store, p *progress, opts migrate.Options) (migrate.Stats, error) {
	tickCtx, stopTicker := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.tick()
			case <-tickCtx.Done():
				return
			}
		}
	})
	opts.Progress = p.update
	stats, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), opts)
	stopTicker()
	wg.Wait()
	p.finish()
	return stats, err
}

// migrateResult is what evs migrate prints at the end; with --json, as one
// object.
type migrateResult struct {
	From   string `json:"from"` // without secrets
	To     string `json:"to"`
	DryRun bool   `json:"dry_run"`
	// WouldCreate: a dry run found no destination; a copy would create it.
	WouldCreate bool `json:"would_create"`
	Follow      bool `json:"follow"`
	// Total is the number of source events counted before the copy.
	Total     int `json:"total"`
	Read      int `json:"read"`
	Copied    int `json:"copied"`  // with --dry-run: that a copy would append
	Skipped   int `json:"skipped"` // already in the destination, compared equal
	Appends   int `json:"appends"`
	Imports   int `json:"imports"` // writes that kept the recorded times
	Streams   int `json:"streams"`
	Snapshots int `json:"snapshots"`
	// Live counts the events copied after catching up, with --follow.
	Live         int           `json:"live"`
	LastPosition string        `json:"last_position"` // the source's
	Seconds      float64       `json:"seconds"`
	Verify       *verifyResult `json:"verify,omitempty"`
}

type verifyResult struct {
	Equal      bool   `json:"equal"`
	Streams    int    `json:"streams"` // in the source
	Events     int    `json:"events"`
	DigestFrom string `json:"digest_from"`
	DigestTo   string `json:"digest_to"`
	Difference string `json:"difference,omitempty"`
	// RecordedTimesEqual: equal, and every event's recorded time too.
	RecordedTimesEqual bool `json:"recorded_times_equal"`
	// TimeDifference is the first event whose recorded time differs, when
	// the stores are otherwise equal.
	TimeDifference string `json:"time_difference,omitempty"`
}

func newVerifyResult(r migrate.Report) *verifyResult {
	v := &verifyResult{Equal: r.Equal, Streams: r.Streams, Events: r.Events, DigestFrom: r.SourceDigest, DigestTo: r.DestinationDigest,
		RecordedTimesEqual: r.RecordedTimesEqual}
	if r.Difference != nil {
		v.Difference = r.Difference.String()
	}
	if r.TimeDifference != nil {
		v.TimeDifference = r.TimeDifference.String()
	}
	return v
}

// text is the verify part of the summary. appended says this run wrote
// events by appends, which get the destination's recorded times.
func (v *verifyResult) text(appended bool) string {
	if !v.Equal {
		return fmt.Sprintf("verify: different: %s\n", v.Difference)
	}
	s := fmt.Sprintf("verify: equal: %d streams, %d events, digest %s\n", v.Streams, v.Events, v.DigestFrom)
	switch {
	case v.RecordedTimesEqual:
		s += "verify: recorded times equal\n"
	case appended:
		s += "verify: recorded times differ: the destination cannot import, so the events appended got its own times; first: " + v.TimeDifference + "\n"
	default:
		s += "verify: recorded times differ, first: " + v.TimeDifference + "\n"
	}
	return s
}

// writes says how the events were written: imports keep the source's
// recorded times, appends (to a destination that cannot import) do not.
func (r migrateResult) writes() string {
	switch {
	case r.Imports > 0 && r.Appends > 0:
		return fmt.Sprintf(" in %d imports and %d appends", r.Imports, r.Appends)
	case r.Imports > 0:
		return fmt.Sprintf(" in %d imports (recorded times kept)", r.Imports)
	case r.Appends > 0:
		return fmt.Sprintf(" in %d appends (recorded times are the destination's)", r.Appends)
	}
	return ""
}

func (r migrateResult) print(e *env, asJSON bool) error {
	if asJSON {
		return newJSONEncoder(e.stdout).Encode(r)
	}
	var b strings.Builder
	rate := ""
	if r.Seconds > 0 {
		rate = fmt.Sprintf(", %.0f events/s", float64(r.Copied+r.Skipped)/r.Seconds)
	}
	took := time.Duration(r.Seconds * float64(time.Second)).Round(time.Millisecond)
	switch {
	case r.DryRun && r.WouldCreate:
		fmt.Fprintf(&b, "dry run: the destination does not exist: a copy would create it and copy %d events; %d streams, %d snapshots to copy; nothing was written (%s)\n",
			r.Copied, r.Streams, r.Snapshots, took)
	case r.DryRun:
		fmt.Fprintf(&b, "dry run: would copy %d events; %d already in the destination; %d streams, %d snapshots to copy; nothing was written (%s)\n",
			r.Copied, r.Skipped, r.Streams, r.Snapshots, took)
	default:
		fmt.Fprintf(&b, "copied %d events", r.Copied)
		if r.Follow {
			fmt.Fprintf(&b, " (%d of them live)", r.Live)
		}
		b.WriteString(r.writes())
		fmt.Fprintf(&b, "; %d already in the destination; %d streams, %d snapshots; up to source position %s (%s%s)\n",
			r.Skipped, r.Streams, r.Snapshots, r.LastPosition, took, rate)
	}
	if r.Verify != nil {
		b.WriteString(r.Verify.text(r.Appends > 0))
	}
	_, err := e.stdout.Write([]byte(b.String()))
	return err
}
