package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/eventkit/eventstore"
	_ "github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/migrate"
)

func Example() {
	ctx := context.Background()
	src, _ := eventstore.Open(ctx, "memory://") // e.g. "sqlite:///var/data/events.db"
	defer src.Close()
	dst, _ := eventstore.Open(ctx, "memory://") // e.g. "postgres://…"
	defer dst.Close()
	src.Append(ctx, "Account-42", eventstore.NoStream,
		eventstore.NewEvent("Opened", []byte(`{"owner":"Ada"}`)),
		eventstore.NewEvent("Deposited", []byte(`{"amount":100}`)))
	src.Append(ctx, "Account-7", eventstore.NoStream, eventstore.NewEvent("Opened", []byte(`{"owner":"Bob"}`)))

	stats, err := migrate.Copy(ctx, dst, src, migrate.Options{Snapshots: true})
	if err != nil {
		log.Fatal(err) // a rerun continues where this one stopped
	}
	// Memory, SQLite, PostgreSQL and DynamoDB destinations import, keeping
	// recorded times; KurrentDB gets appends.
	fmt.Printf("copied %d events of %d streams in %d imports\n", stats.Copied, stats.Streams, stats.Imports)

	report, err := migrate.Verify(ctx, src, dst)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.Equal, report.Streams, report.Events)

	// Running it again writes nothing.
	stats, _ = migrate.Copy(ctx, dst, src, migrate.Options{})
	fmt.Printf("copied %d, skipped %d\n", stats.Copied, stats.Skipped)
	// Output:
	// copied 3 events of 2 streams in 1 imports
	// true 2 3
	// copied 0, skipped 3
}

func ExampleConflictError() {
	ctx := context.Background()
	src, _ := eventstore.Open(ctx, "memory://")
	defer src.Close()
	dst, _ := eventstore.Open(ctx, "memory://")
	defer dst.Close()
	src.Append(ctx, "Account-42", eventstore.NoStream, eventstore.NewEvent("Opened", []byte(`{"owner":"Ada"}`)))
	dst.Append(ctx, "Account-42", eventstore.NoStream, eventstore.NewEvent("Opened", []byte(`{"owner":"Eve"}`)))

	_, err := migrate.Copy(ctx, dst, src, migrate.Options{})
	var conflict *migrate.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println(conflict.Stream, conflict.Version, conflict.What)
	}
	// Output:
	// Account-42 1 event id
}
