-- The insights job (#21): when a published Instagram post's numbers were last read (claimed), so
-- each post is read at most once per interval across replicas. NULL: never read.
ALTER TABLE distribution_deliveries ADD COLUMN insights_read_at BIGINT;
