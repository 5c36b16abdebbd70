package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/google/uuid"
)

// Every store benchmark (…/store) has twins doing the same work in their own
// file in the same directory, in the same run, as sibling sub-benchmarks:
//
//   - …/minimal: plain go-sqlite3 on the simplest event table (position
//     INTEGER PRIMARY KEY, stream, version, event ID, type, data, metadata,
//     recorded time, UNIQUE (stream, version); the columns of PostgreSQL's
//     minimal table), with the driver's default pragmas: WAL,
//     synchronous=FULL, a 5 s busy timeout, and a pool of 4 read
//     connections. It writes through one connection opened with
//     _txlock=immediate, one transaction per append that reads the stream's
//     version, checks it and inserts each event with a reused prepared
//     statement; it reads with prepared keyset-paged SELECTs of 512 rows
//     (the Store's page size), scanning every column; its subscriber wakes
//     on an in-process signal after each commit and reads the new rows. It
//     has no category index and no record of appends: what the design costs
//     is store/minimal.
//   - …/raw: the driver's own SQL on the driver's schema (a file the driver
//     created), sent through plain database/sql without the Store and the
//     driver around it: the statements of the driver's append (its head
//     query, the appends row, its multi-row INSERTs) in one BEGIN IMMEDIATE
//     transaction on a connection of its own, and its read statements with
//     the Store's page bounds. What the Go layers cost is store/raw.
//
// The workloads are conformance.Run*, shared with the store side. Before
// 2026-12-03 the minimal twin was named …/raw.

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

// minimal is the minimal-table twin.
type minimal struct {
	w, r         *sql.DB
	head, insert *sql.Stmt // on w
	readStream   *sql.Stmt // on r
	readAll      *sql.Stmt // on r

	mu     sync.Mutex // protects notify
	notify []chan struct{}
}

