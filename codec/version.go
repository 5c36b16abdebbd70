package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/eventkit/eventstore"
)

// versionPrefix starts the metadata the codec writes when the caller gives
// none, and every object it inserts the marker into.
const versionPrefix = `{"` + eventstore.MetadataSchemaVersion + `":`

// withVersion returns metadata md (empty or a JSON object) with the schema
// version marker inserted first in the object; the caller's bytes follow
// unchanged. Metadata that already holds the same marker is returned as
// is; a different marker is an error.
func withVersion(md []byte, v int) ([]byte, error) {
	if len(bytes.TrimSpace(md)) == 0 {
		return append(strconv.AppendInt([]byte(versionPrefix), int64(v), 10), '}'), nil
	}
	i := bytes.IndexByte(md, '{')
	if i < 0 || len(bytes.TrimSpace(md[:i])) != 0 || !json.Valid(md) {
		return nil, fmt.Errorf("%w: metadata is not a JSON object", eventstore.ErrInvalidPayload)
	}
	if mayHaveVersion(md) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(md, &m); err != nil {
			return nil, fmt.Errorf("%w: metadata is not a JSON object: %v", eventstore.ErrInvalidPayload, err)
		}
		if raw, ok := m[eventstore.MetadataSchemaVersion]; ok {
			if n, err := parseVersion(raw); err == nil && n == v {
				return md, nil
			}
			return nil, fmt.Errorf("%w: metadata already has %s %s, not %d", eventstore.ErrInvalidPayload, eventstore.MetadataSchemaVersion, raw, v)
		}
	}
	out := make([]byte, 0, len(md)+len(versionPrefix)+4)
	out = append(out, md[:i]...)
	out = strconv.AppendInt(append(out, versionPrefix...), int64(v), 10)
	rest := md[i+1:]
	if t := bytes.TrimSpace(rest); len(t) == 0 || t[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...), nil
}

// mayHaveVersion is false for metadata that cannot hold the marker: it
// holds neither the name nor an escape (a key may spell a letter as \u…).
func mayHaveVersion(md []byte) bool {
	return bytes.Contains(md, []byte("schemaVersion")) || bytes.Contains(md, []byte(`\u`))
}

// schemaVersion returns the schema version metadata records: 1 without a
// marker (or for metadata that is not a JSON object, such as imported
// foreign metadata). The marker the codec writes first in the object is
// read without decoding the rest.
func schemaVersion(md []byte) (int, string, bool) {
	if len(md) == 0 {
		return 1, "", true
	}
	if rest, ok := bytes.CutPrefix(md, []byte(versionPrefix)); ok {
		n, end := 0, 0
		for end < len(rest) && end < 9 && '0' <= rest[end] && rest[end] <= '9' {
			n = n*10 + int(rest[end]-'0')
			end++
		}
		if end > 0 && end < len(rest) && (rest[end] == ',' || rest[end] == '}') && rest[0] != '0' {
			return n, "", true
		}
	}
	if !mayHaveVersion(md) {
		return 1, "", true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(md, &m) != nil {
		return 1, "", true
	}
	raw, ok := m[eventstore.MetadataSchemaVersion]
	if !ok {
		return 1, "", true
	}
	n, err := parseVersion(raw)
	if err != nil {
		return 0, string(raw), false
	}
	return n, "", true
}

// parseVersion parses a version marker: a JSON integer of at least 1.
func parseVersion(raw json.RawMessage) (int, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("version %d is below 1", n)
	}
	return n, nil
}
