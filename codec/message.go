package codec

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"
)

// Message is a decoded event.
type Message struct {
	// Event is the event as stored: before any [Transform] and upcaster,
	// so its raw bytes stay available.
	Event eventstore.RecordedEvent
	// Value is the payload as a value (not a pointer) of the Go type
	// registered for Event.Type, upcast to the registered schema version.
	// It is nil only for an event type the registry does not know, read
	// with [PassThroughUnknownTypes].
	Value any
	// SchemaVersion is the schema version the event was stored at (1 when
	// its metadata has no [eventstore.MetadataSchemaVersion] marker).
	SchemaVersion int
}

// Encode returns v, a value of (or a pointer to) a registered Go type, as
// an event to append to stream: its type is the registered event type, its data is v
// marshalled by the registry's [Serializer] (with its content type), and
// its metadata records the registered schema version under
// [eventstore.MetadataSchemaVersion]. It has a new random ID, so sending
// the same event again after a failed append is an idempotent retry. The
// [Transform]s then seal it for stream: a transform may bind the event to
// its stream and ID (crypto-shredding does), so append it to stream as it
// is, without changing its ID.
//
// It fails with [eventstore.ErrInvalidStreamID] for an invalid stream ID,
// an *[UnknownTypeError] for a type that is not registered, a
// *[MissingUpcasterError] while the registry has a gap, and with the error
// of the serializer or a transform.
func (r *Registry) Encode(ctx context.Context, stream string, v any) (eventstore.Event, error) {
	return r.EncodeMetadata(ctx, stream, v, nil)
}

// EncodeMetadata is [Registry.Encode] with caller metadata: metadata
// (empty or a JSON object) is kept byte for byte, with the schema version
// marker inserted first in the object. It fails with
// [eventstore.ErrInvalidPayload] when metadata is not a JSON object or
// already records a different schema version.
func (r *Registry) EncodeMetadata(ctx context.Context, stream string, v any, metadata []byte) (eventstore.Event, error) {
	if err := eventstore.ValidateStreamID(stream); err != nil {
		return eventstore.Event{}, fmt.Errorf("codec: encode: %w", err)
	}
	t := reflect.TypeOf(v)
	if t == nil {
		return eventstore.Event{}, fmt.Errorf("codec: encode: %w: nil value", eventstore.ErrInvalidArgument)
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	e, err := r.lookup("", t)
	if err != nil {
		return eventstore.Event{}, err
	}
	if e == nil {
		return eventstore.Event{}, fmt.Errorf("codec: encode: %w", &UnknownTypeError{GoType: t})
	}
	data, err := r.ser.Marshal(v)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("codec: encode %q: %w", e.name, err)
	}
	var md []byte
	if len(metadata) == 0 {
		md = slices.Clone(e.meta) // a copy: the caller may edit it
	} else if md, err = withVersion(metadata, e.version); err != nil {
		return eventstore.Event{}, fmt.Errorf("codec: encode %q: %w", e.name, err)
	}
	ev := eventstore.Event{ID: uuid.New(), Type: e.name, ContentType: r.ser.ContentType(), Data: data, Metadata: md}
	for _, tr := range r.transforms {
		if ev, err = tr.Seal(ctx, stream, ev); err != nil {
			return eventstore.Event{}, fmt.Errorf("codec: encode %q: seal: %w", e.name, err)
		}
	}
	return ev, nil
}

// Decode decodes a stored event: the [Transform]s open it, its schema
// version is read from its metadata, the upcasters bring its payload to the
// registered version, and the registry's [Serializer] decodes it into the
// registered Go type. Every read path of the package runs Decode.
//
// It fails with an *[UnknownTypeError] for an event type that is not
// registered (unless [PassThroughUnknownTypes]), an *[UnknownVersionError]
// for a version newer than registered or a bad marker, a
// *[MissingUpcasterError] while the registry has a gap, and with the error
// of a transform, an upcaster or the serializer. The returned Message holds
// the event (Event) also on failure. Errors name the event's stream and
// version.
func (r *Registry) Decode(ctx context.Context, ev eventstore.RecordedEvent) (Message, error) {
	m := Message{Event: ev}
	e, err := r.lookup(ev.Type, nil)
	if err != nil {
		return m, err
	}
	if e == nil && !r.passUnknown {
		return m, decodeError(ev, &UnknownTypeError{EventType: ev.Type})
	}
	for i := len(r.transforms) - 1; i >= 0; i-- {
		if ev, err = r.transforms[i].Open(ctx, ev); err != nil {
			return m, decodeError(ev, fmt.Errorf("open: %w", err))
		}
	}
	v, marker, ok := schemaVersion(ev.Metadata)
	if e == nil {
		m.SchemaVersion = v
		return m, nil
	}
	if !ok || v > e.version {
		return m, decodeError(ev, &UnknownVersionError{EventType: ev.Type, Version: v, Marker: marker, Latest: e.version})
	}
	m.SchemaVersion = v
	for ; v < e.version; v++ {
		if ev.Data, err = e.up[v-1](ctx, ev); err != nil {
			return m, decodeError(ev, fmt.Errorf("upcast %q from version %d: %w", ev.Type, v, err))
		}
	}
	if m.Value, err = e.decode(r.ser, ev.Data); err != nil {
		return m, decodeError(ev, fmt.Errorf("unmarshal %q at version %d: %w", ev.Type, v, err))
	}
	return m, nil
}

// decodeError prefixes err with the event's stream and version.
func decodeError(ev eventstore.RecordedEvent, err error) error {
	return fmt.Errorf("codec: decode %q@%d: %w", ev.StreamID, ev.Version, err)
}
