-- Version 8: the keys of data subjects (driver.KeyStore, for package
-- shred's crypto-shredding), one row per subject. Self-contained: a table of
-- its own, apart from the events, so no read of the log, subscription or
-- migration sees the keys. A deleted key's row stays in the table's file as
-- a dead tuple until VACUUM reclaims it (docs/gdpr.md).
CREATE TABLE {{schema}}.subject_keys (
	subject text  COLLATE "C" NOT NULL,
	key     bytea NOT NULL,
	CONSTRAINT subject_keys_pkey PRIMARY KEY (subject)
);
