package eventstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/eventkit/eventstore"
	_ "github.com/eventkit/eventstore/drivers/memory"
)

// A truncated stream keeps its version; a deleted one reads as new, and an
// append recreates it after its last version. See docs/retention.md.
func ExampleStore_DeleteStream() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "memory://")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	show := func(when string) {
		v, err := store.StreamVersion(ctx, "Customer-42")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: version %d, events", when, v)
		for ev, err := range store.ReadStream(ctx, "Customer-42", eventstore.ReadStreamOptions{}) {
			if err != nil {
				log.Fatal(err)
			}
			fmt.Print(" ", ev.Version, ":", ev.Type)
		}
		fmt.Println()
	}

	_, err = store.Append(ctx, "Customer-42", eventstore.NoStream,
		eventstore.NewEvent("Registered", []byte(`{"name":"Ada"}`)),
		eventstore.NewEvent("Moved", []byte(`{"city":"London"}`)),
		eventstore.NewEvent("Moved", []byte(`{"city":"Paris"}`)))
	if err != nil {
		log.Fatal(err)
	}
	if err := store.TruncateStream(ctx, "Customer-42", 3); err != nil {
		log.Fatal(err)
	}
	show("truncated before 3")

	if err := store.DeleteStream(ctx, "Customer-42", eventstore.Exact(3)); err != nil {
		log.Fatal(err)
	}
	show("deleted")

	res, err := store.Append(ctx, "Customer-42", eventstore.NoStream, eventstore.NewEvent("Registered", []byte(`{"name":"Ada"}`)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("recreated at version", res.Version)
	show("recreated")
	// Output:
	// truncated before 3: version 3, events 3:Moved
	// deleted: version 0, events
	// recreated at version 4
	// recreated: version 4, events 4:Registered
}
