-- The local copies that incremental directory reads keep (the
-- sources.CopyStore), per customer and source ("ad", "m365"): where the
-- next read resumes (the reader's opaque token), the objects it read (each
-- an opaque document of its reader) and the direct membership links
-- between them. ApplyCopy writes a read's changes and its new position in
-- one transaction, so a crash before the commit re-reads from the old one.
-- The CHECKs hold ids to the lengths MySQL enforces.

CREATE TABLE directory_copy_state (
  customer_id VARCHAR(64)  NOT NULL,
  source      VARCHAR(16)  NOT NULL,
  token       BLOB         NOT NULL,
  -- when the last full, reconciling read finished (unix microseconds)
  full_at     BIGINT       NOT NULL,
  -- digest of the selection the copy was read for
  selection   VARCHAR(191) NOT NULL DEFAULT '',
  PRIMARY KEY (customer_id, source)
);

CREATE TABLE directory_copy_objects (
  customer_id VARCHAR(64)  NOT NULL,
  source      VARCHAR(16)  NOT NULL,
  object_id   VARCHAR(191) NOT NULL CHECK (length(object_id) BETWEEN 1 AND 191),
  kind        VARCHAR(32)  NOT NULL CHECK (length(kind) <= 32),
  doc         BLOB         NOT NULL,
  PRIMARY KEY (customer_id, source, object_id)
);

-- member_id is a direct member of group_id. The second index finds the
-- links of a deleted member.
CREATE TABLE directory_copy_links (
  customer_id VARCHAR(64)  NOT NULL,
  source      VARCHAR(16)  NOT NULL,
  group_id    VARCHAR(191) NOT NULL CHECK (length(group_id) BETWEEN 1 AND 191),
  member_id   VARCHAR(191) NOT NULL CHECK (length(member_id) BETWEEN 1 AND 191),
  PRIMARY KEY (customer_id, source, group_id, member_id)
) WITHOUT ROWID;

CREATE INDEX directory_copy_links_member ON directory_copy_links (customer_id, source, member_id);
