package codec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
)

// FuzzMetadataMarker: for any caller metadata that is a JSON object without
// the marker, EncodeMetadata keeps every other key and its bytes, the result
// is a JSON object, and both eventstore.SchemaVersion and Decode read the
// registered version back. Any other metadata is refused or kept as is.
func FuzzMetadataMarker(f *testing.F) {
	for _, seed := range []string{``, `{}`, ` { } `, `{"a":1}`, `{"$correlationId":"c","n":[1,{"x":null}]}`,
		`{"\u0024schemaVersion":2}`, `{"$schemaVersion":2}`, `[1]`, `"s"`, `{"a":`, `{"schemaVersion":"x"}`} {
		f.Add([]byte(seed))
	}
	r := codec.New()
	if err := codec.Register[OrderPlaced](r, "OrderPlaced", codec.SchemaVersion(2)); err != nil {
		f.Fatal(err)
	}
	if err := r.Upcast("OrderPlaced", 1, func(_ context.Context, ev eventstore.RecordedEvent) ([]byte, error) { return ev.Data, nil }); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, md []byte) {
		ev, err := r.EncodeMetadata(t.Context(), "Order-1", OrderPlaced{SKU: "x"}, md)
		if err != nil {
			return // refused: not an object, or a different marker
		}
		if !json.Valid(ev.Metadata) {
			t.Fatalf("metadata %q became invalid JSON %q", md, ev.Metadata)
		}
		if n, ok := eventstore.SchemaVersion(ev.Metadata); !ok || n != 2 {
			t.Fatalf("metadata %q: SchemaVersion of %q = %d, %v", md, ev.Metadata, n, ok)
		}
		m, err := r.Decode(t.Context(), eventstore.RecordedEvent{Type: ev.Type, Data: ev.Data, Metadata: ev.Metadata})
		if err != nil || m.SchemaVersion != 2 {
			t.Fatalf("metadata %q: Decode of %q: version %d, %v", md, ev.Metadata, m.SchemaVersion, err)
		}
		if len(bytes.TrimSpace(md)) == 0 {
			return
		}
		var before, after map[string]json.RawMessage
		if json.Unmarshal(md, &before) != nil || json.Unmarshal(ev.Metadata, &after) != nil {
			t.Fatalf("metadata %q → %q: not objects", md, ev.Metadata)
		}
		if _, had := before[eventstore.MetadataSchemaVersion]; had {
			if !bytes.Equal(md, ev.Metadata) {
				t.Fatalf("metadata %q with the same marker was rewritten to %q", md, ev.Metadata)
			}
			return
		}
		delete(after, eventstore.MetadataSchemaVersion)
		if !maps.EqualFunc(before, after, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("metadata %q → %q: other keys changed", md, ev.Metadata)
		}
		if !bytes.Contains(ev.Metadata, bytes.TrimSpace(md)[1:]) {
			t.Fatalf("metadata %q → %q: the caller's bytes are not kept", md, ev.Metadata)
		}
	})
}

// FuzzDecodeVersion: Decode reads the same schema version from any
// metadata as eventstore.SchemaVersion does, version 1 where there is no
// marker, and fails with ErrUnknownVersion only for a marker that is not a
// version or is newer than registered. (Metadata the Store accepts is a
// JSON object; for bytes that are not valid JSON, the codec may still read
// the marker it writes first without validating the rest.)
func FuzzDecodeVersion(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"$schemaVersion":3}`, `{"$schemaVersion":9}`, `{"$schemaVersion":0}`,
		`{"$schemaVersion":"3"}`, `{"a":1,"$schemaVersion":2}`, `{"$schemaVersion":3,"$schemaVersion":2}`,
		`{"\u0024schemaVersion":4}`, `{"$schemaVersion":3`, `null`, `[]`} {
		f.Add([]byte(seed))
	}
	r := codec.New()
	if err := codec.Register[OrderPlaced](r, "OrderPlaced", codec.SchemaVersion(5)); err != nil {
		f.Fatal(err)
	}
	for from := 1; from < 5; from++ {
		if err := r.Upcast("OrderPlaced", from, func(_ context.Context, ev eventstore.RecordedEvent) ([]byte, error) { return ev.Data, nil }); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, md []byte) {
		m, err := r.Decode(t.Context(), eventstore.RecordedEvent{Type: "OrderPlaced", Data: []byte(`{}`), Metadata: md})
		n, ok := eventstore.SchemaVersion(md)
		switch {
		case ok && n <= 5:
			if err != nil || m.SchemaVersion != n {
				t.Fatalf("metadata %q: marker %d, Decode: version %d, %v", md, n, m.SchemaVersion, err)
			}
		case ok:
			if !errors.Is(err, codec.ErrUnknownVersion) {
				t.Fatalf("metadata %q: marker %d above 5, Decode: %v", md, n, err)
			}
		case !json.Valid(md):
			// Not metadata the Store accepts.
		case err == nil:
			if m.SchemaVersion != 1 {
				t.Fatalf("metadata %q: no valid marker, Decode: version %d", md, m.SchemaVersion)
			}
		case !errors.Is(err, codec.ErrUnknownVersion):
			t.Fatalf("metadata %q: Decode: %v", md, err)
		}
	})
}
