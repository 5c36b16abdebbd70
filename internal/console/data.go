package console

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventstore"
)

// maxHexBytes is how much of a binary event the event page dumps.
const maxHexBytes = 64 << 10

// previewRunes is how much of an event's data a row of a list shows.
const previewRunes = 120

// timeLayout is how pages show recorded times (as evs prints them).
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// showData returns an event's data as the event page shows it: JSON
// pretty-printed, anything else as a hex dump (the first maxHexBytes), and
// a note saying which.
func showData(ev eventstore.RecordedEvent) (text, note string) {
	switch {
	case len(ev.Data) == 0:
		return "", "no data"
	case ev.ContentType == eventstore.JSON && json.Valid(ev.Data):
		return prettyJSON(ev.Data), ""
	}
	note = fmt.Sprintf("%d bytes, as hex", len(ev.Data))
	if ev.ContentType == eventstore.JSON {
		note = fmt.Sprintf("%d bytes of invalid JSON, as hex", len(ev.Data))
	}
	data := ev.Data
	if len(data) > maxHexBytes {
		data = data[:maxHexBytes]
		note += fmt.Sprintf(", the first %d", maxHexBytes)
	}
	return hex.Dump(data), note
}

// prettyJSON indents a JSON value; anything else is returned as it is.
func prettyJSON(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return string(b)
	}
	return buf.String()
}

// preview is the start of an event's data for a row: compact JSON text, or
// the size of binary data.
func preview(ev eventstore.RecordedEvent) string {
	if len(ev.Data) == 0 {
		return ""
	}
	if ev.ContentType != eventstore.JSON || !utf8.Valid(ev.Data) {
		return fmt.Sprintf("(%d bytes binary)", len(ev.Data))
	}
	s := string(ev.Data)
	if utf8.RuneCountInString(s) > previewRunes {
		r := []rune(s)
		s = string(r[:previewRunes]) + "…"
	}
	return s
}

// eventLink is the URL of an event's page.
func eventLink(stream string, version uint64) string {
	return "/event?" + url.Values{"stream": {stream}, "version": {strconv.FormatUint(version, 10)}}.Encode()
}

// streamLink is the URL of a stream's page.
func streamLink(stream string) string { return "/stream?" + url.Values{"id": {stream}}.Encode() }

// funcs are the template functions.
var funcs = template.FuncMap{
	"eventLink":  eventLink,
	"streamLink": streamLink,
	"streamOrder": func(stream, order string) string {
		return "/stream?" + url.Values{"id": {stream}, "order": {order}}.Encode()
	},
	"preview": preview,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(timeLayout)
	},
	"age": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return time.Since(t).Round(time.Second).String()
	},
}
