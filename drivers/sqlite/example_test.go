package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
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

// A projection into a SQL table in the same database: the handler writes
// through the batch's *sql.Tx, which also saves the checkpoint, so after a
// crash every order is counted exactly once.
func Example_projection() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "eventstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := eventstore.Open(ctx, "sqlite://"+filepath.Join(dir, "events.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	var db *sql.DB
	store.As(&db)
	if _, err := db.ExecContext(ctx, `CREATE TABLE order_totals (stream TEXT PRIMARY KEY, orders INTEGER, total REAL)`); err != nil {
		log.Fatal(err)
	}
	store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("OrderPlaced", []byte(`{"total": 12.5}`)))
	store.Append(ctx, "Order-2", eventstore.NoStream, eventstore.NewEvent("OrderPlaced", []byte(`{"total": 30}`)))
	store.Append(ctx, "Order-1", eventstore.Exact(1), eventstore.NewEvent("OrderPlaced", []byte(`{"total": 7.5}`)))

	run, stop := context.WithCancel(ctx)
	err = store.Project(run, eventstore.SubscribeOptions{Name: "order-totals", OnCaughtUp: func(eventstore.SubscriptionState) { stop() }},
		func(ctx context.Context, tx *eventstore.Tx, events []eventstore.RecordedEvent) error {
			var sqlTx *sql.Tx
			if !tx.As(&sqlTx) {
				return errors.New("not a SQLite transaction")
			}
			for _, ev := range events {
				var placed struct{ Total float64 }
				if err := json.Unmarshal(ev.Data, &placed); err != nil {
					return err
				}
				_, err := sqlTx.ExecContext(ctx, `INSERT INTO order_totals (stream, orders, total) VALUES (?, 1, ?)
					ON CONFLICT (stream) DO UPDATE SET orders = orders + 1, total = total + excluded.total`, ev.StreamID, placed.Total)
				if err != nil {
					return err
				}
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT stream, orders, total FROM order_totals ORDER BY stream`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var stream string
		var orders int
		var total float64
		rows.Scan(&stream, &orders, &total)
		fmt.Println(stream, orders, total)
	}
	// Output:
	// Order-1 2 20
	// Order-2 1 30
}
