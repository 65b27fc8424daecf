-- The event service's tables: events and their asynchronous jobs.
-- The SQLite twin of postgres/0001_events.sql (embedded `kem up`): the same tables, columns,
-- constraints and indexes, so the shared queries run on both. Times are milliseconds since the
-- Unix epoch (INTEGER, 64-bit). Structured values (prize,
-- recommendation, job request/result/error) are JSON text: portable, and never queried inside.

CREATE TABLE events (
    id                      TEXT    PRIMARY KEY,
    owner_id                TEXT    NOT NULL,
    -- CreateEvent idempotency key; released (set NULL) once older than its 24 h window.
    request_id              TEXT,
    status                  TEXT    NOT NULL
        CHECK (status IN ('DRAFT', 'RECOMMENDED', 'CONTENT_READY', 'PUBLISHED', 'ENDED')),
    title                   TEXT    NOT NULL,
    description             TEXT    NOT NULL,
    objective               TEXT    NOT NULL,
    target_audience         TEXT    NOT NULL,
    budget_krw              INTEGER CHECK (budget_krw >= 0),
    period_start            INTEGER NOT NULL,
    period_end              INTEGER NOT NULL,
    prize                   TEXT,
    participation_method    TEXT    NOT NULL,
    channels                TEXT    NOT NULL,
    selected_recommendation TEXT,
    selected_image_id       TEXT,
    recommendations_job_id  TEXT,
    images_job_id           TEXT,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    published_at            INTEGER,
    ended_at                INTEGER,
    -- Optimistic concurrency: every write is `WHERE version = $read` and sets version + 1.
    version                 INTEGER NOT NULL,
    CHECK (period_end > period_start)
);

-- Same owner + same request id = the same event (CreateEvent dedupe, also under concurrency).
CREATE UNIQUE INDEX events_owner_request ON events (owner_id, request_id) WHERE request_id IS NOT NULL;
-- ListEvents: keyset pagination newest first, with and without a status filter.
CREATE INDEX events_owner_created ON events (owner_id, created_at DESC, id DESC);
CREATE INDEX events_owner_status_created ON events (owner_id, status, created_at DESC, id DESC);

CREATE TABLE event_jobs (
    id          TEXT   PRIMARY KEY,
    event_id    TEXT   NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    owner_id    TEXT   NOT NULL,
    kind        TEXT   NOT NULL CHECK (kind IN ('RECOMMENDATIONS', 'IMAGES')),
    state       TEXT   NOT NULL CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    request     TEXT   NOT NULL,
    result      TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deadline_at INTEGER NOT NULL
);

-- At most one unfinished job per event and kind: a concurrent second request cannot start another.
CREATE UNIQUE INDEX event_jobs_active ON event_jobs (event_id, kind) WHERE state IN ('PENDING', 'RUNNING');
-- Latest succeeded job of a kind (SelectRecommendation, SelectImage).
CREATE INDEX event_jobs_event_kind ON event_jobs (event_id, kind, state, created_at DESC);
-- The job-timeout sweeper.
CREATE INDEX event_jobs_deadline ON event_jobs (deadline_at) WHERE state IN ('PENDING', 'RUNNING');
