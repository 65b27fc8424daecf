-- The user service's tables (SQLite, `kem up` embedded mode): the same tables and meaning as
-- migrations/postgres, times in milliseconds since the Unix epoch (INTEGER).

-- Owner accounts. `email` is stored normalized (trimmed, lower-case): the unique constraint is
-- what makes two concurrent registrations of one address end in exactly one account.
CREATE TABLE owners (
    id                TEXT    PRIMARY KEY,
    email             TEXT    NOT NULL,
    password_hash     TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    phone             TEXT    NOT NULL,
    store_name        TEXT    NOT NULL,
    business_category INTEGER NOT NULL,
    region            TEXT    NOT NULL,
    region_code       TEXT    NOT NULL DEFAULT '',
    business_number   TEXT    NOT NULL,
    -- The NTS verification that admitted the owner (JSON of service::verification::Verification).
    verification      TEXT    NOT NULL,
    created_at        INTEGER  NOT NULL,
    updated_at        INTEGER  NOT NULL,
    CONSTRAINT owners_email_unique UNIQUE (email)
);

CREATE INDEX owners_business_number ON owners (business_number);

-- Sign-in sessions: one refresh-token family per login. Revoking the family (logout, or reuse of
-- a rotated token) ends every token of it.
CREATE TABLE refresh_families (
    id            TEXT   PRIMARY KEY,
    owner_id      TEXT   NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoke_reason TEXT
);

CREATE INDEX refresh_families_owner ON refresh_families (owner_id);

-- Refresh tokens, stored only as the SHA-256 hex of the token. `used_at` is set when the token
-- is rotated; presenting it again is reuse.
CREATE TABLE refresh_tokens (
    token_hash TEXT   PRIMARY KEY,
    family_id  TEXT   NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    owner_id   TEXT   NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- Failed sign-ins per (normalized) email, known or not, so the lockout holds across replicas and
-- does not tell whether an account exists.
CREATE TABLE login_failures (
    email        TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER  NOT NULL,
    locked_until INTEGER  NOT NULL DEFAULT 0
);

-- Access-token signing keys, shared by every replica. `private_pem` is NULL for a key loaded from
-- a file (KEM_JWT_SIGNING_KEY_FILE, e.g. a Key Vault mount): only its public half is kept here.
-- `retire_after` is set when the key is rotated out: it stays published until then.
CREATE TABLE signing_keys (
    kid          TEXT   PRIMARY KEY,
    private_pem  TEXT,
    public_jwk   TEXT   NOT NULL,
    created_at   INTEGER NOT NULL,
    retire_after INTEGER
);

-- Which key signs now. One row at most (id = 1): creating or rotating the current key is a
-- compare-and-swap on this row, so replicas racing at start agree on one key.
CREATE TABLE current_signing_key (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    kid TEXT    NOT NULL REFERENCES signing_keys (kid)
);

-- Second tier of the NTS verification cache (behind Redis): survives a cache flush and is
-- shared by replicas. Rows expire by `expires_at` (status-dependent TTL).
CREATE TABLE business_verifications (
    business_number TEXT   PRIMARY KEY,
    report          TEXT   NOT NULL,
    verified_at     INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
