package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
)

// setupAppend: evs append STREAM --type T [--expected E] [--id UUID]
// [--binary] [--metadata JSON] [DATA | - | --data-file PATH], or
// evs append --records PATH [--expect STREAM=E]... (records.go).
func setupAppend(fs *flag.FlagSet) runFunc {
	var (
		eventType string
		expected  = expectedFlag{v: eventstore.Any}
		id        string
		binary    bool
		metadata  string
		dataFile  string
		records   string
		expect    listFlag
	)
	fs.StringVar(&eventType, "type", "", "event `TYPE` (required)")
	fs.Var(&expected, "expected", "expected version of the stream: any, no-stream, stream-exists or a number `N`")
	fs.StringVar(&id, "id", "", "event ID, a `UUID` (default: a new random one); retrying with the same ID is idempotent")
	fs.BoolVar(&binary, "binary", false, "store the data as binary bytes instead of JSON")
	fs.StringVar(&metadata, "metadata", "", "event metadata, a JSON `object`")
	fs.StringVar(&dataFile, "data-file", "", "read the data from `PATH`, or from standard input if PATH is -")
	fs.StringVar(&records, "records", "", "append the records of the JSON lines file `PATH` (- for standard input) to their streams atomically, instead of one event")
	fs.Var(&expect, "expect", "with --records: `STREAM=E`, the expected version E of STREAM (repeatable)")
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if records != "" {
			var single []string
			fs.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "type", "expected", "id", "binary", "metadata", "data-file":
					single = append(single, "--"+f.Name)
				}
			})
			switch {
			case len(args) > 0:
				return usagef("--records takes no STREAM or DATA argument: each record names its stream (got %q)", args[0])
			case len(single) > 0:
				return usagef("%s is for one event; with --records each record carries its own (--expect STREAM=E for expectations)", single[0])
			}
			return appendRecords(ctx, e, cf, records, expect)
		}
		if len(expect) > 0 {
			return usagef("--expect goes with --records; for one event use --expected")
		}
		if len(args) == 0 {
			return usagef("missing STREAM")
		}
		if len(args) > 2 {
			return usagef("unexpected argument %q (a DATA argument starting with - goes after --)", args[2])
		}
		if eventType == "" {
			return usagef("missing --type")
		}
		src := dataSource{file: dataFile}
		if len(args) == 2 {
			if dataFile != "" {
				return usagef("both a DATA argument and --data-file: give one")
			}
			if args[1] == "-" {
				src.file = "-"
			} else {
				src.arg, src.hasArg = args[1], true
			}
		}
		ev := eventstore.Event{ID: uuid.New(), Type: eventType, Metadata: []byte(metadata)}
		if id != "" {
			u, err := uuid.Parse(id)
			if err != nil {
				return usagef("invalid --id %q: want a UUID", id)
			}
			ev.ID = u
		}
		if binary {
			ev.ContentType = eventstore.Binary
		}
		stream := args[0]
		// Check before opening, so a typo creates no database file.
		if err := eventstore.ValidateStreamID(stream); err != nil {
			return fmt.Errorf("append %q: %w", stream, err)
		}
		data, err := src.read(ctx, e.stdin)
		if err != nil {
			return fmt.Errorf("append %q: %w", stream, err)
		}
		ev.Data = data
		return withStore(ctx, e, cf.url, func(s *eventstore.Store) error {
			res, err := s.Append(ctx, stream, expected.v, ev)
			if err != nil && ctx.Err() != nil {
				// The append may have committed before ctx ended.
				return &interruptedError{fmt.Sprintf(
					" before the append to %q was confirmed: it wrote the event or nothing; read the stream, or run the command again with --id %s (a retry with the same ID writes nothing twice)",
					stream, ev.ID)}
			}
			if err != nil {
				// The hint is for data that is not JSON, not for bad metadata.
				if errors.Is(err, eventstore.ErrInvalidPayload) && !binary && len(ev.Data) > 0 && !(utf8.Valid(ev.Data) && json.Valid(ev.Data)) {
					return fmt.Errorf("%w (evs: --binary stores any bytes)", err)
				}
				return err
			}
			if cf.json {
				return newJSONEncoder(e.stdout).Encode(struct {
					Stream   string `json:"stream"`
					Version  uint64 `json:"version"`
					Position string `json:"position"`
					ID       string `json:"id"`
				}{stream, res.Version, res.Position.String(), res.EventIDs[0].String()})
			}
			_, err = fmt.Fprintf(e.stdout, "appended %s to %s: version %d, position %s, id %s\n",
				quoteIfNeeded(eventType), quoteIfNeeded(stream), res.Version, res.Position, res.EventIDs[0])
			return err
		})
	}
}

// maxData bounds what append reads: the Store rejects larger events anyway.
const maxData = eventstore.DefaultMaxEventSize

// dataSource is where append takes the event data from: the DATA argument,
// a file, or standard input ("-" as DATA or as --data-file). Standard input
// is read only when asked for, so evs append in a shell loop that reads
// its own input ("while read line; do evs append …; done") leaves that
// input alone. No data at all is an event without data.
type dataSource struct {
	arg    string
	hasArg bool
	file   string // "-" is standard input
}

// read returns the data, at most maxData bytes. Its errors name the source:
// "stdin" or the file.
func (d dataSource) read(ctx context.Context, stdin io.Reader) ([]byte, error) {
	switch {
	case d.hasArg:
		return []byte(d.arg), nil
	case d.file == "":
		return nil, nil
	case d.file == "-":
		if stdin == nil {
			stdin = eofReader{}
		}
		return readLimited(ctx, stdin, "stdin")
	}
	f, err := os.Open(d.file)
	if err != nil {
		return nil, fmt.Errorf("read data: %w", err) // *PathError names the file
	}
	defer f.Close()
	return readLimited(ctx, f, fmt.Sprintf("file %q", d.file))
}

// readLimited reads r to its end, at most maxData bytes; name says what r
// is, in errors.
func readLimited(ctx context.Context, r io.Reader, name string) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	// A read from a terminal or a pipe cannot be cancelled: on Ctrl-C, give
	// up on it; the process is about to exit and takes the goroutine along.
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, maxData+1))
		done <- result{b, err}
	}()
	var res result
	select {
	case <-ctx.Done():
		return nil, &interruptedError{" while reading the data from " + name + "; nothing was written"}
	case res = <-done:
	}
	if res.err != nil {
		return nil, fmt.Errorf("read data from %s: %w", name, res.err)
	}
	if len(res.b) > maxData {
		return nil, fmt.Errorf("%w: data on %s is over the limit of %d bytes", eventstore.ErrEventTooLarge, name, maxData)
	}
	return res.b, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
