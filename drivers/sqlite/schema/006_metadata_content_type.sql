-- Version 6: the content type of an event's metadata, for imports of
-- history written elsewhere (driver.RecordedEvent.MetadataContentType).
-- Self-contained: it adds a column and touches nothing else.
--
-- metadata_content_type is NULL for JSON metadata (empty or a JSON value),
-- as every append writes it, so appends are unchanged and cost nothing
-- more; 1 for binary metadata (any bytes), which only an import writes.
ALTER TABLE events ADD COLUMN metadata_content_type INTEGER;
