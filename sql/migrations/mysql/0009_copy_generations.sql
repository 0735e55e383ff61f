-- A full directory read stages what it reads straight into
-- directory_copy_objects, as the next generation of the customer's copy,
-- and its last transaction (ApplyCopy) makes that generation the copy's
-- (directory_copy_state.generation) and deletes the one before: no object
-- is written twice, as it was through directory_copy_staged. Readers see
-- the state's generation only; a read that never applies leaves rows of
-- another generation, which the next full read deletes first.

ALTER TABLE directory_copy_state ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;

ALTER TABLE directory_copy_objects
  ADD COLUMN generation BIGINT NOT NULL DEFAULT 0 AFTER source,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (customer_id, source, generation, object_id);

DROP TABLE directory_copy_staged;
