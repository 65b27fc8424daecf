//! The built-in local stand-ins `kem up` uses when a channel has no credentials (deterministic,
//! nothing is really published; deliveries are labelled `local:<provider>`):
//!
//! - [`partner_server`]: the partner side of `partner/v1`, run in-process for 우리동네TV, 링고비즈
//!   and 지니TV (the real [`PartnerClient`](crate::infra::channels::partner::PartnerClient) talks to
//!   it); the tests run it as the contract server of the partner channels;
//! - [`instagram`]: the Instagram stand-in, `local:instagram-graph`;
//! - [`kakao`]: the Kakao Channel stand-in, `local:kakao-sens`.
//!
//! Naver has none: the owner-assisted article is the real behaviour.

pub mod instagram;
pub mod kakao;
pub mod partner_server;

pub use instagram::LocalInstagram;
pub use kakao::LocalKakao;
pub use partner_server::{PartnerServer, PartnerServerConfig};
