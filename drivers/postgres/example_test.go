package postgres_test

import (
	"context"
	"fmt"
	"log"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Open a store by URL; the driver registers the postgres:// and
// postgresql:// schemes. The schema parameter picks the store's schema.
func Example() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "postgres://app:secret@localhost:5432/app?sslmode=disable&schema=orders")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	res, err := store.Append(ctx, "Order-42", eventstore.NoStream,
		eventstore.NewEvent("OrderPlaced", []byte(`{"total":42}`)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("order at version", res.Version, "position", res.Position)
}

// Reuse a pool the application already configured. The driver does not close
// it: close the store first, then the pool.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@localhost:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	d, err := postgres.New(ctx, pool, postgres.Options{Schema: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	store := eventstore.New(d, eventstore.Options{})
	defer store.Close()

	var p *pgxpool.Pool
	fmt.Println(store.As(&p) && p == pool) // the native client
}
