package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/conformance"
	"github.com/eventkit/eventstore/drivers/sqlite"
)

// BenchmarkSingleAppendCost takes apart the cost of a single-event append
// with an expected version (issue 16): the driver's own SQL on its schema
// (raw, as in BenchmarkInterleaved), and the same with one thing changed,
// against the minimal table, in interleaved rounds of 100 appends. It
// reports each variant's median throughput as a percentage of the minimal
// table (<variant>/minimal-%) and the WAL frames (pages written) per append
// (<variant>-frames), counted on a fresh file before the timed rounds.
//
// Finding (2026-12-03, docs/benchmarks.md, "Single appends"): the gap is
// the pages each commit writes, one per B-tree an append touches (4.2 WAL
// frames per append against the minimal table's 2.1), not the statements:
// each frame is two write(2) calls, and system calls are dear on the
// shared VM. One statement fewer (folded, trigger), a bigger page cache and
// other page sizes gained nothing measurable; without both extra B-trees
// (neither) appends came close to the minimal table.
func BenchmarkSingleAppendCost(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+strings.ToLower(sync), func(b *testing.B) {
			m := newMinimalWith(b, sync)
			frames := []float64{walFrames(b, m.w, minimalPath(b, m), m.append)}
			cs := []conformance.Contender{{Name: "minimal", Round: conformance.ConcurrentAppends(m.append, 1, 1, 100)}}
			for _, name := range appendCostVariants {
				v := newAppendVariant(b, name, sync)
				frames = append(frames, walFrames(b, v.conn, v.path, v.append))
				cs = append(cs, conformance.Contender{Name: name, Round: conformance.ConcurrentAppends(v.append, 1, 1, 100)})
			}
			rates := conformance.RunInterleaved(b, 2, cs)
			for i, c := range cs {
				b.ReportMetric(frames[i], c.Name+"-frames")
				if i > 0 {
					b.ReportMetric(conformance.MedianPercent(rates, i, 0), c.Name+"/minimal-%")
				}
			}
		})
	}
}

// appendCostVariants are the variants of BenchmarkSingleAppendCost:
//
//   - raw: the driver's statements: its head query (the stream's version and
//     the appends row of the first event ID), the appends row, the INSERT.
//   - no-appends-row: without the appends row (no durable idempotency).
//   - no-category-index: without the category index (category-filtered
//     reads scan the log).
//   - neither: without both: the minimal table's B-trees plus a column.
//   - folded: no head query; the appends row is inserted only if the
//     stream is at the expected version and the first event ID began no
//     earlier append (INSERT OR IGNORE … SELECT … WHERE), one statement
//     fewer, same pages.
//   - trigger: the appends row written by a trigger on events (right for
//     single-event appends only), one statement fewer, same pages.
//   - cache-64mib: raw with a 64 MiB page cache (PRAGMA cache_size).
//   - page-1kib, page-8kib: raw on a file created with 1 or 8 KiB pages
//     (SQLite's default, and the driver's, is 4 KiB).
var appendCostVariants = []string{"raw", "no-appends-row", "no-category-index", "neither", "folded", "trigger", "cache-64mib", "page-1kib", "page-8kib"}

// appendVariant is one variant: a file the driver created, written through
// plain database/sql on one connection.
type appendVariant struct {
	name                    string
	path                    string
	mu                      sync.Mutex // one append at a time on conn
	conn                    *sql.Conn
	begin, commit, rollback *sql.Stmt
	head, insertAppend      *sql.Stmt // nil when the variant has none
	insert                  *sql.Stmt
}

const (
	// headNoAppends is the head query without the appends lookup, with the
	// same parameters.
	headNoAppends = `SELECT (SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1), NULL, NULL WHERE ?2 IS NOT NULL`
	// insertAppendIfHead inserts the appends row (stream, first event ID,
	// first version) if the stream is at first version - 1 and the ID began
	// no earlier append: one row affected, or none.
	insertAppendIfHead = `INSERT OR IGNORE INTO appends (stream, first_event_id, first_version)
		SELECT ?1, ?2, ?3 WHERE (SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1) = ?3 - 1`
	appendsTrigger = `CREATE TRIGGER bench_appends AFTER INSERT ON events BEGIN
		INSERT INTO appends (stream, first_event_id, first_version) VALUES (NEW.stream, NEW.event_id, NEW.version); END`
)

