//! Channel connections: an owner's own account on a channel's platform (Instagram through
//! Instagram Login, Naver through Naver Login, Kakao as the owner's Kakao Talk Channel registered
//! as a sender profile at the platform's SENS dealer account), the states a connection goes
//! through, when its token is refreshed (a Kakao channel: re-checked), and the shape of the OAuth
//! `state`, of a Naver Cafe board and of a Kakao channel id. Pure: the stores, the provider
//! clients and the clock are the caller's.

use std::time::Duration;

use super::Channel;

/// How long a StartChannelConnection attempt may take to complete.
pub const ATTEMPT_TTL: Duration = Duration::from_secs(10 * 60);
/// Pending (unexpired, unused) attempts an owner may have at once.
pub const MAX_PENDING_ATTEMPTS: i64 = 10;
/// Length of the `state` parameter: 32 random bytes in unpadded base64url.
pub const STATE_LEN: usize = 43;
/// An Instagram long-lived token can be refreshed once it is this old (Meta's rule).
pub const INSTAGRAM_REFRESH_MIN_AGE: Duration = Duration::from_secs(24 * 3_600);
/// An Instagram token is refreshed when it expires within this window (60-day tokens: about the
/// 50th day, leaving ten days of retries before it dies).
pub const INSTAGRAM_REFRESH_WINDOW: Duration = Duration::from_secs(10 * 24 * 3_600);
/// A Naver access token (one hour) is refreshed this long before it expires.
pub const NAVER_REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// A KT partner store token (one hour) is refreshed this long before it expires.
pub const PARTNER_REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// Longest wait between refresh tries after transient failures.
pub const REFRESH_BACKOFF_MAX: Duration = Duration::from_secs(3_600);
/// Longest a Naver Cafe id (club or menu) may be: digits only.
pub const CAFE_ID_MAX: usize = 20;
/// Longest a Kakao channel search id may be, without its `@`.
pub const KAKAO_ID_MAX: usize = 30;
/// How often a connected Kakao channel is re-checked against the SENS channel list (Kakao or the
/// dealer may block or delete a sender profile at any time).
pub const KAKAO_RECHECK: Duration = Duration::from_secs(6 * 3_600);

/// State of a stored connection (a channel with no row is NOT_CONNECTED or NOT_NEEDED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredState {
    /// Publishing uses the owner's account.
    Active,
    /// The token expired or was revoked: the owner must connect again.
    NeedsReconnect,
}

impl StoredState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredState::Active => "ACTIVE",
            StoredState::NeedsReconnect => "NEEDS_RECONNECT",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(name: &str) -> Option<StoredState> {
        match name {
            "ACTIVE" => Some(StoredState::Active),
            "NEEDS_RECONNECT" => Some(StoredState::NeedsReconnect),
            _ => None,
        }
    }
}

/// What an owner sees of a channel's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The channel needs no account of the owner.
    NotNeeded,
    /// The channel takes the owner's account and none is connected.
    NotConnected,
    /// Connected.
    Active,
    /// Must be connected again.
    NeedsReconnect,
}

impl From<StoredState> for ConnectionState {
    fn from(state: StoredState) -> Self {
        match state {
            StoredState::Active => ConnectionState::Active,
            StoredState::NeedsReconnect => ConnectionState::NeedsReconnect,
        }
    }
}

/// The providers that connect an owner's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginProvider {
    /// Instagram API with Instagram Login (PROVIDERS.md §9).
    Instagram,
    /// Naver Login for Cafe posting (§11).
    Naver,
    /// The owner's Kakao Talk Channel, a sender profile of the platform's SENS Biz Message
    /// service (no OAuth: connecting checks the registration, §6).
    Kakao,
    /// The owner's store account at the KT partner of a channel (우리동네TV, 링고비즈, 지니TV):
    /// the per-store authorization of our contract `partner/v1` (authorization code with PKCE
    /// S256, rotating refresh tokens, PROVIDERS.md §7).
    Partner(Channel),
}

impl LoginProvider {
    /// The provider that connects `channel`'s account, if any does.
    pub fn of(channel: Channel) -> Option<LoginProvider> {
        match channel {
            Channel::Instagram => Some(LoginProvider::Instagram),
            Channel::NaverBlog => Some(LoginProvider::Naver),
            Channel::KakaoChannel => Some(LoginProvider::Kakao),
            Channel::UridongneTv | Channel::RingoBiz | Channel::GenieTv => Some(LoginProvider::Partner(channel)),
        }
    }

    /// The channel it connects.
    pub fn channel(self) -> Channel {
        match self {
            LoginProvider::Instagram => Channel::Instagram,
            LoginProvider::Naver => Channel::NaverBlog,
            LoginProvider::Kakao => Channel::KakaoChannel,
            LoginProvider::Partner(channel) => channel,
        }
    }

    /// The platform's name, for messages to the owner.
    pub fn display(self) -> &'static str {
        match self {
            LoginProvider::Instagram => "Instagram",
            LoginProvider::Naver => "Naver",
            LoginProvider::Kakao => "Kakao Channel",
            LoginProvider::Partner(channel) => channel.korean(),
        }
    }
}

