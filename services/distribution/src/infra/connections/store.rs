//! The connection tables on PostgreSQL or embedded SQLite (the same SQL): `channel_connections`
//! (tokens sealed with the [`Keyring`], bound to owner, channel and field, so a value copied to
//! another row or column does not open) and `connection_attempts` (only the SHA-256 of a state is
//! kept, and a PKCE `code_verifier` only sealed; taking one is a single guarded UPDATE, so a state
//! completes at most once). A Kakao
//! channel's row has no token: its `access_token` column holds a random stamp replaced at every
//! (re)connect (what guarded updates compare), and a unique index lets one owner at most hold a
//! Kakao channel.

use std::sync::Arc;

use kem_kit::Secret;
use kem_kit::sealing::{Keyring, SealError};
use kem_kit::store::{self, Row, Store, StoreError};

use crate::domain::Channel;
use crate::domain::connection::{ConnectionView, NaverCafe, StoredState};

/// Every column of a connection, in the order [`stored`] reads them.
const COLUMNS: &str = "owner_id, channel, state, account_id, account_name, scopes, access_token, refresh_token, \
    key_id, issued_at, expires_at, refresh_at, refresh_failures, connected_at, refreshed_at, note, naver_club_id, \
    naver_menu_id";

/// Why the connection tables could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionStoreError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A token could not be sealed or opened (a key missing after a rotation, or tampering).
    #[error("the {field} token of the {channel} connection cannot be {action}: {source}")]
    Seal {
        /// The channel.
        channel: Channel,
        /// `access` or `refresh`.
        field: &'static str,
        /// `sealed` or `opened`.
        action: &'static str,
        /// What went wrong.
        #[source]
        source: SealError,
    },
}

impl ConnectionStoreError {
    /// Whether trying again shortly may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ConnectionStoreError::Store(e) if e.is_transient())
    }
}

/// An OAuth attempt as StartChannelConnection recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Who started it.
    pub owner_id: String,
    /// The channel being connected.
    pub channel: Channel,
    /// The Naver Cafe board chosen, if any.
    pub naver_cafe: Option<NaverCafe>,
    /// The PKCE `code_verifier` sent with the code (KT partners; stored sealed).
    pub code_verifier: Option<Secret>,
}

/// Tokens of a connection, in clear (only in memory, only as [`Secret`]s).
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token.
    pub access: Secret,
    /// The refresh token, where the provider has one (Naver).
    pub refresh: Option<Secret>,
    /// When `access` was issued (ms).
    pub issued_at: i64,
    /// When `access` expires (ms), when the provider says.
    pub expires_at: Option<i64>,
}

/// A connection to store.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// The channel.
    pub channel: Channel,
    /// The provider's account id.
    pub account_id: String,
    /// Its display name.
    pub account_name: String,
    /// Granted permissions.
    pub scopes: Vec<String>,
    /// Its tokens.
    pub tokens: Tokens,
    /// When to refresh first (ms).
    pub refresh_at: Option<i64>,
    /// Naver's board.
    pub naver_cafe: Option<NaverCafe>,
}

/// What saving a Kakao connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KakaoSaved {
    /// Stored (or the same owner's connection renewed).
    Saved,
    /// Another owner has the channel connected.
    Taken,
}

/// A stored connection with its sealed tokens.
#[derive(Debug, Clone)]
pub struct StoredConnection {
    /// The owner.
    pub owner_id: String,
    /// What the owner may see.
    pub view: ConnectionView,
    /// The sealed access token (also the guard of a state change: only the token a step used is
    /// marked revoked, never one that replaced it meanwhile).
    pub access_sealed: Vec<u8>,
    refresh_sealed: Option<Vec<u8>>,
    /// When the access token was issued (ms).
    pub issued_at: i64,
    /// Consecutive failed refreshes.
    pub refresh_failures: i32,
}

/// The connection tables.
#[derive(Clone)]
pub struct ConnectionStore {
    store: Store,
    keyring: Arc<Keyring>,
}

impl std::fmt::Debug for ConnectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionStore").field("keyring", &self.keyring).finish_non_exhaustive()
    }
}

/// The associated data a token is sealed with: it only opens in its own row and column.
fn aad(owner_id: &str, channel: Channel, field: &str) -> Vec<u8> {
    format!("kem.distribution.connection\0{owner_id}\0{}\0{field}", channel.as_str()).into_bytes()
}

