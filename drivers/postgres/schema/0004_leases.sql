-- Version 4: the leases of consumer groups (driver.Leaser), one row per
-- (group, key). Expiry is by the server's clock: expires is compared with
-- clock_timestamp(). owner is '' once released; generation counts the grants
-- to a member that did not hold the lease, the fencing token of
-- SaveLeasePosition. The saved position is (tx_id, seq), both NULL while
-- none was saved. Both key columns sort in byte order (COLLATE "C"), so a
-- group's leases are read in key order from the primary key, whatever the
-- database's collation.
CREATE TABLE {{schema}}.leases (
	group_name text        COLLATE "C" NOT NULL,
	key        text        COLLATE "C" NOT NULL,
	owner      text        NOT NULL,
	generation bigint      NOT NULL,
	expires    timestamptz NOT NULL,
	tx_id      bigint,
	seq        bigint,
	CONSTRAINT leases_pkey PRIMARY KEY (group_name, key),
	CONSTRAINT leases_position_check CHECK ((tx_id IS NULL) = (seq IS NULL))
);