/// A Naver Cafe board posts go to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NaverCafe {
    /// The cafe's club id (digits).
    pub club_id: String,
    /// The board's menu id (digits).
    pub menu_id: String,
}

/// Whether `id` is a Naver Cafe id: 1 to [`CAFE_ID_MAX`] ASCII digits.
pub fn is_cafe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= CAFE_ID_MAX && id.bytes().all(|b| b.is_ascii_digit())
}

/// The normal form of a Kakao channel search id — `@` and the id with ASCII letters lower-cased
/// (Kakao ids are case-insensitive) — or why `id` is not one: an optional leading `@`, then 1 to
/// [`KAKAO_ID_MAX`] letters, digits, `_`, `.` or `-` (surrounding spaces are ignored).
pub fn kakao_channel_id(id: &str) -> Result<String, &'static str> {
    let id = id.trim_matches(|c: char| c == ' ' || c == '\t');
    if id.is_empty() {
        return Err("is required for KAKAO_CHANNEL: your Kakao Talk Channel's search id, e.g. @myshop");
    }
    let bare = id.strip_prefix('@').unwrap_or(id);
    if bare.is_empty() {
        return Err("must name the channel after the @, e.g. @myshop");
    }
    if bare.chars().count() > KAKAO_ID_MAX {
        return Err("is longer than a Kakao channel id (at most 30 characters after the @)");
    }
    if !bare.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err("may contain only letters, digits, '_', '.' and '-' after the @");
    }
    Ok(format!("@{}", bare.to_ascii_lowercase()))
}

/// Why a `state` is malformed (checked before any lookup, so garbage never reaches the database).
pub fn state_problem(state: &str) -> Option<&'static str> {
    if state.is_empty() {
        Some("state is required")
    } else if state.len() != STATE_LEN {
        Some("is not a state this service issued (wrong length)")
    } else if !state.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Some("is not a state this service issued (not base64url)")
    } else {
        None
    }
}

/// A stored connection as the use cases see it (its tokens stay sealed in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionView {
    /// The channel.
    pub channel: Channel,
    /// Active or needing a reconnect.
    pub state: StoredState,
    /// The provider's account id (Instagram user id, Naver member id).
    pub account_id: String,
    /// Instagram username, Naver nickname.
    pub account_name: String,
    /// Permissions granted.
    pub scopes: Vec<String>,
    /// When it was connected (ms).
    pub connected_at: i64,
    /// When the access token expires (ms), when known.
    pub expires_at: Option<i64>,
    /// Last refresh (ms).
    pub refreshed_at: Option<i64>,
    /// Why it needs reconnecting.
    pub note: String,
    /// Naver's board.
    pub naver_cafe: Option<NaverCafe>,
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// When a token issued at `issued_at` and expiring at `expires_at` (ms) is next refreshed:
/// Instagram once it is 24 h old and within ten days of expiry; Naver five minutes before it
/// expires, a KT partner store token too; a Kakao channel is re-checked [`KAKAO_RECHECK`] after it was connected or last
/// checked. `None` when it cannot be refreshed (no expiry known).
pub fn refresh_due(provider: LoginProvider, issued_at: i64, expires_at: Option<i64>) -> Option<i64> {
    if provider == LoginProvider::Kakao {
        // No token: the re-check against the SENS channel list.
        return Some(issued_at.saturating_add(ms(KAKAO_RECHECK)));
    }
    let expires_at = expires_at?;
    Some(match provider {
        LoginProvider::Instagram => {
            let old_enough = issued_at.saturating_add(ms(INSTAGRAM_REFRESH_MIN_AGE));
            let window = expires_at.saturating_sub(ms(INSTAGRAM_REFRESH_WINDOW));
            old_enough.max(window)
        }
        LoginProvider::Naver => expires_at.saturating_sub(ms(NAVER_REFRESH_AHEAD)).max(issued_at),
        LoginProvider::Partner(_) => expires_at.saturating_sub(ms(PARTNER_REFRESH_AHEAD)).max(issued_at),
        LoginProvider::Kakao => issued_at.saturating_add(ms(KAKAO_RECHECK)),
    })
}

/// When to try again after the `failures`-th transient refresh failure at `now`: one minute
/// doubling up to an hour, never later than shortly before `expires_at`.
pub fn refresh_retry_at(now: i64, failures: i32, expires_at: Option<i64>) -> i64 {
    let exponent = u32::try_from(failures.saturating_sub(1)).unwrap_or(0).min(10);
    let wait = Duration::from_secs(60).saturating_mul(1 << exponent).min(REFRESH_BACKOFF_MAX);
    let at = now.saturating_add(ms(wait));
    match expires_at {
        // A last try just before expiry is worth more than one after it.
        Some(expires) if expires > now => at.min(expires.saturating_sub(30_000).max(now + 1_000)),
        _ => at,
    }
}

