package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
	"github.com/eventkit/eventstore/internal/keyrange"
	"github.com/jackc/pgx/v5"
)

var _ driver.StreamLister = (*Driver)(nil)

// A listing is a loose index scan of the UNIQUE (stream_id, version) index
// (events_stream_version_key): a recursive CTE hops from one stream to the
// next with one descent of the index each (the least stream_id above the
// previous one), and reads each stream's version with one more (its
// largest version). A page costs two index descents per stream it passes,
// however many events the streams hold; nothing scans the events table or
// sorts it. TestListStreamsPlan pins the plans.
//
// The index is ordered by the column's collation, the database's default
// unless the column was given another. A query with COLLATE "C" would list
// in byte order whatever the collation, but could not use the index unless
// the collation is "C" itself (PostgreSQL matches an index to a condition
// only under the index's collation, and "C.UTF-8" is not "C" to it), so it
// would read the whole table: the listing keeps the column's collation, and
// its order.
//
//   - A byte-order collation (see byteOrder: "C", "POSIX", "C.UTF-8", the
//     builtin provider) keeps the stream IDs that start with a prefix
//     together: a prefix is the range [prefix, keyrange.PrefixEnd(prefix)),
//     and the listing hops only over the prefix's streams, in byte order.
//   - Any other collation (en_US.UTF-8, ICU…) orders IDs linguistically,
//     where the IDs with a prefix are not contiguous ("a-b" < "ab" < "a-c"
//     in en_US): the listing hops over every stream from the cursor on,
//     keeping those that start with the prefix (starts_with compares
//     bytes), in the collation's order. A page then costs two descents per
//     stream of the whole store passed over until it is full.
//
// Either way the cursor is the last ID of a page, and the next page starts
// strictly after it in the index's order: the order is total (a
// deterministic collation breaks ties by bytes), and streams are never
// deleted, so a stream that exists throughout comes exactly once.
const (
	// listStreamsRangeSQL takes the cursor ($1, "" for the first page), the
	// prefix ($2), the end of its range ($3) and the rows wanted ($4).
	listStreamsRangeSQL = `WITH RECURSIVE s(id) AS (
	(SELECT stream_id FROM {{schema}}.events WHERE stream_id > $1 AND stream_id >= $2 AND stream_id < $3 ORDER BY stream_id LIMIT 1)
	UNION ALL
	SELECT (SELECT e.stream_id FROM {{schema}}.events e WHERE e.stream_id > s.id AND e.stream_id < $3 ORDER BY e.stream_id LIMIT 1)
	FROM s WHERE s.id IS NOT NULL
)
SELECT id, (SELECT max(e.version) FROM {{schema}}.events e WHERE e.stream_id = s.id) FROM s WHERE id IS NOT NULL LIMIT $4`

	// listStreamsAllSQL takes the cursor ($1), the prefix ($2, kept by
	// starts_with) and the rows wanted ($3). Every stream ID is above "" in
	// any collation.
	listStreamsAllSQL = `WITH RECURSIVE s(id) AS (
	(SELECT stream_id FROM {{schema}}.events WHERE stream_id > $1 ORDER BY stream_id LIMIT 1)
	UNION ALL
	SELECT (SELECT e.stream_id FROM {{schema}}.events e WHERE e.stream_id > s.id ORDER BY e.stream_id LIMIT 1)
	FROM s WHERE s.id IS NOT NULL
)
SELECT id, (SELECT max(e.version) FROM {{schema}}.events e WHERE e.stream_id = s.id) FROM s WHERE id IS NOT NULL AND starts_with(id, $2) LIMIT $3`

	// collationSQL returns the provider ("c" libc, "i" ICU, "b" builtin)
	// and locale of the stream_id column's collation: the database's for
	// the default collation (OID 100). Columns newer than PostgreSQL 13 are
	// read through to_jsonb, so the query runs on every version.
	collationSQL = `SELECT CASE WHEN a.attcollation = 100 THEN (
	SELECT coalesce(to_jsonb(d)->>'datlocprovider', 'c') || ':' || CASE coalesce(to_jsonb(d)->>'datlocprovider', 'c')
		WHEN 'c' THEN d.datcollate ELSE coalesce(to_jsonb(d)->>'datlocale', to_jsonb(d)->>'daticulocale', '') END
	FROM pg_database d WHERE d.datname = current_database()
) ELSE (
	SELECT c.collprovider::text || ':' || coalesce(c.collcollate, to_jsonb(c)->>'colllocale', to_jsonb(c)->>'colliculocale', '')
	FROM pg_collation c WHERE c.oid = a.attcollation
) END
FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = 'stream_id'`
)

// byteOrder reports whether a collation, as collationSQL returns it, orders
// UTF-8 text by its bytes: libc's "C" and "POSIX" (compared with memcmp by
// PostgreSQL) and "C.UTF-8" (code point order in glibc, which is byte order
// for UTF-8), and the builtin provider of PostgreSQL 17 (code point order
// in all its locales). Others count as linguistic, even where the C
// library compares bytes (musl).
func byteOrder(collation string) bool {
	provider, locale, _ := strings.Cut(collation, ":")
	switch provider {
	case "b":
		return true
	case "c":
		switch strings.ToLower(locale) {
		case "c", "posix", "c.utf8", "c.utf-8":
			return true
		}
	}
	return false
}

// ListStreams implements [driver.StreamLister]; see the comment on
// listStreamsRangeSQL for the order and the cost. The cursor is the last
// ID of a page; one without req.Prefix fails with
// [eventstore.ErrInvalidCursor]. A page takes two statements: one reading
// the column's collation from the catalog, then the listing.
func (d *Driver) ListStreams(ctx context.Context, req driver.ListStreamsRequest) (driver.StreamPage, error) {
	if req.Cursor != "" && !strings.HasPrefix(req.Cursor, req.Prefix) {
		return driver.StreamPage{}, fmt.Errorf("postgres: %w: %q is not a stream of prefix %q", eventstore.ErrInvalidCursor, req.Cursor, req.Prefix)
	}
	var collation string
	if err := d.pool.QueryRow(ctx, collationSQL, quoteIdent(d.schema)+".events").Scan(&collation); err != nil {
		return driver.StreamPage{}, fmt.Errorf("postgres: list streams: collation of stream_id: %w", native(err))
	}
	var rows pgx.Rows
	var err error
	if end, ok := keyrange.PrefixEnd(req.Prefix); ok && byteOrder(collation) {
		rows, err = d.pool.Query(ctx, d.sql.listStreamsRange, req.Cursor, req.Prefix, end, req.Limit+1)
	} else {
		rows, err = d.pool.Query(ctx, d.sql.listStreamsAll, req.Cursor, req.Prefix, req.Limit+1)
	}
	if err != nil {
		return driver.StreamPage{}, fmt.Errorf("postgres: list streams: %w", native(err))
	}
	var page driver.StreamPage
	var id string
	var version int64
	_, err = pgx.ForEachRow(rows, []any{&id, &version}, func() error {
		if len(page.Streams) == req.Limit {
			page.Next = page.Streams[req.Limit-1].ID
			return nil
		}
		page.Streams = append(page.Streams, driver.StreamInfo{ID: id, Version: uint64(version)})
		return nil
	})
	if err != nil {
		return driver.StreamPage{}, fmt.Errorf("postgres: list streams: %w", native(err))
	}
	return page, nil
}
