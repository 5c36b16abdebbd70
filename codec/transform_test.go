package codec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/internal/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wrap is a Transform that wraps Data in a tag and the stream on Seal and
// unwraps it on Open, failing on data it did not wrap for the event's
// stream.
type wrap string

func (w wrap) Seal(_ context.Context, stream string, ev eventstore.Event) (eventstore.Event, error) {
	ev.ContentType = eventstore.Binary
	ev.Data = fmt.Appendf(nil, "%s[%s](%s)", w, stream, ev.Data)
	return ev, nil
}

func (w wrap) Open(_ context.Context, ev eventstore.RecordedEvent) (eventstore.RecordedEvent, error) {
	in, ok := bytes.CutPrefix(ev.Data, fmt.Appendf(nil, "%s[%s](", w, ev.StreamID))
	if !ok || !bytes.HasSuffix(in, []byte(")")) {
		return ev, fmt.Errorf("%s: not sealed for %q: %s", w, ev.StreamID, ev.Data)
	}
	ev.Data = in[:len(in)-1]
	return ev, nil
}

// TestTransform: Seal runs after marshalling, in order, and is told the
// stream; Open runs before upcasting, in reverse order, on the event as
// read from its stream; Message.Event stays as stored.
func TestTransform(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t, codec.WithTransform(wrap("a")), codec.WithTransform(wrap("b")))
	ev, err := r.Encode(ctx, "Order-1", OrderShipped{Carrier: "DHL"})
	require.NoError(t, err)
	assert.Equal(t, `b[Order-1](a[Order-1]({"carrier":"DHL"}))`, string(ev.Data))
	assert.Equal(t, eventstore.Binary, ev.ContentType)
	assert.Equal(t, `{"$schemaVersion":1}`, string(ev.Metadata), "Seal sees the version marker")

	s := storetest.Memory(t)
	_, err = s.Append(ctx, "Order-1", eventstore.NoStream, ev,
		eventstore.Event{Type: "OrderPlaced", ContentType: eventstore.Binary, Data: []byte(`b[Order-1](a[Order-1]({"item":"A-1","qty":1}))`)})
	require.NoError(t, err)
	ms, err := collect(r.ReadStream(ctx, s, "Order-1", eventstore.ReadStreamOptions{}))
	require.NoError(t, err)
	require.Len(t, ms, 2)
	assert.Equal(t, OrderShipped{Carrier: "DHL"}, ms[0].Value)
	assert.Equal(t, OrderPlaced{SKU: "A-1", Qty: 1, Currency: "EUR"}, ms[1].Value, "opened, then upcast from version 1")
	assert.Equal(t, `b[Order-1](a[Order-1]({"item":"A-1","qty":1}))`, string(ms[1].Event.Data), "Event as stored")

	_, err = r.Decode(ctx, eventstore.RecordedEvent{StreamID: "Order-1", Version: 3, Type: "OrderShipped", Data: []byte(`{}`)})
	require.Error(t, err)
	assert.Equal(t, `codec: decode "Order-1"@3: open: b: not sealed for "Order-1": {}`, err.Error())

	// ReadAll hands Open each event with its own stream.
	ev, err = r.Encode(ctx, "Order-2", OrderShipped{Carrier: "UPS"})
	require.NoError(t, err)
	_, err = s.Append(ctx, "Order-2", eventstore.NoStream, ev)
	require.NoError(t, err)
	all, err := collect(r.ReadAll(ctx, s, eventstore.ReadAllOptions{}))
	require.NoError(t, err)
	require.Len(t, all, 3)
	assert.Equal(t, OrderShipped{Carrier: "UPS"}, all[2].Value)

	_, err = r.Encode(ctx, "", OrderShipped{})
	require.ErrorIs(t, err, eventstore.ErrInvalidStreamID)
}

// failSeal is a Transform whose Seal fails.
type failSeal struct{ wrap }

var errSeal = errors.New("no key")

func (failSeal) Seal(context.Context, string, eventstore.Event) (eventstore.Event, error) {
	return eventstore.Event{}, errSeal
}

func TestTransformSealError(t *testing.T) {
	r := newRegistry(t, codec.WithTransform(failSeal{}))
	_, err := r.Encode(t.Context(), "Order-1", OrderShipped{})
	require.ErrorIs(t, err, errSeal)
	assert.Equal(t, `codec: encode "OrderShipped": seal: no key`, err.Error())
}