/// Whether `granted` has every permission publishing to `provider`'s channel needs (Naver Login
/// grants no named scopes: whoever logs in may post where they are a member).
pub fn missing_scopes(provider: LoginProvider, granted: &[String]) -> Vec<&'static str> {
    match provider {
        LoginProvider::Instagram => ["instagram_business_basic", "instagram_business_content_publish"]
            .into_iter()
            .filter(|needed| !granted.iter().any(|g| g == needed))
            .collect(),
        LoginProvider::Partner(_) => {
            ["ads.write", "ads.read"].into_iter().filter(|needed| !granted.iter().any(|g| g == needed)).collect()
        }
        LoginProvider::Naver | LoginProvider::Kakao => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn instagram_tokens_refresh_ten_days_before_expiry_once_a_day_old() {
        let issued = 1_000 * DAY;
        assert_eq!(refresh_due(LoginProvider::Instagram, issued, Some(issued + 60 * DAY)), Some(issued + 50 * DAY));
        // A token that lives only two days is refreshed as soon as Meta allows (24 h).
        assert_eq!(refresh_due(LoginProvider::Instagram, issued, Some(issued + 2 * DAY)), Some(issued + DAY));
        assert_eq!(refresh_due(LoginProvider::Instagram, issued, None), None);
    }

    #[test]
    fn naver_tokens_refresh_five_minutes_ahead() {
        assert_eq!(refresh_due(LoginProvider::Naver, 0, Some(3_600_000)), Some(3_300_000));
        assert_eq!(refresh_due(LoginProvider::Naver, 10, Some(60_000)), Some(10));
    }

    #[test]
    fn refresh_retries_back_off_but_try_before_expiry() {
        assert_eq!(refresh_retry_at(0, 1, None), 60_000);
        assert_eq!(refresh_retry_at(0, 2, None), 120_000);
        assert_eq!(refresh_retry_at(0, 30, None), 3_600_000);
        assert_eq!(refresh_retry_at(0, 30, Some(600_000)), 570_000);
    }

    #[test]
    fn states_and_cafe_ids_are_checked_by_shape() {
        assert_eq!(state_problem(&"a".repeat(43)), None);
        assert_eq!(state_problem("-_AZaz09".repeat(6).get(..43).unwrap_or_default()), None);
        assert!(state_problem("").is_some());
        assert!(state_problem(&"a".repeat(44)).is_some());
        assert!(state_problem(&format!("{}\n", "a".repeat(42))).is_some());
        assert!(state_problem(&format!("{}=", "a".repeat(42))).is_some());
        assert!(is_cafe_id("31000001") && is_cafe_id(&"9".repeat(20)));
        assert!(!is_cafe_id("") && !is_cafe_id(&"9".repeat(21)) && !is_cafe_id("12a") && !is_cafe_id("-1"));
    }

    #[test]
    fn kakao_channel_ids_are_normalised_or_refused() {
        assert_eq!(kakao_channel_id("@MyShop").as_deref(), Ok("@myshop"));
        assert_eq!(kakao_channel_id(" myshop_1.a-b ").as_deref(), Ok("@myshop_1.a-b"));
        assert_eq!(kakao_channel_id("@카페온도").as_deref(), Ok("@카페온도"));
        assert_eq!(kakao_channel_id(&format!("@{}", "a".repeat(30))).map(|s| s.len()), Ok(31));
        for hostile in [
            "",
            "@",
            "@@x",
            "@x\u{0}",
            "@x\ny",
            "@\u{202e}x",
            "x y",
            "@a;DROP TABLE channel_connections;--",
            "'; SELECT 1 --",
            "@%41",
            "@x/../y",
        ] {
            assert!(kakao_channel_id(hostile).is_err(), "{hostile:?} is refused");
        }
        assert!(kakao_channel_id(&"a".repeat(31)).is_err());
        assert!(kakao_channel_id(&format!("@{}", "가".repeat(31))).is_err());
        assert_eq!(refresh_due(LoginProvider::Kakao, 0, None), Some(6 * 3_600_000));
        assert_eq!(LoginProvider::of(Channel::KakaoChannel), Some(LoginProvider::Kakao));
    }

    #[test]
    fn publishing_to_instagram_needs_both_scopes() {
        let granted = vec!["instagram_business_basic".to_owned()];
        assert_eq!(missing_scopes(LoginProvider::Instagram, &granted), ["instagram_business_content_publish"]);
        assert!(missing_scopes(LoginProvider::Naver, &[]).is_empty());
        assert_eq!(StoredState::parse("ACTIVE"), Some(StoredState::Active));
        assert_eq!(StoredState::parse(StoredState::NeedsReconnect.as_str()), Some(StoredState::NeedsReconnect));
        assert_eq!(LoginProvider::of(Channel::GenieTv), Some(LoginProvider::Partner(Channel::GenieTv)));
        assert_eq!(LoginProvider::Partner(Channel::RingoBiz).channel(), Channel::RingoBiz);
        let partial = vec!["ads.read".to_owned()];
        assert_eq!(missing_scopes(LoginProvider::Partner(Channel::GenieTv), &partial), ["ads.write"]);
        assert_eq!(refresh_due(LoginProvider::Partner(Channel::GenieTv), 0, Some(3_600_000)), Some(3_300_000));
    }
}
