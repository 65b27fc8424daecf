-- The analytics service's aggregates. Every figure is derived from facts of the
-- `analytics-aggregation` queue (kem.messaging.v1.AnalyticsEvent, applied exactly once through the
-- kit's inbox) and from RecordChannelMetrics reports. Times are milliseconds since the Unix epoch;
-- channels, statuses and provider kinds are their kem.*.v1 enum numbers.

-- One row per event analytics has heard of. It is also the per-event lock: every change to an
-- event's aggregates first upserts this row, so concurrent facts of one event serialize here.
CREATE TABLE analytics_events (
    event_id          TEXT    PRIMARY KEY,
    -- Learned from the facts ('' until a fact names it); event-service facts are authoritative.
    owner_id          TEXT    NOT NULL DEFAULT '',
    -- The snapshot of the most advanced state fact (kem.event.v1.EventStatus; the lifecycle only
    -- moves forward, so a higher status, then a later state_at, wins whatever the arrival order).
    status            INTEGER NOT NULL DEFAULT 0,
    state_at          BIGINT  NOT NULL DEFAULT 0,
    title             TEXT    NOT NULL DEFAULT '',
    budget_krw        BIGINT  NOT NULL DEFAULT 0,
    -- Comma-separated kem.common.v1.Channel numbers, e.g. '4,6'.
    channels          TEXT    NOT NULL DEFAULT '',
    period_start      BIGINT,
    period_end        BIGINT,
    objective         INTEGER NOT NULL DEFAULT 0,
    -- kem.common.v1.BusinessCategory for the value of an entry (UNSPECIFIED: the default value).
    business_category INTEGER NOT NULL DEFAULT 0,
    -- Earliest PUBLISHED-or-later state fact: the event belongs on its owner's dashboard.
    published_at      BIGINT,
    -- Set by EventDeleted: the aggregates are gone and later facts are ignored.
    deleted_at        BIGINT,
    -- Time of the latest data included (fact occur time or metrics observe time).
    data_at           BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL
);

CREATE INDEX analytics_events_owner ON analytics_events (owner_id) WHERE deleted_at IS NULL;

-- Entries per event, source channel (0: unknown or direct) and hour.
CREATE TABLE analytics_hourly (
    event_id     TEXT    NOT NULL,
    channel      INTEGER NOT NULL,
    hour_start   BIGINT  NOT NULL,
    participants BIGINT  NOT NULL,
    PRIMARY KEY (event_id, channel, hour_start)
);

-- Delivery outcomes per event and channel (kem.messaging.v1.ChannelOutcome), counted, plus the
-- views and reach an outcome reported (latest by occur time; used when no RecordChannelMetrics
-- snapshot exists for the channel).
CREATE TABLE analytics_channel_outcomes (
    event_id       TEXT    NOT NULL,
    channel        INTEGER NOT NULL,
    published      BIGINT  NOT NULL DEFAULT 0,
    failed         BIGINT  NOT NULL DEFAULT 0,
    attempts       BIGINT  NOT NULL DEFAULT 0,
    last_failure   TEXT    NOT NULL DEFAULT '',
    -- The distribution contract's machine-readable reason of the latest failure.
    failure_code   TEXT    NOT NULL DEFAULT '',
    reported_views BIGINT,
    views_at       BIGINT,
    reported_reach BIGINT,
    reach_at       BIGINT,
    -- kem.common.v1.ProviderKind of the latest outcome that named its provider (labels the
    -- views and reach outcomes reported: real channel or local demo provider).
    source_kind    INTEGER NOT NULL DEFAULT 0,
    source_at      BIGINT,
    updated_at     BIGINT  NOT NULL,
    PRIMARY KEY (event_id, channel)
);

-- The latest draw of each event (kem.messaging.v1.DrawCompleted; a redraw replaces it).
CREATE TABLE analytics_draws (
    event_id       TEXT    PRIMARY KEY,
    draw_id        TEXT    NOT NULL,
    redraw_of      TEXT    NOT NULL,
    algorithm      TEXT    NOT NULL,
    entry_count    BIGINT  NOT NULL,
    winner_count   BIGINT  NOT NULL,
    -- winner_count x the prize's unit value; NULL when the prize has no value.
    prize_cost_krw BIGINT,
    drawn_at       BIGINT  NOT NULL
);

-- The latest cumulative snapshot reported by RecordChannelMetrics per event and channel.
CREATE TABLE analytics_channel_metrics (
    event_id             TEXT    NOT NULL,
    channel              INTEGER NOT NULL,
    views                BIGINT  NOT NULL,
    reach                BIGINT  NOT NULL,
    deliveries_published BIGINT  NOT NULL,
    deliveries_failed    BIGINT  NOT NULL,
    -- kem.common.v1.ProviderKind of the reporting provider.
    source_kind          INTEGER NOT NULL,
    source_name          TEXT    NOT NULL,
    observed_at          BIGINT  NOT NULL,
    report_id            TEXT    NOT NULL,
    PRIMARY KEY (event_id, channel)
);

-- RecordChannelMetrics report ids already recorded (the method's idempotency key).
CREATE TABLE analytics_metric_reports (
    report_id   TEXT    PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    channel     INTEGER NOT NULL,
    observed_at BIGINT  NOT NULL,
    recorded_at BIGINT  NOT NULL
);

CREATE INDEX analytics_metric_reports_recorded ON analytics_metric_reports (recorded_at);