func newAppendVariant(b *testing.B, name, sync string) *appendVariant {
	ctx := b.Context()
	opts := sqlite.Options{}
	if sync == "NORMAL" {
		opts.Synchronous = sqlite.SynchronousNormal
	}
	path := filepath.Join(benchDir(b), "variant.db")
	if size, ok := strings.CutPrefix(name, "page-"); ok {
		// The page size of a new file is set before its first write.
		pre, err := sql.Open("sqlite3", path)
		if err != nil {
			b.Fatal(err)
		}
		n := map[string]string{"1kib": "1024", "8kib": "8192"}[size]
		_, err = pre.ExecContext(ctx, "PRAGMA page_size = "+n+"; PRAGMA journal_mode = WAL")
		pre.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	_, conn := driverConn(b, path, opts)
	exec := func(q string) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	v := &appendVariant{name: name, path: path, conn: conn}
	v.begin = prepare(b, conn, "BEGIN IMMEDIATE")
	v.commit = prepare(b, conn, "COMMIT")
	v.rollback = prepare(b, conn, "ROLLBACK")
	v.insert = prepare(b, conn, sqlite.InsertQuery(1))
	switch name {
	case "raw", "page-1kib", "page-8kib":
		v.head = prepare(b, conn, sqlite.QueryHead)
		v.insertAppend = prepare(b, conn, sqlite.QueryInsertAppend)
	case "no-appends-row":
		v.head = prepare(b, conn, headNoAppends)
	case "no-category-index":
		exec("DROP INDEX events_category")
		v.head = prepare(b, conn, sqlite.QueryHead)
		v.insertAppend = prepare(b, conn, sqlite.QueryInsertAppend)
	case "neither":
		exec("DROP INDEX events_category")
		v.head = prepare(b, conn, headNoAppends)
	case "cache-64mib":
		exec("PRAGMA cache_size = -65536")
		v.head = prepare(b, conn, sqlite.QueryHead)
		v.insertAppend = prepare(b, conn, sqlite.QueryInsertAppend)
	case "folded":
		v.insertAppend = prepare(b, conn, insertAppendIfHead)
	case "trigger":
		exec(appendsTrigger)
		v.head = prepare(b, conn, sqlite.QueryHead)
	default:
		b.Fatalf("unknown variant %q", name)
	}
	return v
}

// append is a conformance.AppendFunc for single events.
func (v *appendVariant) append(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	if len(events) != 1 {
		return errors.New("appendVariant: single events only")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.begin.ExecContext(ctx); err != nil {
		return err
	}
	if err := v.appendTx(ctx, stream, int64(expected), &events[0]); err != nil {
		v.rollback.ExecContext(context.WithoutCancel(ctx))
		return err
	}
	_, err := v.commit.ExecContext(ctx)
	return err
}

func (v *appendVariant) appendTx(ctx context.Context, stream string, expected int64, e *eventstore.Event) error {
	if v.head != nil {
		var current int64
		var retryFrom sql.NullInt64
		var marks sql.NullString // the stream's stream_marks row: none in a benchmark
		if err := v.head.QueryRowContext(ctx, stream, e.ID[:]).Scan(&current, &retryFrom, &marks); err != nil {
			return err
		}
		if current != expected || retryFrom.Valid {
			return fmt.Errorf("%s: %s at version %d, want %d", v.name, stream, current, expected)
		}
	}
	if v.insertAppend != nil {
		res, err := v.insertAppend.ExecContext(ctx, stream, e.ID[:], expected+1)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%s: %s: no appends row (%d, %v)", v.name, stream, n, err)
		}
	}
	category, _, _ := strings.Cut(stream, "-")
	res, err := v.insert.ExecContext(ctx, stream, expected+1, category, e.ID[:], e.Type, int64(e.ContentType), e.Data, []byte{}, time.Now().UnixMicro())
	if err != nil {
		return err
	}
	_, err = res.LastInsertId() // the position, as the driver reads it
	return err
}

// minimalPath returns the path of the minimal twin's file.
func minimalPath(b *testing.B, m *minimal) string {
	var file string
	if err := m.w.QueryRowContext(b.Context(), "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		b.Fatal(err)
	}
	return file
}

// walFrames appends 200 single events (two streams of 100, as two rounds
// of the benchmark) with automatic checkpoints off and returns the WAL
// frames written per append, then checkpoints and turns them on again.
// db is the writer's *sql.DB or *sql.Conn; it must be the connection
// appendFn writes through.
func walFrames(b *testing.B, db interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, path string, appendFn conformance.AppendFunc) float64 {
	ctx := b.Context()
	exec := func(q string) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	size := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			b.Fatal(err)
		}
		return fi.Size()
	}
	var pageSize int64
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		b.Fatal(err)
	}
	exec("PRAGMA wal_autocheckpoint = 0")
	exec("PRAGMA wal_checkpoint(TRUNCATE)")
	before := size()
	const appends = 200
	for range appends / 100 {
		if _, err := conformance.ConcurrentAppends(appendFn, 1, 1, 100)(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// A frame is a 24-byte header and a page; the WAL header is 32 bytes.
	frames := float64(size()-max(before, 32)) / float64(24+pageSize) / appends
	exec("PRAGMA wal_checkpoint(TRUNCATE)")
	exec("PRAGMA wal_autocheckpoint = 1000")
	return frames
}
