//! Integration tests of the distribution service on real PostgreSQL and Redis (and one module on
//! embedded SQLite): jobs arrive on the store-backed `distribution-jobs` queue, every channel is
//! worked through its real client against a local contract server speaking the provider's wire
//! contract (Instagram Graph, NAVER Cloud SENS, Naver Cafe, the KT partner contract), owner
//! profiles come from a fake user service and Kakao recipients from a fake participation service
//! over mesh mTLS, and outcomes are read back from the
//! `analytics-aggregation` queue.

mod connections;
mod exactly_once;
mod insights;
mod kakao;
mod links;
mod naver_login;
mod partner;
mod partner_login;
mod pending;
mod publish;
mod quota;
mod retry;
mod sqlite;
mod support;
mod validation;
mod wire;
