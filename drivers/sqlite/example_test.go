package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/sqlite"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "eventstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The URL form is eventstore.Open(ctx, "sqlite:///path/to/events.db").
	d, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store := eventstore.New(d, eventstore.Options{})
	defer store.Close()

	_, err = store.Append(ctx, "Order-42", eventstore.NoStream,
		eventstore.NewEvent("OrderPlaced", []byte(`{"total": 12.5}`)),
		eventstore.NewEvent("OrderShipped", []byte(`{"carrier": "DHL"}`)))
	if err != nil {
		log.Fatal(err)
	}
	for ev, err := range store.ReadStream(ctx, "Order-42", eventstore.ReadStreamOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Version, ev.Type, string(ev.Data))
	}
	// Output:
	// 1 OrderPlaced {"total": 12.5}
	// 2 OrderShipped {"carrier": "DHL"}
}
