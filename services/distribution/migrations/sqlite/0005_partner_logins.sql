-- The SQLite twin of postgres/0005_partner_logins.sql (embedded `kem up`). SQLite cannot change a
-- CHECK constraint, so channel_connections is rebuilt with the KT partner channels allowed.
CREATE TABLE channel_connections_new (
    owner_id          TEXT NOT NULL,
    channel           TEXT NOT NULL CHECK (channel IN ('INSTAGRAM', 'NAVER_BLOG', 'KAKAO_CHANNEL', 'URIDONGNE_TV',
                                                       'RINGO_BIZ', 'GENIE_TV')),
    state             TEXT NOT NULL CHECK (state IN ('ACTIVE', 'NEEDS_RECONNECT')),
    account_id        TEXT NOT NULL,
    account_name      TEXT NOT NULL DEFAULT '',
    scopes            TEXT NOT NULL DEFAULT '',
    access_token      BLOB NOT NULL,
    refresh_token     BLOB,
    key_id            TEXT NOT NULL,
    issued_at         INTEGER NOT NULL,
    expires_at        INTEGER,
    refresh_at        INTEGER,
    refresh_failures  INTEGER NOT NULL DEFAULT 0,
    connected_at      INTEGER NOT NULL,
    refreshed_at      INTEGER,
    note              TEXT NOT NULL DEFAULT '',
    naver_club_id     TEXT NOT NULL DEFAULT '',
    naver_menu_id     TEXT NOT NULL DEFAULT '',
    lease_token       TEXT,
    lease_until       INTEGER,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (owner_id, channel)
);
INSERT INTO channel_connections_new SELECT owner_id, channel, state, account_id, account_name, scopes, access_token,
    refresh_token, key_id, issued_at, expires_at, refresh_at, refresh_failures, connected_at, refreshed_at, note,
    naver_club_id, naver_menu_id, lease_token, lease_until, updated_at FROM channel_connections;
DROP TABLE channel_connections;
ALTER TABLE channel_connections_new RENAME TO channel_connections;
CREATE INDEX channel_connections_refresh ON channel_connections (refresh_at) WHERE state = 'ACTIVE';
CREATE UNIQUE INDEX channel_connections_kakao_channel ON channel_connections (account_id)
    WHERE channel = 'KAKAO_CHANNEL';

-- The PKCE code_verifier of an attempt, sealed (see the PostgreSQL twin).
ALTER TABLE connection_attempts ADD COLUMN code_verifier BLOB;
