package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/eventkit/eventstore"
	_ "github.com/eventkit/eventstore/drivers/memory"
	"github.com/google/uuid"
)

func Example() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "memory://") // or "sqlite:events.db", "postgres://…"
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	_, err = store.Append(ctx, "Account-42", eventstore.NoStream,
		eventstore.NewEvent("Opened", []byte(`{"owner":"Ada"}`)),
		eventstore.NewEvent("Deposited", []byte(`{"amount":100}`)))
	if err != nil {
		log.Fatal(err)
	}
	for ev, err := range store.ReadStream(ctx, "Account-42", eventstore.ReadStreamOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Version, ev.Type, string(ev.Data))
	}
	// Output:
	// 1 Opened {"owner":"Ada"}
	// 2 Deposited {"amount":100}
}

func ExampleStore_Append_wrongExpectedVersion() {
	ctx := context.Background()
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	store.Append(ctx, "Account-42", eventstore.NoStream, eventstore.NewEvent("Opened", nil))
	// A writer that read the stream at version 0 loses the race.
	_, err := store.Append(ctx, "Account-42", eventstore.NoStream, eventstore.NewEvent("Opened", nil))
	var wrong *eventstore.WrongExpectedVersionError
	if errors.As(err, &wrong) {
		fmt.Println(errors.Is(err, eventstore.ErrWrongExpectedVersion), wrong.Expected, wrong.Actual)
	}
	fmt.Println(err)
	// Output:
	// true no-stream 1
	// eventstore: append "Account-42": wrong expected version: want no-stream, have 1
}

func ExampleStore_ReadAll() {
	ctx := context.Background()
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	store.Append(ctx, "Account-7", eventstore.NoStream, eventstore.NewEvent("Opened", nil))
	store.Append(ctx, "Order-2", eventstore.NoStream, eventstore.NewEvent("Placed", nil))

	opts := eventstore.ReadAllOptions{Filter: eventstore.Filter{Categories: []string{"Order"}}}
	for ev, err := range store.ReadAll(ctx, opts) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Position, ev.StreamID, ev.Type)
	}
	// Output:
	// 1/0 Order-1 Placed
	// 3/0 Order-2 Placed
}

func ExampleStore_Subscribe() {
	ctx, stop := context.WithCancel(context.Background())
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	store.Append(ctx, "Order-1", eventstore.Exact(1), eventstore.NewEvent("Shipped", nil))

	// A durable projection: its checkpoint is kept in the store under its name.
	err := store.Subscribe(ctx, eventstore.SubscribeOptions{Name: "shipping-report"},
		func(_ context.Context, ev eventstore.RecordedEvent) error {
			fmt.Println(ev.StreamID, ev.Version, ev.Type)
			if ev.Type == "Shipped" {
				stop() // a real projection runs until shutdown
			}
			return nil
		})
	fmt.Println(errors.Is(err, context.Canceled))
	// Output:
	// Order-1 1 Placed
	// Order-1 2 Shipped
	// true
}

func ExampleStore_Project() {
	ctx, stop := context.WithCancel(context.Background())
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil), eventstore.NewEvent("Shipped", nil))
	store.Append(ctx, "Order-2", eventstore.NoStream, eventstore.NewEvent("Placed", nil))

	// Each batch and the checkpoint commit in one backend transaction: on
	// SQLite or PostgreSQL, write the read model through tx.As (see
	// docs/subscriptions.md); the memory driver has no native transaction.
	err := store.Project(ctx, eventstore.SubscribeOptions{Name: "order-counts", BatchSize: 2,
		OnCaughtUp: func(eventstore.SubscriptionState) { stop() }},
		func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
			fmt.Println("batch of", len(events))
			return nil
		})
	fmt.Println(errors.Is(err, context.Canceled))
	pos, _, _ := store.Checkpoint(context.Background(), "order-counts")
	fmt.Println("checkpoint", pos)
	// Output:
	// batch of 2
	// batch of 1
	// true
	// checkpoint 3/0
}

