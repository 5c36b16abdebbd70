package codec_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	_ "github.com/eventkit/eventstore/drivers/memory"
)

// Deposited is an event type at schema version 2: version 1 stored the
// amount in whole euros, version 2 in cents.
type Deposited struct {
	Cents int64 `json:"cents"`
}

// depositedV1 is the payload of version 1, kept for its upcaster.
type depositedV1 struct {
	Euros int64 `json:"euros"`
}

type Withdrawn struct {
	Cents int64 `json:"cents"`
}

// Register types, append typed values, read them back typed.
func Example() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "memory://")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	reg := codec.New()
	if err := codec.Register[Withdrawn](reg, "Withdrawn"); err != nil {
		log.Fatal(err)
	}

	ev, err := reg.Encode(ctx, "Account-42", Withdrawn{Cents: 250})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Append(ctx, "Account-42", eventstore.NoStream, ev); err != nil {
		log.Fatal(err)
	}
	for m, err := range reg.ReadStream(ctx, store, "Account-42", eventstore.ReadStreamOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		w := m.Value.(Withdrawn)
		fmt.Println(m.Event.Type, w.Cents, string(m.Event.Data), string(m.Event.Metadata))
	}
	// Output:
	// Withdrawn 250 {"cents":250} {"$schemaVersion":1}
}

// An upcaster turns payloads written by older code into the registered
// version, on every read path; the stored bytes do not change.
func ExampleRegistry_Upcast() {
	ctx := context.Background()
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	// What the code of last year appended: version 1, no version marker.
	store.Append(ctx, "Account-42", eventstore.NoStream,
		eventstore.NewEvent("Deposited", []byte(`{"euros":12}`)))

	reg := codec.New()
	codec.Register[Deposited](reg, "Deposited", codec.SchemaVersion(2))
	reg.Upcast("Deposited", 1, codec.UpcastJSON(func(v depositedV1) (Deposited, error) {
		return Deposited{Cents: v.Euros * 100}, nil
	}))
	if err := reg.Check(); err != nil { // every chain complete?
		log.Fatal(err)
	}

	// This year's code appends version 2.
	ev, _ := reg.Encode(ctx, "Account-42", Deposited{Cents: 1999})
	store.Append(ctx, "Account-42", eventstore.StreamExists, ev)

	for m, err := range reg.ReadStream(ctx, store, "Account-42", eventstore.ReadStreamOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("stored at v%d: %s → %+v\n", m.SchemaVersion, m.Event.Data, m.Value)
	}
	// Output:
	// stored at v1: {"euros":12} → {Cents:1200}
	// stored at v2: {"cents":1999} → {Cents:1999}
}

// A subscription handler receives decoded, upcast messages. With
// PassThroughUnknownTypes, event types the registry does not know arrive
// with a nil Value instead of stopping the subscription.
func ExampleRegistry_Handler() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	reg := codec.New(codec.PassThroughUnknownTypes())
	codec.Register[Withdrawn](reg, "Withdrawn")
	ev, _ := reg.Encode(ctx, "Account-42", Withdrawn{Cents: 100})
	store.Append(ctx, "Account-42", eventstore.NoStream, ev,
		eventstore.NewEvent("Audited", []byte(`{}`)))

	var balance int64
	err := store.Subscribe(ctx, eventstore.SubscribeOptions{
		OnCaughtUp: func(eventstore.SubscriptionState) { cancel() },
	}, reg.Handler(func(ctx context.Context, m codec.Message) error {
		switch v := m.Value.(type) {
		case Withdrawn:
			balance -= v.Cents
		case nil:
			fmt.Println("passed over", m.Event.Type)
		}
		return nil
	}))
	fmt.Println(errors.Is(err, context.Canceled), balance)
	// Output:
	// passed over Audited
	// true -100
}

// Decode reports an event type the registry does not know, or a version
// newer than it knows, with a typed error.
func ExampleRegistry_Decode() {
	reg := codec.New()
	codec.Register[Withdrawn](reg, "Withdrawn")

	_, err := reg.Decode(context.Background(), eventstore.RecordedEvent{
		StreamID: "Account-42", Version: 7, Type: "Withdrawn",
		Data: []byte(`{"cents":5,"fee":1}`), Metadata: []byte(`{"$schemaVersion":2}`),
	})
	var uv *codec.UnknownVersionError
	fmt.Println(errors.Is(err, codec.ErrUnknownVersion), errors.As(err, &uv) && uv.Version == 2)
	fmt.Println(err)

	_, err = reg.Decode(context.Background(), eventstore.RecordedEvent{StreamID: "Account-42", Version: 8, Type: "Closed"})
	fmt.Println(errors.Is(err, codec.ErrUnknownType))
	// Output:
	// true true
	// codec: decode "Account-42"@7: event type "Withdrawn": unknown schema version 2: the latest registered version is 1 (written by newer code?)
	// true
}
