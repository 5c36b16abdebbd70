// Command evs inspects and feeds an event store from the shell.
//
//	evs init                                   open the store, creating its schema
//	evs append STREAM --type T [DATA|-]        append one event (stdin only with -)
//	evs append --records FILE                  append to several streams atomically
//	evs read STREAM [--from N] [--limit N]     print a stream's events
//	evs tail [--category C] [--type T]         follow the global log live
//	evs tail --backwards --limit N             print the last N events
//	evs stats                                  count events, streams and categories
//	evs version                                print the version
//	evs migrate --from URL --to URL [--verify] copy every event into another store
//	evs serve [--addr 127.0.0.1:8080]          serve the web console
//
// Every command but migrate (which takes --from and --to) takes --url
// (default $EVENTSTORE_URL, else sqlite:events.db), and every command takes
// --json, which prints one JSON object per line for scripts. read, tail,
// stats and serve open an existing store only: a mistyped URL fails and
// creates nothing. Data goes to stdout, diagnostics to stderr, and every control,
// bidi and zero-width character in either is escaped (escape.go). The exit
// status is 0 on success, 1 when the command failed, 2 when it was called
// wrongly and 130 when Ctrl-C or SIGTERM interrupted it. evs help and
// evs version print to stdout. docs/cli.md has the details and examples.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/redact"

	// The backends this binary can open, by URL scheme.
	_ "github.com/eventkit/eventstore/drivers/dynamodb"
	_ "github.com/eventkit/eventstore/drivers/kurrentdb"
	_ "github.com/eventkit/eventstore/drivers/memory"
	_ "github.com/eventkit/eventstore/drivers/postgres"
	_ "github.com/eventkit/eventstore/drivers/sqlite"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong
)

// defaultURL is the store used when neither --url nor $EVENTSTORE_URL is set.
const defaultURL = "sqlite:events.db"

// urlEnv names the environment variable that overrides defaultURL.
const urlEnv = "EVENTSTORE_URL"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process the usual way
	// in case shutting down hangs.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command reads from and writes to.
type env struct {
	stdin  io.Reader
	stdout io.Writer // data
	stderr io.Writer // diagnostics
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the name, for usage
	summary string
	// setup defines the command's own flags on fs and returns the function
	// that runs it once the flags are parsed, with the positional arguments.
	setup func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, e *env, cf commonFlags, args []string) error

// commands lists the subcommands in the order usage shows them.
var commands = []*command{
	{"init", "[--url URL] [--json]", "open the store, creating its schema, and report the backend", setupInit},
	{"append", "STREAM --type TYPE [flags] [DATA | - | --data-file PATH] | --records PATH [--expect STREAM=E]...", "append one event to a stream, or records to several streams atomically", setupAppend},
	{"read", "STREAM [--from N] [--limit N] [--backwards] [--json]", "print the events of a stream", setupRead},
	{"tail", "[--category C]... [--type T]... [--from POSITION|--from-end] [--limit N] [--backwards] [--no-follow] [--json]", "print the global log, then follow it live until interrupted", setupTail},
	{"delete-stream", "STREAM [--expected E] [--json]", "delete a stream: its events, snapshot and retention (docs/retention.md)", setupDeleteStream},
	{"truncate-stream", "STREAM --before N [--json]", "remove the events of a stream with a version below N", setupTruncateStream},
	{"apply-retention", "[--url URL] [--json]", "apply every stream's stored retention now (a periodic job for quiet streams)", setupApplyRetention},
	{"stats", "[--url URL] [--json]", "count events, streams and categories", setupStats},
	{"subscriptions", "[list | set NAME POSITION | delete NAME | group NAME | delete-group NAME] [--url URL] [--json]", "list the subscriptions' checkpoints and how far each is behind; move or delete one; show or reset a consumer group's leases", setupSubscriptions},
	{"serve", "[--addr HOST:PORT] [--allow-remote] [--token TOKEN] [--page-size N] [--url URL]", "serve the web console: browse streams and events, follow the log live, see subscriptions, scrape /metrics", setupServe},
	{"migrate", "--from URL --to URL [--verify] [--follow] [--batch N] [--dry-run] [--snapshots] [--json]", "copy every event of one store into another, resumably, with progress", setupMigrate},
}

