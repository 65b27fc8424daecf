-- Sign-in throttling that cannot be turned against the owner (see model::login_throttle), and
-- access-token revocations the edge polls (ListRevocations). Times are epoch milliseconds.

-- The single per-email lockout is replaced: failures from one address no longer lock the owner
-- out everywhere. Its counters are ephemeral, so they are dropped, not migrated.
DROP TABLE login_failures;

-- Per (normalized email, client address: IPv4 or IPv6 /64) lockout. Rows exist for unknown
-- emails too, so throttling does not reveal which accounts exist. `last_success` marks the
-- address as one the owner signs in from (exempt from the per-account delay for a while).
CREATE TABLE login_address_throttle (
    email        TEXT    NOT NULL,
    client       TEXT    NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    window_start BIGINT  NOT NULL DEFAULT 0,
    locked_until BIGINT  NOT NULL DEFAULT 0,
    last_success BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (email, client)
);

-- Per-email progressive delay across all addresses.
CREATE TABLE login_account_throttle (
    email        TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    last_failure BIGINT  NOT NULL DEFAULT 0,
    next_attempt BIGINT  NOT NULL DEFAULT 0
);

-- Revoked access tokens, kept until every token a row revokes has expired (`expires_at`).
-- `session_id` = '' : every token of the owner with `iat` (Unix seconds) below `issued_before`
-- (logout from all sessions); otherwise every token whose `sid` is `session_id` (logout of one
-- session, refresh-token reuse). `recorded_at` orders ListRevocations pages.
CREATE TABLE access_revocations (
    owner_id      TEXT   NOT NULL,
    session_id    TEXT   NOT NULL,
    issued_before BIGINT NOT NULL,
    recorded_at   BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (owner_id, session_id)
);

CREATE INDEX access_revocations_recorded ON access_revocations (recorded_at);
CREATE INDEX access_revocations_expiry ON access_revocations (expires_at);
