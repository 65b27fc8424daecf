//! What a failed call says about its endpoint, and whether it may be sent again.
//!
//! A transport error is not one thing. A refused connection says the endpoint is down, and the
//! request never left this process: sending it elsewhere is always safe, even for a method that
//! is not idempotent (gRPC's "transparent retry"). A stream the peer refused (`REFUSED_STREAM`,
//! or above the last stream id of its `GOAWAY`) was provably not processed either, but the
//! endpoint is only draining or busy. A connection that broke mid-call may or may not have run
//! the handler. And an error confined to one stream — a response whose headers exceed the
//! negotiated limit, a reset with `PROTOCOL_ERROR` — is about that request, never about the
//! endpoint: counting it towards ejection lets one caller with a crafted request eject a
//! service for every other caller.
//!
//! [`classify`] reads the error's source chain (tonic → tower buffer → hyper → h2 / io) and
//! answers with a [`Failure`]; the balancer uses it for failure accrual, the retry layer for
//! transparent retries, the edge for the HTTP status it answers with.

use std::error::Error as StdError;

/// Marks a response status the mesh itself produced (not the application): draining, shedding
/// load, no endpoint. Linkerd's `l5d-proxy-error` plays the same role. A client counts an
/// UNAVAILABLE carrying it towards the endpoint's failure accrual; an application's own
/// UNAVAILABLE (its database is down) only lowers the endpoint's score.
pub const MESH_ERROR_HEADER: &str = "kem-mesh-error";

/// The [`MESH_ERROR_HEADER`] value of a call the server shed before running it (admission
/// control): safe to send elsewhere, and a sign of load, not of failure.
pub const OVERLOADED: &str = "overloaded";

/// What the mesh said about a response it produced itself, if it did.
pub fn mesh_error<B>(response: &http::Response<B>) -> Option<&str> {
    response.headers().get(MESH_ERROR_HEADER).and_then(|v| v.to_str().ok())
}

/// What kind of failure a transport error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request never reached a server: connecting (TCP or TLS) failed, or the connection
    /// was gone before the request was written. The endpoint is likely down.
    NotConnected,
    /// The server refused the stream without processing it (`REFUSED_STREAM`, or a stream above
    /// the last stream id of its `GOAWAY`): it is draining or at its stream limit, not broken.
    Refused,
    /// The connection broke while the call was in flight: the handler may have run.
    ConnectionLost,
    /// Only this stream failed (a protocol violation in this response, such as headers over the
    /// limit, or a reset by either side): the endpoint is healthy.
    Stream,
}

impl Failure {
    /// Whether the request provably never reached application code, so sending it to another
    /// endpoint cannot run it twice.
    pub fn never_processed(self) -> bool {
        matches!(self, Failure::NotConnected | Failure::Refused)
    }

    /// Whether the failure says something about the endpoint's health (failure accrual).
    pub fn counts_against_endpoint(self) -> bool {
        matches!(self, Failure::NotConnected | Failure::ConnectionLost)
    }
}

/// Classifies a transport error by its source chain. Unknown errors are treated as a lost
/// connection: they count against the endpoint, and are never sent again transparently.
pub fn classify(error: &(dyn StdError + 'static)) -> Failure {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if error.is::<tonic::ConnectError>() {
            return Failure::NotConnected;
        }
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return classify_h2(h2);
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            // Canceled: the dispatcher dropped the request before sending it (connection closed).
            if hyper.is_canceled() {
                return Failure::NotConnected;
            }
            // Anything else from hyper wraps a cause further down (h2 or io), unless it has none.
            if hyper.source().is_none() {
                return if hyper.is_parse() || hyper.is_user() { Failure::Stream } else { Failure::ConnectionLost };
            }
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::AddrNotAvailable
                | std::io::ErrorKind::HostUnreachable
                | std::io::ErrorKind::NetworkUnreachable => Failure::NotConnected,
                _ => Failure::ConnectionLost,
            };
        }
        current = error.source();
    }
    Failure::ConnectionLost
}

fn classify_h2(error: &h2::Error) -> Failure {
    let reason = error.reason();
    if error.is_go_away() {
        // Streams the peer's GOAWAY did not cover were never processed; a GOAWAY we sent
        // ourselves (a protocol error on the connection) says nothing of the sort.
        return if error.is_remote() { Failure::Refused } else { Failure::ConnectionLost };
    }
    if error.is_reset() {
        return if error.is_remote() && reason == Some(h2::Reason::REFUSED_STREAM) {
            Failure::Refused
        } else {
            Failure::Stream
        };
    }
    if error.is_io() {
        return Failure::ConnectionLost;
    }
    // A library error without a stream reset is a connection error.
    Failure::ConnectionLost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "wrapped")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn connect_errors_are_never_processed_and_count() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = Wrapper(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(classify(&error), Failure::NotConnected);
        assert!(Failure::NotConnected.never_processed() && Failure::NotConnected.counts_against_endpoint());
    }

    /// Real resets and GOAWAYs cannot be built outside h2; `mesh/tests/mesh/hostile.rs` gets
    /// them from a live connection (an oversized response, a draining server).
    #[test]
    fn what_each_kind_allows() {
        assert!(!Failure::Stream.counts_against_endpoint() && !Failure::Stream.never_processed());
        assert!(Failure::Refused.never_processed() && !Failure::Refused.counts_against_endpoint());
    }

    #[test]
    fn broken_connections_count_but_are_not_resent() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&Wrapper(Box::new(reset))), Failure::ConnectionLost);
        assert!(!Failure::ConnectionLost.never_processed());
        #[derive(Debug)]
        struct Opaque;
        impl std::fmt::Display for Opaque {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "opaque")
            }
        }
        impl StdError for Opaque {}
        assert_eq!(classify(&Opaque), Failure::ConnectionLost, "unknown errors are not resent");
    }
}
