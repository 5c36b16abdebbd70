package codec_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The event types of the tests: OrderPlaced is at schema version 3.
//
//	v1: {"item":"…","qty":2}
//	v2: {"sku":"…","qty":2}            (item renamed to sku)
//	v3: {"sku":"…","qty":2,"currency":"EUR"} (currency added, default EUR)
type OrderPlaced struct {
	SKU      string `json:"sku"`
	Qty      int    `json:"qty"`
	Currency string `json:"currency"`
}

type OrderShipped struct {
	Carrier string `json:"carrier"`
}

type orderPlacedV1 struct {
	Item string `json:"item"`
	Qty  int    `json:"qty"`
}

type orderPlacedV2 struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// newRegistry returns a registry with OrderPlaced at version 3 and its
// upcasters, and OrderShipped at version 1.
func newRegistry(t testing.TB, opts ...codec.Option) *codec.Registry {
	t.Helper()
	r := codec.New(opts...)
	require.NoError(t, codec.Register[OrderPlaced](r, "OrderPlaced", codec.SchemaVersion(3)))
	require.NoError(t, codec.Register[OrderShipped](r, "OrderShipped"))
	require.NoError(t, r.Upcast("OrderPlaced", 1, codec.UpcastJSON(func(v orderPlacedV1) (orderPlacedV2, error) {
		return orderPlacedV2{SKU: v.Item, Qty: v.Qty}, nil
	})))
	require.NoError(t, r.Upcast("OrderPlaced", 2, func(_ context.Context, ev eventstore.RecordedEvent) ([]byte, error) {
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			return nil, err
		}
		m["currency"] = "EUR"
		return json.Marshal(m)
	}))
	require.NoError(t, r.Check())
	return r
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t)
	s := storetest.Memory(t)
	in := OrderPlaced{SKU: "A-1", Qty: 2, Currency: "USD"}
	ev, err := r.Encode(ctx, "Order-1", in)
	require.NoError(t, err)
	assert.NotEqual(t, uuid.Nil, ev.ID, "Encode gives the event an ID")
	assert.Equal(t, "OrderPlaced", ev.Type)
	assert.Equal(t, eventstore.JSON, ev.ContentType)
	assert.JSONEq(t, `{"sku":"A-1","qty":2,"currency":"USD"}`, string(ev.Data))
	assert.Equal(t, `{"$schemaVersion":3}`, string(ev.Metadata))
	n, ok := eventstore.SchemaVersion(ev.Metadata)
	assert.True(t, ok)
	assert.Equal(t, 3, n)

	ptr, err := r.Encode(ctx, "Order-1", &in)
	require.NoError(t, err)
	assert.NotEqual(t, ev.ID, ptr.ID, "each Encode gives a new ID")
	ptr.ID = ev.ID
	assert.Equal(t, ev, ptr, "a pointer encodes as its value")

	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, ev)
	require.NoError(t, err)
	var got []codec.Message
	for m, err := range r.ReadStream(ctx, s, "Order-1", eventstore.ReadStreamOptions{}) {
		require.NoError(t, err)
		got = append(got, m)
	}
	require.Len(t, got, 1)
	assert.Equal(t, in, got[0].Value)
	assert.Equal(t, 3, got[0].SchemaVersion)
	assert.Equal(t, ev.Data, got[0].Event.Data, "raw bytes stay available")
}

