//! The sender profiles of the platform's SENS Biz Message service (PROVIDERS.md §6, §12):
//! `GET /alimtalk/v2/services/{serviceId}/channels`, signed like every SENS call. Kakao has no
//! OAuth for business messaging: an owner's Kakao Talk Channel can send 친구톡 through the
//! platform only once kem support registered it as a sender profile in the NCP console (Kakao
//! verifies the channel's business and its administrator's phone there). Connecting a channel,
//! and the periodic re-check, look it up in this list.
//!
//! The answer is a JSON array of `{createTime, updateTime, serviceId, channelId ("@kem"),
//! channelName, channelStatus, useSmsFailover, isBlock, …}`; an object wrapping the array (under
//! `channels`, `content` or `data`) is accepted too. A channel sends only while `channelStatus`
//! is `ACTIVE` and `isBlock` is false (the other statuses: `DELETED`, `DELETING_PERMANETLY` —
//! SENS's spelling —, `PERMANENTLY_DELETED`, `BLOCKED`, `PENDING_DELETE`).

use kem_kit::Secret;
use kem_kit::external::{ProviderClient, ProviderConfig, ProviderConfigError, ProviderError};
use serde_json::Value;

use super::{LoginError, text_of};
use crate::infra::channels::kakao::{PROVIDER, gateway_headers, path_prefix};

/// A sender profile as SENS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderChannel {
    /// The channel's search id, as SENS spells it (`@kem`).
    pub channel_id: String,
    /// Its name.
    pub name: String,
    /// `channelStatus`.
    pub status: String,
    /// `isBlock`.
    pub blocked: bool,
}

impl SenderChannel {
    /// Whether messages can be sent from it.
    pub fn usable(&self) -> bool {
        self.status.eq_ignore_ascii_case("ACTIVE") && !self.blocked
    }

    /// Why it cannot send, for the owner (empty when it can).
    pub fn problem(&self) -> String {
        if self.blocked {
            format!("{} is blocked at the dealer (SENS)", self.channel_id)
        } else if !self.status.eq_ignore_ascii_case("ACTIVE") {
            format!("{} is {} at the dealer (SENS), not ACTIVE", self.channel_id, self.status)
        } else {
            String::new()
        }
    }
}

/// The SENS channel list client.
#[derive(Debug, Clone)]
pub struct KakaoSenders {
    client: ProviderClient,
    secret: Secret,
    access_key: String,
    service_id: String,
    path_prefix: String,
}

impl KakaoSenders {
    /// A client of `config`'s host for the service `service_id`, signing with `access_key` and
    /// `secret`.
    pub fn new(
        config: ProviderConfig,
        secret: Secret,
        access_key: String,
        service_id: String,
    ) -> Result<Self, ProviderConfigError> {
        let path_prefix = path_prefix(&config.base_url);
        Ok(KakaoSenders { client: ProviderClient::new(config)?, secret, access_key, service_id, path_prefix })
    }

    /// Every sender profile of the service.
    pub async fn list(&self) -> Result<Vec<SenderChannel>, LoginError> {
        let path = format!("alimtalk/v2/services/{}/channels", self.service_id);
        let headers = gateway_headers(&self.secret, &self.access_key, "GET", &format!("{}/{path}", self.path_prefix))
            .map_err(LoginError::Failed)?;
        let mut request = self.client.get(&path);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer: Value = request.send_json().await.map_err(|e| match e {
            // Our own credentials refused: a platform configuration problem, not the owner's.
            e @ ProviderError::Auth { .. } => LoginError::Failed(e),
            e => LoginError::of(PROVIDER, e),
        })?;
        channels_of(&answer).ok_or_else(|| {
            LoginError::Failed(ProviderError::UnexpectedResponse {
                provider: PROVIDER.into(),
                status: 200,
                detail: "the SENS channel list is not a list of channels".to_owned(),
            })
        })
    }

    /// The sender profile `channel_id` (normal form, `@` and lower-case), if the service has it.
    pub async fn find(&self, channel_id: &str) -> Result<Option<SenderChannel>, LoginError> {
        Ok(self.list().await?.into_iter().find(|c| same_channel(&c.channel_id, channel_id)))
    }
}

/// Whether SENS's `listed` id is the channel `wanted` (normal form): Kakao ids are
/// case-insensitive, and SENS may list one without its `@`.
pub fn same_channel(listed: &str, wanted: &str) -> bool {
    let listed = listed.trim();
    let listed = listed.strip_prefix('@').unwrap_or(listed);
    let wanted = wanted.strip_prefix('@').unwrap_or(wanted);
    !listed.is_empty() && listed.to_ascii_lowercase() == wanted
}

/// The channels of a list answer (an array, or an object wrapping one).
fn channels_of(answer: &Value) -> Option<Vec<SenderChannel>> {
    let list = match answer {
        Value::Array(list) => list,
        Value::Object(object) => ["channels", "content", "data", "items"]
            .iter()
            .find_map(|key| object.get(*key).and_then(Value::as_array))?,
        _ => return None,
    };
    Some(
        list.iter()
            .filter_map(|c| {
                let channel_id = c.get("channelId").and_then(text_of).filter(|id| !id.trim().is_empty())?;
                Some(SenderChannel {
                    channel_id,
                    name: c.get("channelName").and_then(text_of).unwrap_or_default(),
                    status: c.get("channelStatus").and_then(text_of).unwrap_or_default(),
                    blocked: match c.get("isBlock") {
                        Some(Value::Bool(b)) => *b,
                        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                        _ => false,
                    },
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_list_is_read_as_an_array_or_wrapped() {
        let item = serde_json::json!({"createTime": "2025-01-01T00:00:00.000", "serviceId": "ncp:kkobizmsg:kr:1:kem",
            "channelId": "@Kem", "channelName": "켐", "channelStatus": "ACTIVE", "useSmsFailover": false, "isBlock": false});
        let blocked = serde_json::json!({"channelId": "@x", "channelStatus": "ACTIVE", "isBlock": true});
        let deleted = serde_json::json!({"channelId": "@y", "channelStatus": "DELETING_PERMANETLY"});
        let list = channels_of(&serde_json::json!([item, blocked, deleted, {"channelName": "no id"}])).expect("list");
        assert_eq!(list.len(), 3);
        assert!(list[0].usable() && !list[1].usable() && !list[2].usable());
        assert!(list[1].problem().contains("blocked") && list[2].problem().contains("DELETING_PERMANETLY"));
        assert_eq!(channels_of(&serde_json::json!({"channels": [item]})).map(|l| l.len()), Some(1));
        assert_eq!(channels_of(&serde_json::json!({"error": "x"})), None);
        assert_eq!(channels_of(&serde_json::json!("x")), None);
        assert!(same_channel("@Kem", "@kem") && same_channel("kem", "@kem"));
        assert!(!same_channel("@kem2", "@kem") && !same_channel("", "@") && !same_channel("@", "@"));
    }
}
