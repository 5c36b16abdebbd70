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

	stats, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{Snapshots: true})
	if err != nil {
		log.Fatal(err) // a rerun continues where this one stopped
	}
	// Memory, SQLite, PostgreSQL and DynamoDB destinations import, keeping
	// recorded times; KurrentDB gets appends.
	fmt.Printf("copied %d events of %d streams in %d imports\n", stats.Copied, stats.Streams, stats.Imports)

	report, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.Equal, report.Streams, report.Events, report.RecordedTimesEqual)

	// Running it again writes nothing.
	stats, _ = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
	fmt.Printf("copied %d, skipped %d\n", stats.Copied, stats.Skipped)
	// Output:
	// copied 3 events of 2 streams in 1 imports
	// true 2 3 true
	// copied 0, skipped 3
}

// A copy that stopped part-way, here after its first write, is resumed by
// running it again: what the destination holds is compared and skipped.
func ExampleCopy() {
	ctx := context.Background()
	src, _ := eventstore.Open(ctx, "memory://")
	defer src.Close()
	dst, _ := eventstore.Open(ctx, "memory://")
	defer dst.Close()
	for _, id := range []string{"Order-1", "Order-2", "Order-3"} {
		src.Append(ctx, id, eventstore.NoStream,
			eventstore.NewEvent("Placed", []byte(`{}`)), eventstore.NewEvent("Paid", []byte(`{}`)))
	}

	stop, cancel := context.WithCancel(ctx)
	stats, err := migrate.Copy(stop, migrate.From(src), migrate.To(dst), migrate.Options{
		BatchSize: 2,
		Progress: func(s migrate.Stats) {
			if s.Copied == 2 {
				cancel() // as Ctrl-C or a crash would
			}
		},
	})
	fmt.Println(stats.Copied, errors.Is(err, context.Canceled))

	stats, err = migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{BatchSize: 2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %d, copied %d, skipped %d, up to source position %s\n", stats.Read, stats.Copied, stats.Skipped, stats.Last)
	// Output:
	// 2 true
	// read 6, copied 4, skipped 2, up to source position 6/0
}

// Verify names the first stream, version and field where the stores differ.
func ExampleVerify() {
	ctx := context.Background()
	src, _ := eventstore.Open(ctx, "memory://")
	defer src.Close()
	dst, _ := eventstore.Open(ctx, "memory://")
	defer dst.Close()
	placed := eventstore.NewEvent("Placed", []byte(`{"total":10}`))
	paid := eventstore.NewEvent("Paid", []byte(`{"amount":10}`))
	src.Append(ctx, "Order-42", eventstore.NoStream, placed, paid)
	paid.Data = []byte(`{"amount":12}`) // the same event with other data
	dst.Append(ctx, "Order-42", eventstore.NoStream, placed, paid)

	report, err := migrate.Verify(ctx, migrate.From(src), migrate.To(dst))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report)
	fmt.Println(report.Difference.Stream, report.Difference.Version, report.Difference.What)
	// Output:
	// different: stream "Order-42" version 2: data
	// Order-42 2 data
}

func ExampleConflictError() {
	ctx := context.Background()
	src, _ := eventstore.Open(ctx, "memory://")
	defer src.Close()
	dst, _ := eventstore.Open(ctx, "memory://")
	defer dst.Close()
	src.Append(ctx, "Account-42", eventstore.NoStream, eventstore.NewEvent("Opened", []byte(`{"owner":"Ada"}`)))
	dst.Append(ctx, "Account-42", eventstore.NoStream, eventstore.NewEvent("Opened", []byte(`{"owner":"Eve"}`)))

	_, err := migrate.Copy(ctx, migrate.From(src), migrate.To(dst), migrate.Options{})
	var conflict *migrate.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println(conflict.Stream, conflict.Version, conflict.What)
	}
	fmt.Println(err)
	// Output:
	// Account-42 1 event id
	// migrate: copy: stream "Account-42" version 1: destination holds a different event (event id differs)
}
