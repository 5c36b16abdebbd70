package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventstore/driver"
)

// readStmts are the read statements, prepared on the pool: database/sql
// prepares each once per connection and reuses it.
type readStmts struct {
	streamForwards  *sql.Stmt
	streamBackwards *sql.Stmt
	allForwards     *sql.Stmt
	allBackwards    *sql.Stmt
	streamVersion   *sql.Stmt
	maxPosition     *sql.Stmt
	loadSnapshot    *sql.Stmt
	loadCheckpoint  *sql.Stmt

	mu       sync.Mutex           // protects filtered
	filtered map[string]*sql.Stmt // filtered global-log reads, by query text
}

// maxFilteredStmts bounds how many filter shapes keep a prepared statement.
const maxFilteredStmts = 64

const (
	streamColumns = "position, version, event_id, type, content_type, data, metadata, recorded_at, tags, metadata_content_type"
	allColumns    = "stream, " + streamColumns
)

// The read statements. Each walks a key or an index in order: see
// TestQueryPlans.
const (
	queryStreamForwards  = "SELECT " + streamColumns + " FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?"
	queryStreamBackwards = "SELECT " + streamColumns + " FROM events WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT ?"
	queryAllForwards     = "SELECT " + allColumns + " FROM events WHERE position > ? AND position < ? AND stream <> '' ORDER BY position LIMIT ?"
	queryAllBackwards    = "SELECT " + allColumns + " FROM events WHERE position > ? AND position < ? AND stream <> '' ORDER BY position DESC LIMIT ?"
	// queryStreamVersion is the highest stored version, or the version
	// stream_marks keeps when higher, or 0 while the stream is deleted
	// (retention.go).
	queryStreamVersion = `SELECT CASE WHEN m.deleted = 1 AND v.v <= m.last THEN 0 ELSE MAX(v.v, COALESCE(m.last, 0)) END
		FROM (SELECT COALESCE(MAX(version), 0) AS v FROM events WHERE stream = ?1) v
		LEFT JOIN stream_marks m ON m.stream = ?1`
	queryMaxPosition    = "SELECT COALESCE(MAX(position), 0) FROM events"
	queryLoadSnapshot   = "SELECT version, data FROM snapshots WHERE stream = ?"
	queryLoadCheckpoint = "SELECT position_commit, position_prepare FROM checkpoints WHERE name = ?"
)

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	var err error
	prep := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.PrepareContext(ctx, query)
		return st
	}
	r.streamForwards = prep(queryStreamForwards)
	r.streamBackwards = prep(queryStreamBackwards)
	r.allForwards = prep(queryAllForwards)
	r.allBackwards = prep(queryAllBackwards)
	r.streamVersion = prep(queryStreamVersion)
	r.maxPosition = prep(queryMaxPosition)
	r.loadSnapshot = prep(queryLoadSnapshot)
	r.loadCheckpoint = prep(queryLoadCheckpoint)
	r.filtered = map[string]*sql.Stmt{}
	return mapError(err, nil)
}

func (r *readStmts) close() {
	for _, st := range []*sql.Stmt{r.streamForwards, r.streamBackwards, r.allForwards, r.allBackwards,
		r.streamVersion, r.maxPosition, r.loadSnapshot, r.loadCheckpoint} {
		if st != nil {
			st.Close()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.filtered {
		st.Close()
	}
	r.filtered = nil
}

// query runs a filtered read, with a statement prepared once per query text
// while fewer than maxFilteredStmts shapes have been seen.
func (d *Driver) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	r := &d.read
	r.mu.Lock()
	st, ok := r.filtered[query]
	r.mu.Unlock()
	if !ok {
		var err error
		if st, err = d.db.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		r.mu.Lock()
		switch old, dup := r.filtered[query]; {
		case dup:
			st.Close()
			st = old
		case len(r.filtered) < maxFilteredStmts:
			r.filtered[query] = st
		default:
			r.mu.Unlock()
			defer st.Close()
			return st.QueryContext(ctx, args...)
		}
		r.mu.Unlock()
	}
	return st.QueryContext(ctx, args...)
}

// ReadStream implements [driver.Driver].
func (d *Driver) ReadStream(ctx context.Context, q driver.StreamQuery) ([]driver.RecordedEvent, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if q.Backwards {
		from := int64(math.MaxInt64)
		if q.From > 0 && q.From < math.MaxInt64 {
			from = int64(q.From)
		}
		rows, err = d.read.streamBackwards.QueryContext(ctx, q.Stream, from, q.Limit)
	} else {
		if q.From > math.MaxInt64 {
			return nil, nil
		}
		rows, err = d.read.streamForwards.QueryContext(ctx, q.Stream, int64(q.From), q.Limit)
	}
	if err != nil {
		return nil, mapError(err, nil)
	}
	out, err := scanEvents(rows, &d.pages, q.Stream, q.Limit, q.MaxBytes)
	return out, mapError(err, nil)
}

// ReadAll implements [driver.Driver]. It reads one page by position (the
// rowid): without a category filter it walks the table's own key; with one
// it walks the events_category index, whose entries are in (category,
// position) order, merging several categories with UNION ALL. No query
// sorts the log; see filteredQuery for filters on event types alone.
func (d *Driver) ReadAll(ctx context.Context, q driver.AllQuery) ([]driver.RecordedEvent, error) {
	after, before := bounds(q.After, q.Before)
	if after >= before-1 {
		return nil, nil
	}
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case q.Filter.IsEmpty() && q.Backwards:
		rows, err = d.read.allBackwards.QueryContext(ctx, after, before, q.Limit)
	case q.Filter.IsEmpty():
		rows, err = d.read.allForwards.QueryContext(ctx, after, before, q.Limit)
	default:
		query, args := filteredQuery(q.Filter, q.Backwards, after, before, q.Limit)
		rows, err = d.query(ctx, query, args...)
	}
	if err != nil {
		return nil, mapError(err, nil)
	}
	out, err := scanEvents(rows, &d.pages, "", q.Limit, q.MaxBytes)
	return out, mapError(err, nil)
}

