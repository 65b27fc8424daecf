//! Every adapter, on the platform kit and the outside world:
//!
//! - [`repository`]: the tables on PostgreSQL or embedded SQLite (same SQL), every state change
//!   guarded so a PUBLISHED delivery is never sent again;
//! - [`channels`]: one client per provider (Instagram Graph, Naver Cafe / assisted article, Kakao
//!   through NAVER Cloud SENS, the KT partner contract);
//! - [`connections`]: owners' own accounts (Instagram Login, Naver Login), tokens sealed at rest;
//! - [`local`]: the built-in stand-ins `kem up` uses without credentials, among them the partner
//!   side of `partner/v1` run in-process;
//! - [`dispatcher`]: the per-channel scheduler that claims due deliveries and runs their steps;
//! - [`consumer`]: the `distribution-jobs` consumer and the inbox purge;
//! - [`messages`]: the `kem.messaging.v1` bodies consumed and produced;
//! - [`owners`], [`publications`], [`recipients`]: the mesh clients of the user, event and
//!   participation services;
//! - [`kakao_sends`]: the batch-by-batch progress of each event's Kakao send.

pub mod channels;
pub mod connections;
pub mod consumer;
pub mod dispatcher;
pub mod insights;
pub mod kakao_sends;
pub mod local;
pub mod messages;
pub mod owners;
pub mod publications;
pub mod recipients;
pub mod repository;

pub use dispatcher::{DispatchSettings, Dispatcher, Lane};
pub use owners::MeshOwners;
pub use publications::MeshPublications;
pub use recipients::MeshRecipients;
pub use repository::Repository;
