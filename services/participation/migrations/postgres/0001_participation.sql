-- The participation service's tables. Times are milliseconds since the Unix epoch (BIGINT), the
-- same representation as on SQLite (migrations/sqlite), so every query runs unchanged on both.

-- Entries. Personal data is never stored readably: `name_sealed` and `phone_sealed` are AES-256-GCM
-- ciphertexts (src/pii), `phone_hash` is HMAC-SHA256 of the E.164 number scoped to the event. The
-- unique constraint on (event_id, phone_hash) is what makes "one entry per phone per event" hold
-- under concurrent submissions. AnonymizeEntries clears the ciphertexts and replaces the hash with
-- a value derived from the entry id only.
CREATE TABLE entries (
    id                        TEXT    PRIMARY KEY,
    -- Receive order (first-come selection, oldest-first listing, page cursors).
    seq                       BIGSERIAL NOT NULL,
    event_id                  TEXT    NOT NULL,
    phone_hash                TEXT    NOT NULL,
    name_sealed               BYTEA,
    phone_sealed              BYTEA,
    privacy_consent_version   TEXT    NOT NULL,
    -- NULL when the participant was not asked for marketing consent.
    marketing_consent_granted BOOLEAN,
    marketing_consent_version TEXT,
    source_channel            INTEGER NOT NULL,
    created_at                BIGINT  NOT NULL,
    anonymized_at             BIGINT,
    CONSTRAINT entries_seq_unique UNIQUE (seq),
    CONSTRAINT entries_event_phone_unique UNIQUE (event_id, phone_hash)
);

CREATE INDEX entries_event_seq ON entries (event_id, seq);
CREATE INDEX entries_event_channel ON entries (event_id, source_channel);

-- One row per event that received an entry: the entry count (the cap of first-come events) and
-- the gate closed by the first draw. Every entry updates this row in its transaction, and a draw
-- closes it before reading its snapshot, so no entry can slip in beside a draw.
CREATE TABLE event_gates (
    event_id  TEXT   PRIMARY KEY,
    entries   BIGINT NOT NULL DEFAULT 0,
    closed_at BIGINT
);

-- Draw audit records. The current draw of an event is the one not superseded; the partial unique
-- index allows only one, so concurrent first draws end with exactly one winner list.
CREATE TABLE draws (
    id                    TEXT    PRIMARY KEY,
    event_id              TEXT    NOT NULL,
    seed                  BYTEA   NOT NULL,
    seed_supplied         BOOLEAN NOT NULL,
    algorithm             TEXT    NOT NULL,
    algorithm_version     TEXT    NOT NULL,
    entry_snapshot_sha256 TEXT    NOT NULL,
    entry_count           BIGINT  NOT NULL,
    winner_count          INTEGER NOT NULL,
    -- Excluded entry ids, one per line.
    excluded_entry_ids    TEXT    NOT NULL,
    drawn_at              BIGINT  NOT NULL,
    redraw_of             TEXT,
    superseded_at         BIGINT
);

CREATE UNIQUE INDEX draws_current ON draws (event_id) WHERE superseded_at IS NULL;
CREATE INDEX draws_event ON draws (event_id, drawn_at);

-- Winners of every draw (superseded draws keep theirs for the audit trail), by rank.
CREATE TABLE winners (
    draw_id  TEXT    NOT NULL REFERENCES draws (id),
    rank     INTEGER NOT NULL,
    entry_id TEXT    NOT NULL REFERENCES entries (id),
    PRIMARY KEY (draw_id, rank)
);
