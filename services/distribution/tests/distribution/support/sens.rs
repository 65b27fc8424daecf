//! The SENS Biz Message contract server is kem-testkit's ([`kem_testkit::contracts::sens_biz`]),
//! one copy for these tests and the end-to-end tests; here only the channels this harness's
//! owners connect.

pub use kem_testkit::contracts::sens_biz::*;

/// The Kakao channel [`super::OWNER`] connects (registered from the start).
pub const PLUS_FRIEND: &str = "@kem-test";
/// The Kakao channel [`super::OTHER`] connects (registered from the start).
pub const OTHER_CHANNEL: &str = "@kem-other";

/// The channel `owner` connects in the harness.
pub fn channel_of(owner: &str) -> &'static str {
    if owner == super::OWNER { PLUS_FRIEND } else { OTHER_CHANNEL }
}

/// The contract server with [`PLUS_FRIEND`] and [`OTHER_CHANNEL`] registered, ACTIVE, everyone
/// their friend.
pub async fn start() -> SensBizServer {
    let server = SensBizServer::start().await;
    server.register(PLUS_FRIEND, "카페 온도");
    server.register(OTHER_CHANNEL, "다른 가게");
    server
}
