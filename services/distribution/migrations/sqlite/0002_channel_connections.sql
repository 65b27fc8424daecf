-- The SQLite twin of postgres/0002_channel_connections.sql (embedded `kem up`).
-- Channel connections: each owner's own account on a platform (Instagram Login, Naver Login), and
-- the OAuth attempts that create them. Tokens are stored sealed (AES-256-GCM, the key id inside
-- every value and in key_id), never in clear. Times are milliseconds since the Unix epoch.

CREATE TABLE channel_connections (
    owner_id          TEXT NOT NULL,
    channel           TEXT NOT NULL CHECK (channel IN ('INSTAGRAM', 'NAVER_BLOG')),
    state             TEXT NOT NULL CHECK (state IN ('ACTIVE', 'NEEDS_RECONNECT')),
    account_id        TEXT NOT NULL,
    account_name      TEXT NOT NULL DEFAULT '',
    -- Granted permissions, comma-separated, as the provider names them.
    scopes            TEXT NOT NULL DEFAULT '',
    access_token      BLOB NOT NULL,
    refresh_token     BLOB,
    key_id            TEXT NOT NULL,
    -- When the access token was issued and expires; when it is next refreshed.
    issued_at         INTEGER NOT NULL,
    expires_at        INTEGER,
    refresh_at        INTEGER,
    refresh_failures  INTEGER NOT NULL DEFAULT 0,
    connected_at      INTEGER NOT NULL,
    refreshed_at      INTEGER,
    note              TEXT NOT NULL DEFAULT '',
    naver_club_id     TEXT NOT NULL DEFAULT '',
    naver_menu_id     TEXT NOT NULL DEFAULT '',
    -- Held by the replica refreshing the token (so two never refresh one connection at once).
    lease_token       TEXT,
    lease_until       INTEGER,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (owner_id, channel)
);

-- The refresh job's scan.
CREATE INDEX channel_connections_refresh ON channel_connections (refresh_at) WHERE state = 'ACTIVE';

CREATE TABLE connection_attempts (
    -- Hex SHA-256 of the state sent to the provider: the state itself is never stored.
    state_hash  TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    -- JSON: the Naver Cafe board chosen at the start.
    options     TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE INDEX connection_attempts_owner ON connection_attempts (owner_id, expires_at);
CREATE INDEX connection_attempts_expiry ON connection_attempts (expires_at);
