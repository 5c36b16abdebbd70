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
// [--binary] [--metadata JSON] [DATA|-].
func setupAppend(fs *flag.FlagSet) runFunc {
	var (
		eventType string
		expected  = expectedFlag{v: eventstore.Any}
		id        string
		binary    bool
		metadata  string
	)
	fs.StringVar(&eventType, "type", "", "event `TYPE` (required)")
	fs.Var(&expected, "expected", "expected version of the stream: any, no-stream, stream-exists or a number `N`")
	fs.StringVar(&id, "id", "", "event ID, a `UUID` (default: a new random one); retrying with the same ID is idempotent")
	fs.BoolVar(&binary, "binary", false, "store DATA as binary bytes instead of JSON")
	fs.StringVar(&metadata, "metadata", "", "event metadata, a JSON `object`")
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) == 0 {
			return usagef("missing STREAM")
		}
		if len(args) > 2 {
			return usagef("unexpected argument %q (a DATA argument starting with - goes after --)", args[2])
		}
		if eventType == "" {
			return usagef("missing --type")
		}
		ev := eventstore.Event{Type: eventType, Metadata: []byte(metadata)}
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
		data, err := readData(ctx, args[1:], e.stdin)
		if err != nil {
			return fmt.Errorf("append %q: %w", stream, err)
		}
		ev.Data = data
		return withStore(ctx, cf.url, func(s *eventstore.Store) error {
			res, err := s.Append(ctx, stream, expected.v, ev)
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

// readData returns the event data: the DATA argument, or standard input when
// it is "-" or absent. Without an argument an interactive terminal is not
// read (the event has no data), so a forgotten argument does not hang.
func readData(ctx context.Context, args []string, stdin io.Reader) ([]byte, error) {
	if len(args) == 1 && args[0] != "-" {
		return []byte(args[0]), nil
	}
	if stdin == nil || (len(args) == 0 && isTerminal(stdin)) {
		return nil, nil
	}
	type result struct {
		b   []byte
		err error
	}
	// A read from a terminal or a pipe cannot be cancelled: on Ctrl-C, give
	// up on it; the process is about to exit and takes the goroutine along.
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(stdin, maxData+1))
		done <- result{b, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r = <-done:
	}
	if r.err != nil {
		return nil, fmt.Errorf("read data from stdin: %w", r.err)
	}
	if len(r.b) > maxData {
		return nil, fmt.Errorf("%w: data on stdin is over the limit of %d bytes", eventstore.ErrEventTooLarge, maxData)
	}
	return r.b, nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
