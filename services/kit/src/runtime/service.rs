//! What every business service crate offers the process that runs it, so a role mounts any of
//! them through one generic path (`kem/src/roles.rs`), and an eighth service (see
//! `examples/guestbook`) plugs in by implementing one trait.

use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::future::Future;

use tonic::body::Body;
use tonic::codegen::{Service as TowerService, http};
use tonic::server::NamedService;

use super::ServiceContext;

/// A kem business service: how its settings are read and how it starts on a [`ServiceContext`].
///
/// Implemented by a unit type in each service crate (`kem_user::User`, `kem_event::Event`, …).
/// `start` owns everything the service needs before it answers (migrations, keys, background
/// loops spawned on `ctx.shutdown`), so that a role that has mounted it is ready.
pub trait KemService: Send + Sync + 'static {
    /// Lower-case name, as used in SPIFFE IDs, ports, key prefixes and Kubernetes objects.
    const NAME: &'static str;

    /// The service's own settings (providers, limits, time budgets).
    /// It names the local stand-ins it selects, so a production process can refuse them.
    type Config: Clone + fmt::Debug + Send + Sync + crate::external::StandIns + 'static;
    /// Why its settings could not be read (every bad variable, at once).
    type ConfigError: Error + Send + Sync + 'static;
    /// Why it could not start.
    type StartError: Error + Send + Sync + 'static;
    /// The generated tonic server to mount.
    type Server: TowerService<http::Request<Body>, Response = http::Response<Body>, Error = Infallible, Future: Send + 'static>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static;

    /// The settings from the process environment (the `KEM_…` variables the crate documents).
    fn config_from_env() -> Result<Self::Config, Self::ConfigError>;

    /// Starts the service on `ctx` with `config` and returns the server to mount.
    fn start(
        ctx: ServiceContext,
        config: Self::Config,
    ) -> impl Future<Output = Result<Self::Server, Self::StartError>> + Send;
}

/// Declares a service crate's [`KemService`]: a unit type named by the service whose settings
/// come from `<Config>::from_env()` and which starts with the crate's `start(ctx, config)`.
///
/// ```ignore
/// kem_kit::kem_service! {
///     /// The event service as a role mounts it.
///     pub struct Event = "event";
///     config: EventConfig, EventConfigError;
///     start: start => EventServiceServer<EventApi>, EventStartError;
/// }
/// ```
#[macro_export]
macro_rules! kem_service {
    (
        $(#[$meta:meta])*
        pub struct $ty:ident = $name:literal;
        config: $config:ty, $config_error:ty;
        start: $start:path => $server:ty, $start_error:ty;
    ) => {
        $(#[$meta])*
        pub struct $ty;

        impl $crate::runtime::KemService for $ty {
            const NAME: &'static str = $name;
            type Config = $config;
            type ConfigError = $config_error;
            type StartError = $start_error;
            type Server = $server;

            fn config_from_env() -> ::std::result::Result<$config, $config_error> {
                <$config>::from_env()
            }

            fn start(
                ctx: $crate::runtime::ServiceContext,
                config: $config,
            ) -> impl ::std::future::Future<Output = ::std::result::Result<$server, $start_error>> + Send {
                $start(ctx, config)
            }
        }
    };
}
