-- Version 9: partial indexes of the events larger than 4,096 bytes of data
-- and metadata, one by position and one by stream. A page of a read is
-- bounded in bytes as well as in events (driver.StreamQuery.MaxBytes), and
-- computing where the bound cuts it reads every row of the page a second
-- time (pageRows in read.go). When the page's limit times 4,096 bytes is
-- within its bound and no event of the read's range is larger, no cut can
-- fall inside the page: one probe of these indexes, empty in a store of
-- small events, proves it, and the page is read once. The predicate is the
-- drivers' largeEvent, word for word, so the planner matches it.
-- Appends evaluate the predicate per event and add an index entry only for
-- a large event. Upgrading reads every stored event once, under the
-- migration lock; appends wait for it.
CREATE INDEX events_large_pos_idx ON {{schema}}.events (tx_id, seq)
	WHERE octet_length(data) + octet_length(metadata) > 4096;
CREATE INDEX events_large_stream_idx ON {{schema}}.events (stream_id, version)
	WHERE octet_length(data) + octet_length(metadata) > 4096;
