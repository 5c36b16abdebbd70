// Command porting moves the history of an application built on
// github.com/hallgren/eventsourcing into an event store, keeping every
// event's bytes and time, as docs/porting.md describes.
//
// The program
//
//  1. creates a SQLite database in the shape hallgren/eventsourcing's SQL
//     event store and snapshot store write (tables events and snapshots),
//     with the rows its aggregates leave: JSON data, metadata `null` when an
//     event was tracked without metadata, a JSON object when it was, and
//     the aggregate's own timestamps;
//  2. imports those events into the destination in their global order with
//     eventstore.Store.Import (streams "<aggregate type>-<aggregate ID>",
//     versions as they are, event IDs derived from stream and version,
//     recorded times from the timestamps, metadata byte for byte), and the
//     snapshots with SaveSnapshot;
//  3. reads one aggregate back and prints it;
//  4. runs the import again: everything is there, nothing is written, so a
//     stopped port is resumed by running it again.
//
// By default the destination is a memory store; any other works the same:
//
//	go run ./examples/porting
//	go run ./examples/porting --to sqlite:///tmp/events.db
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventstore"
	"github.com/google/uuid"

	// Drivers register their URL scheme when imported.
	_ "github.com/eventkit/eventstore/drivers/memory"
	_ "github.com/eventkit/eventstore/drivers/postgres"
	_ "github.com/eventkit/eventstore/drivers/sqlite"
	// The database/sql driver "sqlite3" for the source database.
	_ "github.com/mattn/go-sqlite3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "porting:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("porting", flag.ContinueOnError)
	toURL := flags.String("to", "memory://", "destination store URL")
	if err := flags.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "porting-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	src, err := sql.Open("sqlite3", filepath.Join(dir, "hallgren.db"))
	if err != nil {
		return err
	}
	defer src.Close()
	if err := createSource(ctx, src); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	fmt.Fprintln(out, "1. source: 5 events of 2 aggregates, 1 snapshot, in hallgren/eventsourcing's SQL shape")

	dst, err := eventstore.Open(ctx, *toURL)
	if err != nil {
		return err
	}
	defer dst.Close()
	st, err := port(ctx, src, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. imported %d events (%d Import calls), %d snapshot\n", st.imported, st.imports, st.snapshots)

	fmt.Fprintln(out, "3. stream Order-ord-1:")
	for ev, err := range dst.ReadStream(ctx, "Order-ord-1", eventstore.ReadStreamOptions{}) {
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   v%d %s at %s data=%s metadata=%s (%s)\n", ev.Version, ev.Type,
			ev.RecordedAt.Format(time.RFC3339), ev.Data, ev.Metadata, ev.MetadataContentType)
	}
	snap, ok, err := dst.LoadSnapshot(ctx, "Order-ord-1")
	if err != nil {
		return err
	}
	if ok {
		fmt.Fprintf(out, "   snapshot at v%d: %s\n", snap.Version, snap.Data)
	}

	st, err = port(ctx, src, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "4. imported again: %d imported, %d already there\n", st.imported, st.skipped)
	return nil
}

// createSource creates the tables of hallgren/eventsourcing's SQLite event
// and snapshot stores and fills them as its aggregates would: seq is the
// global version, (id, type, version) an aggregate's event, timestamp the
// aggregate's clock in RFC 3339 (whole seconds, as its SQL stores write
// it), reason the event's Go type name.
func createSource(ctx context.Context, db *sql.DB) error {
	const schema = `
CREATE TABLE events (
	seq INTEGER PRIMARY KEY AUTOINCREMENT, id VARCHAR NOT NULL, version INTEGER, reason VARCHAR,
	type VARCHAR, timestamp VARCHAR, data BLOB, metadata BLOB, UNIQUE (id, type, version));
CREATE TABLE snapshots (id VARCHAR NOT NULL, type VARCHAR, version INTEGER, global_version INTEGER, state BLOB);`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return err
	}
	rows := []struct {
		id, typ        string
		version        int
		reason, at     string
		data, metadata string
	}{
		{"ord-1", "Order", 1, "Created", "2021-05-03T09:00:00Z", `{"Customer":"ada"}`, `null`},
		{"ord-1", "Order", 2, "ItemAdded", "2021-05-03T09:00:07Z", `{"SKU":"tea","Qty":2}`, `{"user":"ada","ip":"10.0.0.7"}`},
		{"cart-9", "Cart", 1, "Opened", "2021-05-03T09:01:00Z", `{}`, `null`},
		{"ord-1", "Order", 3, "Paid", "2021-05-04T17:30:00Z", `{"Amount":1250}`, `null`},
		{"cart-9", "Cart", 2, "Abandoned", "2021-05-05T00:00:00Z", `{}`, `null`},
	}
	for _, r := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO events (id, version, reason, type, timestamp, data, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.id, r.version, r.reason, r.typ, r.at, []byte(r.data), []byte(r.metadata)); err != nil {
			return err
		}
	}
	_, err := db.ExecContext(ctx, `INSERT INTO snapshots (id, type, version, global_version, state) VALUES (?, ?, ?, ?, ?)`,
		"ord-1", "Order", 2, 2, []byte(`{"Customer":"ada","Items":2}`))
	return err
}

