package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
)

// evs append --records PATH [--expect STREAM=E]... appends the records of a
// JSON lines file to several streams in one atomic call
// (eventstore.Store.AppendMulti). docs/cli.md describes the format:
//
//	{"expect": {"Account-a": 1, "Account-b": "no-stream"}}
//	{"condition": {"query": [{"types": ["T"], "tags": ["x:1"]}], "after": "12/0"}}
//	{"stream": "Account-a", "type": "Debited", "data": {"amount": 30}, "tags": ["transfer:t1"]}
//	{"stream": "Account-b", "type": "Credited", "data": {"amount": 30}, "id": "…", "metadata": {}}
//
// Header lines (expect, condition) come before the first record, each at
// most once. Blank lines are skipped.

// Bounds on a records file, so that hostile input fails early and clearly.
const (
	maxRecords    = 10_000
	maxRecordLine = 8 << 20  // bytes in one line: 1 MiB of data, escaped
	maxRecordsIn  = 64 << 20 // bytes in the whole input
)

// recordLine is one line of a records file: a record, or a header.
type recordLine struct {
	Stream     *string          `json:"stream"`
	Type       string           `json:"type"`
	ID         string           `json:"id"`
	Data       json.RawMessage  `json:"data"`
	DataBase64 *string          `json:"data_base64"`
	Metadata   json.RawMessage  `json:"metadata"`
	Tags       []string         `json:"tags"`
	Expect     *json.RawMessage `json:"expect"`
	Condition  *conditionLine   `json:"condition"`
}

// conditionLine is the condition header: a query (a list of items; empty:
// every event) and the position after which a match fails the append.
type conditionLine struct {
	Query *[]struct {
		Types []string `json:"types"`
		Tags  []string `json:"tags"`
	} `json:"query"`
	After string `json:"after"`
}

// recordsRequest is what a records file and the --expect flags ask for.
type recordsRequest struct {
	append eventstore.MultiAppend
	lines  []int // the line of each record
	ids    bool  // every record named its event ID
}

// readRecords reads a records file from r (name says what r is, in errors)
// and adds the expectations of flags ("STREAM=E").
func readRecords(ctx context.Context, r io.Reader, name string, flags []string) (recordsRequest, error) {
	type result struct {
		req recordsRequest
		err error
	}
	// A read from a terminal or a pipe cannot be cancelled: on Ctrl-C, give
	// up on it; the process is about to exit and takes the goroutine along.
	done := make(chan result, 1)
	go func() {
		req, err := parseRecords(r, name)
		done <- result{req, err}
	}()
	var res result
	select {
	case <-ctx.Done():
		return recordsRequest{}, &interruptedError{" while reading the records from " + name + "; nothing was written"}
	case res = <-done:
	}
	if res.err != nil {
		return recordsRequest{}, res.err
	}
	req := res.req
	for _, f := range flags {
		stream, e, ok := strings.Cut(f, "=")
		if !ok || stream == "" {
			return recordsRequest{}, usagef("invalid --expect %q: want STREAM=E, E one of any, no-stream, stream-exists or a version number", f)
		}
		var exp expectedFlag
		if err := exp.Set(e); err != nil {
			return recordsRequest{}, usagef("invalid --expect %q: %v", f, err)
		}
		if err := addExpectation(&req.append, stream, exp.v); err != nil {
			return recordsRequest{}, usagef("--expect %q: %v", f, err)
		}
	}
	return req, nil
}

func addExpectation(a *eventstore.MultiAppend, stream string, e eventstore.ExpectedVersion) error {
	for _, x := range a.Expect {
		if x.Stream == stream {
			return fmt.Errorf("a second expectation for stream %q", stream)
		}
	}
	a.Expect = append(a.Expect, eventstore.StreamExpectation{Stream: stream, Expected: e})
	return nil
}

