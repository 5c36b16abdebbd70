-- Version 2: retried appends are recognised by the first event ID of each
-- append, kept in a small table with one row per append, instead of an
-- index entry for every event (that index was a fourth B-tree written per
-- event: see docs/benchmarks.md).

-- appends records where each append began: the stream, the ID of its first
-- event and that event's version. An append is a retry when its first event
-- ID began an earlier append to the stream (docs/semantics.md, "Idempotent
-- retries"). Rows are never updated or deleted.
CREATE TABLE appends (
	stream         TEXT    NOT NULL,
	first_event_id BLOB    NOT NULL,  -- 16-byte UUID
	first_version  INTEGER NOT NULL,
	PRIMARY KEY (stream, first_event_id)
) STRICT, WITHOUT ROWID;

-- Version 1 did not record where appends began: every event written before
-- the upgrade counts as a possible first event, so retries of those appends
-- behave as they did (the last version, as version 1 looked up).
INSERT INTO appends (stream, first_event_id, first_version)
	SELECT stream, event_id, MAX(version) FROM events GROUP BY stream, event_id;

DROP INDEX events_stream_event_id;
