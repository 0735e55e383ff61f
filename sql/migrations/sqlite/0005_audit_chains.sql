-- One audit hash chain per customer, and one for tenant-wide changes
-- (customer_id ''), each with its own head: a write transaction locks the
-- heads of the chains it appends to, so customers' writes no longer wait
-- for one another. seq is an event's place in its chain; id stays the
-- order of writing across chains (the next after the largest, under
-- SQLite's single writer).
--
-- The events already written keep their single SHA-256 chain (prev_hash
-- and hash over the id) and are marked seq = -id. autoimport checks that
-- chain against audit_head the first time it opens the database, then
-- re-chains the events per customer under the key (HMAC-SHA256 with a key
-- derived from AUTOIMPORT_SECRET_KEY; plain SHA-256 without one), in one
-- transaction recorded by an audit.rechain event, and clears audit_head.
-- A broken chain is not re-chained: writes are refused until a person
-- settles it (`autoimport audit rechain --accept-broken`).
ALTER TABLE audit_events ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

UPDATE audit_events SET seq = -id;

CREATE UNIQUE INDEX audit_events_chain ON audit_events (customer_id, seq);

-- key_id names the key a chain is hashed under ('' unkeyed).
CREATE TABLE audit_heads (
  customer_id VARCHAR(64) NOT NULL PRIMARY KEY,
  seq         BIGINT      NOT NULL,
  hash        CHAR(64)    NOT NULL,
  key_id      VARCHAR(32) NOT NULL DEFAULT ''
);

-- A database with no events has nothing to re-chain.
DELETE FROM audit_head WHERE last_id = 0;
