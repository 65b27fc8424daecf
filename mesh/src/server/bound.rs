//! Bounds on the status metadata a server sends.
//!
//! A handler's error message often quotes its input ("event 'x…' not found"). Sent whole, a
//! 16,000-character id makes the `grpc-message` of a trailers-only response larger than the
//! client's header-list limit: the client resets the stream, and a caller who can do that at will
//! gets to test every failure path of every hop. Services quote only short prefixes of caller
//! input; this layer is the backstop that holds whatever a handler does: the message is cut to
//! [`MAX_STATUS_MESSAGE`] bytes (on a character boundary, marked with `…`), and details larger
//! than [`MAX_STATUS_DETAILS`] are dropped (the code and message still tell the caller what
//! happened). Both ends of every mesh hop also agree on [`MAX_HEADER_LIST_SIZE`].

use http::HeaderValue;

/// The header-list size both ends of a mesh connection accept (HTTP/2
/// `SETTINGS_MAX_HEADER_LIST_SIZE`): roomy for kem's metadata and status details, far above what
/// this layer lets a response carry.
pub const MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;

/// Largest `grpc-message` sent, in bytes of its percent-encoded form.
pub const MAX_STATUS_MESSAGE: usize = 1024;

/// Largest `grpc-status-details-bin` sent, in bytes of its base64 form.
pub const MAX_STATUS_DETAILS: usize = 8 * 1024;

const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_DETAILS: &str = "grpc-status-details-bin";
/// `…`, percent-encoded as tonic encodes messages.
const ELLIPSIS: &str = "%E2%80%A6";

/// Applies the bounds to a response's headers (a trailers-only response carries its status
/// there; kem's RPCs are unary, so every error is trailers-only).
pub fn bound_status<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    if let Some(message) = headers.get(GRPC_MESSAGE)
        && message.len() > MAX_STATUS_MESSAGE
    {
        let cut = truncate_encoded(message.as_bytes(), MAX_STATUS_MESSAGE);
        match HeaderValue::from_bytes(cut.as_bytes()) {
            Ok(value) => headers.insert(GRPC_MESSAGE, value),
            Err(_) => headers.remove(GRPC_MESSAGE),
        };
    }
    if headers.get(GRPC_DETAILS).is_some_and(|details| details.len() > MAX_STATUS_DETAILS) {
        headers.remove(GRPC_DETAILS);
        tracing::warn!(limit = MAX_STATUS_DETAILS, "dropped oversized status details from a response");
    }
    response
}

/// A percent-encoded message (gRPC's encoding: bytes outside `0x20..=0x7E` and `%` as `%XX`)
/// cut to at most `limit` encoded bytes, ending on a whole character, followed by `…`.
fn truncate_encoded(encoded: &[u8], limit: usize) -> String {
    let budget = limit.saturating_sub(ELLIPSIS.len());
    // Decode unit by unit while the re-encoded length fits the budget.
    let mut decoded = Vec::with_capacity(budget);
    let mut used = 0;
    let mut i = 0;
    while i < encoded.len() {
        let (byte, advance) = match (encoded[i], encoded.get(i + 1), encoded.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) => match (hex(high), hex(low)) {
                (Some(high), Some(low)) => (high << 4 | low, 3),
                _ => (b'%', 1),
            },
            (other, _, _) => (other, 1),
        };
        let width = if plain(byte) { 1 } else { 3 };
        if used + width > budget {
            break;
        }
        decoded.push(byte);
        used += width;
        i += advance;
    }
    // Back off to a character boundary: a cut inside a UTF-8 sequence would decode as U+FFFD.
    let text = match std::str::from_utf8(&decoded) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&decoded[..error.valid_up_to()]).unwrap_or_default(),
    };
    let mut out = String::with_capacity(limit);
    for byte in text.bytes() {
        if plain(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out.push_str(ELLIPSIS);
    out
}

/// Whether gRPC sends `byte` as itself in a message (else as `%XX`).
fn plain(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte) && byte != b'%'
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_with(message: &str, details: usize) -> http::Response<()> {
        let status = tonic::Status::with_details(tonic::Code::NotFound, message, vec![7u8; details].into());
        let mut headers = http::HeaderMap::new();
        status.add_header(&mut headers).expect("encodable status");
        let mut response = http::Response::new(());
        *response.headers_mut() = headers;
        response
    }

    fn message_of(response: &http::Response<()>) -> String {
        tonic::Status::from_header_map(response.headers()).map(|s| s.message().to_owned()).unwrap_or_default()
    }

    #[test]
    fn short_statuses_pass_untouched() {
        let response = bound_status(response_with("이벤트 e-1을 찾을 수 없습니다", 100));
        assert_eq!(message_of(&response), "이벤트 e-1을 찾을 수 없습니다");
        assert!(response.headers().contains_key(GRPC_DETAILS));
    }

    #[test]
    fn huge_messages_are_cut_on_a_character_and_huge_details_dropped() {
        for filler in ["x", "가", "%", " "] {
            let message = format!("event '{}' not found", filler.repeat(16_000));
            let response = bound_status(response_with(&message, 20_000));
            let encoded = response.headers().get(GRPC_MESSAGE).expect("message kept");
            assert!(encoded.len() <= MAX_STATUS_MESSAGE, "{filler}: {} bytes", encoded.len());
            let decoded = message_of(&response);
            assert!(decoded.starts_with("event '") && decoded.ends_with('…'), "{filler}: {decoded}");
            assert!(!decoded.contains('\u{fffd}'), "{filler}: cut inside a character");
            assert!(!response.headers().contains_key(GRPC_DETAILS));
        }
    }

    #[test]
    fn malformed_percent_sequences_do_not_panic() {
        for raw in ["%", "%%", "%Z9", "abc%", "abc%4", &format!("{}%", "a".repeat(2000))] {
            let cut = truncate_encoded(raw.as_bytes(), 16);
            assert!(cut.len() <= 16, "{raw}: {cut}");
        }
    }
}
