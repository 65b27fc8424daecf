//! kem's published gRPC contracts.
//!
//! Generated message types, tonic clients and servers for every `kem.<service>.v1` package, the
//! vendored `google.api` / `google.rpc` types, and the encoded [`FILE_DESCRIPTOR_SET`] (with every
//! option preserved) that the gateway, server reflection and the OpenAPI generator read at runtime.
//!
//! The module tree mirrors the protobuf package hierarchy because generated code refers to other
//! packages through relative `super::` paths.
#![forbid(unsafe_code)]

pub mod contract;
pub mod snapshot;
pub mod status;

use std::sync::LazyLock;

use prost_reflect::DescriptorPool;

/// The encoded `google.protobuf.FileDescriptorSet` of every kem proto and its imports, with source
/// info (comments) and custom options (`google.api.http`, `kem.api.v1.access`) preserved.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kem_descriptor.bin"));

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    // The bytes were produced and validated by the build script from the same sources, so a
    // failure here is a build defect, not an input error.
    #[allow(clippy::expect_used)]
    DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("embedded descriptor set is valid")
});

/// The descriptor pool decoded from [`FILE_DESCRIPTOR_SET`] (decoded once, shared).
pub fn descriptor_pool() -> &'static DescriptorPool {
    &POOL
}

/// Full names of the eight kem gRPC services, in the order roles are usually listed.
pub const SERVICE_NAMES: [&str; 8] = [
    "kem.identity.v1.IdentityService",
    "kem.user.v1.UserService",
    "kem.event.v1.EventService",
    "kem.ai.v1.AiService",
    "kem.content.v1.ContentService",
    "kem.distribution.v1.DistributionService",
    "kem.participation.v1.ParticipationService",
    "kem.analytics.v1.AnalyticsService",
];

/// Vendored Google API types.
pub mod google {
    /// `google.api`: HTTP annotations, field behaviour, `HttpBody`.
    #[allow(clippy::all, missing_docs)]
    pub mod api {
        tonic::include_proto!("google.api");
    }
    /// `google.rpc`: `Status`, `Code` and the standard error details.
    #[allow(clippy::all, missing_docs)]
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// kem packages.
pub mod kem {
    macro_rules! package {
        ($(#[$doc:meta])* $name:ident, $pkg:literal) => {
            $(#[$doc])*
            pub mod $name {
                /// Version 1 of the package.
                #[allow(clippy::all, missing_docs)]
                pub mod v1 {
                    tonic::include_proto!($pkg);
                }
            }
        };
    }
    package!(/// API options shared by every service (method access levels).
        api, "kem.api.v1");
    package!(/// Types shared by several services (channels, money, periods).
        common, "kem.common.v1");
    package!(/// Mesh identity CA: certificate issuance and trust bundles.
        identity, "kem.identity.v1");
    package!(/// Owners, credentials, tokens and business verification.
        user, "kem.user.v1");
    package!(/// Events, their lifecycle and async jobs.
        event, "kem.event.v1");
    package!(/// Trend analysis and event recommendations.
        ai, "kem.ai.v1");
    package!(/// Generated SNS images.
        content, "kem.content.v1");
    package!(/// Per-channel publishing.
        distribution, "kem.distribution.v1");
    package!(/// Entries, consents, winners and draw audits.
        participation, "kem.participation.v1");
    package!(/// Aggregated analytics and dashboards.
        analytics, "kem.analytics.v1");
    package!(/// Queue message contracts (bodies of the messages on the four production queues).
        messaging, "kem.messaging.v1");
}
