-- A full directory read stages what it reads straight into
-- directory_copy_objects, as the next generation of the customer's copy,
-- and its last transaction (ApplyCopy) makes that generation the copy's
-- (directory_copy_state.generation) and deletes the one before: no object
-- is written twice, as it was through directory_copy_staged. Readers see
-- the state's generation only; a read that never applies leaves rows of
-- another generation, which the next full read deletes first.

ALTER TABLE directory_copy_state ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;

CREATE TABLE directory_copy_objects_by_generation (
  customer_id VARCHAR(64)  NOT NULL,
  source      VARCHAR(16)  NOT NULL,
  generation  BIGINT       NOT NULL,
  object_id   VARCHAR(191) NOT NULL CHECK (length(object_id) BETWEEN 1 AND 191),
  kind        VARCHAR(32)  NOT NULL CHECK (length(kind) <= 32),
  doc         BLOB         NOT NULL,
  PRIMARY KEY (customer_id, source, generation, object_id)
);

INSERT INTO directory_copy_objects_by_generation (customer_id, source, generation, object_id, kind, doc)
  SELECT customer_id, source, 0, object_id, kind, doc FROM directory_copy_objects;

DROP TABLE directory_copy_objects;

ALTER TABLE directory_copy_objects_by_generation RENAME TO directory_copy_objects;

DROP TABLE directory_copy_staged;