// run runs the evs command line args (without the program name) and returns
// the exit status. It is main without the process: tests call it directly.
// Everything written to stdout and stderr goes through the terminal
// escaper (escape.go).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out, errOut := &termWriter{w: stdout}, &termWriter{w: stderr}
	defer errOut.flush()
	defer out.flush()
	return runCommand(ctx, args, &env{stdin: stdin, stdout: out, stderr: errOut})
}

func runCommand(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			usage(e.stdout)
			return exitOK
		}
		c := lookup(rest[0])
		if c == nil || len(rest) > 1 {
			if c == nil {
				fmt.Fprintf(e.stderr, "evs help: unknown command %q\n", rest[0])
			} else {
				fmt.Fprintf(e.stderr, "evs help: unexpected argument %q\n", rest[1])
			}
			usage(e.stderr)
			return exitUsage
		}
		fs := newFlagSet(c, new(commonFlags))
		c.setup(fs)
		printUsage(e.stdout, c, fs)
		return exitOK
	case "version", "-version", "--version":
		if len(rest) > 0 {
			fmt.Fprintf(e.stderr, "evs version: unexpected argument %q\n", rest[0])
			return exitUsage
		}
		fmt.Fprintln(e.stdout, versionLine())
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "evs: unknown command %q\n", name)
		usage(e.stderr)
		return exitUsage
	}
	var cf commonFlags
	fs := newFlagSet(c, &cf)
	exec := c.setup(fs)
	positional, err := parseArgs(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(e.stdout, c, fs)
		return exitOK
	}
	if err == nil {
		cf.url = resolveURL(cf.url)
		err = exec(ctx, e, cf, positional)
	}
	var (
		ue *usageError
		xe *exitError
		ie *interruptedError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "evs %s: %s\n", c.name, ue.msg)
		fmt.Fprintf(e.stderr, "run 'evs help %s' for usage\n", c.name)
		return exitUsage
	case errors.As(err, &xe):
		fmt.Fprintf(e.stderr, "evs %s: %s\n", c.name, xe.msg)
		return xe.code
	case errors.As(err, &ie):
		fmt.Fprintf(e.stderr, "evs %s: interrupted%s\n", c.name, ie.detail)
		return exitInterrupted
	case ctx.Err() != nil:
		// Ctrl-C or SIGTERM, at whatever stage: opening the store, reading,
		// following, appending. Once ctx is done, the error comes from it,
		// though not every driver wraps context.Canceled.
		fmt.Fprintf(e.stderr, "evs %s: interrupted\n", c.name)
		return exitInterrupted
	}
	fmt.Fprintf(e.stderr, "evs: %s\n", describe(c.name, err))
	return exitFailure
}

// interruptedError reports that ctx ended the command (Ctrl-C, SIGTERM):
// exit status 130, with detail added to the message "interrupted".
type interruptedError struct{ detail string }

func (e *interruptedError) Error() string { return "interrupted" + e.detail }

// versionLine is what evs version prints: the module version the binary was
// built from ("(devel)" for a build inside a checkout, then the VCS
// revision when Go recorded it) and the Go version.
func versionLine() string {
	v, rev, dirty := "(devel)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	line := "evs " + v
	if v == "(devel)" && rev != "" {
		line += " " + rev[:min(len(rev), 12)]
		if dirty {
			line += "+dirty"
		}
	}
	return line + " " + runtime.Version()
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "evs inspects and feeds an event store.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  evs %-7s %s\n", c.name, c.args)
	}
	fmt.Fprintf(w, "\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-7s %s\n", "version", "print the version of evs (also --version)")
	fmt.Fprintf(w, "\nEvery command takes --json, and all but migrate (--from, --to) take --url (default $%s, else %s).\n", urlEnv, defaultURL)
	fmt.Fprintf(w, "Backends: %s. Run 'evs help COMMAND' for a command's flags.\n", strings.Join(eventstore.Schemes(), ", "))
	fmt.Fprintf(w, "Exit status: 0 success, 1 failure, 2 wrong command line, 130 interrupted (Ctrl-C, SIGTERM).\n")
}