const minimalSchema = `CREATE TABLE IF NOT EXISTS minimal_events (
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

const minimalColumns = "position, stream, version, event_id, type, data, metadata, recorded_at"

func newMinimal(b *testing.B) *minimal { return newMinimalWith(b, "FULL") }

// newMinimalWith opens the twin with PRAGMA synchronous set to sync.
func newMinimalWith(b *testing.B, sync string) *minimal {
	path := filepath.Join(benchDir(b), "minimal.db")
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
	r.SetMaxOpenConns(sqlite.DefaultMaxReadConns)
	r.SetMaxIdleConns(sqlite.DefaultMaxReadConns)
	b.Cleanup(func() { w.Close(); r.Close() })
	ctx := b.Context()
	if _, err := w.ExecContext(ctx, minimalSchema); err != nil {
		b.Fatal(err)
	}
	m := &minimal{w: w, r: r}
	m.head = prepare(b, w, "SELECT COALESCE(MAX(version), 0) FROM minimal_events WHERE stream = ?")
	m.insert = prepare(b, w, "INSERT INTO minimal_events (stream, version, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
	m.readStream = prepare(b, r, "SELECT "+minimalColumns+" FROM minimal_events WHERE stream = ? AND version >= ? ORDER BY version LIMIT 512")
	m.readAll = prepare(b, r, "SELECT "+minimalColumns+" FROM minimal_events WHERE position > ? ORDER BY position LIMIT 512")
	return m
}

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func prepare(b *testing.B, db preparer, query string) *sql.Stmt {
	b.Helper()
	st, err := db.PrepareContext(b.Context(), query)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// append is a conformance.AppendFunc: one IMMEDIATE transaction that checks
// the version and inserts each event with the prepared statement.
func (m *minimal) append(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	tx, err := m.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var current int64
	if err := tx.StmtContext(ctx, m.head).QueryRowContext(ctx, stream).Scan(&current); err != nil {
		return err
	}
	if uint64(current) != expected {
		return fmt.Errorf("minimal: %s at version %d, want %d", stream, current, expected)
	}
	ins := tx.StmtContext(ctx, m.insert)
	at := time.Now().UnixMicro()
	for i, e := range events {
		if _, err := ins.ExecContext(ctx, stream, current+int64(i)+1, e.ID[:], e.Type, e.Data, []byte{}, at); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	m.mu.Lock()
	for _, ch := range m.notify {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	m.mu.Unlock()
	return nil
}

// twinEvent is what a twin scans a row into.
type twinEvent struct {
	position, version, contentType int64
	stream, typ                    string
	id                             uuid.UUID
	data, metadata                 []byte
	recordedAt                     time.Time
	tags                           sql.NullString // the raw twin's: the driver's tags column
	metadataContentType            sql.NullInt64  // the raw twin's: the driver's metadata_content_type column
}

// page runs a keyed page query and scans every row: targets returns the
// scan targets of e, the row being read.
func page(ctx context.Context, st *sql.Stmt, targets func(e *twinEvent, at *int64) []any, args ...any) ([]twinEvent, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]twinEvent, 0, 512)
	for rows.Next() {
		var e twinEvent
		var at int64
		if err := rows.Scan(targets(&e, &at)...); err != nil {
			return nil, err
		}
		e.recordedAt = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// pages reads pages of at most 512 rows until a short one: next returns the
// arguments of the page after the given last row (nil: the first page).
func pages(ctx context.Context, st *sql.Stmt, targets func(e *twinEvent, at *int64) []any, next func(last *twinEvent) []any) (int, error) {
	n := 0
	for args := next(nil); ; {
		p, err := page(ctx, st, targets, args...)
		if err != nil {
			return n, err
		}
		n += len(p)
		if len(p) < 512 {
			return n, nil
		}
		args = next(&p[len(p)-1])
	}
}

func minimalTargets(e *twinEvent, at *int64) []any {
	return []any{&e.position, &e.stream, &e.version, &e.id, &e.typ, &e.data, &e.metadata, at}
}

func (m *minimal) readStreamAll(ctx context.Context, stream string) (int, error) {
	return pages(ctx, m.readStream, minimalTargets, func(last *twinEvent) []any {
		if last == nil {
			return []any{stream, 1}
		}
		return []any{stream, last.version + 1}
	})
}

func (m *minimal) readLog(ctx context.Context) (int, error) {
	return pages(ctx, m.readAll, minimalTargets, func(last *twinEvent) []any {
		if last == nil {
			return []any{0}
		}
		return []any{last.position}
	})
}

// subscribe starts the twin of a live subscription: after each commit signal
// it reads the rows after the last one seen and sends one value per row.
// With a stream it reads only that stream's rows, by the (stream, version)
// index, after the last version seen: the twin of a filtered subscription.
func (m *minimal) subscribe(b *testing.B, stream string) <-chan struct{} {
	wake := make(chan struct{}, 1)
	m.mu.Lock()
	m.notify = append(m.notify, wake)
	m.mu.Unlock()
	delivered := make(chan struct{})
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	var after, next int64 = 0, 1 // the last position seen; the next version
	read := func() ([]twinEvent, error) {
		if stream == "" {
			p, err := page(ctx, m.readAll, minimalTargets, after)
			if len(p) > 0 {
				after = p[len(p)-1].position
			}
			return p, err
		}
		p, err := page(ctx, m.readStream, minimalTargets, stream, next)
		if len(p) > 0 {
			next = p[len(p)-1].version + 1
		}
		return p, err
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
				p, err := read()
				if err != nil {
					return
				}
				for range p {
					select {
					case delivered <- struct{}{}:
					case <-ctx.Done():
						return
					}
				}
				if len(p) < 512 {
					break
				}
			}
		}
	})
	return delivered
}

// raw is the twin that sends the driver's own SQL, on a file with the
// driver's schema, through plain database/sql.
type raw struct {
	mu                      sync.Mutex // one append at a time on conn, as the driver's writeSem
	conn                    *sql.Conn  // the write connection
	begin, commit, rollback *sql.Stmt  // on conn
	head, insertAppend      *sql.Stmt  // on conn
	insert                  []*sql.Stmt
	readStream, readAll     *sql.Stmt // on the pool
}

// driverConn opens a driver on the file at path, so that it creates its
// schema there, and returns the driver's pool and one connection of it,
// for a twin that sends the driver's SQL itself. Both close when b ends.
func driverConn(b *testing.B, path string, opts sqlite.Options) (*sql.DB, *sql.Conn) {
	ctx := b.Context()
	d, err := sqlite.Open(ctx, path, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	var db *sql.DB
	d.As(&db)
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return db, conn
}

func newRaw(b *testing.B) *raw {
	db, conn := driverConn(b, filepath.Join(benchDir(b), "raw.db"), sqlite.Options{})
	rw := &raw{conn: conn}
	rw.begin = prepare(b, conn, "BEGIN IMMEDIATE")
	rw.commit = prepare(b, conn, "COMMIT")
	rw.rollback = prepare(b, conn, "ROLLBACK")
	rw.head = prepare(b, conn, sqlite.QueryHead)
	rw.insertAppend = prepare(b, conn, sqlite.QueryInsertAppend)
	for _, n := range sqlite.InsertRows {
		rw.insert = append(rw.insert, prepare(b, conn, sqlite.InsertQuery(n)))
	}
	rw.readStream = prepare(b, db, sqlite.QueryStreamForwards)
	rw.readAll = prepare(b, db, sqlite.QueryAllForwards)
	return rw
}

// append is a conformance.AppendFunc running the driver's statements.
func (rw *raw) append(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if _, err := rw.begin.ExecContext(ctx); err != nil {
		return err
	}
	if err := rw.appendTx(ctx, stream, expected, events); err != nil {
		rw.rollback.ExecContext(context.WithoutCancel(ctx))
		return err
	}
	_, err := rw.commit.ExecContext(ctx)
	return err
}

func (rw *raw) appendTx(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	var current int64
	var retryFrom sql.NullInt64
	var marks sql.NullString // the stream's stream_marks row: none in a benchmark
	if err := rw.head.QueryRowContext(ctx, stream, events[0].ID[:]).Scan(&current, &retryFrom, &marks); err != nil {
		return err
	}
	if uint64(current) != expected || retryFrom.Valid {
		return fmt.Errorf("raw: %s at version %d, want %d", stream, current, expected)
	}
	if _, err := rw.insertAppend.ExecContext(ctx, stream, events[0].ID[:], current+1); err != nil {
		return err
	}
	category, _, _ := strings.Cut(stream, "-")
	at := time.Now().UnixMicro()
	args := make([]any, 0, 9*64)
	for i := 0; i < len(events); {
		k := 0
		for sqlite.InsertRows[k] > len(events)-i {
			k++
		}
		args = args[:0]
		for j := i; j < i+sqlite.InsertRows[k]; j++ {
			e := &events[j]
			args = append(args, stream, current+int64(j)+1, category, e.ID[:], e.Type, int64(e.ContentType), e.Data, []byte{}, at)
		}
		if _, err := rw.insert[k].ExecContext(ctx, args...); err != nil {
			return err
		}
		i += sqlite.InsertRows[k]
	}
	return nil
}

func rawStreamTargets(e *twinEvent, at *int64) []any {
	return []any{&e.position, &e.version, &e.id, &e.typ, &e.contentType, &e.data, &e.metadata, at, &e.tags, &e.metadataContentType}
}

func rawAllTargets(e *twinEvent, at *int64) []any {
	return []any{&e.stream, &e.position, &e.version, &e.id, &e.typ, &e.contentType, &e.data, &e.metadata, at, &e.tags, &e.metadataContentType}
}

func (rw *raw) readStreamAll(ctx context.Context, stream string) (int, error) {
	return pages(ctx, rw.readStream, rawStreamTargets, func(last *twinEvent) []any {
		if last == nil {
			return []any{stream, 1, 512}
		}
		return []any{stream, last.version + 1, 512}
	})
}

func (rw *raw) readLog(ctx context.Context) (int, error) {
	return pages(ctx, rw.readAll, rawAllTargets, func(last *twinEvent) []any {
		if last == nil {
			return []any{0, int64(math.MaxInt64), 512}
		}
		return []any{last.position, int64(math.MaxInt64), 512}
	})
}

// twin is one side of a benchmark.
type twin struct {
	name string
	open func(b *testing.B) (conformance.AppendFunc, conformance.ReadStreamFunc, conformance.ReadAllFunc)
}

var twins = []twin{
	{"store", func(b *testing.B) (conformance.AppendFunc, conformance.ReadStreamFunc, conformance.ReadAllFunc) {
		s := benchStore(b)
		return conformance.StoreAppend(s), conformance.StoreReadStream(s), conformance.StoreReadAll(s)
	}},
	{"raw", func(b *testing.B) (conformance.AppendFunc, conformance.ReadStreamFunc, conformance.ReadAllFunc) {
		rw := newRaw(b)
		return rw.append, rw.readStreamAll, rw.readLog
	}},
	{"minimal", func(b *testing.B) (conformance.AppendFunc, conformance.ReadStreamFunc, conformance.ReadAllFunc) {
		m := newMinimal(b)
		return m.append, m.readStreamAll, m.readLog
	}},
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
		for _, tw := range twins {
			b.Run(name+"/"+tw.name, func(b *testing.B) {
				appendFn, _, _ := tw.open(b)
				conformance.RunAppend(b, c.batch, c.clients, appendFn)
			})
		}
	}
	// The durability trade-off of synchronous=normal (docs/sqlite.md).
	b.Run("batch=1/synchronous=normal/store", func(b *testing.B) {
		conformance.BenchmarkAppend(b, benchStoreWith(b, sqlite.Options{Synchronous: sqlite.SynchronousNormal}), 1, 1)
	})
	b.Run("batch=1/synchronous=normal/minimal", func(b *testing.B) {
		conformance.RunAppend(b, 1, 1, newMinimalWith(b, "NORMAL").append)
	})
}

func BenchmarkReadStream(b *testing.B) {
	for _, tw := range twins {
		b.Run("events=1000/"+tw.name, func(b *testing.B) {
			appendFn, read, _ := tw.open(b)
			conformance.RunReadStream(b, 1000, 1000, appendFn, read)
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	for _, tw := range twins {
		b.Run("events=100000/"+tw.name, func(b *testing.B) {
			appendFn, _, read := tw.open(b)
			conformance.RunReadAll(b, 100_000, 1000, appendFn, read)
		})
	}
}

// BenchmarkLive: append one event, wait until a live subscriber has handled
// it. The time includes the append's commit (a WAL sync).
func BenchmarkLive(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		conformance.BenchmarkLive(b, benchStore(b))
	})
	b.Run("minimal", func(b *testing.B) {
		m := newMinimal(b)
		conformance.RunLive(b, conformance.BenchStream("Live"), m.append, m.subscribe(b, ""))
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
// fast as they can, all through the one write lock. The minimal twin's
// writers append to its table; its subscriber reads only the live stream's rows.
func BenchmarkLiveWithWriters(b *testing.B) {
	b.Run("writers=8/store", func(b *testing.B) {
		conformance.BenchmarkLiveWithWriters(b, benchStore(b), 8)
	})
	b.Run("writers=8/minimal", func(b *testing.B) {
		m := newMinimal(b)
		stream := conformance.BenchStream("Live")
		conformance.RunLiveWithWriters(b, 8, stream, m.append, m.append, m.subscribe(b, stream))
	})
}

// BenchmarkInterleaved measures the store and its twins in one benchmark,
// taking turns, as the PostgreSQL benchmark of the same name does: each
// iteration runs one round of the workload on every twin, starting with a
// different twin each time, and times each round on its own. On a shared
// machine whose load and fsync rate drift from one minute to the next,
// sibling sub-benchmarks run a minute apart compare the weather as much as
// the code; rounds of ~0.1 s taken in turn see the same weather. It reports
// each twin's events/s over all its rounds and the median over rounds of
// the store's throughput as a percentage of the raw and the minimal twin's
// (store/raw-%, store/minimal-%): those are the figures to quote.
func BenchmarkInterleaved(b *testing.B) {
	type side struct {
		append     conformance.AppendFunc
		readStream conformance.ReadStreamFunc
		readAll    conformance.ReadAllFunc
		seeded     string // a stream of 1,000 events
	}
	type round func(ctx context.Context, s *side) (int, error)
	appendRound := func(batch, clients int) round {
		appends := min(100, max(1, 1000/batch)) / clients
		return func(ctx context.Context, s *side) (int, error) {
			return conformance.ConcurrentAppends(s.append, batch, clients, appends)(ctx)
		}
	}
	cases := []struct {
		name  string
		seed  int // events to seed, in streams of 1,000
		round round
	}{
		{"append/batch=1", 0, appendRound(1, 1)},
		{"append/batch=100", 0, appendRound(100, 1)},
		{"append/batch=1/clients=8", 0, appendRound(1, 8)},
		{"readstream/events=1000", 1000, func(ctx context.Context, s *side) (int, error) {
			total := 0
			for range 20 { // a round of one read would be too short to time
				n, err := s.readStream(ctx, s.seeded)
				if err != nil {
					return total, err
				}
				total += n
			}
			return total, nil
		}},
		{"readall/events=100000", 100_000, func(ctx context.Context, s *side) (int, error) {
			return s.readAll(ctx)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			sides := make([]*side, len(twins))
			for i, tw := range twins {
				s := &side{}
				s.append, s.readStream, s.readAll = tw.open(b)
				for done := 0; done < c.seed; done += 1000 {
					s.seeded = conformance.BenchStream("Bench")
					if err := s.append(b.Context(), s.seeded, 0, conformance.BenchEvents(1000)); err != nil {
						b.Fatal(err)
					}
				}
				sides[i] = s
			}
			cs := make([]conformance.Contender, len(twins))
			for i, tw := range twins {
				cs[i] = conformance.Contender{Name: tw.name, Round: func(ctx context.Context) (int, error) { return c.round(ctx, sides[i]) }}
			}
			rates := conformance.RunInterleaved(b, 3, cs) // caches fill
			b.ReportMetric(conformance.MedianPercent(rates, 0, 1), "store/raw-%")
			b.ReportMetric(conformance.MedianPercent(rates, 0, 2), "store/minimal-%")
		})
	}
}
