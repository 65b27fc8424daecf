//! The labelled local stand-in of SENS that `kem up` uses without a SENS account: it sends
//! nothing, logs (at info) the masked phone and the text — so a demo user can read a claim code
//! or a one-time code from the log — and reports every message delivered.

use super::{Delivery, SmsError, SmsMessage, SmsProviderInfo, SmsSender, carrier_text};
use crate::domain::phone::mask_e164;

/// `ProviderKind` LOCAL.
const LOCAL_KIND: i32 = 2;

/// The stand-in.
#[derive(Debug, Default, Clone)]
pub struct LocalSms;

#[tonic::async_trait]
impl SmsSender for LocalSms {
    fn info(&self) -> SmsProviderInfo {
        SmsProviderInfo { kind: LOCAL_KIND, name: "local".to_owned() }
    }

    async fn send(&self, message: &SmsMessage) -> Result<String, SmsError> {
        tracing::info!(
            to = %mask_e164(&message.to_e164),
            text = %carrier_text(&message.text),
            "LOCAL SMS stand-in (no message was sent)"
        );
        Ok(format!("local-{}", uuid::Uuid::new_v4()))
    }

    async fn find(&self, _message: &SmsMessage) -> Result<Option<String>, SmsError> {
        // Its sends never time out, so nothing is ever lost in flight.
        Ok(None)
    }

    async fn delivery(&self, _request_id: &str) -> Result<Delivery, SmsError> {
        Ok(Delivery::Delivered)
    }
}
