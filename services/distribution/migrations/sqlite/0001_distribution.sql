-- The SQLite twin of postgres/0001_distribution.sql (embedded `kem up`): the same tables,
-- columns, constraints and indexes, so the shared queries run on both.
-- Distribution: one row per published event (the job as received) and one delivery per
-- (event, channel). Times are milliseconds since the Unix epoch (INTEGER), as in every kem table.

CREATE TABLE distribution_events (
    event_id      TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    -- The kem.messaging.v1.DistributionJob as received (protobuf binary).
    job           BLOB NOT NULL,
    period_end_at INTEGER NOT NULL,
    received_at   INTEGER NOT NULL
);

CREATE TABLE distribution_deliveries (
    event_id            TEXT NOT NULL REFERENCES distribution_events (event_id),
    channel             TEXT NOT NULL CHECK (channel IN
                            ('URIDONGNE_TV', 'RINGO_BIZ', 'GENIE_TV', 'INSTAGRAM', 'NAVER_BLOG', 'KAKAO_CHANNEL')),
    owner_id            TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN
                            ('PENDING', 'SENDING', 'PUBLISHED', 'FAILED', 'QUEUED_RATE_LIMITED', 'AWAITING_OWNER')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    generation          INTEGER NOT NULL DEFAULT 0,
    outcome_seq         INTEGER NOT NULL DEFAULT 0,
    poll_errors         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER,
    lease_token         TEXT,
    lease_until         INTEGER,
    work_ref            TEXT,
    external_id         TEXT NOT NULL DEFAULT '',
    permalink           TEXT NOT NULL DEFAULT '',
    provider_status     TEXT NOT NULL DEFAULT '',
    provider_name       TEXT NOT NULL DEFAULT '',
    provider_kind       TEXT NOT NULL DEFAULT 'external',
    provider_model      TEXT NOT NULL DEFAULT '',
    error_reason        TEXT,
    error_message       TEXT,
    error_retryable     INTEGER,
    error_code          TEXT,
    error_at            INTEGER,
    manual_post         TEXT,
    reach               INTEGER,
    views               INTEGER,
    published_at        INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (event_id, channel)
);

-- The scheduler's scan: due work per channel.
CREATE INDEX distribution_deliveries_due
    ON distribution_deliveries (channel, next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;

CREATE INDEX distribution_deliveries_owner ON distribution_deliveries (owner_id, event_id);
