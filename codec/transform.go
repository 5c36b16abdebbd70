package codec

import (
	"context"

	"github.com/eventkit/eventstore"
)

// Transform is a byte-level layer under the codec, such as encryption for
// crypto-shredding ([WithTransform]). Seal runs after marshalling, on the
// complete event about to be appended to stream (its metadata already
// records the schema version); Open runs on every event read (whose
// StreamID is the stream it was appended to), before its schema version is
// read and it is upcast, and must give back the Data and Metadata Seal was
// given (or a stand-in, for example for erased data, that the registered
// type decodes). Both run for every event of a registry, registered type or
// not. A Transform may bind a sealed event to its stream, so that it opens
// only in that stream: an event must then be appended to the stream it was
// encoded for.
type Transform interface {
	Seal(ctx context.Context, stream string, ev eventstore.Event) (eventstore.Event, error)
	Open(ctx context.Context, ev eventstore.RecordedEvent) (eventstore.RecordedEvent, error)
}
