package codec

import (
	"context"

	"github.com/eventkit/eventstore"
)

// Transform is a byte-level layer under the codec, such as encryption for
// crypto-shredding ([WithTransform]). Seal runs after marshalling, on the
// complete event about to be appended (its metadata already records the
// schema version); Open runs on every event read, before its schema version
// is read and it is upcast, and must give back the Data and Metadata Seal
// was given (or a stand-in, for example for erased data, that the
// registered type decodes). Both run for every event of a registry,
// registered type or not.
type Transform interface {
	Seal(ctx context.Context, ev eventstore.Event) (eventstore.Event, error)
	Open(ctx context.Context, ev eventstore.RecordedEvent) (eventstore.RecordedEvent, error)
}
