-- CSV exports with their audit log, per-event block lists, per-address entry limits, and the
-- record that an event's personal data was erased (#20). Times are epoch milliseconds.

-- The audit log of ExportParticipants: who exported what of which event, when, from where, and
-- whether names and phones were revealed. It holds no participant's personal data (the actor is
-- the owner, the address is the owner's as the edge saw it), so it outlives AnonymizeEntries: it is
-- the access record the owner's accountability rests on.
--
-- A retried export is recorded once: the unique key is the call's `x-request-id` with everything
-- the export was about (event, actor, address, kind, reveal), so a retry of one export — same id,
-- same everything — lands on its row (and counts in `repeats`), while a different export that
-- reuses an id still gets its own row: a client-chosen id can never hide an export. Calls without a
-- request id (NULL) never collide and always get a row.
CREATE TABLE exports (
    id             TEXT    PRIMARY KEY,
    event_id       TEXT    NOT NULL,
    request_id     TEXT,
    actor_id       TEXT    NOT NULL,
    client_address TEXT    NOT NULL,
    -- kem.participation.v1.ExportKind number.
    kind           INTEGER NOT NULL,
    revealed       BOOLEAN NOT NULL,
    row_count      BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    -- Retries of the same export answered with this record, and the last one's time.
    repeats        BIGINT  NOT NULL DEFAULT 0,
    last_at        BIGINT  NOT NULL
);

CREATE UNIQUE INDEX exports_request ON exports (event_id, request_id, actor_id, client_address, kind, revealed);
-- ListExports: newest first, keyset pages on (created_at, id).
CREATE INDEX exports_event_time ON exports (event_id, created_at, id);

-- Blocked phones of an event: the keyed phone hash of Enter (entries.phone_hash, so a block
-- matches the phone's entry and refuses its next ones without the number being readable) and the
-- masked phone for the owner's list. One active block per phone and event (the partial index
-- decides, so concurrent blocks of one phone end in one block). A removed block (UnblockParticipant)
-- keeps only its id, event and times: its hash, masked phone and reason are erased at once.
-- AnonymizeEntries erases the same from active blocks: the hash of a block matching an entry
-- follows that entry's anonymized hash (so the entry stays out of later draws), the others get a
-- value derived from the block id alone.
CREATE TABLE blocks (
    id            TEXT   PRIMARY KEY,
    event_id      TEXT   NOT NULL,
    phone_hash    TEXT   NOT NULL,
    masked_phone  TEXT   NOT NULL,
    reason        TEXT   NOT NULL,
    -- The entry the block was made from; NULL when blocked by phone.
    entry_id      TEXT,
    created_at    BIGINT NOT NULL,
    removed_at    BIGINT,
    anonymized_at BIGINT
);

CREATE UNIQUE INDEX blocks_active_phone ON blocks (event_id, phone_hash) WHERE removed_at IS NULL;
CREATE INDEX blocks_event_time ON blocks (event_id, created_at);

-- Accepted entries per event and client address, for events whose entry rules limit them
-- (max_entries_per_address). The address is stored only as a keyed hash scoped to the event (IPv4
-- addresses whole, IPv6 by their /64, what one subscriber gets). Counted in the entry's own
-- transaction with a conditional upsert: the row lock orders the entries of one address across
-- replicas, so the limit is exact; other addresses never wait.
CREATE TABLE address_entries (
    event_id     TEXT   NOT NULL,
    address_hash TEXT   NOT NULL,
    entries      BIGINT NOT NULL,
    PRIMARY KEY (event_id, address_hash)
);

-- When AnonymizeEntries erased an event's personal data (the first call) and the latest cutoff it
-- was given. Once an event has a row, exports are refused (DATA_ERASED): a file of erased rows is
-- no export.
CREATE TABLE event_erasures (
    event_id     TEXT   PRIMARY KEY,
    erased_at    BIGINT NOT NULL,
    erased_before BIGINT NOT NULL
);
