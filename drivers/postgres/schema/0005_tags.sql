-- Version 5: event tags (Dynamic Consistency Boundaries, driver.QueryReader).
-- Self-contained: it adds a column and a table and touches nothing else.
--
-- events.tags holds an event's tags in the caller's order, NULL when it has
-- none: an untagged event costs nothing (a NULL is a bit in the row header),
-- and adding the column rewrites nothing.
--
-- event_tags indexes the tagged events by tag, in position order: one row
-- per (tag, event), with the event's type, so that a read by query walks one
-- tag's events from a position (an index range scan that stops at the
-- page's limit) and an append condition is one index probe per query item.
-- Only tagged events have rows. A GIN index on events.tags was measured
-- against it (docs/postgres.md, "Tags and queries"): smaller and cheaper to
-- write, but it cannot return a tag's events in position order, so a page or
-- a condition costs every event of the tag. Tags sort in byte order.
ALTER TABLE {{schema}}.events ADD COLUMN tags text[];
CREATE TABLE {{schema}}.event_tags (
	tag        text   COLLATE "C" NOT NULL,
	tx_id      bigint NOT NULL,
	seq        bigint NOT NULL,
	event_type text   NOT NULL,
	CONSTRAINT event_tags_pkey PRIMARY KEY (tag, tx_id, seq) INCLUDE (event_type)
);
