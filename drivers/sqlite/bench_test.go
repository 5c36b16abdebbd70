package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/google/uuid"
)

// Every store benchmark has a raw twin (…/raw): plain go-sqlite3 doing the
// same work on a minimal table in its own file in the same directory, with
// the same durability (WAL, synchronous=FULL). The twin writes through one
// connection opened with _txlock=immediate and prepared statements reused
// inside one transaction per append (read the stream's version, check it,
// insert each event); it reads with prepared keyset-paged SELECTs of 512 rows
// (the Store's page size) from a separate pool, scanning every column; its
// subscriber wakes on an in-process signal after each commit and reads the
// new rows. The workloads are conformance.Run*, shared with the store side.

// benchDir is where each sub-benchmark's files go.
func benchDir(b *testing.B) string { return b.TempDir() }

func benchStore(b *testing.B) *eventstore.Store { return benchStoreWith(b, sqlite.Options{}) }

func benchStoreWith(b *testing.B, opts sqlite.Options) *eventstore.Store {
	d, err := sqlite.Open(b.Context(), filepath.Join(benchDir(b), "events.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	s := eventstore.New(d, eventstore.Options{})
	b.Cleanup(func() { s.Close() })
	return s
}

// raw is the raw go-sqlite3 twin.
type raw struct {
	w, r         *sql.DB
	head, insert *sql.Stmt // on w
	readStream   *sql.Stmt // on r
	readAll      *sql.Stmt // on r

	mu     sync.Mutex // protects notify
	notify []chan struct{}
}

const rawSchema = `CREATE TABLE IF NOT EXISTS raw_events (
	position    INTEGER PRIMARY KEY,
	stream      TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	event_id    BLOB    NOT NULL,
	type        TEXT    NOT NULL,
	data        BLOB    NOT NULL,
	metadata    BLOB    NOT NULL,
	recorded_at INTEGER NOT NULL,
	UNIQUE (stream, version)
)`

const rawColumns = "position, stream, version, event_id, type, data, metadata, recorded_at"

func newRaw(b *testing.B) *raw { return newRawWith(b, "FULL") }

// newRawWith opens the twin with PRAGMA synchronous set to sync.
func newRawWith(b *testing.B, sync string) *raw {
	path := filepath.Join(benchDir(b), "raw.db")
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=" + sync + "&_busy_timeout=5000&_txlock=immediate"
	w, err := sql.Open("sqlite3", dsn)
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite3", dsn)
	if err != nil {
		b.Fatal(err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	b.Cleanup(func() { w.Close(); r.Close() })
	ctx := b.Context()
	if _, err := w.ExecContext(ctx, rawSchema); err != nil {
		b.Fatal(err)
	}
	rw := &raw{w: w, r: r}
	prep := func(db *sql.DB, q string) *sql.Stmt {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	rw.head = prep(w, "SELECT COALESCE(MAX(version), 0) FROM raw_events WHERE stream = ?")
	rw.insert = prep(w, "INSERT INTO raw_events (stream, version, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
	rw.readStream = prep(r, "SELECT "+rawColumns+" FROM raw_events WHERE stream = ? AND version >= ? ORDER BY version LIMIT 512")
	rw.readAll = prep(r, "SELECT "+rawColumns+" FROM raw_events WHERE position > ? ORDER BY position LIMIT 512")
	return rw
}

// append is a conformance.AppendFunc: one IMMEDIATE transaction that checks
// the version and inserts each event with the prepared statement.
func (rw *raw) append(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	tx, err := rw.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var current int64
	if err := tx.StmtContext(ctx, rw.head).QueryRowContext(ctx, stream).Scan(&current); err != nil {
		return err
	}
	if uint64(current) != expected {
		return fmt.Errorf("raw: %s at version %d, want %d", stream, current, expected)
	}
	ins := tx.StmtContext(ctx, rw.insert)
	at := time.Now().UnixMicro()
	for i, e := range events {
		if _, err := ins.ExecContext(ctx, stream, current+int64(i)+1, e.ID[:], e.Type, e.Data, []byte{}, at); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	rw.mu.Lock()
	for _, ch := range rw.notify {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	rw.mu.Unlock()
	return nil
}

// rawEvent is what the raw twin scans a row into.
type rawEvent struct {
	position, version int64
	stream, typ       string
	id                uuid.UUID
	data, metadata    []byte
	recordedAt        time.Time
}

// page runs a keyed page query and scans every row.
func (rw *raw) page(ctx context.Context, st *sql.Stmt, args ...any) ([]rawEvent, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]rawEvent, 0, 512)
	for rows.Next() {
		var e rawEvent
		var at int64
		if err := rows.Scan(&e.position, &e.stream, &e.version, &e.id, &e.typ, &e.data, &e.metadata, &at); err != nil {
			return nil, err
		}
		e.recordedAt = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func (rw *raw) readStreamAll(ctx context.Context, stream string) (int, error) {
	n := 0
	for from := int64(1); ; {
		page, err := rw.page(ctx, rw.readStream, stream, from)
		if err != nil {
			return n, err
		}
		n += len(page)
		if len(page) < 512 {
			return n, nil
		}
		from = page[len(page)-1].version + 1
	}
}

func (rw *raw) readLog(ctx context.Context) (int, error) {
	n := 0
	for after := int64(0); ; {
		page, err := rw.page(ctx, rw.readAll, after)
		if err != nil {
			return n, err
		}
		n += len(page)
		if len(page) < 512 {
			return n, nil
		}
		after = page[len(page)-1].position
	}
}

// subscribe starts the twin of a live subscription: after each commit signal
// it reads the rows after the last one seen and sends one value per row.
// With a stream it reads only that stream's rows, by the (stream, version)
// index, after the last version seen: the twin of a filtered subscription.
func (rw *raw) subscribe(b *testing.B, stream string) <-chan struct{} {
	wake := make(chan struct{}, 1)
	rw.mu.Lock()
	rw.notify = append(rw.notify, wake)
	rw.mu.Unlock()
	delivered := make(chan struct{})
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	var after, next int64 = 0, 1 // the last position seen; the next version
	read := func() ([]rawEvent, error) {
		if stream == "" {
			page, err := rw.page(ctx, rw.readAll, after)
			if len(page) > 0 {
				after = page[len(page)-1].position
			}
			return page, err
		}
		page, err := rw.page(ctx, rw.readStream, stream, next)
		if len(page) > 0 {
			next = page[len(page)-1].version + 1
		}
		return page, err
	}
	wg.Go(func() {
		defer close(delivered)
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			for {
				page, err := read()
				if err != nil {
					return
				}
				for range page {
					select {
					case delivered <- struct{}{}:
					case <-ctx.Done():
						return
					}
				}
				if len(page) < 512 {
					break
				}
			}
		}
	})
	return delivered
}

// BenchmarkAppend: single events and 100-event batches from one client, and
// single events from 8 clients on distinct streams (they queue for the one
// write lock).
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct{ batch, clients int }{{1, 1}, {100, 1}, {1, 8}} {
		name := fmt.Sprintf("batch=%d", c.batch)
		if c.clients > 1 {
			name += fmt.Sprintf("/clients=%d", c.clients)
		}
		b.Run(name+"/store", func(b *testing.B) {
			conformance.BenchmarkAppend(b, benchStore(b), c.batch, c.clients)
		})
		b.Run(name+"/raw", func(b *testing.B) {
			conformance.RunAppend(b, c.batch, c.clients, newRaw(b).append)
		})
	}
	// The durability trade-off of synchronous=normal (docs/sqlite.md).
	b.Run("batch=1/synchronous=normal/store", func(b *testing.B) {
		conformance.BenchmarkAppend(b, benchStoreWith(b, sqlite.Options{Synchronous: sqlite.SynchronousNormal}), 1, 1)
	})
	b.Run("batch=1/synchronous=normal/raw", func(b *testing.B) {
		conformance.RunAppend(b, 1, 1, newRawWith(b, "NORMAL").append)
	})
}

func BenchmarkReadStream(b *testing.B) {
	b.Run("events=1000/store", func(b *testing.B) {
		conformance.BenchmarkReadStream(b, benchStore(b), 1000)
	})
	b.Run("events=1000/raw", func(b *testing.B) {
		rw := newRaw(b)
		conformance.RunReadStream(b, 1000, 1000, rw.append, rw.readStreamAll)
	})
}

func BenchmarkReadAll(b *testing.B) {
	b.Run("events=100000/store", func(b *testing.B) {
		conformance.BenchmarkReadAll(b, benchStore(b), 100_000)
	})
	b.Run("events=100000/raw", func(b *testing.B) {
		rw := newRaw(b)
		conformance.RunReadAll(b, 100_000, 1000, rw.append, rw.readLog)
	})
}

// BenchmarkLive: append one event, wait until a live subscriber has handled
// it. The time includes the append's commit (a WAL sync).
func BenchmarkLive(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		conformance.BenchmarkLive(b, benchStore(b))
	})
	b.Run("raw", func(b *testing.B) {
		rw := newRaw(b)
		conformance.RunLive(b, conformance.BenchStream("Live"), rw.append, rw.subscribe(b, ""))
	})
}

// BenchmarkCatchUp: a subscription's catch-up against ReadAll of the same
// 100,000 events, in the same run (catchup/readall is their ratio).
func BenchmarkCatchUp(b *testing.B) {
	b.Run("events=100000/store", func(b *testing.B) {
		conformance.BenchmarkCatchUp(b, benchStore(b), 100_000)
	})
}

// BenchmarkFilteredCatchUp: a subscription to a category that is 0.1 % of
// the log catches up: the category index makes it cost its matches.
func BenchmarkFilteredCatchUp(b *testing.B) {
	b.Run("events=200000/share=1000/store", func(b *testing.B) {
		conformance.BenchmarkFilteredCatchUp(b, benchStore(b), 200_000, 1000)
	})
}

// BenchmarkIdleSubscriptions: 100 idle durable filtered subscriptions while
// another category is appended, against none in the same run.
func BenchmarkIdleSubscriptions(b *testing.B) {
	for _, subs := range []int{0, 100} {
		b.Run(fmt.Sprintf("subs=%d/store", subs), func(b *testing.B) {
			conformance.BenchmarkIdleSubscriptions(b, benchStore(b), subs)
		})
	}
}

// BenchmarkLiveWithWriters: live delivery while 7 other writers append as
// fast as they can, all through the one write lock. The raw twin's writers
// append to its table; its subscriber reads only the live stream's rows.
func BenchmarkLiveWithWriters(b *testing.B) {
	b.Run("writers=8/store", func(b *testing.B) {
		conformance.BenchmarkLiveWithWriters(b, benchStore(b), 8)
	})
	b.Run("writers=8/raw", func(b *testing.B) {
		rw := newRaw(b)
		stream := conformance.BenchStream("Live")
		conformance.RunLiveWithWriters(b, 8, stream, rw.append, rw.append, rw.subscribe(b, stream))
	})
}
