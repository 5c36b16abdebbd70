-- Version 1: the event log, snapshots and subscription checkpoints.

-- events is the global log. position is the rowid: SQLite assigns it as
-- MAX(position)+1 inside the write transaction, and only one write
-- transaction runs at a time per file, so positions are dense and commit
-- order equals position order. Rows are never updated or deleted.
CREATE TABLE events (
	position     INTEGER PRIMARY KEY,
	stream       TEXT    NOT NULL,
	version      INTEGER NOT NULL,  -- 1-based, contiguous per stream
	category     TEXT    NOT NULL,  -- stream ID before its first "-"
	event_id     BLOB    NOT NULL,  -- 16-byte UUID
	type         TEXT    NOT NULL,
	content_type INTEGER NOT NULL,  -- 0 JSON, 1 binary
	data         BLOB    NOT NULL,  -- byte for byte, even JSON
	metadata     BLOB    NOT NULL,
	recorded_at  INTEGER NOT NULL,  -- microseconds since the Unix epoch, UTC
	CONSTRAINT events_stream_version UNIQUE (stream, version)
) STRICT;

-- Reads of the global log filtered by category page by position within the
-- category instead of scanning the log: an index entry ends with the rowid,
-- so the index is ordered by (category, position). Event types have no
-- index: it cost a tenth of the throughput of batched appends (see
-- docs/benchmarks.md), so a filter on types alone walks the log by position.
CREATE INDEX events_category ON events (category);
-- Idempotent retries look up the first event ID of a batch in its stream.
-- Keyed by stream first, the entries of one append land together: an index
-- on the random event ID alone would dirty a page per event.
CREATE INDEX events_stream_event_id ON events (stream, event_id);

CREATE TABLE snapshots (
	stream  TEXT    PRIMARY KEY,
	version INTEGER NOT NULL,
	data    BLOB    NOT NULL
) STRICT, WITHOUT ROWID;

-- A position is two unsigned 64-bit numbers, stored bit for bit as signed
-- integers.
CREATE TABLE checkpoints (
	name             TEXT    PRIMARY KEY,
	position_commit  INTEGER NOT NULL,
	position_prepare INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