func ExampleStore_SubscribeGroup() {
	ctx, stop := context.WithCancel(context.Background())
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	store.Append(ctx, "Order-1", eventstore.Exact(1), eventstore.NewEvent("Shipped", nil))

	// Run the same call in every process: the members split the streams
	// between them, each stream handled by one member at a time, in order.
	err := store.SubscribeGroup(ctx, eventstore.GroupOptions{
		SubscribeOptions: eventstore.SubscribeOptions{Name: "shipping"},
		Member:           "worker-1", // unique within the group
	}, func(_ context.Context, ev eventstore.RecordedEvent) error {
		fmt.Println(ev.StreamID, ev.Version, ev.Type)
		if ev.Type == "Shipped" {
			stop()
		}
		return nil
	})
	fmt.Println(errors.Is(err, context.Canceled))
	// Output:
	// Order-1 1 Placed
	// Order-1 2 Shipped
	// true
}

func ExampleStore_SaveSnapshot() {
	ctx := context.Background()
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	store.Append(ctx, "Account-42", eventstore.NoStream,
		eventstore.NewEvent("Deposited", []byte(`{"amount":100}`)),
		eventstore.NewEvent("Deposited", []byte(`{"amount":50}`)))
	store.SaveSnapshot(ctx, "Account-42", eventstore.Snapshot{Version: 2, Data: []byte(`{"balance":150}`)})

	snap, ok, _ := store.LoadSnapshot(ctx, "Account-42")
	fmt.Println(ok, snap.Version, string(snap.Data))
	// Replay only what came after the snapshot.
	for ev, err := range store.ReadStream(ctx, "Account-42", eventstore.ReadStreamOptions{From: snap.Version + 1}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("replay", ev.Version)
	}
	// Output:
	// true 2 {"balance":150}
}

func ExampleStore_Import() {
	ctx := context.Background()
	store, _ := eventstore.Open(ctx, "memory://") // also SQLite, PostgreSQL, DynamoDB
	defer store.Close()

	// Events recorded elsewhere keep their versions, IDs and times; streams
	// may interleave, and the import is all or nothing.
	at := time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)
	err := store.Import(ctx, []eventstore.RecordedEvent{
		{StreamID: "Account-42", Version: 1, ID: uuid.New(), Type: "Opened", RecordedAt: at},
		{StreamID: "Account-7", Version: 1, ID: uuid.New(), Type: "Opened", RecordedAt: at.Add(time.Minute)},
		{StreamID: "Account-42", Version: 2, ID: uuid.New(), Type: "Deposited", Data: []byte(`{"amount":100}`), RecordedAt: at.Add(time.Hour)},
	})
	if err != nil {
		log.Fatal(err)
	}
	for ev, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.StreamID, ev.Version, ev.Type, ev.RecordedAt.Format(time.Kitchen))
	}

	// A stream must continue where it is: Account-42 is at version 2.
	err = store.Import(ctx, []eventstore.RecordedEvent{{StreamID: "Account-42", Version: 2, ID: uuid.New(), Type: "Again"}})
	fmt.Println(errors.Is(err, eventstore.ErrWrongExpectedVersion))
	// Output:
	// Account-42 1 Opened 9:30AM
	// Account-7 1 Opened 9:31AM
	// Account-42 2 Deposited 10:30AM
	// true
}

func ExampleStore_Import_metadata() {
	ctx := context.Background()
	store, _ := eventstore.Open(ctx, "memory://") // also SQLite, PostgreSQL, DynamoDB
	defer store.Close()

	// History written elsewhere may hold metadata an append refuses:
	// hallgren/eventsourcing writes null, KurrentDB takes any bytes. An
	// import keeps it byte for byte, with its content type.
	err := store.Import(ctx, []eventstore.RecordedEvent{
		{StreamID: "Order-1", Version: 1, ID: uuid.New(), Type: "Created", Metadata: []byte(`null`)},
		{StreamID: "Order-1", Version: 2, ID: uuid.New(), Type: "Paid",
			Metadata: []byte{0x00, 0xff}, MetadataContentType: eventstore.Binary},
	})
	if err != nil {
		log.Fatal(err)
	}
	for ev, err := range store.ReadStream(ctx, "Order-1", eventstore.ReadStreamOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %q %s\n", ev.Type, ev.Metadata, ev.MetadataContentType)
	}

	// New appends still take only empty metadata or a JSON object.
	_, err = store.Append(ctx, "Order-1", eventstore.Exact(2), eventstore.Event{Type: "Shipped", Metadata: []byte(`null`)})
	fmt.Println(errors.Is(err, eventstore.ErrInvalidPayload))
	// Output:
	// Created "null" json
	// Paid "\x00\xff" binary
	// true
}

