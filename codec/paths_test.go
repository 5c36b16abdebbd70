package codec_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// history appends, raw, what three generations of code wrote to one
// stream: OrderPlaced at version 1 (no marker), at version 2 (a marker
// after other metadata), at version 3 (by the codec) and OrderShipped.
// It returns the stream and the raw events as read back.
func history(t *testing.T, s *eventstore.Store, r *codec.Registry) (string, []eventstore.RecordedEvent) {
	t.Helper()
	ctx := t.Context()
	stream := "Order-" + uuid.NewString()[:8]
	v3, err := r.Encode(ctx, stream, OrderPlaced{SKU: "A-3", Qty: 3, Currency: "USD"})
	require.NoError(t, err)
	shipped, err := r.EncodeMetadata(ctx, stream, OrderShipped{Carrier: "DHL"}, []byte(`{"$correlationId":"c-1"}`))
	require.NoError(t, err)
	_, err = s.Append(ctx, stream, eventstore.NoStream,
		eventstore.Event{Type: "OrderPlaced", Data: []byte(`{"item":"A-1","qty":1}`)},
		eventstore.Event{Type: "OrderPlaced", Data: []byte(`{"sku":"A-2","qty":2}`), Metadata: []byte(`{"$correlationId":"c-1", "$schemaVersion":2}`)},
		v3, shipped)
	require.NoError(t, err)
	var raw []eventstore.RecordedEvent
	for ev, err := range s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		raw = append(raw, ev)
	}
	require.Len(t, raw, 4)
	return stream, raw
}

// wantValues are the values of history's events, upcast, with the schema
// versions they were stored at.
var (
	wantValues = []any{
		OrderPlaced{SKU: "A-1", Qty: 1, Currency: "EUR"},
		OrderPlaced{SKU: "A-2", Qty: 2, Currency: "EUR"},
		OrderPlaced{SKU: "A-3", Qty: 3, Currency: "USD"},
		OrderShipped{Carrier: "DHL"},
	}
	wantVersions = []int{1, 2, 3, 1}
)

// readPath reads the events of history through one typed read path.
type readPath struct {
	name string
	// rule is what the path must do, printed on failure.
	rule string
	read func(ctx context.Context, t *testing.T, s *eventstore.Store, r *codec.Registry, stream string) ([]codec.Message, error)
}

var readPaths = []readPath{
	{"Decode", "Registry.Decode of each event read raw upcasts it", func(ctx context.Context, t *testing.T, s *eventstore.Store, r *codec.Registry, stream string) ([]codec.Message, error) {
		var ms []codec.Message
		for ev, err := range s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
			if err != nil {
				return nil, err
			}
			m, err := r.Decode(ctx, ev)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
		return ms, nil
	}},
	{"ReadStream", "Registry.ReadStream yields each event upcast", func(ctx context.Context, t *testing.T, s *eventstore.Store, r *codec.Registry, stream string) ([]codec.Message, error) {
		return collect(r.ReadStream(ctx, s, stream, eventstore.ReadStreamOptions{}))
	}},
	{"ReadAll", "Registry.ReadAll yields each event upcast", func(ctx context.Context, t *testing.T, s *eventstore.Store, r *codec.Registry, stream string) ([]codec.Message, error) {
		return collect(r.ReadAll(ctx, s, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Order"}}}))
	}},
	{"ReadQuery", "Registry.ReadQuery yields each event upcast", func(ctx context.Context, t *testing.T, s *eventstore.Store, r *codec.Registry, stream string) ([]codec.Message, error) {
		q := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"OrderPlaced", "OrderShipped", "OrderAudited"}}}}
		ms, err := collect(r.ReadQuery(ctx, s, q, eventstore.ReadQueryOptions{}))
		if errors.Is(err, eventstore.ErrNotSupported) {
			t.Skipf("ReadQuery: not supported by this driver: %v", err)
		}
		return ms, err
	}},
	{"Subscribe", "a subscription through Registry.Handler gets each event upcast", func(ctx context.Context, t *testing.T, s *eventstore.Store, r *codec.Registry, stream string) ([]codec.Message, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var ms []codec.Message
		err := s.Subscribe(ctx, eventstore.SubscribeOptions{
			Filter:     eventstore.Filter{Categories: []string{"Order"}},
			OnCaughtUp: func(eventstore.SubscriptionState) { cancel() },
		}, r.Handler(func(_ context.Context, m codec.Message) error {
			ms = append(ms, m)
			return nil
		}))
		if !errors.Is(err, context.Canceled) {
			return nil, err
		}
		return ms, nil
	}},
	{"Project", "a projection through Registry.Projection gets each event upcast", func(ctx context.Context, t *testing.T, s *eventstore.Store, r *codec.Registry, stream string) ([]codec.Message, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var ms []codec.Message
		err := s.Project(ctx, eventstore.SubscribeOptions{
			Name:       "codec-" + uuid.NewString()[:8],
			Filter:     eventstore.Filter{Categories: []string{"Order"}},
			OnCaughtUp: func(eventstore.SubscriptionState) { cancel() },
		}, r.Projection(func(_ context.Context, tx *eventstore.Tx, batch []codec.Message) error {
			ms = append(ms, batch...)
			return nil
		}))
		if errors.Is(err, eventstore.ErrNotSupported) {
			t.Skipf("Project: not supported by this driver: %v", err)
		}
		if !errors.Is(err, context.Canceled) {
			return nil, err
		}
		return ms, nil
	}},
}

