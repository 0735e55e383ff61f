-- What a full directory read has read so far and not yet applied: the
-- read stages its objects here as it goes, so that it never holds a whole
-- directory, and its last transaction (ApplyCopy) swaps them into
-- directory_copy_objects with its position. A read that never gets there
-- leaves the copy as it was; the next full read clears its rows.

CREATE TABLE directory_copy_staged (
  customer_id VARCHAR(64)  NOT NULL,
  source      VARCHAR(16)  NOT NULL,
  object_id   VARCHAR(191) NOT NULL CHECK (length(object_id) BETWEEN 1 AND 191),
  kind        VARCHAR(32)  NOT NULL CHECK (length(kind) <= 32),
  doc         BLOB         NOT NULL,
  PRIMARY KEY (customer_id, source, object_id)
);