// usageError reports a wrong command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// describe turns an error of command cmd into the message evs prints. The
// Store's errors already name the operation and the stream; a wrong expected
// version of append and a store that does not exist get a hint of what to
// do.
func describe(cmd string, err error) string {
	var wrong *eventstore.WrongExpectedVersionError
	var conflict *eventstore.AppendConflictError
	if cmd == "append" && !errors.As(err, &conflict) && errors.As(err, &wrong) {
		return fmt.Sprintf("append %q: wrong expected version: want %s, have %d (read the stream for its current version, or use --expected any)",
			wrong.Stream, wrong.Expected, wrong.Actual)
	}
	msg := strings.TrimPrefix(err.Error(), "eventstore: ")
	if errors.Is(err, eventstore.ErrStoreNotFound) {
		msg += " (" + cmd + " only reads: check --url, or create the store with evs init or evs append)"
	}
	return msg
}

// commonFlags are the flags every command takes.
type commonFlags struct {
	url  string
	json bool
}

// newFlagSet returns the flag set of c with the common flags bound to cf.
// It prints nothing while parsing: run reports errors in its own words.
func newFlagSet(c *command, cf *commonFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("evs "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	// No default value here: the usage text would print it, and a URL from
	// the environment may hold a password. resolveURL fills it in.
	fs.StringVar(&cf.url, "url", "", "event store `URL` (default $"+urlEnv+", else "+defaultURL+")")
	fs.BoolVar(&cf.json, "json", false, "print one JSON object per line")
	return fs
}

// printUsage prints the usage of c, whose flags fs defines.
func printUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: evs %s %s\n\n%s.\n\nFlags:\n", c.name, c.args, upperFirst(c.summary))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// resolveURL returns the store URL: the --url flag, else $EVENTSTORE_URL,
// else defaultURL.
func resolveURL(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if u := os.Getenv(urlEnv); u != "" {
		return u
	}
	return defaultURL
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseArgs parses fs over args and returns the positional arguments. Flags
// may come before, between or after them ("read Order-42 --limit 5" and
// "read --limit 5 Order-42" are the same); "--" ends the flags, so a DATA
// argument that starts with "-" goes after it.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		// The flag package stops at "--" (consuming it) or at the first
		// argument that is not a flag.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// withExistingStore is withStore for a command that only reads: the store
// must exist (eventstore.ErrStoreNotFound otherwise) and nothing is created.
func withExistingStore(ctx context.Context, e *env, rawURL string, f func(*eventstore.Store) error) error {
	return withStore(ctx, e, existingURL(rawURL), f)
}

// withStore opens the store, creating it if needed, calls f and closes the
// store, reporting a failure to close (which may mean lost writes) unless f
// failed first.
func withStore(ctx context.Context, e *env, rawURL string, f func(*eventstore.Store) error) (err error) {
	s, err := eventstore.OpenWith(ctx, rawURL, e.storeOptions()) // its errors hold no password
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return f(s)
}

// storeOptions are the options of the stores evs opens: their warnings
// (a subscription retrying after a lost connection, a client rebuilt) go to
// stderr.
func (e *env) storeOptions() eventstore.Options {
	return eventstore.Options{Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
}

// backend returns the lower-case scheme of a store URL, naming its driver.
func backend(rawURL string) string {
	scheme, _, _ := strings.Cut(rawURL, ":")
	return strings.ToLower(scheme)
}

// displayURL is the URL as evs prints it: without secrets. It is the URL as
// given when there is nothing to mask.
func displayURL(rawURL string) string {
	masked := redact.URL(rawURL)
	if u, err := url.Parse(rawURL); err == nil && u.String() == masked {
		return rawURL
	}
	return masked
}

// existingURL returns rawURL with must_exist=true added to its query, so
// that opening it fails with eventstore.ErrStoreNotFound instead of creating
// a store. Commands that only read use it. A URL that already sets the
// parameter, or that does not parse, is returned unchanged.
func existingURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil || q.Has(eventstore.MustExistParam) {
		return rawURL
	}
	sep := "?"
	if u.RawQuery != "" || u.ForceQuery {
		sep = "&"
		if strings.HasSuffix(rawURL, "?") || strings.HasSuffix(rawURL, "&") {
			sep = ""
		}
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return rawURL // a fragment is an error every driver reports
	}
	return rawURL + sep + eventstore.MustExistParam + "=true"
}
