package eventstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

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

// ApplyRetention is the periodic job that removes what aged out of streams
// nothing is appended to (appends apply a stream's retention themselves).
// Run it from a ticker or cron (evs apply-retention). See
// docs/retention.md.
func ExampleStore_ApplyRetention() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "memory://")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// Readings older than MaxAge are not worth keeping.
	err = store.SetStreamRetention(ctx, "Sensor-7", eventstore.Retention{MaxAge: 100 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	for _, stream := range []string{"Sensor-7", "Order-1"} {
		_, err = store.Append(ctx, stream, eventstore.NoStream,
			eventstore.NewEvent("Happened", []byte(`{}`)), eventstore.NewEvent("Happened", []byte(`{}`)))
		if err != nil {
			log.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the sensor goes quiet; its readings age

	res, err := store.ApplyRetention(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d stream with a retention, %d events removed\n", res.Streams, res.Events)
	for _, stream := range []string{"Sensor-7", "Order-1"} {
		n := 0
		for _, err := range store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
			if err != nil {
				log.Fatal(err)
			}
			n++
		}
		fmt.Printf("%s: %d events left\n", stream, n)
	}
	// Output:
	// 1 stream with a retention, 2 events removed
	// Sensor-7: 0 events left
	// Order-1: 2 events left
}
