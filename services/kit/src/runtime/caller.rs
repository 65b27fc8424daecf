//! Who is calling: the end user the gateway vouches for.
//!
//! The gateway verifies the access token at the edge and forwards its subject as
//! `x-kem-user-id` metadata; the mesh authorization layer strips that metadata from any caller
//! that is not the gateway, so a service can trust it as is.

use tonic::{Request, Status};

/// Metadata carrying the verified end-user id (set by the gateway only).
pub const OWNER_METADATA: &str = "x-kem-user-id";

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
}
