-- The platform kit's messaging tables: the store-backed queue (with its dead-letter table), the
-- transactional outbox and the idempotent inbox. Tracked in `_kem_kit_migrations`, apart from the
-- service's own `_sqlx_migrations`, so kit and service version numbers never collide.
-- Times are milliseconds since the Unix epoch (INTEGER): the same representation as on PostgreSQL.

CREATE TABLE kem_queue_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue          TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    body           BLOB    NOT NULL,
    content_type   TEXT    NOT NULL,
    traceparent    TEXT,
    properties     TEXT    NOT NULL,
    enqueued_at    BIGINT  NOT NULL,
    -- Ready when visible_at <= now. While locked it is the lock expiry; NULL once completed or
    -- dead-lettered (the row stays as a duplicate-detection tombstone until purged).
    visible_at     BIGINT,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token     TEXT,
    completed_at   BIGINT,
    CONSTRAINT kem_queue_messages_queue_id UNIQUE (queue, id)
);

CREATE INDEX kem_queue_messages_ready ON kem_queue_messages (queue, visible_at, seq) WHERE visible_at IS NOT NULL;
CREATE INDEX kem_queue_messages_done ON kem_queue_messages (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE kem_queue_dead_letters (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    body             BLOB    NOT NULL,
    content_type     TEXT    NOT NULL,
    traceparent      TEXT,
    properties       TEXT    NOT NULL,
    enqueued_at      BIGINT  NOT NULL,
    delivery_count   INTEGER NOT NULL,
    lock_token       TEXT,
    locked_until     BIGINT,
    reason           TEXT    NOT NULL,
    dead_lettered_at BIGINT  NOT NULL
);

CREATE INDEX kem_queue_dead_letters_queue ON kem_queue_dead_letters (queue, seq);

CREATE TABLE kem_outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    content_type  TEXT    NOT NULL,
    traceparent   TEXT,
    properties    TEXT    NOT NULL,
    delay_ms      BIGINT,
    created_at    BIGINT  NOT NULL,
    -- A relay claims a batch for a lease; a relay that dies leaves the claim to expire.
    claimed_until BIGINT,
    claim_token   TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);

CREATE INDEX kem_outbox_claim ON kem_outbox (claim_token) WHERE claim_token IS NOT NULL;

CREATE TABLE kem_inbox (
    consumer     TEXT   NOT NULL,
    message_id   TEXT   NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

CREATE INDEX kem_inbox_processed ON kem_inbox (processed_at);