// bounds turns the positions of a query into an open interval of rowids:
// events with after < position < before. Positions here are {n, 0}, so an
// event is after {c, p} when n > c, and before {c, p} when n < c, or n <= c
// for p > 0.
func bounds(after, before driver.Position) (lo, hi int64) {
	lo = clamp(after.Commit)
	hi = math.MaxInt64
	if !before.IsZero() {
		hi = clamp(before.Commit)
		if before.Prepare > 0 && hi < math.MaxInt64 {
			hi++
		}
	}
	return lo, hi
}

func clamp(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

// Bounds that keep filtered reads within SQLite's limits (32,766 host
// parameters, 500 terms in a compound SELECT) however long a filter's lists.
const (
	// maxListArgs is the longest list of names bound one parameter per name;
	// a longer list is bound as one JSON array, read with json_each.
	maxListArgs = 32
	// maxMergedCategories is the most categories merged with UNION ALL. A
	// page reads up to categories × limit index entries that way; with more
	// categories, walking the log by position reads less.
	maxMergedCategories = 32
)

// inList returns an SQL condition that column is one of names, and its
// arguments: one parameter per name for short lists, one JSON array for
// long ones.
func inList(column string, names []string) (string, []any) {
	if len(names) > maxListArgs {
		b, _ := json.Marshal(names) // strings always marshal
		return " AND " + column + " IN (SELECT value FROM json_each(?))", []any{string(b)}
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	return " AND " + column + " IN (?" + strings.Repeat(", ?", len(names)-1) + ")", args
}

// filteredQuery builds a filtered page read. With up to
// maxMergedCategories categories, each category gets its own sub-select
// walking the events_category index in position order with the page's LIMIT
// (event types, if any, filter the rows found); several are merged with
// UNION ALL and limited again, so a page reads at most categories × limit
// index entries. With event types only, or more categories, the query walks
// the log by position and keeps the matching rows: it reads every event
// between the page's bounds and its last match, but sorts nothing.
func filteredQuery(f driver.Filter, backwards bool, after, before int64, limit int) (string, []any) {
	order := "position"
	if backwards {
		order = "position DESC"
	}
	var typeFilter string
	var typeArgs []any
	if len(f.EventTypes) > 0 {
		typeFilter, typeArgs = inList("type", f.EventTypes)
	}
	if len(f.Categories) == 0 || len(f.Categories) > maxMergedCategories {
		var catFilter string
		var catArgs []any
		if len(f.Categories) > 0 {
			// "+" keeps SQLite from reading the categories through their
			// index and sorting every match: the walk reads in order.
			catFilter, catArgs = inList("+category", f.Categories)
		}
		query := "SELECT " + allColumns + " FROM events WHERE position > ? AND position < ? AND stream <> ''" + catFilter + typeFilter +
			" ORDER BY " + order + " LIMIT ?"
		args := append([]any{after, before}, catArgs...)
		return query, append(append(args, typeArgs...), limit)
	}
	sub := "SELECT " + allColumns + " FROM events INDEXED BY events_category" +
		" WHERE category = ? AND position > ? AND position < ?" + typeFilter +
		" ORDER BY " + order + " LIMIT ?"
	var args []any
	for _, c := range f.Categories {
		args = append(args, c, after, before)
		args = append(args, typeArgs...)
		args = append(args, limit)
	}
	if len(f.Categories) == 1 {
		return sub, args
	}
	parts := make([]string, len(f.Categories))
	for i := range parts {
		parts[i] = "SELECT * FROM (" + sub + ")"
	}
	return strings.Join(parts, " UNION ALL ") + " ORDER BY " + order + " LIMIT ?", append(args, limit)
}

// scanEvents reads rows of streamColumns, or of allColumns when stream is "",
// until the page holds limit events or maxBytes bytes (driver.Page); the
// rows left are not read. The page fills an array of pool (nil: a new one).
func scanEvents(rows *sql.Rows, pool *driver.PagePool, stream string, limit, maxBytes int) ([]driver.RecordedEvent, error) {
	defer rows.Close()
	out := driver.NewPageIn(pool.Get(min(limit, 512)), limit, maxBytes)
	var (
		pos, version, contentType, recordedAt int64
		tags                                  sql.NullString
		metadataType                          sql.NullInt64
	)
	for rows.Next() {
		ev := driver.RecordedEvent{StreamID: stream}
		var err error
		if stream == "" {
			err = rows.Scan(&ev.StreamID, &pos, &version, &ev.ID, &ev.Type, &contentType, &ev.Data, &ev.Metadata, &recordedAt, &tags, &metadataType)
		} else {
			err = rows.Scan(&pos, &version, &ev.ID, &ev.Type, &contentType, &ev.Data, &ev.Metadata, &recordedAt, &tags, &metadataType)
		}
		if err != nil {
			return nil, err
		}
		if ev.Tags, err = decodeTags(tags); err != nil {
			return nil, err
		}
		ev.Position = driver.Position{Commit: uint64(pos)}
		ev.Version = uint64(version)
		ev.ContentType = driver.ContentType(contentType)
		ev.MetadataContentType = driver.ContentType(metadataType.Int64)
		ev.RecordedAt = time.UnixMicro(recordedAt).UTC()
		if out.Add(ev) {
			break
		}
	}
	return out.Events, rows.Err()
}

// StreamVersion implements [driver.Driver].
func (d *Driver) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	var v int64
	if err := d.read.streamVersion.QueryRowContext(ctx, stream).Scan(&v); err != nil {
		return 0, mapError(err, nil)
	}
	return uint64(v), nil
}

// How many positions ReadAllScan examines at most per page. Positions are
// the table's rowids, given in commit order by the one writer, so a window
// of positions is a window of events. A filter on categories reads the
// events_category index, which holds only the matching entries, so its
// window can be wide: what it costs is the matches, not the window.
const (
	scanWindow        = 4096
	scanWindowIndexed = 1 << 20
)

// ReadAllScan implements [driver.ScanReader]. It reads the highest
// committed position first: every event at or below it is committed and
// visible (the one writer gives positions in commit order), so the scan may
// report any position up to it as scanned. It then reads the matching
// events of at most scanWindow positions after q.After through the filter's
// indexes, as ReadAll does.
func (d *Driver) ReadAllScan(ctx context.Context, q driver.AllQuery) (driver.ScanPage, error) {
	var head int64
	if err := d.read.maxPosition.QueryRowContext(ctx).Scan(&head); err != nil {
		return driver.ScanPage{}, mapError(err, nil)
	}
	after, before := bounds(q.After, q.Before)
	last := min(head, before-1) // the last position of the range visible now
	if after >= last {
		return driver.ScanPage{End: true}, nil
	}
	window := int64(scanWindow)
	if len(q.Filter.Categories) > 0 && len(q.Filter.Categories) <= maxMergedCategories {
		window = scanWindowIndexed
	}
	end := min(last, after+window)
	page, err := d.ReadAll(ctx, driver.AllQuery{After: q.After, Before: driver.Position{Commit: uint64(end) + 1}, Limit: q.Limit, Filter: q.Filter, MaxBytes: q.MaxBytes})
	if err != nil {
		return driver.ScanPage{}, err
	}
	if driver.PageFull(page, q.Limit, q.MaxBytes) {
		return driver.ScanPage{Events: page, Scanned: page[len(page)-1].Position}, nil
	}
	return driver.ScanPage{Events: page, Scanned: driver.Position{Commit: uint64(end)}, End: end == last}, nil
}

// RecyclePage implements [driver.PageRecycler]: the array of a page the
// Store has handed out goes to the pool for a later page.
func (d *Driver) RecyclePage(events []driver.RecordedEvent) { d.pages.Put(events) }
