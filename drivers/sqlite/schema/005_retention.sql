-- Version 5: deleted and truncated streams, and retention per stream
-- (driver.StreamDeleter, driver.StreamTruncater, driver.RetentionKeeper).
-- From this version on, rows of events, event_tags and appends are deleted
-- by DeleteStream, TruncateStream and retention.

-- stream_marks holds a row for each stream whose events were removed or
-- that has a retention setting; most streams have none, and an append
-- reads it with one lookup of its key.
--   last:      the stream's version when events were last removed, so
--              versions continue after it when no event is left;
--   deleted:   1 when the stream was deleted at version last: while no
--              event above last exists, the stream has version 0;
--   max_count, max_age: the retention (0: no limit), max_age in
--              microseconds.
CREATE TABLE stream_marks (
	stream    TEXT    PRIMARY KEY,
	last      INTEGER NOT NULL DEFAULT 0,
	deleted   INTEGER NOT NULL DEFAULT 0,
	max_count INTEGER NOT NULL DEFAULT 0,
	max_age   INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

-- A removed event's position is never given again: SQLite gives a new row
-- the highest rowid plus one, so when a removal takes the row with the
-- highest position, a placeholder row takes its place (stream '', which
-- no stream ID can be; version minus its position). Reads of the global
-- log leave placeholders out, and the next removal deletes those that no
-- longer hold the highest position.
