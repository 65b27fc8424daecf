//! The NAVER Cloud Platform API Gateway signature v2, shared by every client of an NCP API
//! (SENS SMS, SENS Kakao 친구톡/알림톡; PROVIDERS.md §6, §8, §12) and by the contract servers
//! that verify it.
//!
//! Every call carries `x-ncp-apigw-timestamp` (epoch milliseconds; the gateway refuses more than
//! five minutes of skew), `x-ncp-iam-access-key` and `x-ncp-apigw-signature-v2` =
//! Base64(HMAC-SHA256(secret key, `"{METHOD} {path and query}\n{timestamp}\n{access key}"`)),
//! the path without the host and no trailing newline.

use base64::Engine as _;

/// Header of the request time (epoch milliseconds).
pub const TIMESTAMP_HEADER: &str = "x-ncp-apigw-timestamp";
/// Header of the access key id.
pub const ACCESS_KEY_HEADER: &str = "x-ncp-iam-access-key";
/// Header of the signature.
pub const SIGNATURE_HEADER: &str = "x-ncp-apigw-signature-v2";
/// Largest difference between the request's timestamp and the gateway's clock it accepts.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// The API Gateway signature v2 of a request: `path_and_query` is the URI as sent, without the
/// host (`/sms/v2/services/ncp:sms:kr:1:x/messages?requestId=r`).
pub fn signature(secret: &str, method: &str, path_and_query: &str, timestamp_ms: i64, access_key: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let message = format!("{method} {path_and_query}\n{timestamp_ms}\n{access_key}");
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, message.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_api_gateway_v2_recipe() {
        // HMAC-SHA256("secret", "POST /x\n1\nAK") in Base64, computed independently.
        let expected = {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret");
            base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, b"POST /x\n1\nAK").as_ref())
        };
        assert_eq!(signature("secret", "POST", "/x", 1, "AK"), expected);
        assert_ne!(signature("secret", "POST", "/x", 2, "AK"), expected, "the timestamp is signed");
        assert_ne!(signature("secret", "GET", "/x", 1, "AK"), expected, "the method is signed");
        assert_ne!(signature("secret", "POST", "/x?a=1", 1, "AK"), expected, "the query is signed");
    }
}
