-- Version 3: consumer-group leases (driver.Leaser).

-- leases holds one row per lease of a consumer group. Times are
-- microseconds since the Unix epoch by the clock of the process that wrote
-- them (SQLite has no server clock; every process sharing the file runs on
-- the machine that holds it). Keys compare bytewise (BINARY), so Leases
-- lists them in byte order.
CREATE TABLE leases (
	group_name       TEXT    NOT NULL,
	key              TEXT    NOT NULL,
	owner            TEXT    NOT NULL,  -- "" once released
	generation       INTEGER NOT NULL,  -- grants to a new owner, 1 for the first
	expires_at       INTEGER NOT NULL,  -- microseconds since the Unix epoch
	-- The saved position, stored as in checkpoints; NULL while none was saved.
	position_commit  INTEGER,
	position_prepare INTEGER,
	PRIMARY KEY (group_name, key)
) STRICT, WITHOUT ROWID;
