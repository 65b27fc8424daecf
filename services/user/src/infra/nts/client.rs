//! The client of the real NTS status API.

use std::fmt;

use kem_kit::Secret;
use kem_kit::external::{ProviderClient, ProviderError};

use super::NtsError;
use super::wire::{self, MAX_NUMBERS_PER_CALL, StatusEntry, StatusRequest, StatusResponse};

/// `POST {base}/nts-businessman/v1/status?serviceKey=…&returnType=JSON` with `{"b_no": [...]}`.
#[derive(Clone)]
pub struct NtsClient {
    client: ProviderClient,
    service_key: Secret,
}

impl NtsClient {
    /// A client over `client` (configured with [`provider_config`](super::provider_config)),
    /// authenticating with `service_key`.
    ///
    /// data.go.kr shows each key twice, URL-encoded ("Encoding") and plain ("Decoding"). The
    /// query parameter is encoded here, so the plain form is wanted; an encoded key (it contains
    /// `%2B`, `%2F` or `%3D`) is decoded once instead of being encoded twice.
    pub fn new(client: ProviderClient, service_key: Secret) -> NtsClient {
        let key = service_key.expose().trim();
        let service_key = if key.contains('%') { Secret::new(percent_decode(key)) } else { Secret::new(key) };
        NtsClient { client, service_key }
    }

    /// The underlying provider client (breaker, counters).
    pub fn provider(&self) -> &ProviderClient {
        &self.client
    }

    /// The status of up to 100 numbers (10 digits each), one entry per number.
    pub async fn status(&self, numbers: &[&str]) -> Result<Vec<StatusEntry>, NtsError> {
        if numbers.is_empty() || numbers.len() > MAX_NUMBERS_PER_CALL {
            return Err(NtsError::Provider(ProviderError::Request {
                provider: self.client.name().into(),
                detail: format!("1 to {MAX_NUMBERS_PER_CALL} numbers per call, got {}", numbers.len()),
            }));
        }
        let response: StatusResponse = self
            .client
            .post(wire::STATUS_PATH)
            .query("serviceKey", self.service_key.expose())
            .query("returnType", "JSON")
            // A read-only lookup: safe to repeat on a timeout or a 5xx.
            .idempotent()
            .json(&StatusRequest { b_no: numbers })
            .classify(wire::classify)
            .send_json()
            .await?;
        if response.status_code != "OK" {
            return Err(NtsError::Contract(format!("status_code {:?} with a success status", response.status_code)));
        }
        if let (Some(asked), Some(matched)) = (response.request_cnt, response.match_cnt)
            && matched < asked
        {
            tracing::debug!(asked, matched, "NTS does not know some of the numbers asked");
        }
        Ok(response.data)
    }
}

impl fmt::Debug for NtsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtsClient").field("client", &self.client).field("service_key", &self.service_key).finish()
    }
}

/// `%XX` sequences decoded (invalid ones kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            // Two hex digits make a value below 256.
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_portal_keys_are_decoded_once() {
        assert_eq!(percent_decode("abc%2Bdef%2F%3D%3D"), "abc+def/==");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%zzb"), "a%zzb");
    }
}
