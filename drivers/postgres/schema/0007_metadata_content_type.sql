-- Version 7: the content type of an event's metadata, for imports of
-- history written elsewhere (driver.RecordedEvent.MetadataContentType).
-- Self-contained: it adds a column and touches nothing else.
--
-- events.metadata_content_type is NULL for JSON metadata (empty or a JSON
-- value), as every append writes it: a NULL is a bit in the row header, and
-- adding the column rewrites nothing. 1 is binary metadata (any bytes),
-- which only an import writes.
ALTER TABLE {{schema}}.events ADD COLUMN metadata_content_type smallint;
