package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/keyrange"
)

var _ driver.StreamLister = (*Driver)(nil)

// The listing is a loose index scan of the UNIQUE (stream, version) index
// (sqlite_autoindex_events_1): the recursive CTE hops from one stream to the
// next with one index search each (MIN(stream) above the previous one), and
// each stream's version is one more search (MAX(version) of the stream, the
// last entry of its run). A page costs two index searches per stream,
// however many events the streams hold; no statement reads the events table
// or sorts. TEXT compares with the BINARY collation, memcmp of the UTF-8
// bytes, so streams come in byte order, and a prefix is the range
// [prefix, keyrange.PrefixEnd(prefix)) of that order: matched byte for
// byte, with no LIKE pattern to escape. TestListStreamsPlan pins the plans.
//
// The CTE's LIMIT stops the hops after the page's streams plus one, which
// tells whether another page follows. One statement reads one snapshot of
// the WAL, so a page is consistent; across pages, the cursor (the last ID
// of the page) resumes strictly after it, and rows are never deleted, so a
// stream that exists throughout comes exactly once.
const (
	// listStreamsSQL takes the first ID's bound: >= the prefix on the
	// first page, > the cursor after it. %s is ">=" or ">"; ?1 the bound,
	// ?2 the end of the prefix's range, ?3 the limit.
	listStreamsSQL = `WITH RECURSIVE s(id) AS (
	SELECT (SELECT MIN(stream) FROM events WHERE stream %s ?1 AND stream < ?2)
	UNION ALL
	SELECT (SELECT MIN(stream) FROM events WHERE stream > s.id AND stream < ?2) FROM s WHERE s.id IS NOT NULL
	LIMIT ?3
)
SELECT id, (SELECT MAX(version) FROM events WHERE stream = s.id) FROM s WHERE id IS NOT NULL`
)

var (
	queryListStreamsFirst = fmt.Sprintf(listStreamsSQL, ">=")
	queryListStreamsAfter = fmt.Sprintf(listStreamsSQL, ">")
)

// noEnd is the end of the range of the empty prefix (and of a prefix of
// U+10FFFF alone): every stream ID is valid UTF-8, whose bytes are below
// 0xF5, so each sorts before it.
const noEnd = "\xff"

// ListStreams implements [driver.StreamLister]: streams by ID in byte
// order, from the (stream, version) index; the cursor is the last ID of a
// page, and a cursor without req.Prefix fails with
// [eventstore.ErrInvalidCursor].
func (d *Driver) ListStreams(ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error) {
	if req.Cursor != "" && !strings.HasPrefix(req.Cursor, req.Prefix) {
		return driver.StreamPage{}, fmt.Errorf("sqlite: %w: %q is not a stream of prefix %q", eventstore.ErrInvalidCursor, req.Cursor, req.Prefix)
	}
	end, ok := keyrange.PrefixEnd(req.Prefix)
	if !ok {
		end = noEnd
	}
	query, from := queryListStreamsFirst, req.Prefix
	if req.Cursor != "" || req.Prefix == "" {
		// After "" for the empty prefix: placeholders of removed events
		// have stream "" (retention.go).
		query, from = queryListStreamsAfter, req.Cursor
	}
	rows, err := d.query(ctx, query, from, end, req.Limit+1)
	if err != nil {
		return driver.StreamPage{}, fmt.Errorf("sqlite: list streams: %w", mapError(err, nil))
	}
	page, err := scanStreams(rows, req.Limit)
	if err != nil {
		return driver.StreamPage{}, fmt.Errorf("sqlite: list streams: %w", mapError(err, nil))
	}
	return page, nil
}

// scanStreams reads up to limit (id, version) rows into a page whose Next
// is its last ID when a further row follows.
func scanStreams(rows *sql.Rows, limit int) (driver.StreamPage, error) {
	defer rows.Close()
	var page driver.StreamPage
	for rows.Next() {
		if len(page.Streams) == limit {
			page.Next = page.Streams[limit-1].ID
			break
		}
		var s driver.StreamInfo
		var version int64
		if err := rows.Scan(&s.ID, &version); err != nil {
			return driver.StreamPage{}, err
		}
		s.Version = uint64(version)
		page.Streams = append(page.Streams, s)
	}
	if err := rows.Err(); err != nil {
		return driver.StreamPage{}, err
	}
	return page, rows.Close()
}
