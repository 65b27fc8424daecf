-- Kakao Channel connections (issue #21): each owner connects their own Kakao Talk Channel, which
-- must be an active sender profile of the platform's SENS Biz Message service. A Kakao connection
-- has no token: access_token holds a random stamp replaced at every (re)connect, so guarded
-- updates (NEEDS_RECONNECT) only touch the connection they read; refresh_at is its next re-check
-- against the SENS channel list.
ALTER TABLE channel_connections DROP CONSTRAINT channel_connections_channel_check;
ALTER TABLE channel_connections
    ADD CONSTRAINT channel_connections_channel_check CHECK (channel IN ('INSTAGRAM', 'NAVER_BLOG', 'KAKAO_CHANNEL'));

-- One owner per Kakao channel: two owners racing to connect the same channel cannot both win.
CREATE UNIQUE INDEX channel_connections_kakao_channel ON channel_connections (account_id)
    WHERE channel = 'KAKAO_CHANNEL';

-- Progress of an event's 친구톡 send, batch by batch (at most 100 recipients per SENS request), so
-- a worker that dies, a retry and an owner's Retry all continue after the last accepted batch and
-- never send a batch twice. Recipients arrive ordered by phone: `after_phone` is the last phone of
-- the last batch whose outcome is settled; `in_flight` the last phone of the batch being sent (set
-- before the request, cleared after the answer): found set, that batch's outcome is unknown and it
-- is skipped, never repeated.
CREATE TABLE kakao_sends (
    event_id      TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    after_phone   TEXT NOT NULL DEFAULT '',
    in_flight     TEXT,
    accepted      BIGINT NOT NULL DEFAULT 0,
    not_delivered BIGINT NOT NULL DEFAULT 0,
    unknown       BIGINT NOT NULL DEFAULT 0,
    requests      BIGINT NOT NULL DEFAULT 0,
    first_request TEXT NOT NULL DEFAULT '',
    updated_at    BIGINT NOT NULL
);
