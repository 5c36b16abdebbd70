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

-- lock_writers() locks the events table in SHARE ROW EXCLUSIVE mode until
-- the calling transaction ends: an append condition with an item without
-- tags takes it, since such an item may match events without tags, whose
-- writers take no tag locks (see tags.go). It waits for every writer of the
-- store and holds new ones back. LOCK TABLE in that mode needs UPDATE,
-- DELETE or TRUNCATE on the table, which the application role must not
-- have, so the function runs as its owner (the role that created the
-- schema); only roles granted EXECUTE may call it (docs/postgres.md,
-- "Privileges").
CREATE FUNCTION {{schema}}.lock_writers() RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ BEGIN LOCK TABLE {{schema}}.events IN SHARE ROW EXCLUSIVE MODE; END $$;
REVOKE EXECUTE ON FUNCTION {{schema}}.lock_writers() FROM PUBLIC;