fn mapping(column: &str, reason: String) -> StoreError {
    StoreError::Mapping { action: "decode", column: column.to_owned(), reason }
}

/// Whether the database refused a statement for a unique index.
fn unique_violation(error: &StoreError) -> bool {
    match error {
        StoreError::Database { source: sqlx::Error::Database(db), .. } => db.is_unique_violation(),
        _ => false,
    }
}

fn stored(row: &Row) -> Result<StoredConnection, StoreError> {
    let channel: String = row.get("channel")?;
    let state: String = row.get("state")?;
    let scopes: String = row.get("scopes")?;
    let club: String = row.get("naver_club_id")?;
    let menu: String = row.get("naver_menu_id")?;
    let view = ConnectionView {
        channel: Channel::parse(&channel).ok_or_else(|| mapping("channel", format!("unknown channel {channel:?}")))?,
        state: StoredState::parse(&state).ok_or_else(|| mapping("state", format!("unknown state {state:?}")))?,
        account_id: row.get("account_id")?,
        account_name: row.get("account_name")?,
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        connected_at: row.get("connected_at")?,
        expires_at: row.get("expires_at")?,
        refreshed_at: row.get("refreshed_at")?,
        note: row.get("note")?,
        naver_cafe: (!club.is_empty()).then_some(NaverCafe { club_id: club, menu_id: menu }),
    };
    Ok(StoredConnection {
        owner_id: row.get("owner_id")?,
        view,
        access_sealed: row.get("access_token")?,
        refresh_sealed: row.get("refresh_token")?,
        issued_at: row.get("issued_at")?,
        refresh_failures: row.get("refresh_failures")?,
    })
}

impl ConnectionStore {
    /// The tables of `store` (migrated), sealing with `keyring`.
    pub fn new(store: Store, keyring: Arc<Keyring>) -> ConnectionStore {
        ConnectionStore { store, keyring }
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn seal(
        &self,
        owner_id: &str,
        channel: Channel,
        field: &'static str,
        token: &Secret,
    ) -> Result<Vec<u8>, ConnectionStoreError> {
        self.keyring
            .seal(&aad(owner_id, channel, field), token.expose().as_bytes())
            .map_err(|source| ConnectionStoreError::Seal { channel, field, action: "sealed", source })
    }

    fn open(
        &self,
        owner_id: &str,
        channel: Channel,
        field: &'static str,
        sealed: &[u8],
    ) -> Result<Secret, ConnectionStoreError> {
        let plain = self
            .keyring
            .open(&aad(owner_id, channel, field), sealed)
            .map_err(|source| ConnectionStoreError::Seal { channel, field, action: "opened", source })?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| ConnectionStoreError::Seal {
            channel,
            field,
            action: "opened",
            source: SealError::Format,
        })
    }

    /// The tokens of `connection`, opened.
    pub fn tokens(&self, connection: &StoredConnection) -> Result<Tokens, ConnectionStoreError> {
        let (owner, channel) = (connection.owner_id.as_str(), connection.view.channel);
        let access = self.open(owner, channel, "access", &connection.access_sealed)?;
        let refresh = match &connection.refresh_sealed {
            Some(sealed) => Some(self.open(owner, channel, "refresh", sealed)?),
            None => None,
        };
        Ok(Tokens { access, refresh, issued_at: connection.issued_at, expires_at: connection.view.expires_at })
    }

    /// Records an attempt unless `owner_id` already has `max_pending` pending ones (then `false`).
    /// One statement, so concurrent starts cannot both slip under the cap on one connection.
    pub async fn create_attempt(
        &self,
        state_hash: &str,
        attempt: &Attempt,
        now: i64,
        expires_at: i64,
        max_pending: i64,
    ) -> Result<bool, ConnectionStoreError> {
        let options = serde_json::to_string(&attempt.naver_cafe).map_err(|e| StoreError::Mapping {
            action: "encode",
            column: "options".into(),
            reason: e.to_string(),
        })?;
        let verifier = match &attempt.code_verifier {
            Some(verifier) => Some(self.seal(&attempt.owner_id, attempt.channel, "code_verifier", verifier)?),
            None => None,
        };
        let created = store::query(
            "INSERT INTO connection_attempts (state_hash, owner_id, channel, options, created_at, expires_at, \
               code_verifier) \
             SELECT $1, $2, $3, $4, $5, $6, $8 \
             WHERE (SELECT COUNT(*) FROM connection_attempts \
                    WHERE owner_id = $2 AND used_at IS NULL AND expires_at > $5) < $7",
        )
        .bind(state_hash.to_owned())
        .bind(attempt.owner_id.clone())
        .bind(attempt.channel.as_str())
        .bind(options)
        .bind(now)
        .bind(expires_at)
        .bind(max_pending)
        .bind(verifier)
        .execute(self.store.primary())
        .await?;
        Ok(created == 1)
    }

