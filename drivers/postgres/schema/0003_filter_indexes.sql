-- Version 3: indexes for filtered reads of the global log. Each holds the
-- events of one category, or of one event type, in position order, so a
-- read filtered by a few categories or event types walks only their events
-- instead of the whole log (see scan.go). The category expression is the
-- one the reads use: driver.Category, the stream ID up to its first "-".
-- Upgrading builds both indexes over every stored event, once, under the
-- migration lock; appends wait for it.
CREATE INDEX events_category_idx ON {{schema}}.events (split_part(stream_id, '-', 1), tx_id, seq);
CREATE INDEX events_type_idx ON {{schema}}.events (event_type, tx_id, seq);
-- Statistics on the category expression, and on meta (one row, which
-- autovacuum never analyzes; stores created by early releases of the driver
-- have none), so that generic plans estimate the reads as they are: without
-- them a filtered read was estimated at millions of rows, which turned on
-- JIT compilation, half a second per statement. The events table only when
-- it holds events (an upgrade): analyzed empty (a new store), the planner
-- takes it for a table of no pages until autovacuum analyzes it again, and
-- the generic plans prepared statements settle on at their sixth run walk it
-- with sequential scans, which cost more with every event appended (see
-- "Query plans of appends" in docs/postgres.md). Never analyzed, it is
-- planned as at least 10 pages, with index scans.
ANALYZE {{schema}}.meta;
DO $$ BEGIN
	IF EXISTS (SELECT FROM {{schema}}.events) THEN
		ANALYZE {{schema}}.events;
	END IF;
END $$;
