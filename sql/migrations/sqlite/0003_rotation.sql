-- Password rotation of imported administrators. One row per account: its
-- latest rotation, whose state moves pending -> set -> done (or failed,
-- or abandoned when the directory never took it). While a rotation is
-- pending or set, sealed holds the new password (sealed with the secret
-- key): with the vault, it is how the account's password is never lost.
CREATE TABLE rotations (
  customer_id       VARCHAR(64)  NOT NULL,
  source            VARCHAR(16)  NOT NULL,
  source_id         VARCHAR(191) NOT NULL,
  username          VARCHAR(255) NOT NULL,
  state             VARCHAR(16)  NOT NULL,
  sealed            TEXT         NOT NULL,
  target            VARCHAR(32)  NOT NULL,
  -- what the directory said before the change (Graph: the last password
  -- change time), to learn after a crash whether the change took
  marker            VARCHAR(64)  NOT NULL DEFAULT '',
  vault_integration VARCHAR(32)  NOT NULL DEFAULT '',
  vault_ref         VARCHAR(191) NOT NULL DEFAULT '',
  started_at        BIGINT       NOT NULL,
  set_at            BIGINT       NOT NULL DEFAULT 0,
  done_at           BIGINT       NOT NULL DEFAULT 0,
  error             TEXT         NOT NULL,
  PRIMARY KEY (customer_id, source, source_id)
);

-- When the account's password was last rotated (0: never, since import).
ALTER TABLE imported_accounts ADD COLUMN last_rotated_at BIGINT NOT NULL DEFAULT 0;
