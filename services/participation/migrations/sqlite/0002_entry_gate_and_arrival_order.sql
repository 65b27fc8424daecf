-- See migrations/postgres/0002: entries closed by EndEvent, and arrival order (created_at, id).
-- On SQLite every write transaction is BEGIN IMMEDIATE, so an entry and a close never interleave.

ALTER TABLE event_gates ADD COLUMN ended_at INTEGER;

-- `seq` stays as the table's rowid alias (SQLite cannot drop an INTEGER PRIMARY KEY column without
-- rebuilding the table); no query orders by it any more.
CREATE INDEX entries_event_arrival ON entries (event_id, created_at, id);
DROP INDEX entries_event_seq;
