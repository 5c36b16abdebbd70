package eventstore

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eventkit/eventstore/driver"
	"github.com/google/uuid"
)

// MaxNameLength is the longest stream ID, event type or subscription name, in bytes.
const MaxNameLength = 255

// ValidateStreamID reports whether id is a valid stream ID: 1–255 bytes of
// valid UTF-8 without control characters, not starting with "$" (reserved for
// system streams). The error matches [ErrInvalidStreamID].
func ValidateStreamID(id string) error { return validateName(ErrInvalidStreamID, "stream id", id) }

// ValidateEventType reports whether t is a valid event type (same rules as a
// stream ID). The error matches [ErrInvalidEventType].
func ValidateEventType(t string) error { return validateName(ErrInvalidEventType, "event type", t) }

func validateName(kind error, what, s string) error {
	switch {
	case s == "":
		return invalid(kind, "%s is empty", what)
	case len(s) > MaxNameLength:
		return invalid(kind, "%s is %d bytes, over %d", what, len(s), MaxNameLength)
	case !utf8.ValidString(s):
		return invalid(kind, "%s %q is not valid UTF-8", what, s)
	case s[0] == '$':
		return invalid(kind, "%s %q starts with \"$\", which is reserved for system names", what, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(kind, "%s %q contains control character %U", what, s, r)
		}
	}
	return nil
}

// MaxEventTags is the most tags one event may carry.
const MaxEventTags = 32

// ValidateTag reports whether tag is a valid event tag (same rules as a
// stream ID). The error matches [ErrInvalidTag].
func ValidateTag(tag string) error { return validateName(ErrInvalidTag, "tag", tag) }

// validateTags checks an event's tags: valid, distinct, at most MaxEventTags.
func validateTags(tags []string) error {
	if len(tags) > MaxEventTags {
		return invalid(ErrInvalidTag, "%d tags, over the limit of %d", len(tags), MaxEventTags)
	}
	for i, t := range tags {
		if err := ValidateTag(t); err != nil {
			return err
		}
		if slices.Contains(tags[:i], t) {
			return invalid(ErrInvalidTag, "tag %q repeats", t)
		}
	}
	return nil
}

// validateEvents checks a batch against the rules and limits, and returns the
// driver's copy with zero IDs replaced by new random ones.
func validateEvents(events []Event, lim Limits) ([]driver.Event, error) {
	if len(events) == 0 {
		return nil, invalid(ErrInvalidArgument, "no events to append")
	}
	if lim.MaxAppendEvents > 0 && len(events) > lim.MaxAppendEvents {
		return nil, invalid(ErrBatchTooLarge, "%d events, over the limit of %d per append", len(events), lim.MaxAppendEvents)
	}
	out := make([]driver.Event, len(events))
	seen := make(map[uuid.UUID]int, len(events))
	total := 0
	for i, e := range events {
		if err := validateEvent(e, lim); err != nil {
			return nil, eventErr(i, err)
		}
		total += len(e.Data) + len(e.Metadata)
		if e.ID == uuid.Nil {
			e.ID = uuid.New()
		}
		if j, dup := seen[e.ID]; dup {
			return nil, eventErr(i, invalid(ErrInvalidArgument, "event id %s repeats event %d of the batch", e.ID, j))
		}
		seen[e.ID] = i
		out[i] = eventToDriver(e)
	}
	if err := checkAppendSize(total, lim); err != nil {
		return nil, err
	}
	return out, nil
}

// validateEvent checks one event to append: its type, payload and size,
// with metadata empty or a JSON object.
func validateEvent(e Event, lim Limits) error { return checkEvent(e, appendedMetadata, lim) }

// appendedMetadata is the rule for the metadata of an append: empty or a
// JSON object.
func appendedMetadata(md []byte) error {
	if len(md) > 0 && !isJSONObject(md) {
		return invalid(ErrInvalidPayload, "metadata is not a JSON object")
	}
	return nil
}

