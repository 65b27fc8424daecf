-- The content service's tables: the events it has images for (and their owners), the images,
-- which image each slot of each job produced, the generation state of each style, and cached
-- renders. Written twice (postgres/, sqlite/) with the same tables, columns and meaning; the
-- queries are shared. Times are milliseconds since the Unix epoch (BIGINT).

-- Owner of each event content has worked for (owner-scoping of ListImages and GetImageContent).
CREATE TABLE content_events (
    event_id   TEXT   PRIMARY KEY,
    owner_id   TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE images (
    id                  TEXT    PRIMARY KEY,
    event_id            TEXT    NOT NULL REFERENCES content_events (event_id),
    owner_id            TEXT    NOT NULL,
    job_id              TEXT    NOT NULL,
    style               TEXT    NOT NULL CHECK (style IN ('SIMPLE', 'FANCY', 'TRENDY')),
    channel             TEXT    NOT NULL,
    width               BIGINT  NOT NULL CHECK (width > 0),
    height              BIGINT  NOT NULL CHECK (height > 0),
    content_type        TEXT    NOT NULL,
    -- Content address in the blob store (images/<sha[0..2]>/<sha256>.png).
    blob_key            TEXT    NOT NULL,
    size_bytes          BIGINT  NOT NULL,
    sha256              TEXT    NOT NULL,
    prompt              TEXT    NOT NULL,
    -- Content address of the generation the image was made from (prompt hash).
    render_key          TEXT    NOT NULL,
    seed                BIGINT  NOT NULL,
    provider_kind       TEXT    NOT NULL CHECK (provider_kind IN ('EXTERNAL', 'LOCAL')),
    provider_name       TEXT    NOT NULL,
    provider_model      TEXT    NOT NULL,
    provider_request_id TEXT    NOT NULL,
    cached              BOOLEAN NOT NULL,
    created_at          BIGINT  NOT NULL
);

-- ListImages: newest first per event.
CREATE INDEX images_event_created ON images (event_id, created_at DESC, id DESC);
-- A re-request reuses the event's image of the same style, size and render.
CREATE INDEX images_event_slot ON images (event_id, style, channel, width, height, render_key);

-- Exactly one image per job and slot (style/channel/size): redeliveries continue, never duplicate.
CREATE TABLE job_images (
    job_id     TEXT   NOT NULL,
    slot       TEXT   NOT NULL,
    image_id   TEXT   NOT NULL REFERENCES images (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, slot)
);

-- Generation state of each style of an event (its latest generation).
CREATE TABLE style_states (
    event_id   TEXT   NOT NULL REFERENCES content_events (event_id),
    style      TEXT   NOT NULL CHECK (style IN ('SIMPLE', 'FANCY', 'TRENDY')),
    state      TEXT   NOT NULL CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    job_id     TEXT   NOT NULL,
    -- JSON of the failure (FAILED only).
    error      TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, style)
);

-- Provider outputs by render key, reused for identical requests while fresh (24 h).
CREATE TABLE renders (
    render_key          TEXT   PRIMARY KEY,
    blob_key            TEXT   NOT NULL,
    content_type        TEXT   NOT NULL,
    width               BIGINT NOT NULL,
    height              BIGINT NOT NULL,
    size_bytes          BIGINT NOT NULL,
    sha256              TEXT   NOT NULL,
    seed                BIGINT NOT NULL,
    provider_kind       TEXT   NOT NULL,
    provider_name       TEXT   NOT NULL,
    provider_model      TEXT   NOT NULL,
    provider_request_id TEXT   NOT NULL,
    created_at          BIGINT NOT NULL
);

CREATE INDEX renders_created ON renders (created_at);