func TestEncodeMetadata(t *testing.T) {
	r := newRegistry(t)
	tests := []struct {
		name string
		md   string
		want string
		err  error
	}{
		{"empty", ``, `{"$schemaVersion":3}`, nil},
		{"empty object", `{}`, `{"$schemaVersion":3}`, nil},
		{"spaced empty object", ` { } `, ` {"$schemaVersion":3 } `, nil},
		{"keys kept byte for byte", `{"b":1,  "a" : [1, 2],"$correlationId":"c"}`, `{"$schemaVersion":3,"b":1,  "a" : [1, 2],"$correlationId":"c"}`, nil},
		{"same marker kept", `{"x":1,"$schemaVersion":3}`, `{"x":1,"$schemaVersion":3}`, nil},
		{"different marker", `{"$schemaVersion":2}`, ``, eventstore.ErrInvalidPayload},
		{"not an object", `[1]`, ``, eventstore.ErrInvalidPayload},
		{"not JSON", `{"a":`, ``, eventstore.ErrInvalidPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := r.EncodeMetadata(t.Context(), "Order-1", OrderPlaced{SKU: "x"}, []byte(tc.md))
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(ev.Metadata))
			assert.True(t, json.Valid(ev.Metadata), "%s", ev.Metadata)
			n, ok := eventstore.SchemaVersion(ev.Metadata)
			assert.True(t, ok)
			assert.Equal(t, 3, n)
		})
	}
}

func TestDecodeVersions(t *testing.T) {
	r := newRegistry(t)
	want := OrderPlaced{SKU: "A-1", Qty: 2, Currency: "EUR"}
	tests := []struct {
		name    string
		data    string
		md      string
		version int
		want    any
		err     error
	}{
		{"v1 without marker", `{"item":"A-1","qty":2}`, ``, 1, want, nil},
		{"v1 with other metadata", `{"item":"A-1","qty":2}`, `{"$correlationId":"c"}`, 1, want, nil},
		{"v1 marked", `{"item":"A-1","qty":2}`, `{"$schemaVersion":1}`, 1, want, nil},
		{"v2 marker not first", `{"sku":"A-1","qty":2}`, `{"$traceparent":"00-x","$schemaVersion":2}`, 2, want, nil},
		{"v2 escaped key", `{"sku":"A-1","qty":2}`, `{"\u0024schemaVersion":2}`, 2, want, nil},
		{"v3", `{"sku":"A-1","qty":2,"currency":"USD"}`, `{"$schemaVersion":3}`, 3, OrderPlaced{SKU: "A-1", Qty: 2, Currency: "USD"}, nil},
		{"non-object metadata is v1", `{"item":"A-1","qty":2}`, `"imported"`, 1, want, nil},
		{"duplicate key: the last wins", `{"sku":"A-1","qty":2}`, `{"$schemaVersion":3,"$schemaVersion":2}`, 2, want, nil},
		{"future version", `{}`, `{"$schemaVersion":4}`, 0, nil, codec.ErrUnknownVersion},
		{"zero version", `{}`, `{"$schemaVersion":0}`, 0, nil, codec.ErrUnknownVersion},
		{"string version", `{}`, `{"$schemaVersion":"2"}`, 0, nil, codec.ErrUnknownVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := eventstore.RecordedEvent{StreamID: "Order-1", Version: 1, Type: "OrderPlaced", Data: []byte(tc.data), Metadata: []byte(tc.md)}
			m, err := r.Decode(t.Context(), ev)
			assert.Equal(t, ev, m.Event)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				var ve *codec.UnknownVersionError
				require.ErrorAs(t, err, &ve)
				assert.Equal(t, 3, ve.Latest)
				assert.Contains(t, err.Error(), `"Order-1"@1`)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.version, m.SchemaVersion)
			assert.Equal(t, tc.want, m.Value)
		})
	}
}

func TestUnknownType(t *testing.T) {
	ev := eventstore.RecordedEvent{StreamID: "Order-1", Version: 1, Type: "OrderLost", Data: []byte(`{}`)}
	_, err := newRegistry(t).Decode(t.Context(), ev)
	require.ErrorIs(t, err, codec.ErrUnknownType)
	var ue *codec.UnknownTypeError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "OrderLost", ue.EventType)

	m, err := newRegistry(t, codec.PassThroughUnknownTypes()).Decode(t.Context(), ev)
	require.NoError(t, err)
	assert.Nil(t, m.Value)
	assert.Equal(t, ev, m.Event)
	assert.Equal(t, 1, m.SchemaVersion)

	_, err = newRegistry(t).Encode(t.Context(), "Order-1", orderPlacedV1{})
	require.ErrorIs(t, err, codec.ErrUnknownType)
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "orderPlacedV1")
}

func TestRegistrationErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *codec.Registry) error
		err   error
	}{
		{"duplicate event type", func(r *codec.Registry) error {
			return codec.Register[orderPlacedV1](r, "OrderPlaced")
		}, codec.ErrDuplicate},
		{"duplicate Go type", func(r *codec.Registry) error {
			return codec.Register[OrderPlaced](r, "OrderPlacedAgain")
		}, codec.ErrDuplicate},
		{"duplicate upcaster", func(r *codec.Registry) error {
			return r.Upcast("OrderPlaced", 1, codec.UpcastJSON(func(v orderPlacedV1) (orderPlacedV2, error) { return orderPlacedV2{}, nil }))
		}, codec.ErrDuplicate},
		{"upcaster of unknown type", func(r *codec.Registry) error {
			return r.Upcast("Nope", 1, codec.UpcastJSON(func(v orderPlacedV1) (orderPlacedV2, error) { return orderPlacedV2{}, nil }))
		}, codec.ErrUnknownType},
		{"upcaster from the latest version", func(r *codec.Registry) error {
			return r.Upcast("OrderPlaced", 3, codec.UpcastJSON(func(v orderPlacedV1) (orderPlacedV2, error) { return orderPlacedV2{}, nil }))
		}, eventstore.ErrInvalidArgument},
		{"nil upcaster", func(r *codec.Registry) error { return r.Upcast("OrderShipped", 1, nil) }, eventstore.ErrInvalidArgument},
		{"pointer type", func(r *codec.Registry) error { return codec.Register[*orderPlacedV1](r, "P") }, eventstore.ErrInvalidArgument},
		{"bad name", func(r *codec.Registry) error { return codec.Register[orderPlacedV1](r, "") }, eventstore.ErrInvalidEventType},
		{"version 0", func(r *codec.Registry) error {
			return codec.Register[orderPlacedV1](r, "V", codec.SchemaVersion(0))
		}, eventstore.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.setup(newRegistry(t))
			require.ErrorIs(t, err, tc.err)
			assert.True(t, strings.HasPrefix(err.Error(), "codec: "), "%v", err)
		})
	}
	require.ErrorIs(t, codec.Register[OrderPlaced](newRegistry(t), "X"), eventstore.ErrInvalidArgument, "ErrDuplicate matches ErrInvalidArgument")
}

func TestUpcasterGap(t *testing.T) {
	r := codec.New()
	require.NoError(t, codec.Register[OrderPlaced](r, "OrderPlaced", codec.SchemaVersion(3)))
	require.NoError(t, codec.Register[OrderShipped](r, "OrderShipped"))
	require.NoError(t, r.Upcast("OrderPlaced", 2, func(_ context.Context, ev eventstore.RecordedEvent) ([]byte, error) { return ev.Data, nil }))

	err := r.Check()
	require.ErrorIs(t, err, codec.ErrMissingUpcaster)
	var me *codec.MissingUpcasterError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, codec.MissingUpcasterError{EventType: "OrderPlaced", From: 1, Latest: 3}, *me)
	assert.Contains(t, err.Error(), `"OrderPlaced" is registered at schema version 3: missing upcaster from version 1 to 2`)

	// Every use fails until the chain is complete, even for other types.
	_, err = r.Encode(t.Context(), "Order-1", OrderShipped{})
	require.ErrorIs(t, err, codec.ErrMissingUpcaster)
	_, err = r.Decode(t.Context(), eventstore.RecordedEvent{Type: "OrderShipped", Data: []byte(`{}`)})
	require.ErrorIs(t, err, codec.ErrMissingUpcaster)

	require.NoError(t, r.Upcast("OrderPlaced", 1, func(_ context.Context, ev eventstore.RecordedEvent) ([]byte, error) { return ev.Data, nil }))
	require.NoError(t, r.Check())
	_, err = r.Encode(t.Context(), "Order-1", OrderShipped{})
	require.NoError(t, err)
}

