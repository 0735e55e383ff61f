-- The technician's side of imported accounts.

-- Accounts that need a person, as the last import pass of their customer
-- left them: ambiguous, held (surge guard), failed (a sink call failed;
-- retried next run), and possible-duplicate (imported beside an entry
-- with the same username and no category, until a technician settles it).
-- A pass rewrites only the rows whose state or reason changed.
CREATE TABLE account_attention (
  customer_id  VARCHAR(64)  NOT NULL,
  source       VARCHAR(16)  NOT NULL,
  source_id    VARCHAR(191) NOT NULL,
  account_type VARCHAR(16)  NOT NULL,
  username     VARCHAR(255) NOT NULL,
  display_name VARCHAR(255) NOT NULL DEFAULT '',
  email        VARCHAR(255) NOT NULL DEFAULT '',
  state        VARCHAR(32)  NOT NULL,
  reason       TEXT         NOT NULL,
  since        BIGINT       NOT NULL,
  PRIMARY KEY (customer_id, source, source_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A technician's decision about one account, honoured by every run:
-- match (use this vault entry / PSA contact, or create one) or ignore.
CREATE TABLE account_decisions (
  customer_id  VARCHAR(64)  NOT NULL,
  source       VARCHAR(16)  NOT NULL,
  source_id    VARCHAR(191) NOT NULL,
  username     VARCHAR(255) NOT NULL,
  decision     VARCHAR(16)  NOT NULL,
  vault_ref    VARCHAR(191) NOT NULL DEFAULT '',
  vault_create TINYINT      NOT NULL DEFAULT 0,
  psa_ref      VARCHAR(191) NOT NULL DEFAULT '',
  psa_create   TINYINT      NOT NULL DEFAULT 0,
  reason       TEXT         NOT NULL,
  actor        VARCHAR(255) NOT NULL,
  decided_at   BIGINT       NOT NULL,
  PRIMARY KEY (customer_id, source, source_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The name of the vault entry an account is linked to, for a technician.
ALTER TABLE imported_accounts ADD COLUMN vault_name VARCHAR(255) NOT NULL DEFAULT '';
