-- The local copies that incremental directory reads keep (the
-- sources.CopyStore), per customer and source ("ad", "m365"): where the
-- next read resumes (the reader's opaque token), the objects it read (each
-- an opaque document of its reader) and the direct membership links
-- between them. ApplyCopy writes a read's changes and its new position in
-- one transaction, so a crash before the commit re-reads from the old one.

CREATE TABLE directory_copy_state (
  customer_id VARCHAR(64)  NOT NULL,
  source      VARCHAR(16)  NOT NULL,
  token       MEDIUMBLOB   NOT NULL,
  -- when the last full, reconciling read finished (unix microseconds)
  full_at     BIGINT       NOT NULL,
  -- digest of the selection the copy was read for
  selection   VARCHAR(191) NOT NULL DEFAULT '',
  PRIMARY KEY (customer_id, source)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE directory_copy_objects (
  customer_id VARCHAR(64)  NOT NULL,
  source      VARCHAR(16)  NOT NULL,
  object_id   VARCHAR(191) NOT NULL,
  kind        VARCHAR(32)  NOT NULL,
  doc         MEDIUMBLOB   NOT NULL,
  PRIMARY KEY (customer_id, source, object_id),
  CONSTRAINT directory_copy_objects_id CHECK (object_id <> '')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- member_id is a direct member of group_id. The second index finds the
-- links of a deleted member.
CREATE TABLE directory_copy_links (
  customer_id VARCHAR(64)  NOT NULL,
  source      VARCHAR(16)  NOT NULL,
  group_id    VARCHAR(191) NOT NULL,
  member_id   VARCHAR(191) NOT NULL,
  PRIMARY KEY (customer_id, source, group_id, member_id),
  KEY directory_copy_links_member (customer_id, source, member_id),
  CONSTRAINT directory_copy_links_ids CHECK (group_id <> '' AND member_id <> '')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
