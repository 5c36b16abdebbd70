package eventstore

import (
	"encoding/json"
	"fmt"
)

// Well-known metadata keys. They follow the KurrentDB convention, so
// correlation chains survive a migration to or from KurrentDB.
const (
	MetadataCorrelationID = "$correlationId"
	MetadataCausationID   = "$causationId"
)

// CorrelationID returns the correlation ID in metadata, if any.
func CorrelationID(metadata []byte) (string, bool) {
	return metadataString(metadata, MetadataCorrelationID)
}

// CausationID returns the causation ID in metadata, if any.
func CausationID(metadata []byte) (string, bool) {
	return metadataString(metadata, MetadataCausationID)
}

func metadataString(metadata []byte, key string) (string, bool) {
	if len(metadata) == 0 {
		return "", false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(metadata, &m) != nil {
		return "", false
	}
	var s string
	if raw, ok := m[key]; !ok || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// CausedBy returns e with metadata that records cause: its causation ID is
// cause's event ID and its correlation ID is cause's correlation ID (or cause's
// event ID when cause has none). Other keys in e.Metadata are kept; the
// metadata is re-encoded, so key order and spacing may change. It fails with
// [ErrInvalidPayload] when e.Metadata is not a JSON object.
func CausedBy(e Event, cause RecordedEvent) (Event, error) {
	m := map[string]json.RawMessage{}
	if len(e.Metadata) > 0 {
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			return e, fmt.Errorf("eventstore: %w: metadata is not a JSON object: %v", ErrInvalidPayload, err)
		}
	}
	corr, ok := CorrelationID(cause.Metadata)
	if !ok {
		corr = cause.ID.String()
	}
	m[MetadataCorrelationID], _ = json.Marshal(corr)
	m[MetadataCausationID], _ = json.Marshal(cause.ID.String())
	b, err := json.Marshal(m)
	if err != nil {
		return e, err
	}
	e.Metadata = b
	return e, nil
}