func collect(seq func(func(codec.Message, error) bool)) ([]codec.Message, error) {
	var ms []codec.Message
	for m, err := range seq {
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// TestReadPaths writes old-version events raw on every driver and reads
// them typed through each read path: each path upcasts, reports the version
// as stored and keeps the stored bytes.
func TestReadPaths(t *testing.T) {
	for _, b := range storetest.All() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := b.Open(t)
			r := newRegistry(t)
			stream, raw := history(t, s, r)
			for _, p := range readPaths {
				t.Run(p.name, func(t *testing.T) {
					ms, err := p.read(t.Context(), t, s, r, stream)
					require.NoError(t, err, "%s: %s", b.Name, p.rule)
					require.Len(t, ms, len(wantValues), "%s: %s", b.Name, p.rule)
					for i, m := range ms {
						assert.Equal(t, wantValues[i], m.Value, "%s: %s: event %d: value", b.Name, p.rule, i+1)
						assert.Equal(t, wantVersions[i], m.SchemaVersion, "%s: %s: event %d: schema version as stored", b.Name, p.rule, i+1)
						assert.Equal(t, raw[i].Data, m.Event.Data, "%s: %s: event %d: stored data", b.Name, p.rule, i+1)
						assert.Equal(t, raw[i].Metadata, m.Event.Metadata, "%s: %s: event %d: stored metadata", b.Name, p.rule, i+1)
					}
				})
			}
		})
	}
}

// TestReadPathsUnknownType: an event type the registry does not know stops
// every read path with ErrUnknownType, or passes through with a nil Value
// under PassThroughUnknownTypes.
func TestReadPathsUnknownType(t *testing.T) {
	s := storetest.Memory(t)
	stream, _ := history(t, s, newRegistry(t))
	_, err := s.Append(t.Context(), stream, eventstore.StreamExists, eventstore.NewEvent("OrderAudited", []byte(`{}`)))
	require.NoError(t, err)
	for _, p := range readPaths {
		t.Run(p.name, func(t *testing.T) {
			_, err := p.read(t.Context(), t, s, newRegistry(t), stream)
			require.ErrorIs(t, err, codec.ErrUnknownType, p.rule)

			ms, err := p.read(t.Context(), t, s, newRegistry(t, codec.PassThroughUnknownTypes()), stream)
			require.NoError(t, err, p.rule)
			require.Len(t, ms, 5)
			assert.Nil(t, ms[4].Value)
			assert.Equal(t, "OrderAudited", ms[4].Event.Type)
			assert.Equal(t, wantValues[3], ms[3].Value)
		})
	}
}
