-- The guestbook's entries on embedded SQLite (`kem up`): the same table, columns and constraints
-- as migrations/postgres, in SQLite's types (see there for why). `seq` is the rowid alias.
CREATE TABLE entries (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    event_id   TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    request_id TEXT,
    created_at INTEGER NOT NULL,
    CONSTRAINT entries_event_request_unique UNIQUE (event_id, request_id)
);

CREATE INDEX entries_event_seq ON entries (event_id, seq);
