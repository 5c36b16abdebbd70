package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/eventkit/eventstore"
)

// jsonEvent is the --json form of an event: one object per line.
type jsonEvent struct {
	Stream      string `json:"stream"`
	Version     uint64 `json:"version"`
	Position    string `json:"position"` // the checkpoint form, "COMMIT/PREPARE"
	ID          string `json:"id"`
	Type        string `json:"type"`
	ContentType string `json:"content_type"` // "json" or "binary"
	// Data is the JSON value itself for JSON events, a base64 string for
	// binary ones, and null when the event has no data.
	Data any `json:"data"`
	// Metadata is the metadata object (or, as an import may keep it,
	// another JSON value), or null when there is none or it is binary.
	Metadata json.RawMessage `json:"metadata"`
	// MetadataBase64 is binary metadata (an import's), in base64; absent
	// otherwise.
	MetadataBase64 string `json:"metadata_base64,omitempty"`
	RecordedAt     string `json:"recorded_at"` // recordedAtLayout
	// Tags are the event's tags in order; absent when it has none.
	Tags []string `json:"tags,omitempty"`
}

// recordedAtLayout is how evs prints recorded times, in text and JSON: RFC
// 3339 in UTC with exactly six fractional digits (microseconds, the
// precision every backend keeps), so every time has the same width and
// sorting the text sorts by time.
const recordedAtLayout = "2006-01-02T15:04:05.000000Z07:00"

func toJSONEvent(ev eventstore.RecordedEvent) jsonEvent {
	j := jsonEvent{
		Stream:      ev.StreamID,
		Version:     ev.Version,
		Position:    ev.Position.String(),
		ID:          ev.ID.String(),
		Type:        ev.Type,
		ContentType: ev.ContentType.String(),
		RecordedAt:  ev.RecordedAt.UTC().Format(recordedAtLayout),
		Tags:        ev.Tags,
	}
	switch {
	case len(ev.Data) == 0:
		j.Data = nil
	case ev.ContentType == eventstore.JSON && json.Valid(ev.Data):
		j.Data = json.RawMessage(ev.Data)
	default:
		j.Data = base64.StdEncoding.EncodeToString(ev.Data)
	}
	switch {
	case len(ev.Metadata) == 0:
	case ev.MetadataContentType == eventstore.JSON && json.Valid(ev.Metadata):
		j.Metadata = json.RawMessage(ev.Metadata)
	default:
		j.MetadataBase64 = base64.StdEncoding.EncodeToString(ev.Metadata)
	}
	return j
}

// newJSONEncoder returns an encoder writing one compact object per line,
// leaving <, > and & as they are, with every rune that could drive a
// terminal escaped (appendEscapedJSON).
func newJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(&jsonWriter{w: w})
	enc.SetEscapeHTML(false)
	return enc
}

// eventPrinter prints events in the readable or the --json form.
type eventPrinter struct {
	w    io.Writer
	json bool
	enc  *json.Encoder
	buf  []byte
}

func newEventPrinter(w io.Writer, asJSON bool) *eventPrinter {
	p := &eventPrinter{w: w, json: asJSON}
	if asJSON {
		p.enc = newJSONEncoder(w)
	}
	return p
}

// print writes ev as one line, in a single Write.
func (p *eventPrinter) print(ev eventstore.RecordedEvent) error {
	if p.json {
		return p.enc.Encode(toJSONEvent(ev))
	}
	p.buf = appendReadable(p.buf[:0], ev)
	_, err := p.w.Write(p.buf)
	return err
}

// appendReadable appends the readable form of ev and a newline:
//
//	POSITION  STREAM@VERSION  TYPE  RECORDED_AT  DATA  [meta=METADATA]  [tags=TAGS]
//
// JSON data is printed compactly, binary data as base64: with a "base64:"
// prefix. Names with spaces or quotes are quoted.
func appendReadable(b []byte, ev eventstore.RecordedEvent) []byte {
	b = append(b, ev.Position.String()...)
	b = append(b, "  "...)
	b = append(b, quoteIfNeeded(ev.StreamID)...)
	b = append(b, '@')
	b = strconv.AppendUint(b, ev.Version, 10)
	b = append(b, "  "...)
	b = append(b, quoteIfNeeded(ev.Type)...)
	b = append(b, "  "...)
	b = ev.RecordedAt.UTC().AppendFormat(b, recordedAtLayout)
	b = append(b, "  "...)
	b = appendData(b, ev.ContentType, ev.Data)
	if len(ev.Metadata) > 0 {
		b = append(b, "  meta="...)
		b = appendData(b, ev.MetadataContentType, ev.Metadata)
	}
	if len(ev.Tags) > 0 {
		tags, _ := json.Marshal(ev.Tags)
		b = append(b, "  tags="...)
		b = append(b, tags...)
	}
	return append(b, '\n')
}

func appendData(b []byte, ct eventstore.ContentType, data []byte) []byte {
	switch {
	case len(data) == 0:
		return append(b, "(empty)"...)
	case ct == eventstore.JSON && json.Valid(data):
		// Compact keeps key order and drops only insignificant whitespace,
		// so the event stays on one line. JSON strings hold no raw C0
		// controls; the other unsafe runes they may hold are escaped on
		// the way out (termWriter), as \uXXXX, which keeps the JSON valid.
		var c bytes.Buffer
		if err := json.Compact(&c, data); err != nil {
			return append(b, "(invalid JSON)"...)
		}
		return append(b, c.Bytes()...)
	default:
		b = append(b, "base64:"...)
		return base64.StdEncoding.AppendEncode(b, data)
	}
}

// quoteIfNeeded quotes s when it holds characters that would make the
// readable line ambiguous: spaces, quotes, backslashes, bytes that are not
// UTF-8 and the runes a terminal must not get (unsafeRune), which the
// quotes escape.
func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, " \t\"'`\\") || strings.ContainsRune(s, '\u00a0') || !utf8.ValidString(s) ||
		strings.ContainsFunc(s, unsafeRune) {
		return strconv.Quote(s)
	}
	return s
}

// plural returns "1 event", "2 events", "0 events": n and the noun in the
// form n takes.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
