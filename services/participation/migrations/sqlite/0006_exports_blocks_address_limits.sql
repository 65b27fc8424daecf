-- See migrations/postgres/0006: the export audit log (one row per export, a retry keyed by its
-- request id recorded once), per-event block lists, per-address entry counts (keyed hashes only),
-- and when an event's personal data was erased.
CREATE TABLE exports (
    id             TEXT    PRIMARY KEY,
    event_id       TEXT    NOT NULL,
    request_id     TEXT,
    actor_id       TEXT    NOT NULL,
    client_address TEXT    NOT NULL,
    kind           INTEGER NOT NULL,
    revealed       BOOLEAN NOT NULL,
    row_count      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    repeats        INTEGER NOT NULL DEFAULT 0,
    last_at        INTEGER NOT NULL
);

CREATE UNIQUE INDEX exports_request ON exports (event_id, request_id, actor_id, client_address, kind, revealed);
CREATE INDEX exports_event_time ON exports (event_id, created_at, id);

CREATE TABLE blocks (
    id            TEXT    PRIMARY KEY,
    event_id      TEXT    NOT NULL,
    phone_hash    TEXT    NOT NULL,
    masked_phone  TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    entry_id      TEXT,
    created_at    INTEGER NOT NULL,
    removed_at    INTEGER,
    anonymized_at INTEGER
);

CREATE UNIQUE INDEX blocks_active_phone ON blocks (event_id, phone_hash) WHERE removed_at IS NULL;
CREATE INDEX blocks_event_time ON blocks (event_id, created_at);

CREATE TABLE address_entries (
    event_id     TEXT    NOT NULL,
    address_hash TEXT    NOT NULL,
    entries      INTEGER NOT NULL,
    PRIMARY KEY (event_id, address_hash)
);

CREATE TABLE event_erasures (
    event_id      TEXT    PRIMARY KEY,
    erased_at     INTEGER NOT NULL,
    erased_before INTEGER NOT NULL
);