func ExampleStore_ListStreams() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "memory://")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	for _, id := range []string{"Order-2", "Order-1", "Order-3", "Customer-1"} {
		if _, err := store.Append(ctx, id, eventstore.NoStream, eventstore.NewEvent("Created", nil)); err != nil {
			log.Fatal(err)
		}
	}

	opts := eventstore.ListStreamsOptions{Category: "Order", Limit: 2}
	for {
		page, err := store.ListStreams(ctx, opts)
		if err != nil {
			log.Fatal(err)
		}
		for _, s := range page.Streams {
			fmt.Println(s.ID, s.Version)
		}
		if page.Next == "" {
			break
		}
		opts.Cursor = page.Next
	}
	// Output:
	// Order-1 1
	// Order-2 1
	// Order-3 1
}

func ExampleRedactURL() {
	fmt.Println(eventstore.RedactURL("postgres://app:s3cret@db.internal/events?sslmode=require"))
	fmt.Println(eventstore.RedactURL("dynamodb://events?region=eu-west-1&secret_key=abc"))
	// Output:
	// postgres://app:xxxxx@db.internal/events?sslmode=require
	// dynamodb://events?region=eu-west-1&secret_key=xxxxx
}

func ExampleStore_AppendMulti() {
	ctx := context.Background()
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	store.Append(ctx, "Account-a", eventstore.NoStream, eventstore.NewEvent("Deposited", []byte(`{"amount":100}`)))
	store.Append(ctx, "Account-b", eventstore.NoStream, eventstore.NewEvent("Opened", nil))

	// A transfer debits one account and credits the other, both or neither,
	// if neither account moved since it was read (both at version 1).
	transfer := eventstore.MultiAppend{
		Records: []eventstore.Record{
			{Stream: "Account-a", Event: eventstore.NewEvent("Debited", []byte(`{"amount":30}`))},
			{Stream: "Account-b", Event: eventstore.NewEvent("Credited", []byte(`{"amount":30}`))},
		},
		Expect: []eventstore.StreamExpectation{
			{Stream: "Account-a", Expected: eventstore.Exact(1)},
			{Stream: "Account-b", Expected: eventstore.Exact(1)},
		},
	}
	res, err := store.AppendMulti(ctx, transfer)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("versions:", res.Versions["Account-a"], res.Versions["Account-b"])

	// The same decision made on the old versions fails whole, naming every
	// stream that moved.
	for i := range transfer.Records {
		transfer.Records[i].Event.ID = uuid.New()
	}
	_, err = store.AppendMulti(ctx, transfer)
	var conflict *eventstore.AppendConflictError
	if errors.As(err, &conflict) {
		fmt.Println(errors.Is(err, eventstore.ErrWrongExpectedVersion), len(conflict.Streams), "streams moved")
	}
	fmt.Println(err)
	// Output:
	// versions: 2 2
	// true 2 streams moved
	// eventstore: append to several streams: append conflict: "Account-a": want 1, have 2; "Account-b": want 1, have 2
}

func ExampleStore_ReadQuery() {
	ctx := context.Background()
	store, _ := eventstore.Open(ctx, "memory://")
	defer store.Close()

	// Enrol a student in course c1 if it has fewer than 2 students: the
	// decision reads the events that matter by query, and the append holds
	// only if no such event was appended after the last one it saw.
	course := eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"Enrolled"}, Tags: []string{"course:c1"}}}}
	enrol := func(student string) error {
		var seen int
		var after eventstore.Position
		for ev, err := range store.ReadQuery(ctx, course, eventstore.ReadQueryOptions{}) {
			if err != nil {
				return err
			}
			seen, after = seen+1, ev.Position
		}
		if seen >= 2 {
			return errors.New("course c1 is full")
		}
		ev := eventstore.NewEvent("Enrolled", []byte(`{}`))
		ev.Tags = []string{"course:c1", "student:" + student}
		_, err := store.AppendMulti(ctx, eventstore.MultiAppend{
			Records:   []eventstore.Record{{Stream: "Student-" + student, Event: ev}},
			Condition: &eventstore.AppendCondition{FailIfEventsMatch: course, After: after},
		})
		return err
	}
	for _, s := range []string{"ada", "bob", "cy"} {
		fmt.Println(s, enrol(s))
	}
	for ev, err := range store.ReadQuery(ctx, course, eventstore.ReadQueryOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.StreamID, ev.Tags)
	}
	// Output:
	// ada <nil>
	// bob <nil>
	// cy course c1 is full
	// Student-ada [course:c1 student:ada]
	// Student-bob [course:c1 student:bob]
}
