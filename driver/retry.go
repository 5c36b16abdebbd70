package driver

import (
	"bytes"
	"fmt"
	"slices"
)

// CheckRetry compares the events of an append that a driver recognised as a
// retry (by their IDs) with the events the stream holds under those IDs,
// pairwise and in order. It returns nil when every pair has the same type,
// content type, data, metadata and tags (empty and nil payloads are equal;
// metadata apart from the trace context the Store recorded), and a
// *[RetryMismatchError] for the first that does not. A driver calls it
// before returning the original result of a retried append and returns its
// error as is: the Store turns it into an eventstore.ErrDuplicateEventID.
func CheckRetry(stored []RecordedEvent, events []Event) error {
	for i, ev := range events {
		if i >= len(stored) {
			break
		}
		if field := differingField(stored[i], ev); field != "" {
			return &RetryMismatchError{Index: i, Version: stored[i].Version, Field: field}
		}
	}
	return nil
}

// differingField names the first field in which ev differs from stored:
// "type", "content type", "data", "metadata" or "tags"; "" when their content is
// the same. Empty and nil payloads are equal, and metadata is compared
// without the trace-context keys the Store inserted ([MetadataTraceParent],
// [MetadataTraceState]): a retry runs in another span.
func differingField(stored RecordedEvent, ev Event) string {
	switch {
	case stored.Type != ev.Type:
		return "type"
	case stored.ContentType != ev.ContentType:
		return "content type"
	case !bytes.Equal(stored.Data, ev.Data):
		return "data"
	case !sameMetadata(stored.Metadata, ev.Metadata):
		return "metadata"
	case !slices.Equal(stored.Tags, ev.Tags):
		return "tags"
	}
	return ""
}

// RetryMismatchError reports that event Index of an append reuses the ID of
// a stored event (at Version) with other content.
type RetryMismatchError struct {
	Index   int
	Version uint64
	Field   string // "type", "content type", "data", "metadata" or "tags"
}

func (e *RetryMismatchError) Error() string {
	return fmt.Sprintf("event %d: its id is stored at version %d with another %s", e.Index, e.Version, e.Field)
}
