package kurrentdb_test

import (
	"context"
	"fmt"
	"log"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Open a store on a KurrentDB server by URL. (Compiled, not run: it needs a
// server, e.g. `docker compose up -d kurrentdb`.)
func Example() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "kurrentdb://127.0.0.1:2113?tls=false&namespace=shop")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	res, err := store.Append(ctx, "Order-42", eventstore.NoStream,
		eventstore.NewEvent("OrderPlaced", []byte(`{"total":4200}`)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", res.Version, "at", res.Position)

	for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Order"}}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.StreamID, ev.Version, ev.Type)
	}
}

// Reuse a client the application configured. The driver never closes it.
func ExampleNew() {
	cfg, err := kdb.ParseConnectionString("kurrentdb://admin:changeit@db.example:2113?tlsVerifyCert=false")
	if err != nil {
		log.Fatal(err)
	}
	cfg.Logger = kdb.NoopLogging() // the client's default logger prints
	client, err := kdb.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	d, err := kurrentdb.New(client, kurrentdb.Options{Namespace: "shop", MaxAppendSize: 256 << 20})
	if err != nil {
		log.Fatal(err)
	}
	store := eventstore.New(d, eventstore.Options{})
	defer store.Close()

	var native *kdb.Client
	fmt.Println(store.As(&native) && native == client)
}
