// Command evs inspects and feeds an event store from the shell.
//
//	evs init                                   open the store, creating its schema
//	evs append STREAM --type T [DATA|-]        append one event
//	evs read STREAM [--from N] [--limit N]     print a stream's events
//	evs tail [--category C] [--type T]         follow the global log live
//	evs stats                                  count events, streams and categories
//	evs migrate --from URL --to URL [--verify] copy every event into another store
//
// Every command but migrate (which takes --from and --to) takes --url
// (default $EVENTSTORE_URL, else sqlite:events.db), and every command takes
// --json, which prints one JSON object per line for scripts. Data goes to
// stdout and diagnostics to stderr. The exit status is 0 on success, 1 when
// the command failed and 2 when it was called wrongly (130 when Ctrl-C
// interrupted a migrate that had not finished). docs/cli.md has the
// details and examples.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
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
	{"append", "STREAM --type TYPE [flags] [DATA|-]", "append one event to a stream", setupAppend},
	{"read", "STREAM [--from N] [--limit N] [--backwards] [--json]", "print the events of a stream", setupRead},
	{"tail", "[--category C]... [--type T]... [--from POSITION|--from-end] [--no-follow] [--json]", "print the global log, then follow it live until interrupted", setupTail},
	{"stats", "[--url URL] [--json]", "count events, streams and categories", setupStats},
	{"migrate", "--from URL --to URL [--verify] [--follow] [--batch N] [--dry-run] [--snapshots] [--json]", "copy every event of one store into another, resumably, with progress", setupMigrate},
}

// run runs the evs command line args (without the program name) and returns
// the exit status. It is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			usage(stderr)
			return exitOK
		}
		c := lookup(rest[0])
		if c == nil {
			fmt.Fprintf(stderr, "evs help: unknown command %q\n", rest[0])
			usage(stderr)
			return exitUsage
		}
		fs := newFlagSet(c, new(commonFlags))
		c.setup(fs)
		printUsage(stderr, c, fs)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "evs: unknown command %q\n", name)
		usage(stderr)
		return exitUsage
	}
	var cf commonFlags
	fs := newFlagSet(c, &cf)
	exec := c.setup(fs)
	positional, err := parseArgs(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stderr, c, fs)
		return exitOK
	}
	if err == nil {
		cf.url = resolveURL(cf.url)
		err = exec(ctx, e, cf, positional)
	}
	var (
		ue *usageError
		xe *exitError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "evs %s: %s\n", c.name, ue.msg)
		fmt.Fprintf(stderr, "run 'evs help %s' for usage\n", c.name)
		return exitUsage
	case errors.As(err, &xe):
		fmt.Fprintf(stderr, "evs %s: %s\n", c.name, xe.msg)
		return xe.code
	}
	fmt.Fprintf(stderr, "evs: %s\n", describe(c.name, err))
	return exitFailure
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
	fmt.Fprintf(w, "\nEvery command takes --json, and all but migrate (--from, --to) take --url (default $%s, else %s).\n", urlEnv, defaultURL)
	fmt.Fprintf(w, "Backends: %s. Run 'evs help COMMAND' for a command's flags.\n", strings.Join(eventstore.Schemes(), ", "))
}

// usageError reports a wrong command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// describe turns an error of command cmd into the message evs prints. The
// Store's errors already name the operation and the stream; a wrong expected
// version of append gets a message of its own that says what to do.
func describe(cmd string, err error) string {
	var wrong *eventstore.WrongExpectedVersionError
	if cmd == "append" && errors.As(err, &wrong) {
		return fmt.Sprintf("append %q: wrong expected version: want %s, have %d (read the stream for its current version, or use --expected any)",
			wrong.Stream, wrong.Expected, wrong.Actual)
	}
	return strings.TrimPrefix(err.Error(), "eventstore: ")
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

// withStore opens the store, calls f and closes the store, reporting a
// failure to close (which may mean lost writes) unless f failed first.
func withStore(ctx context.Context, rawURL string, f func(*eventstore.Store) error) (err error) {
	s, err := eventstore.Open(ctx, rawURL) // its errors hold no password
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