    /// Takes the unexpired, unused attempt of `state_hash` (marking it used), or `None`. When
    /// `caller` names a signed-in owner, only that owner's attempt is taken.
    pub async fn take_attempt(
        &self,
        state_hash: &str,
        caller: Option<&str>,
        now: i64,
    ) -> Result<Option<Attempt>, ConnectionStoreError> {
        let row = store::query(
            "UPDATE connection_attempts SET used_at = $1 \
             WHERE state_hash = $2 AND used_at IS NULL AND expires_at > $1 AND ($3 = '' OR owner_id = $3) \
             RETURNING owner_id, channel, options, code_verifier",
        )
        .bind(now)
        .bind(state_hash.to_owned())
        .bind(caller.unwrap_or_default().to_owned())
        .fetch_optional(self.store.primary())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let channel: String = row.get("channel")?;
        let options: String = row.get("options")?;
        let owner_id: String = row.get("owner_id")?;
        let channel =
            Channel::parse(&channel).ok_or_else(|| mapping("channel", format!("unknown channel {channel:?}")))?;
        let sealed: Option<Vec<u8>> = row.get("code_verifier")?;
        let code_verifier = match sealed {
            Some(sealed) => Some(self.open(&owner_id, channel, "code_verifier", &sealed)?),
            None => None,
        };
        Ok(Some(Attempt {
            owner_id,
            channel,
            naver_cafe: serde_json::from_str(&options).map_err(|e| mapping("options", e.to_string()))?,
            code_verifier,
        }))
    }

    /// Deletes attempts that expired before `before`; how many.
    pub async fn purge_attempts(&self, before: i64) -> Result<u64, ConnectionStoreError> {
        Ok(store::query("DELETE FROM connection_attempts WHERE expires_at < $1")
            .bind(before)
            .execute(self.store.primary())
            .await?)
    }

    /// Stores `connection` of `owner_id`, replacing any earlier one of the channel (ACTIVE, no
    /// lease, no failures).
    pub async fn save(&self, owner_id: &str, connection: &NewConnection, now: i64) -> Result<(), ConnectionStoreError> {
        let channel = connection.channel;
        let access = self.seal(owner_id, channel, "access", &connection.tokens.access)?;
        let refresh = match &connection.tokens.refresh {
            Some(token) => Some(self.seal(owner_id, channel, "refresh", token)?),
            None => None,
        };
        let cafe = connection.naver_cafe.clone().unwrap_or_default();
        store::query(
            "INSERT INTO channel_connections (owner_id, channel, state, account_id, account_name, scopes, \
               access_token, refresh_token, key_id, issued_at, expires_at, refresh_at, refresh_failures, connected_at, \
               refreshed_at, note, naver_club_id, naver_menu_id, lease_token, lease_until, updated_at) \
             VALUES ($1, $2, 'ACTIVE', $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, NULL, '', $13, $14, NULL, NULL, $12) \
             ON CONFLICT (owner_id, channel) DO UPDATE SET state = 'ACTIVE', account_id = $3, account_name = $4, \
               scopes = $5, access_token = $6, refresh_token = $7, key_id = $8, issued_at = $9, expires_at = $10, \
               refresh_at = $11, refresh_failures = 0, connected_at = $12, refreshed_at = NULL, note = '', \
               naver_club_id = $13, naver_menu_id = $14, lease_token = NULL, lease_until = NULL, updated_at = $12",
        )
        .bind(owner_id.to_owned())
        .bind(channel.as_str())
        .bind(connection.account_id.clone())
        .bind(connection.account_name.clone())
        .bind(connection.scopes.join(","))
        .bind(access)
        .bind(refresh)
        .bind(self.keyring.current_key_id())
        .bind(connection.tokens.issued_at)
        .bind(connection.tokens.expires_at)
        .bind(connection.refresh_at)
        .bind(now)
        .bind(cafe.club_id)
        .bind(cafe.menu_id)
        .execute(self.store.primary())
        .await?;
        Ok(())
    }

