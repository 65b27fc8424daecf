//! Who is calling: the end user the gateway vouches for.
//!
//! The gateway verifies the access token at the edge and forwards its subject as
//! `x-kem-user-id` metadata, and the client's address as `x-kem-user-client-ip`; the mesh
//! authorization layer strips every `x-kem-user-*` metadata from any caller that is not the
//! gateway, so a service can trust them as they are.

use std::net::IpAddr;

use tonic::{Request, Status};

/// Metadata carrying the verified end-user id (set by the gateway only); the key is the mesh's,
/// whose authorization layer is what makes it trustworthy.
pub use kem_mesh::authz::END_USER_ID_METADATA as OWNER_METADATA;

/// Metadata carrying the end user's IP address as the edge determined it (the peer, or the
/// `X-Forwarded-For` entry of a trusted proxy). Set by the gateway only, on every call.
pub use kem_mesh::authz::END_USER_CLIENT_IP_METADATA as CLIENT_IP_METADATA;

/// The end user's address of `request`, when the gateway sent one.
pub fn client_ip<T>(request: &Request<T>) -> Option<IpAddr> {
    request.metadata().get(CLIENT_IP_METADATA)?.to_str().ok()?.trim().parse().ok()
}

/// Attaches the end user's address to an outgoing request (the gateway, and tests).
pub fn with_client_ip<T>(mut request: Request<T>, ip: IpAddr) -> Request<T> {
    if let Ok(value) = ip.to_string().parse() {
        request.metadata_mut().insert(CLIENT_IP_METADATA, value);
    }
    request
}

/// The verified end user of `request`, or UNAUTHENTICATED when there is none (a public route
/// called an owner-only method, or a mesh peer called it directly).
pub fn owner_id<T>(request: &Request<T>) -> Result<String, Status> {
    request
        .metadata()
        .get(OWNER_METADATA)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Status::unauthenticated("this method needs a signed-in owner: send `Authorization: Bearer <access token>`")
        })
}

/// Attaches `owner` to an outgoing request (tests, and a service acting for its caller).
pub fn with_owner<T>(mut request: Request<T>, owner: &str) -> Request<T> {
    if let Ok(value) = owner.parse() {
        request.metadata_mut().insert(OWNER_METADATA, value);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_comes_from_the_gateway_metadata() {
        let request = with_owner(Request::new(()), "u-1");
        assert_eq!(owner_id(&request).ok().as_deref(), Some("u-1"));
        let missing = owner_id(&Request::new(())).err().map(|s| s.code());
        assert_eq!(missing, Some(tonic::Code::Unauthenticated));
    }

    #[test]
    fn the_client_address_comes_from_the_gateway_metadata() {
        let ip: IpAddr = "2001:db8::7".parse().expect("ip");
        assert_eq!(client_ip(&with_client_ip(Request::new(()), ip)), Some(ip));
        assert_eq!(client_ip(&Request::new(())), None);
        let mut garbage = Request::new(());
        garbage.metadata_mut().insert(CLIENT_IP_METADATA, tonic::metadata::MetadataValue::from_static("not-an-ip"));
        assert_eq!(client_ip(&garbage), None);
        assert!(
            CLIENT_IP_METADATA.starts_with(kem_mesh::authz::END_USER_METADATA_PREFIX),
            "the mesh strips it from callers other than the gateway"
        );
    }
}
