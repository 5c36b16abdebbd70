-- Version 2: a retried append is recognised by the first event ID of each
-- append, found through a partial index holding one entry per append,
-- instead of an index entry for every event (a fourth B-tree written per
-- event: see docs/postgres.md, "Benchmarks").

-- starts_append is true for the first event of each append. Version 1 did
-- not record where appends began: every event written before the upgrade
-- counts as a possible first event (the column's default fills them in
-- without rewriting the table), so retries of those appends behave as they
-- did.
ALTER TABLE {{schema}}.events ADD COLUMN starts_append boolean NOT NULL DEFAULT true;

-- Finds a retried append by its first event ID.
CREATE INDEX events_append_event_id_idx ON {{schema}}.events (event_id) WHERE starts_append;

DROP INDEX {{schema}}.events_event_id_idx;