    /// Stores `owner_id`'s Kakao channel `account_id` (named `account_name`) as ACTIVE, re-checked
    /// at `refresh_at`, unless another owner has it (NEEDS_RECONNECT included). The check and
    /// the write are one statement, and the unique index settles two owners racing.
    ///
    /// Concurrent connects of one channel meet in two unique indexes (the owner's row, the
    /// channel's holder), where PostgreSQL may answer a deadlock or a unique violation instead of
    /// waiting; such a clash is settled by reading who holds the channel now — this owner (a
    /// concurrent identical connect won: the same connection, so Saved), another owner (Taken),
    /// or nobody yet (the statement runs again) — rather than reported as an outage.
    pub async fn save_kakao(
        &self,
        owner_id: &str,
        account_id: &str,
        account_name: &str,
        refresh_at: i64,
        now: i64,
    ) -> Result<KakaoSaved, ConnectionStoreError> {
        const TRIES: u32 = 5;
        let mut tries = 0;
        loop {
            tries += 1;
            match self.try_save_kakao(owner_id, account_id, account_name, refresh_at, now).await {
                Ok(1) => return Ok(KakaoSaved::Saved),
                Ok(_) => return Ok(KakaoSaved::Taken),
                Err(error) if tries < TRIES && (unique_violation(&error) || error.is_transient()) => {
                    match self.kakao_holder(account_id).await? {
                        Some(holder) if holder == owner_id => return Ok(KakaoSaved::Saved),
                        Some(_) => return Ok(KakaoSaved::Taken),
                        None => tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(tries))).await,
                    }
                }
                Err(error) if unique_violation(&error) => return Ok(KakaoSaved::Taken),
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The owner holding Kakao channel `account_id`, if any.
    async fn kakao_holder(&self, account_id: &str) -> Result<Option<String>, ConnectionStoreError> {
        let row = store::query(
            "SELECT owner_id FROM channel_connections WHERE channel = 'KAKAO_CHANNEL' AND account_id = $1",
        )
        .bind(account_id.to_owned())
        .fetch_optional(self.store.primary())
        .await?;
        Ok(match row {
            Some(row) => Some(row.get::<String>("owner_id")?),
            None => None,
        })
    }

    /// One try of [`save_kakao`](Self::save_kakao): the rows written (1 saved, 0 taken).
    async fn try_save_kakao(
        &self,
        owner_id: &str,
        account_id: &str,
        account_name: &str,
        refresh_at: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let stamp = rand::random::<[u8; 16]>().to_vec();
        store::query(
            "INSERT INTO channel_connections (owner_id, channel, state, account_id, account_name, scopes, \
            access_token, refresh_token, key_id, issued_at, expires_at, refresh_at, refresh_failures, connected_at, \
            refreshed_at, note, naver_club_id, naver_menu_id, lease_token, lease_until, updated_at) \
            SELECT $1, 'KAKAO_CHANNEL', 'ACTIVE', $2, $3, '', $4, NULL, '', $5, NULL, $6, 0, $5, $5, '', '', '', \
            NULL, NULL, $5 \
            WHERE NOT EXISTS (SELECT 1 FROM channel_connections \
            WHERE channel = 'KAKAO_CHANNEL' AND account_id = $2 AND owner_id <> $1) \
            ON CONFLICT (owner_id, channel) DO UPDATE SET state = 'ACTIVE', account_id = $2, account_name = $3, \
            access_token = $4, issued_at = $5, refresh_at = $6, refresh_failures = 0, connected_at = $5, \
            refreshed_at = $5, note = '', lease_token = NULL, lease_until = NULL, updated_at = $5",
        )
        .bind(owner_id.to_owned())
        .bind(account_id.to_owned())
        .bind(account_name.to_owned())
        .bind(stamp)
        .bind(now)
        .bind(refresh_at)
        .execute(self.store.primary())
        .await
    }

    /// The Kakao connection held under `lease` is still a usable sender (named `account_name`):
    /// re-checked again at `refresh_at`. Whether the hold was still ours.
    pub async fn kakao_rechecked(
        &self,
        connection: &StoredConnection,
        lease: &str,
        account_name: &str,
        refresh_at: i64,
        now: i64,
    ) -> Result<bool, ConnectionStoreError> {
        let changed = store::query(
            "UPDATE channel_connections SET account_name = $1, refresh_at = $2, refresh_failures = 0, \
            refreshed_at = $3, note = '', lease_token = NULL, lease_until = NULL, updated_at = $3 \
            WHERE owner_id = $4 AND channel = $5 AND lease_token = $6 AND state = 'ACTIVE'",
        )
        .bind(account_name.to_owned())
        .bind(refresh_at)
        .bind(now)
        .bind(connection.owner_id.clone())
        .bind(connection.view.channel.as_str())
        .bind(lease.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(changed == 1)
    }

    /// `owner_id`'s connection of `channel`.
    pub async fn get(
        &self,
        owner_id: &str,
        channel: Channel,
    ) -> Result<Option<StoredConnection>, ConnectionStoreError> {
        let sql = format!("SELECT {COLUMNS} FROM channel_connections WHERE owner_id = $1 AND channel = $2");
        let row = store::query(store::AssertSqlSafe(sql))
            .bind(owner_id.to_owned())
            .bind(channel.as_str())
            .fetch_optional(self.store.primary())
            .await?;
        Ok(row.map(|r| stored(&r)).transpose()?)
    }

    /// Every connection of `owner_id`.
    pub async fn list(&self, owner_id: &str) -> Result<Vec<StoredConnection>, ConnectionStoreError> {
        let sql = format!("SELECT {COLUMNS} FROM channel_connections WHERE owner_id = $1");
        let rows =
            store::query(store::AssertSqlSafe(sql)).bind(owner_id.to_owned()).fetch_all(self.store.primary()).await?;
        Ok(rows.iter().map(stored).collect::<Result<Vec<_>, _>>()?)
    }

    /// Deletes `owner_id`'s connection of `channel`; the deleted row, if there was one.
    pub async fn delete(
        &self,
        owner_id: &str,
        channel: Channel,
    ) -> Result<Option<StoredConnection>, ConnectionStoreError> {
        let sql = format!("DELETE FROM channel_connections WHERE owner_id = $1 AND channel = $2 RETURNING {COLUMNS}");
        let row = store::query(store::AssertSqlSafe(sql))
            .bind(owner_id.to_owned())
            .bind(channel.as_str())
            .fetch_optional(self.store.primary())
            .await?;
        Ok(row.map(|r| stored(&r)).transpose()?)
    }

    /// Marks the connection NEEDS_RECONNECT with `note`, if it still holds the access token
    /// sealed as `access_sealed` (a token replaced meanwhile by a refresh or a reconnect is left
    /// alone). Whether it was marked.
    pub async fn mark_needs_reconnect(
        &self,
        owner_id: &str,
        channel: Channel,
        access_sealed: &[u8],
        note: &str,
        now: i64,
    ) -> Result<bool, ConnectionStoreError> {
        let changed = store::query(
            "UPDATE channel_connections SET state = 'NEEDS_RECONNECT', note = $1, refresh_at = NULL, \
               lease_token = NULL, lease_until = NULL, updated_at = $2 \
             WHERE owner_id = $3 AND channel = $4 AND access_token = $5",
        )
        .bind(note.to_owned())
        .bind(now)
        .bind(owner_id.to_owned())
        .bind(channel.as_str())
        .bind(access_sealed.to_vec())
        .execute(self.store.primary())
        .await?;
        Ok(changed == 1)
    }

    /// Takes up to `limit` ACTIVE connections whose refresh is due at `now`, holding each with
    /// `token` until `lease_until` (another replica skips them meanwhile).
    pub async fn claim_refresh_due(
        &self,
        now: i64,
        lease_until: i64,
        token: &str,
        limit: i64,
    ) -> Result<Vec<StoredConnection>, ConnectionStoreError> {
        let candidates = store::query(
            "SELECT owner_id, channel FROM channel_connections \
             WHERE state = 'ACTIVE' AND refresh_at IS NOT NULL AND refresh_at <= $1 \
               AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY refresh_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.store.primary())
        .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            let owner: String = candidate.get("owner_id")?;
            let channel: String = candidate.get("channel")?;
            let Some(channel) = Channel::parse(&channel) else { continue };
            if let Some(row) = self.lease(&owner, channel, now, lease_until, token, true).await? {
                claimed.push(row);
            }
        }
        Ok(claimed)
    }

    /// Holds `owner_id`'s ACTIVE connection of `channel` with `token` until `lease_until`, when no
    /// one else holds it (and, with `due_only`, when its refresh is due): the row, or `None`.
    pub async fn lease(
        &self,
        owner_id: &str,
        channel: Channel,
        now: i64,
        lease_until: i64,
        token: &str,
        due_only: bool,
    ) -> Result<Option<StoredConnection>, ConnectionStoreError> {
        let due = if due_only { "AND refresh_at IS NOT NULL AND refresh_at <= $2" } else { "" };
        let sql = format!(
            "UPDATE channel_connections SET lease_token = $1, lease_until = $3 \
             WHERE owner_id = $4 AND channel = $5 AND state = 'ACTIVE' \
               AND (lease_until IS NULL OR lease_until <= $2) {due} \
             RETURNING {COLUMNS}"
        );
        let row = store::query(store::AssertSqlSafe(sql))
            .bind(token.to_owned())
            .bind(now)
            .bind(lease_until)
            .bind(owner_id.to_owned())
            .bind(channel.as_str())
            .fetch_optional(self.store.primary())
            .await?;
        Ok(row.map(|r| stored(&r)).transpose()?)
    }

    /// Records refreshed `tokens` on the connection held under `lease` (a missing refresh token
    /// keeps the stored one: Naver's refresh answer has none). Whether the hold was still ours.
    pub async fn refreshed(
        &self,
        connection: &StoredConnection,
        lease: &str,
        tokens: &Tokens,
        refresh_at: Option<i64>,
        now: i64,
    ) -> Result<bool, ConnectionStoreError> {
        let (owner, channel) = (connection.owner_id.as_str(), connection.view.channel);
        let access = self.seal(owner, channel, "access", &tokens.access)?;
        let refresh = match &tokens.refresh {
            Some(token) => Some(self.seal(owner, channel, "refresh", token)?),
            None => connection.refresh_sealed.clone(),
        };
        let changed = store::query(
            "UPDATE channel_connections SET access_token = $1, refresh_token = $2, key_id = $3, issued_at = $4, \
               expires_at = $5, refresh_at = $6, refresh_failures = 0, refreshed_at = $7, note = '', \
               lease_token = NULL, lease_until = NULL, updated_at = $7 \
             WHERE owner_id = $8 AND channel = $9 AND lease_token = $10 AND state = 'ACTIVE'",
        )
        .bind(access)
        .bind(refresh)
        .bind(self.keyring.current_key_id())
        .bind(tokens.issued_at)
        .bind(tokens.expires_at)
        .bind(refresh_at)
        .bind(now)
        .bind(owner.to_owned())
        .bind(channel.as_str())
        .bind(lease.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(changed == 1)
    }

    /// A refresh under `lease` failed in a way that may pass: try again at `retry_at`.
    pub async fn refresh_failed(
        &self,
        connection: &StoredConnection,
        lease: &str,
        retry_at: i64,
        now: i64,
    ) -> Result<bool, ConnectionStoreError> {
        let changed = store::query(
            "UPDATE channel_connections SET refresh_failures = refresh_failures + 1, refresh_at = $1, \
               lease_token = NULL, lease_until = NULL, updated_at = $2 \
             WHERE owner_id = $3 AND channel = $4 AND lease_token = $5",
        )
        .bind(retry_at)
        .bind(now)
        .bind(connection.owner_id.clone())
        .bind(connection.view.channel.as_str())
        .bind(lease.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(changed == 1)
    }

    /// Lets go of a hold without changing anything.
    pub async fn release(&self, connection: &StoredConnection, lease: &str) -> Result<(), ConnectionStoreError> {
        store::query(
            "UPDATE channel_connections SET lease_token = NULL, lease_until = NULL \
             WHERE owner_id = $1 AND channel = $2 AND lease_token = $3",
        )
        .bind(connection.owner_id.clone())
        .bind(connection.view.channel.as_str())
        .bind(lease.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(())
    }
}
