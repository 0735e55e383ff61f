-- autoimport schema, MySQL 8 / MariaDB 10.11. Timestamps are UTC unix
-- microseconds (BIGINT), the same on every dialect, so audit hashes agree.

CREATE TABLE integrations (
  kind       VARCHAR(32) NOT NULL PRIMARY KEY,
  config     LONGTEXT    NOT NULL,
  updated_at BIGINT      NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE import_policies (
  name         VARCHAR(191) NOT NULL PRIMARY KEY,
  account_type VARCHAR(16)  NOT NULL,
  description  TEXT         NOT NULL,
  -- the account type when this policy is that type's default, else NULL:
  -- the unique index allows at most one default per type.
  default_for  VARCHAR(16)  NULL,
  options      LONGTEXT     NOT NULL,
  updated_at   BIGINT       NOT NULL,
  UNIQUE KEY import_policies_default (default_for)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE customers (
  id         VARCHAR(64)  NOT NULL PRIMARY KEY,
  name       VARCHAR(255) NOT NULL,
  config     LONGTEXT     NOT NULL,
  created_at BIGINT       NOT NULL DEFAULT 0,
  updated_at BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- policy assignment per customer and account type; policy_name 'none'
-- takes the customer out of policies for that type.
CREATE TABLE policy_members (
  customer_id  VARCHAR(64)  NOT NULL,
  account_type VARCHAR(16)  NOT NULL,
  policy_name  VARCHAR(191) NOT NULL,
  PRIMARY KEY (customer_id, account_type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE customer_options (
  customer_id  VARCHAR(64) NOT NULL,
  account_type VARCHAR(16) NOT NULL,
  options      LONGTEXT    NOT NULL,
  PRIMARY KEY (customer_id, account_type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- the ledger: one row per imported account, with the options it was
-- imported under; never rewritten by option or policy changes.
CREATE TABLE imported_accounts (
  customer_id       VARCHAR(64)  NOT NULL,
  source            VARCHAR(16)  NOT NULL,
  source_id         VARCHAR(191) NOT NULL,
  account_type      VARCHAR(16)  NOT NULL,
  username          VARCHAR(255) NOT NULL,
  upn               VARCHAR(255) NOT NULL DEFAULT '',
  display_name      VARCHAR(255) NOT NULL DEFAULT '',
  email             VARCHAR(255) NOT NULL DEFAULT '',
  immutable_id      VARCHAR(64)  NOT NULL DEFAULT '',
  m365_id           VARCHAR(64)  NOT NULL DEFAULT '',
  vault_integration VARCHAR(32)  NOT NULL DEFAULT '',
  vault_ref         VARCHAR(191) NOT NULL DEFAULT '',
  psa_integration   VARCHAR(32)  NOT NULL DEFAULT '',
  psa_ref           VARCHAR(191) NOT NULL DEFAULT '',
  self_serve        TINYINT      NOT NULL DEFAULT 0,
  rotation          TINYINT      NOT NULL DEFAULT 0,
  m365_sync         TINYINT      NOT NULL DEFAULT 0,
  options           LONGTEXT     NOT NULL,
  options_origin    VARCHAR(255) NOT NULL DEFAULT '',
  welcome_state     VARCHAR(16)  NOT NULL DEFAULT 'none',
  welcome_at        BIGINT       NOT NULL DEFAULT 0,
  source_state      VARCHAR(16)  NOT NULL DEFAULT 'active',
  imported_at       BIGINT       NOT NULL,
  last_seen         BIGINT       NOT NULL,
  PRIMARY KEY (customer_id, source, source_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE runs (
  id          BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
  started_at  BIGINT      NOT NULL,
  finished_at BIGINT      NOT NULL DEFAULT 0,
  status      VARCHAR(16) NOT NULL,
  dry_run     TINYINT     NOT NULL DEFAULT 0,
  summary     LONGTEXT    NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- append-only, hash-chained; ids are dense (1, 2, 3, ...), assigned under
-- the audit_head row lock.
CREATE TABLE audit_events (
  id          BIGINT       NOT NULL PRIMARY KEY,
  at          BIGINT       NOT NULL,
  actor       VARCHAR(255) NOT NULL,
  action      VARCHAR(64)  NOT NULL,
  customer_id VARCHAR(64)  NOT NULL DEFAULT '',
  subject     VARCHAR(255) NOT NULL DEFAULT '',
  before_doc  LONGTEXT     NOT NULL,
  after_doc   LONGTEXT     NOT NULL,
  prev_hash   CHAR(64)     NOT NULL,
  hash        CHAR(64)     NOT NULL,
  KEY audit_events_customer (customer_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_head (
  id        TINYINT  NOT NULL PRIMARY KEY,
  last_id   BIGINT   NOT NULL,
  last_hash CHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE leases (
  customer_id VARCHAR(64)  NOT NULL PRIMARY KEY,
  holder      VARCHAR(191) NOT NULL,
  expires_at  BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sync_state (
  customer_id VARCHAR(64)  NOT NULL,
  name        VARCHAR(191) NOT NULL,
  value       LONGTEXT     NOT NULL,
  PRIMARY KEY (customer_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tech_vault_entries (
  id          VARCHAR(64)  NOT NULL PRIMARY KEY,
  customer_id VARCHAR(64)  NOT NULL,
  name        VARCHAR(255) NOT NULL,
  username    VARCHAR(255) NOT NULL,
  category    VARCHAR(64)  NOT NULL,
  notes       TEXT         NOT NULL,
  sealed      TEXT         NOT NULL,
  created_at  BIGINT       NOT NULL,
  KEY tech_vault_entries_customer (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
