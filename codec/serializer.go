package codec

import (
	"context"
	"encoding/json"

	"github.com/eventkit/eventstore"
)

// Serializer turns registered values into payload bytes and back. A
// [Registry] uses one for every type ([WithSerializer]); the default is
// [JSON].
type Serializer interface {
	// ContentType is the content type of the events Marshal's bytes are
	// appended in.
	ContentType() eventstore.ContentType
	// Marshal encodes v, a value of a registered type.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a pointer to a value of a registered
	// type.
	Unmarshal(data []byte, v any) error
}

// JSON is the default [Serializer]: encoding/json, content type
// [eventstore.JSON]. Empty data and "null" decode to the zero value, so
// events appended without a payload decode too.
type JSON struct{}

// ContentType returns [eventstore.JSON].
func (JSON) ContentType() eventstore.ContentType { return eventstore.JSON }

// Marshal returns json.Marshal(v).
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal is json.Unmarshal, but leaves v alone for empty data.
func (JSON) Unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}

// UpcastJSON returns an [Upcaster] that decodes a payload into From with
// encoding/json, calls f, and encodes f's result: an upcaster written
// against a Go type kept for the old version.
func UpcastJSON[From, To any](f func(From) (To, error)) Upcaster {
	return func(_ context.Context, ev eventstore.RecordedEvent) ([]byte, error) {
		var old From
		if err := json.Unmarshal(ev.Data, &old); err != nil {
			return nil, err
		}
		v, err := f(old)
		if err != nil {
			return nil, err
		}
		return json.Marshal(v)
	}
}