// importedMetadata returns the rule for the metadata of an imported event
// of content type ct: empty or any valid JSON value in UTF-8 for JSON, any
// bytes for Binary.
func importedMetadata(ct ContentType) func([]byte) error {
	return func(md []byte) error {
		switch ct {
		case JSON:
			if len(md) > 0 && (!utf8.Valid(md) || !json.Valid(md)) {
				return invalid(ErrInvalidPayload, "metadata is not valid UTF-8 JSON; use MetadataContentType Binary for other bytes")
			}
		case Binary:
		default:
			return invalid(ErrInvalidPayload, "unknown metadata content type %d", ct)
		}
		return nil
	}
}

// checkEvent checks one event's type, payload and size, its metadata by
// checkMetadata.
func checkEvent(e Event, checkMetadata func([]byte) error, lim Limits) error {
	if err := ValidateEventType(e.Type); err != nil {
		return err
	}
	switch e.ContentType {
	case JSON:
		if len(e.Data) > 0 && (!utf8.Valid(e.Data) || !json.Valid(e.Data)) {
			return invalid(ErrInvalidPayload, "data is not valid UTF-8 JSON; use ContentType Binary for other bytes")
		}
	case Binary:
	default:
		return invalid(ErrInvalidPayload, "unknown content type %d", e.ContentType)
	}
	if err := validateTags(e.Tags); err != nil {
		return err
	}
	if err := checkMetadata(e.Metadata); err != nil {
		return err
	}
	if size := len(e.Data) + len(e.Metadata); size > lim.MaxEventSize {
		return invalid(ErrEventTooLarge, "%d bytes of data and metadata, over the limit of %d", size, lim.MaxEventSize)
	}
	return nil
}

// checkAppendSize checks the bytes of one append against the limit.
func checkAppendSize(total int, lim Limits) error {
	if lim.MaxAppendSize > 0 && total > lim.MaxAppendSize {
		return invalid(ErrBatchTooLarge, "%d bytes in one append, over the limit of %d", total, lim.MaxAppendSize)
	}
	return nil
}

func eventErr(i int, err error) error { return fmtErr("event %d: %w", i, err) }

// isJSONObject reports whether b is valid JSON whose top-level value is an object.
func isJSONObject(b []byte) bool {
	if !utf8.Valid(b) || !json.Valid(b) {
		return false
	}
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

// MaxRetentionAge is the longest [Retention] MaxAge a store keeps: the
// largest [time.Duration] in whole microseconds, the precision of
// RecordedAt.
const MaxRetentionAge = time.Duration(math.MaxInt64 / 1000 * 1000)

// normalizeRetention checks r and returns it as every driver keeps it:
// MaxAge rounded up to a whole microsecond (a MaxAge under one is a limit
// of one, never none) and at most MaxRetentionAge; MaxCount at most
// math.MaxInt64, as no backend counts more events in a stream.
func normalizeRetention(r Retention) (Retention, error) {
	if r.MaxAge < 0 {
		return r, invalid(ErrInvalidArgument, "negative max age %s", r.MaxAge)
	}
	if r.MaxAge > MaxRetentionAge {
		r.MaxAge = MaxRetentionAge
	} else if rem := r.MaxAge % time.Microsecond; rem != 0 {
		r.MaxAge += time.Microsecond - rem
	}
	r.MaxCount = min(r.MaxCount, math.MaxInt64)
	return r, nil
}

func validateReadAll(opts ReadAllOptions) error {
	if opts.Limit < 0 {
		return invalid(ErrInvalidArgument, "negative limit %d", opts.Limit)
	}
	if !opts.Before.IsZero() && opts.Before.Compare(opts.After) <= 0 {
		return invalid(ErrInvalidPosition, "empty range: before %s is not after %s", opts.Before, opts.After)
	}
	return validateFilter(opts.Filter)
}

func validateFilter(f Filter) error {
	for _, c := range f.Categories {
		if err := ValidateStreamID(c); err != nil {
			return fmt.Errorf("filter category: %w", err)
		}
	}
	for _, t := range f.EventTypes {
		if err := ValidateEventType(t); err != nil {
			return fmt.Errorf("filter event type: %w", err)
		}
	}
	return nil
}
