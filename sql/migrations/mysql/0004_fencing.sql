-- Fencing. A rotation has an id and counts the directory calls made for it
-- (attempt, recorded before each call); every change of its state is
-- conditional on the id, state and attempt the writer read, and on the
-- writer still holding the customer's lease. A lease has a token that
-- grows whenever the lease is taken anew, so a writer from an earlier
-- term cannot pass for the holder. Expiry is compared on the database's
-- clock.
ALTER TABLE rotations ADD COLUMN rotation_id VARCHAR(32) NOT NULL DEFAULT '';
ALTER TABLE rotations ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN token BIGINT NOT NULL DEFAULT 0;
