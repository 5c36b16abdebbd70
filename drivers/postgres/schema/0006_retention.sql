-- Version 6: deleted and truncated streams, and retention per stream
-- (driver.StreamDeleter, driver.StreamTruncater, driver.RetentionKeeper).
-- From this version on, rows of events and event_tags are deleted by
-- DeleteStream, TruncateStream and retention.

-- stream_marks holds a row for each stream whose events were removed or
-- that has a retention; most streams have none. Appends read it with one
-- key lookup.
--   last:       the stream's version when events were last removed, so
--               versions continue after it when no event is left;
--   deleted:    the stream was deleted at version last: while no event
--               above last exists, it has version 0;
--   max_count, max_age_us: the retention (0: no limit).
CREATE TABLE {{schema}}.stream_marks (
	stream_id  text    PRIMARY KEY,
	last       bigint  NOT NULL DEFAULT 0,
	deleted    boolean NOT NULL DEFAULT false,
	max_count  bigint  NOT NULL DEFAULT 0,
	max_age_us bigint  NOT NULL DEFAULT 0
);
-- Every append and StreamVersion reads it: roles granted before this
-- version (docs/postgres.md, "Privileges") keep working without a new
-- grant. It shows only stream IDs, versions and retention settings, which
-- those roles read in events anyway. Writing it (DeleteStream,
-- TruncateStream, SetStreamRetention) needs its own grants.
GRANT SELECT ON {{schema}}.stream_marks TO PUBLIC;

-- apply_retention removes, after each statement that inserts events, the
-- events of the written streams that their retention no longer keeps:
-- MaxCount by version, MaxAge from the oldest event up to the first one
-- recorded less than max_age_us before the transaction's start (the
-- server's clock), with their tags. It runs as the schema's owner
-- (SECURITY DEFINER), so writers need no DELETE grant for it; a statement
-- that writes streams without retention pays one lookup of stream_marks
-- per written stream.
CREATE FUNCTION {{schema}}.apply_retention() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	WITH r AS (
		SELECT m.stream_id, m.max_count, m.max_age_us, n.top
		FROM (SELECT stream_id, max(version) AS top FROM new_events GROUP BY stream_id) n
			JOIN {{schema}}.stream_marks m ON m.stream_id = n.stream_id
		WHERE m.max_count > 0 OR m.max_age_us > 0
	), cut AS (
		SELECT r.stream_id, greatest(
			CASE WHEN r.max_count > 0 THEN r.top - r.max_count + 1 ELSE 1 END,
			CASE WHEN r.max_age_us > 0 THEN coalesce(
				(SELECT min(e.version) FROM {{schema}}.events e WHERE e.stream_id = r.stream_id
					AND e.recorded_at >= now() - make_interval(secs => r.max_age_us / 1e6)),
				r.top + 1) ELSE 1 END) AS before
		FROM r
	), del AS (
		DELETE FROM {{schema}}.events e USING cut
		WHERE e.stream_id = cut.stream_id AND e.version < cut.before
		RETURNING e.tx_id, e.seq, e.tags
	)
	DELETE FROM {{schema}}.event_tags t USING del
	WHERE del.tags IS NOT NULL AND t.tag = ANY (del.tags) AND t.tx_id = del.tx_id AND t.seq = del.seq;
	RETURN NULL;
END $$;

CREATE TRIGGER events_retention AFTER INSERT ON {{schema}}.events
	REFERENCING NEW TABLE AS new_events
	FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.apply_retention();

-- The trigger costs every insert statement, retention or not: its
-- transition table holds every inserted row (100-event appends ran at half
-- their speed, single appends 15 % slower). So it stays disabled until a
-- stream has a retention: SetStreamRetention calls enable_retention() in
-- its transaction, which switches it on, for good, once some stream_marks
-- row holds a retention (so any role may call it: it can only do what a
-- retention already stored needs). Enabling takes the table's SHARE ROW
-- EXCLUSIVE lock once, as a removal does.
ALTER TABLE {{schema}}.events DISABLE TRIGGER events_retention;
CREATE FUNCTION {{schema}}.enable_retention() RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '{{schema}}.events'::regclass
			AND tgname = 'events_retention' AND tgenabled = 'D')
		AND EXISTS (SELECT 1 FROM {{schema}}.stream_marks WHERE max_count > 0 OR max_age_us > 0) THEN
		ALTER TABLE {{schema}}.events ENABLE TRIGGER events_retention;
	END IF;
END $$;