// parseRecords parses a records file. Its errors name the line.
func parseRecords(r io.Reader, name string) (recordsRequest, error) {
	req := recordsRequest{ids: true}
	br := bufio.NewReaderSize(io.LimitReader(r, maxRecordsIn+1), 64<<10)
	total := 0
	headers := map[string]bool{}
	for n := 1; ; n++ {
		line, err := readLine(br, maxRecordLine)
		total += len(line)
		if total > maxRecordsIn {
			return recordsRequest{}, fmt.Errorf("%s: over the limit of %d bytes of records", name, maxRecordsIn)
		}
		if errors.Is(err, errLineTooLong) {
			return recordsRequest{}, fmt.Errorf("%s line %d: over the limit of %d bytes per line", name, n, maxRecordLine)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return recordsRequest{}, fmt.Errorf("read records from %s: %w", name, err)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if perr := req.parseLine(line, headers); perr != nil {
				return recordsRequest{}, fmt.Errorf("%s line %d: %w", name, n, perr)
			}
			if len(req.lines) < len(req.append.Records) {
				req.lines = append(req.lines, n)
			}
			if len(req.append.Records) > maxRecords {
				return recordsRequest{}, fmt.Errorf("%s line %d: over the limit of %d records", name, n, maxRecords)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if len(req.append.Records) == 0 {
		return recordsRequest{}, fmt.Errorf("%s: no records (a record is a line with \"stream\" and \"type\")", name)
	}
	return req, nil
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line of br without its end, at most limit
// bytes; at the end of the input it returns what is left with io.EOF.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > limit+1 {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), err
	}
}

// parseLine adds the record or the header of one non-blank line.
func (req *recordsRequest) parseLine(line []byte, headers map[string]bool) error {
	if !utf8.Valid(line) {
		return errors.New("not valid UTF-8")
	}
	if err := uniqueKeys(line); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var l recordLine
	if err := dec.Decode(&l); err != nil {
		return fmt.Errorf("not a JSON object of a record or a header: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value on the line")
	}
	isRecord := l.Stream != nil || l.Type != "" || l.ID != "" || l.Data != nil || l.DataBase64 != nil || l.Metadata != nil || l.Tags != nil
	switch {
	case isRecord && (l.Expect != nil || l.Condition != nil):
		return errors.New("a record line cannot also hold \"expect\" or \"condition\": put headers on lines of their own")
	case l.Expect != nil && l.Condition != nil:
		return errors.New("\"expect\" and \"condition\" go on lines of their own")
	case l.Expect != nil:
		return req.parseExpect(*l.Expect, headers)
	case l.Condition != nil:
		return req.parseCondition(l.Condition, headers)
	case !isRecord:
		return errors.New(`an empty object: want a record ("stream", "type", …) or a header ("expect", "condition")`)
	}
	return req.parseRecord(l)
}

// uniqueKeys fails for an object with a repeated key, which encoding/json
// would otherwise resolve silently in favour of the last.
func uniqueKeys(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil // not an object: Decode says so
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("key %q repeats", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

func (req *recordsRequest) header(kind string, headers map[string]bool) error {
	if len(req.append.Records) > 0 {
		return fmt.Errorf("the %q header comes after a record: headers go first", kind)
	}
	if headers[kind] {
		return fmt.Errorf("a second %q header", kind)
	}
	headers[kind] = true
	return nil
}

func (req *recordsRequest) parseExpect(raw json.RawMessage, headers map[string]bool) error {
	if err := req.header("expect", headers); err != nil {
		return err
	}
	if err := uniqueKeys(raw); err != nil {
		return fmt.Errorf("\"expect\": %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("\"expect\" is not an object of stream IDs and expected versions: %w", err)
	}
	// The object's order, for messages and the request.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.Token()
	for dec.More() {
		t, _ := dec.Token()
		stream, _ := t.(string)
		var skip json.RawMessage
		dec.Decode(&skip)
		e, err := parseExpected(m[stream])
		if err != nil {
			return fmt.Errorf("\"expect\" of %q: %w", stream, err)
		}
		if err := eventstore.ValidateStreamID(stream); err != nil {
			return fmt.Errorf("\"expect\": %w", err)
		}
		if err := addExpectation(&req.append, stream, e); err != nil {
			return fmt.Errorf("\"expect\": %w", err)
		}
	}
	return nil
}

// parseExpected reads an expected version: a version number, or one of
// "any", "no-stream", "stream-exists" or a version number as a string.
func parseExpected(raw json.RawMessage) (eventstore.ExpectedVersion, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
		if _, err := strconv.ParseUint(s, 10, 64); err != nil {
			return eventstore.Any, fmt.Errorf("%s: want a version number or one of \"any\", \"no-stream\", \"stream-exists\"", raw)
		}
	}
	var f expectedFlag
	if err := f.Set(s); err != nil {
		return eventstore.Any, fmt.Errorf("%s: %v", raw, err)
	}
	return f.v, nil
}

func (req *recordsRequest) parseCondition(c *conditionLine, headers map[string]bool) error {
	if err := req.header("condition", headers); err != nil {
		return err
	}
	if c.Query == nil {
		return errors.New(`"condition" needs a "query": a list of items {"types": [...], "tags": [...]} ([] for every event)`)
	}
	cond := &eventstore.AppendCondition{}
	for i, it := range *c.Query {
		if len(it.Types) == 0 && len(it.Tags) == 0 {
			return fmt.Errorf(`"condition" query item %d has neither "types" nor "tags"`, i)
		}
		cond.FailIfEventsMatch.Items = append(cond.FailIfEventsMatch.Items, eventstore.QueryItem{Types: it.Types, Tags: it.Tags})
	}
	if c.After != "" {
		p, err := eventstore.ParsePosition(c.After)
		if err != nil {
			return fmt.Errorf(`"condition" "after" %q: want a position such as 42/0, as printed by read, tail and append`, c.After)
		}
		cond.After = p
	}
	req.append.Condition = cond
	return nil
}

func (req *recordsRequest) parseRecord(l recordLine) error {
	if l.Stream == nil || *l.Stream == "" {
		return errors.New(`a record needs a "stream"`)
	}
	if err := eventstore.ValidateStreamID(*l.Stream); err != nil {
		return err
	}
	if l.Type == "" {
		return fmt.Errorf(`the record for %q needs a "type"`, *l.Stream)
	}
	if err := eventstore.ValidateEventType(l.Type); err != nil {
		return err
	}
	for _, t := range l.Tags {
		if err := eventstore.ValidateTag(t); err != nil {
			return err
		}
	}
	ev := eventstore.Event{ID: uuid.New(), Type: l.Type, Tags: l.Tags}
	if l.ID != "" {
		u, err := uuid.Parse(l.ID)
		if err != nil {
			return fmt.Errorf(`"id" %q is not a UUID`, l.ID)
		}
		ev.ID = u
	} else {
		req.ids = false
	}
	switch {
	case l.DataBase64 != nil && l.Data != nil:
		return errors.New(`both "data" and "data_base64": give one`)
	case l.DataBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*l.DataBase64)
		if err != nil {
			return fmt.Errorf(`"data_base64" is not standard base64: %w`, err)
		}
		ev.ContentType, ev.Data = eventstore.Binary, b
	case l.Data != nil && string(l.Data) != "null":
		ev.Data = []byte(l.Data)
	}
	if l.Metadata != nil && string(l.Metadata) != "null" {
		if l.Metadata[0] != '{' {
			return errors.New(`"metadata" is not a JSON object`)
		}
		ev.Metadata = []byte(l.Metadata)
	}
	req.append.Records = append(req.append.Records, eventstore.Record{Stream: *l.Stream, Event: ev})
	return nil
}

// appendRecords runs evs append --records.
func appendRecords(ctx context.Context, e *env, cf commonFlags, path string, expect []string) error {
	name, in := "stdin", e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("read records: %w", err) // *PathError names the file
		}
		defer f.Close()
		name, in = fmt.Sprintf("file %q", path), f
	} else if in == nil {
		in = eofReader{}
	}
	req, err := readRecords(ctx, in, name, expect)
	if err != nil {
		return err
	}
	a := req.append
	return withStore(ctx, e, cf.url, func(s *eventstore.Store) error {
		res, err := s.AppendMulti(ctx, a)
		if err != nil && ctx.Err() != nil {
			hint := "give every record an \"id\" to make a retry safe"
			if req.ids {
				hint = "run the command again (a retry with the same IDs writes nothing twice)"
			}
			return &interruptedError{fmt.Sprintf(" before the append of %d records was confirmed: it wrote all of them or none; read the streams, or %s", len(a.Records), hint)}
		}
		if err != nil {
			var ce *eventstore.AppendConflictError
			if errors.As(err, &ce) {
				return fmt.Errorf("%w (nothing was written; read the streams for their current versions and decide again)", err)
			}
			return err
		}
		// Each record's version: its stream's final version less the
		// stream's records after it.
		versions := make([]uint64, len(a.Records))
		left := map[string]uint64{}
		for i := len(a.Records) - 1; i >= 0; i-- {
			r := a.Records[i]
			versions[i] = res.Versions[r.Stream] - left[r.Stream]
			left[r.Stream]++
		}
		if cf.json {
			type jsonRecord struct {
				Stream  string `json:"stream"`
				Version uint64 `json:"version"`
				ID      string `json:"id"`
			}
			out := struct {
				Position string       `json:"position"`
				Events   []jsonRecord `json:"events"`
			}{Position: res.Position.String()}
			for i, r := range a.Records {
				out.Events = append(out.Events, jsonRecord{r.Stream, versions[i], res.EventIDs[i].String()})
			}
			return newJSONEncoder(e.stdout).Encode(out)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "appended %s to %s atomically, position %s\n", plural(len(a.Records), "event", "events"), plural(len(left), "stream", "streams"), res.Position)
		for i, r := range a.Records {
			fmt.Fprintf(&b, "  %s to %s: version %d, id %s\n", quoteIfNeeded(r.Event.Type), quoteIfNeeded(r.Stream), versions[i], res.EventIDs[i])
		}
		_, err = io.WriteString(e.stdout, b.String())
		return err
	})
}
