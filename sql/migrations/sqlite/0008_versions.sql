-- A version of what an import pass reads of a customer besides its
-- directories: its ledger, the accounts that need a person, the
-- technicians' decisions and the customer itself. Every transaction that
-- writes any of them adds one as it commits, so that a pass can tell
-- with one read that none of them changed since an earlier pass.
CREATE TABLE customer_versions (
  customer_id VARCHAR(64) NOT NULL PRIMARY KEY,
  version     BIGINT      NOT NULL
);

-- The version of a local copy's contents: one more on every write that
-- changes them, none when a read only moves its position.
ALTER TABLE directory_copy_state ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
