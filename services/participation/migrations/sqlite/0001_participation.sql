-- The participation service's tables on embedded SQLite (`kem up`): the same tables, columns and
-- constraints as migrations/postgres, in SQLite's types. Times are epoch milliseconds.

-- Entries (see the PostgreSQL migration). `seq` is the rowid alias, SQLite's monotonic key.
CREATE TABLE entries (
    seq                       INTEGER PRIMARY KEY AUTOINCREMENT,
    id                        TEXT    NOT NULL UNIQUE,
    event_id                  TEXT    NOT NULL,
    phone_hash                TEXT    NOT NULL,
    name_sealed               BLOB,
    phone_sealed              BLOB,
    privacy_consent_version   TEXT    NOT NULL,
    marketing_consent_granted BOOLEAN,
    marketing_consent_version TEXT,
    source_channel            INTEGER NOT NULL,
    created_at                INTEGER NOT NULL,
    anonymized_at             INTEGER,
    CONSTRAINT entries_event_phone_unique UNIQUE (event_id, phone_hash)
);

CREATE INDEX entries_event_seq ON entries (event_id, seq);
CREATE INDEX entries_event_channel ON entries (event_id, source_channel);

CREATE TABLE event_gates (
    event_id  TEXT    PRIMARY KEY,
    entries   INTEGER NOT NULL DEFAULT 0,
    closed_at INTEGER
);

CREATE TABLE draws (
    id                    TEXT    PRIMARY KEY,
    event_id              TEXT    NOT NULL,
    seed                  BLOB    NOT NULL,
    seed_supplied         BOOLEAN NOT NULL,
    algorithm             TEXT    NOT NULL,
    algorithm_version     TEXT    NOT NULL,
    entry_snapshot_sha256 TEXT    NOT NULL,
    entry_count           INTEGER NOT NULL,
    winner_count          INTEGER NOT NULL,
    excluded_entry_ids    TEXT    NOT NULL,
    drawn_at              INTEGER NOT NULL,
    redraw_of             TEXT,
    superseded_at         INTEGER
);

CREATE UNIQUE INDEX draws_current ON draws (event_id) WHERE superseded_at IS NULL;
CREATE INDEX draws_event ON draws (event_id, drawn_at);

CREATE TABLE winners (
    draw_id  TEXT    NOT NULL REFERENCES draws (id),
    rank     INTEGER NOT NULL,
    entry_id TEXT    NOT NULL REFERENCES entries (id),
    PRIMARY KEY (draw_id, rank)
);
