-- Version 7: the keys of data subjects (driver.KeyStore, for package
-- shred's crypto-shredding), one row per subject. They are kept apart from
-- the events, so no read of the log, subscription or migration sees them.
-- A key is deleted with PRAGMA secure_delete on, which overwrites the freed
-- bytes, and the WAL is then truncated (keys.go).
CREATE TABLE subject_keys (
	subject TEXT NOT NULL PRIMARY KEY,
	key     BLOB NOT NULL
) STRICT, WITHOUT ROWID;
