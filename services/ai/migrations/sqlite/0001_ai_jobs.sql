-- The ai service's job ledger: one row per `ai-event-generation` job it worked on, so that
-- at-least-once delivery has an exactly-once effect. `result` keeps the generated
-- recommendations (JSON) between generating and reporting: a redelivery after a crash or a lost
-- report reuses it instead of asking the model again. `state` is WORKING until the job is
-- reported (SUCCEEDED / FAILED), dropped (DROPPED: its event was deleted) or expired (EXPIRED: its
-- deadline passed first); final states are never overwritten. Times are milliseconds since the
-- Unix epoch. Rows older than the retention are purged by the service.
-- The same SQL runs on PostgreSQL (migrations/postgres).

CREATE TABLE ai_jobs (
    job_id     TEXT    NOT NULL PRIMARY KEY,
    event_id   TEXT    NOT NULL,
    input_hash TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    result     TEXT,
    error      TEXT,
    attempts   BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE INDEX ai_jobs_updated_at ON ai_jobs (updated_at);