// upcasterError: an upcaster's error stops Decode and is wrapped.
func TestUpcasterError(t *testing.T) {
	boom := errors.New("boom")
	r := codec.New()
	require.NoError(t, codec.Register[OrderShipped](r, "OrderShipped", codec.SchemaVersion(2)))
	require.NoError(t, r.Upcast("OrderShipped", 1, func(context.Context, eventstore.RecordedEvent) ([]byte, error) { return nil, boom }))
	_, err := r.Decode(t.Context(), eventstore.RecordedEvent{StreamID: "S", Version: 4, Type: "OrderShipped", Data: []byte(`{}`)})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, `codec: decode "S"@4: upcast "OrderShipped" from version 1: boom`, err.Error())
}

// TestDecodeEmptyData: an event appended without a payload decodes to the
// zero value.
func TestDecodeEmptyData(t *testing.T) {
	m, err := newRegistry(t).Decode(t.Context(), eventstore.RecordedEvent{Type: "OrderShipped"})
	require.NoError(t, err)
	assert.Equal(t, OrderShipped{}, m.Value)
}

// TestErrorMessages pins the wording of registration errors.
func TestErrorMessages(t *testing.T) {
	r := newRegistry(t)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"duplicate name", codec.Register[orderPlacedV1](r, "OrderPlaced"),
			`codec: register codec_test.orderPlacedV1 as "OrderPlaced": event type already registered for codec_test.OrderPlaced`},
		{"duplicate Go type", codec.Register[OrderPlaced](r, "Other"),
			`codec: register codec_test.OrderPlaced as "Other": Go type already registered as "OrderPlaced"`},
		{"unknown type", r.Upcast("Nope", 1, codec.UpcastJSON(func(v orderPlacedV1) (orderPlacedV2, error) { return orderPlacedV2{}, nil })),
			`codec: upcast "Nope": invalid argument: event type "Nope" is not registered: unknown event type (register it first)`},
		{"version out of range", r.Upcast("OrderPlaced", 3, codec.UpcastJSON(func(v orderPlacedV1) (orderPlacedV2, error) { return orderPlacedV2{}, nil })),
			`codec: upcast "OrderPlaced" from version 3: invalid argument: the type is registered at version 3, so an upcaster starts from a version between 1 and 2`},
		{"version 1 type", r.Upcast("OrderShipped", 1, codec.UpcastJSON(func(v orderPlacedV1) (orderPlacedV2, error) { return orderPlacedV2{}, nil })),
			`codec: upcast "OrderShipped" from version 1: invalid argument: the type is registered at version 1 and has no upcasters`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			assert.Equal(t, tc.want, tc.err.Error())
		})
	}
}

// TestConcurrentUse: decoding and encoding from many goroutines while
// types and upcasters are registered is race-free (run with -race), and a
// type registered with its full chain is usable at once.
func TestConcurrentUse(t *testing.T) {
	r := newRegistry(t)
	ev := eventstore.RecordedEvent{Type: "OrderPlaced", Data: []byte(`{"item":"A-1","qty":1}`)}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			<-start
			for range 200 {
				m, err := r.Decode(context.Background(), ev)
				if err != nil {
					t.Error(err)
					return
				}
				if m.Value != (OrderPlaced{SKU: "A-1", Qty: 1, Currency: "EUR"}) {
					t.Errorf("got %v", m.Value)
					return
				}
				if _, err := r.Encode(context.Background(), "Order-1", OrderShipped{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	close(start)
	type late struct{ N int }
	require.NoError(t, codec.Register[late](r, "Late"))
	_, err := r.Encode(t.Context(), "Order-1", late{N: 1})
	require.NoError(t, err)
	wg.Wait()
}
