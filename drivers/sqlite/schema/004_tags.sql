-- Version 4: event tags, for reads by query and conditional appends
-- (Dynamic Consistency Boundaries, driver.QueryReader), and multi-stream
-- appends (driver.MultiAppender), which need no schema of their own.

-- tags holds an event's tags as a JSON array of strings, in the order they
-- were appended; NULL when the event has none, which costs an untagged
-- event one byte of its row and no other write.
ALTER TABLE events ADD COLUMN tags TEXT;

-- event_tags indexes tagged events by tag: one row per (tag, event), keyed
-- by tag first, so the events of a tag after a position are one range of
-- the key, in position order. It is written with the event, in the same
-- transaction, only for events with tags. Rows are never updated or
-- deleted. Event types have no index (see version 1): a query item with
-- types and no tags walks the log by position.
CREATE TABLE event_tags (
	tag      TEXT    NOT NULL,
	position INTEGER NOT NULL,  -- events.position
	PRIMARY KEY (tag, position)
) STRICT, WITHOUT ROWID;