type stats struct{ imported, skipped, imports, snapshots int }

// eventNamespace derives event IDs: hallgren/eventsourcing keeps none, and
// an ID derived from the stream and version is the same on every run, so
// a rerun meets the events it wrote before rather than new ones.
var eventNamespace = uuid.MustParse("5b7b3c8e-2f0a-4c8e-9d55-6a4f3e0c1d2b")

// port imports the events of src, in their global order (seq), in imports
// of up to 500 events, skipping those dst already has; then the latest
// snapshot of each aggregate.
func port(ctx context.Context, src *sql.DB, dst *eventstore.Store) (stats, error) {
	var st stats
	have := map[string]uint64{} // stream → its version in dst
	var after int64
	for {
		batch, last, err := readEvents(ctx, src, after, 500)
		if err != nil {
			return st, fmt.Errorf("source: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		after = last
		var todo []eventstore.RecordedEvent
		for _, ev := range batch {
			v, ok := have[ev.StreamID]
			if !ok {
				if v, err = dst.StreamVersion(ctx, ev.StreamID); err != nil {
					return st, err
				}
			}
			if ev.Version <= v {
				st.skipped++ // an earlier run imported it
				have[ev.StreamID] = v
				continue
			}
			have[ev.StreamID] = ev.Version
			todo = append(todo, ev)
		}
		if len(todo) == 0 {
			continue
		}
		if err := dst.Import(ctx, todo); err != nil {
			return st, err
		}
		st.imported += len(todo)
		st.imports++
	}
	rows, err := src.QueryContext(ctx, `SELECT id, type, version, state FROM snapshots`)
	if err != nil {
		return st, fmt.Errorf("source: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, typ string
		var version uint64
		var state []byte
		if err := rows.Scan(&id, &typ, &version, &state); err != nil {
			return st, fmt.Errorf("source: %w", err)
		}
		if err := dst.SaveSnapshot(ctx, typ+"-"+id, eventstore.Snapshot{Version: version, Data: state}); err != nil {
			return st, err
		}
		st.snapshots++
	}
	return st, rows.Err()
}

// readEvents reads up to limit events after global version after and
// returns them as events to import, with the global version of the last.
func readEvents(ctx context.Context, src *sql.DB, after int64, limit int) ([]eventstore.RecordedEvent, int64, error) {
	rows, err := src.QueryContext(ctx, `SELECT seq, id, version, reason, type, timestamp, data, metadata
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []eventstore.RecordedEvent
	var seq int64
	for rows.Next() {
		var (
			id, reason, typ, at string
			version             uint64
			data, metadata      []byte
		)
		if err := rows.Scan(&seq, &id, &version, &reason, &typ, &at, &data, &metadata); err != nil {
			return nil, 0, err
		}
		ev, err := toRecorded(id, typ, version, reason, at, data, metadata)
		if err != nil {
			return nil, 0, fmt.Errorf("event %d: %w", seq, err)
		}
		out = append(out, ev)
	}
	return out, seq, rows.Err()
}

// toRecorded maps one hallgren/eventsourcing event (core.Event's fields)
// to an event to import.
func toRecorded(aggregateID, aggregateType string, version uint64, reason, timestamp string, data, metadata []byte) (eventstore.RecordedEvent, error) {
	if aggregateType == "" || aggregateID == "" {
		return eventstore.RecordedEvent{}, errors.New("no aggregate type or ID")
	}
	at, err := time.Parse(time.RFC3339Nano, timestamp)
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("timestamp: %w", err)
	}
	stream := aggregateType + "-" + aggregateID // the stream hallgren's KurrentDB store writes too
	return eventstore.RecordedEvent{
		StreamID:    stream,
		Version:     version,
		ID:          uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s\x00%d", stream, version)),
		Type:        reason,
		ContentType: contentType(data),
		Data:        data,
		// `null` (an event tracked without metadata) stays `null`: JSON,
		// kept byte for byte by the import.
		Metadata:            metadata,
		MetadataContentType: contentType(metadata),
		RecordedAt:          at,
	}, nil
}

// contentType is JSON for empty bytes or valid JSON (what hallgren's
// default encoder writes), Binary for the bytes of another encoder.
func contentType(b []byte) eventstore.ContentType {
	if len(b) == 0 || utf8.Valid(b) && json.Valid(b) {
		return eventstore.JSON
	}
	return eventstore.Binary
}
