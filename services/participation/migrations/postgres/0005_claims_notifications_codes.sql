-- Participants (#20), winners' side: prize claims with codes and deadlines, the SMS telling each
-- winner, redraws of unclaimed prizes, one-time codes, withdrawn entries.

-- A withdrawn entry (WithdrawEntry, before the draw): its name and phone are erased at once
-- (anonymized_at is set with it) and it takes part in no draw. The phone hash stays, so the
-- participant's repeated withdrawal finds the entry and answers OK, and the phone cannot enter
-- the event a second time; AnonymizeEntries replaces it like any other at the end of retention.
ALTER TABLE entries ADD COLUMN withdrawn_at BIGINT;

-- One row per winner of a draw: the claim. `code_hash` is HMAC-SHA256 (the phone-hash key,
-- label kem.participation.claim-code.v1, scoped to the event and phone) of the 8-character claim
-- code, which is never stored readably; NULL for winners drawn before claims existed (they cannot
-- claim). `deadline` is the draw time + the event's claim days. `claimed_at` is the first claim
-- (ClaimPrize sets it once, conditionally). A winner stops being current (`retired_at`) when a
-- DrawWinners redraw replaces the whole draw, or when RedrawUnclaimed gives the expired prize to
-- someone else (`redrawn_at` then says so: claim state REDRAWN). Current winners: retired_at IS
-- NULL.
CREATE TABLE winner_claims (
    draw_id    TEXT    NOT NULL,
    rank       INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    entry_id   TEXT    NOT NULL,
    code_hash  TEXT,
    deadline   BIGINT  NOT NULL,
    claimed_at BIGINT,
    retired_at BIGINT,
    redrawn_at BIGINT,
    PRIMARY KEY (draw_id, rank)
);
CREATE INDEX winner_claims_event ON winner_claims (event_id, entry_id);

-- The winners of current draws made before this migration: claimable never (no code), expired
-- 7 days (the default claim days) after their draw.
INSERT INTO winner_claims (draw_id, rank, event_id, entry_id, deadline)
SELECT w.draw_id, w.rank, d.event_id, w.entry_id, d.drawn_at + 604800000
FROM winners w JOIN draws d ON d.id = w.draw_id WHERE d.superseded_at IS NULL;

-- The messages telling winners (the outbox of SMS): written in the draw's transaction, sent by the
-- notifier of any replica. A replica claims a due row with a lease (one conditional UPDATE of
-- lease_owner/lease_until), so one replica works on a row at a time.
--
-- state: PENDING (to send, or waiting for a retry after a refused send), SENT (accepted by the
-- provider: request_id is recorded before anything else, so a crash never sends twice),
-- DELIVERED, FAILED. `send_started_at` is set, in its own commit, just before a send is tried and
-- cleared when the provider's answer is known: a row with it set and no request_id had a send
-- whose outcome is unknown (a timeout, a crash), and is searched for at the provider before any
-- new send. `message_sealed` is the text (it holds the claim code), AES-256-GCM under the
-- personal-data key bound to the row id; erased once the row is DELIVERED or FAILED.
CREATE TABLE winner_notifications (
    id              TEXT    PRIMARY KEY,
    event_id        TEXT    NOT NULL,
    draw_id         TEXT    NOT NULL,
    rank            INTEGER NOT NULL,
    entry_id        TEXT    NOT NULL,
    channel         INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lookups         INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    provider_kind   INTEGER NOT NULL DEFAULT 0,
    provider_name   TEXT    NOT NULL DEFAULT '',
    request_id      TEXT,
    message_sealed  BYTEA,
    due_at          BIGINT  NOT NULL,
    send_started_at BIGINT,
    lease_owner     TEXT,
    lease_until     BIGINT,
    updated_at      BIGINT  NOT NULL,
    CONSTRAINT winner_notifications_once UNIQUE (draw_id, rank, channel)
);
CREATE INDEX winner_notifications_due ON winner_notifications (state, due_at);
CREATE INDEX winner_notifications_event ON winner_notifications (event_id);

-- Wrong claim codes per (event, phone hash) in the current one-hour window: 5 lock the phone out
-- of ClaimPrize until the window ends.
CREATE TABLE claim_failures (
    event_id     TEXT    NOT NULL,
    phone_hash   TEXT    NOT NULL,
    window_start BIGINT  NOT NULL,
    failures     INTEGER NOT NULL,
    PRIMARY KEY (event_id, phone_hash)
);

-- One-time codes (SendParticipantCode), one per (event, phone hash, purpose): a new code replaces
-- the previous one. `code_hash` is HMAC-SHA256 under the phone-hash key (NULL once consumed by an
-- entry); `attempts_left` counts down on wrong codes; `sent_at` spaces sends 60 s apart;
-- `day_start`/`day_count` allow 5 codes per 24 hours.
CREATE TABLE participant_codes (
    event_id      TEXT    NOT NULL,
    phone_hash    TEXT    NOT NULL,
    purpose       INTEGER NOT NULL,
    code_hash     TEXT,
    expires_at    BIGINT  NOT NULL,
    attempts_left INTEGER NOT NULL,
    sent_at       BIGINT  NOT NULL,
    day_start     BIGINT  NOT NULL,
    day_count     INTEGER NOT NULL,
    PRIMARY KEY (event_id, phone_hash, purpose)
);
