package compare_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The plpgsql-fn contender: an event store in the design of message-db
// (appends through a stored function that checks the expected version under
// an advisory lock), written for this benchmark. It is not message-db's
// code; it differs where that favours it: data and metadata are bytea (no
// jsonb parsing), and one call appends a whole batch (message-db's
// write_message takes one message, so a batch is one call per message in a
// transaction).

// funcSchema is the table, its indexes and the append function; %[1]s is
// the quoted schema.
const funcSchema = `
CREATE TABLE %[1]s.messages (
	global_position bigserial   PRIMARY KEY,
	stream_name     text        NOT NULL,
	position        bigint      NOT NULL,
	id              uuid        NOT NULL,
	type            text        NOT NULL,
	data            bytea       NOT NULL,
	metadata        bytea,
	time            timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ON %[1]s.messages (stream_name, position);
CREATE UNIQUE INDEX ON %[1]s.messages (id);

-- write_events appends events to a stream that must be at version expected
-- (0: no events), all or none, and returns the stream's new version.
CREATE FUNCTION %[1]s.write_events(stream text, expected bigint,
	ids uuid[], types text[], datas bytea[], metas bytea[])
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
	current bigint;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended(stream, 0));
	SELECT coalesce(max(m.position), 0) INTO current
		FROM %[1]s.messages m WHERE m.stream_name = stream;
	IF current <> expected THEN
		RAISE EXCEPTION 'stream %% is at version %%, expected %%', stream, current, expected
			USING ERRCODE = 'P0001';
	END IF;
	INSERT INTO %[1]s.messages (stream_name, position, id, type, data, metadata)
		SELECT stream, current + e.ord, e.id, e.typ, e.data, e.meta
		FROM unnest(ids, types, datas, metas) WITH ORDINALITY AS e(id, typ, data, meta, ord)
		ORDER BY e.ord;
	RETURN current + cardinality(ids);
END
$fn$;`

// funcPage is the contender's read page size: message-db's default batch
// size.
const funcPage = 1000

const (
	funcWriteSQL      = `SELECT %[1]s.write_events($1, $2, $3, $4, $5, $6)`
	funcReadStreamSQL = `SELECT global_position, stream_name, position, id, type, data, metadata, time
FROM %[1]s.messages WHERE stream_name = $1 AND position > $2 ORDER BY position LIMIT 1000`
	funcReadAllSQL = `SELECT global_position, stream_name, position, id, type, data, metadata, time
FROM %[1]s.messages WHERE global_position > $1 ORDER BY global_position LIMIT 1000`
)

// funcStore is the plpgsql-fn contender on a schema of its own.
type funcStore struct {
	pool                         *pgxpool.Pool
	table                        pgx.Identifier
	write, readStreamQ, readAllQ string
}

// funcRow is one row as the contender's reads scan it.
type funcRow struct {
	global, position int64
	stream, typ      string
	id               [16]byte
	data, meta       []byte
	at               time.Time
}

func (r *funcRow) targets() []any {
	return []any{&r.global, &r.stream, &r.position, &r.id, &r.typ, &r.data, &r.meta, &r.at}
}

// newFuncStore creates the contender in a fresh schema.
func newFuncStore(b testing.TB) contender {
	fs := openFuncStore(b)
	return contender{append: fs.append, readStream: fs.readStream, readAll: fs.readAll, analyze: analyze(fs.table)}
}

// openFuncStore creates the store's table and function in a fresh schema.
func openFuncStore(b testing.TB) *funcStore {
	name := newSchema(b, "cmp_fn")
	schema := pgx.Identifier{name}.Sanitize()
	q := func(f string) string { return fmt.Sprintf(f, schema) }
	fs := &funcStore{pool: newPool(b), table: pgx.Identifier{name, "messages"},
		write: q(funcWriteSQL), readStreamQ: q(funcReadStreamSQL), readAllQ: q(funcReadAllSQL)}
	if _, err := fs.pool.Exec(b.Context(), q(funcSchema)); err != nil {
		b.Fatal(err)
	}
	return fs
}

func (fs *funcStore) append(ctx context.Context, stream string, expected uint64, events []eventstore.Event) error {
	ids := make([][16]byte, len(events))
	types := make([]string, len(events))
	data := make([][]byte, len(events))
	meta := make([][]byte, len(events))
	for i, e := range events {
		ids[i], types[i], data[i], meta[i] = e.ID, e.Type, e.Data, e.Metadata
	}
	var version int64
	if err := fs.pool.QueryRow(ctx, fs.write, stream, int64(expected), ids, types, data, meta).Scan(&version); err != nil {
		return fmt.Errorf("plpgsql-fn: append to %q: %w", stream, err)
	}
	if version != int64(expected)+int64(len(events)) {
		return fmt.Errorf("plpgsql-fn: append to %q at %d: now at %d", stream, expected, version)
	}
	return nil
}

// pages reads keyset pages of funcPage rows until a short one; next gives
// the key after the last row read.
func (fs *funcStore) pages(ctx context.Context, query string, first any, next func(r *funcRow) any, args ...any) (int, error) {
	var r funcRow
	n := 0
	for key := first; ; key = next(&r) {
		rows, err := fs.pool.Query(ctx, query, append(args[:len(args):len(args)], key)...)
		if err != nil {
			return n, err
		}
		tag, err := pgx.ForEachRow(rows, r.targets(), func() error { return nil })
		if err != nil {
			return n, err
		}
		n += int(tag.RowsAffected())
		if tag.RowsAffected() < funcPage {
			return n, nil
		}
	}
}

func (fs *funcStore) readStream(ctx context.Context, stream string) (int, error) {
	return fs.pages(ctx, fs.readStreamQ, int64(0), func(r *funcRow) any { return r.position }, stream)
}

func (fs *funcStore) readAll(ctx context.Context) (int, error) {
	return fs.pages(ctx, fs.readAllQ, int64(0), func(r *funcRow) any { return r.global })
}
