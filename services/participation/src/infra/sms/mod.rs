//! SMS to participants: winner notices and one-time codes, through NAVER Cloud SENS
//! ([`sens`], PROVIDERS.md §8) or, when no SENS account is configured, the labelled local
//! stand-in of `kem up` ([`local`]), which sends nothing and logs what it would have sent.
//!
//! SENS counts and limits texts in **EUC-KR bytes** (SMS ≤ 90, LMS ≤ 2000, subject ≤ 40) and
//! fails a message holding a character EUC-KR cannot carry (an emoji), so texts go through
//! [`carrier_text`] first and [`SmsKind::for_text`] picks SMS or LMS. "EUC-KR" is the WHATWG
//! encoding of that name (KS X 1001 with the Unified Hangul Code extension, as `encoding_rs`
//! implements it), so every modern Hangul syllable counts as two bytes.
//!
//! A send cannot be made idempotent at SENS (no idempotency key): the callers decide what a
//! failure means with [`SmsError`] — [`Refused`](SmsError::Refused) sent nothing and may be
//! retried, [`Unknown`](SmsError::Unknown) may have been sent and must be searched for with
//! [`SmsSender::find`] before any resend.

pub mod local;
pub mod sens;

use std::fmt;
use std::sync::Arc;

/// SMS text limit in EUC-KR bytes; longer texts go as LMS.
pub const SMS_MAX_BYTES: usize = 90;
/// LMS text limit in EUC-KR bytes (SENS truncates beyond it).
pub const LMS_MAX_BYTES: usize = 2000;
/// LMS subject limit in EUC-KR bytes.
pub const SUBJECT_MAX_BYTES: usize = 40;

/// The length of `text` in EUC-KR bytes (a character EUC-KR lacks counts as the two bytes of a
/// replacement; [`carrier_text`] leaves none).
pub fn euc_kr_len(text: &str) -> usize {
    text.chars().map(|c| euc_kr_char_len(c).unwrap_or(2)).sum()
}

fn euc_kr_char_len(c: char) -> Option<usize> {
    let mut buf = [0u8; 4];
    let (bytes, _, errors) = encoding_rs::EUC_KR.encode(c.encode_utf8(&mut buf));
    (!errors).then_some(bytes.len())
}

/// `text` with every character EUC-KR cannot carry left out (our texts are generated: a store
/// or event name may hold an emoji, which would make SENS fail the whole message).
pub fn carrier_text(text: &str) -> String {
    let kept: String = text.chars().filter(|c| euc_kr_char_len(*c).is_some()).collect();
    // An emoji between two spaces leaves a double space; tidy it.
    kept.split('\n')
        .map(|line| line.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The start of `text` that fits in `limit` EUC-KR bytes.
pub fn euc_kr_prefix(text: &str, limit: usize) -> String {
    let mut used = 0;
    text.chars()
        .take_while(|c| {
            used += euc_kr_char_len(*c).unwrap_or(2);
            used <= limit
        })
        .collect()
}

/// SMS (short) or LMS (long) — SENS's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKind {
    /// Up to 90 EUC-KR bytes.
    Sms,
    /// Up to 2000 EUC-KR bytes, with a subject.
    Lms,
}

impl SmsKind {
    /// The kind that carries `text` whole.
    pub fn for_text(text: &str) -> SmsKind {
        if euc_kr_len(text) <= SMS_MAX_BYTES { SmsKind::Sms } else { SmsKind::Lms }
    }

    /// SENS's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsKind::Sms => "SMS",
            SmsKind::Lms => "LMS",
        }
    }
}

/// One message to one phone.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// The recipient in E.164 (`+821012345678`).
    pub to_e164: String,
    /// The text (already [`carrier_text`]).
    pub text: String,
}

impl fmt::Debug for SmsMessage {
    /// Personal data and secrets (the text holds codes) stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsMessage")
            .field("to", &crate::domain::phone::mask_e164(&self.to_e164))
            .field("bytes", &euc_kr_len(&self.text))
            .finish()
    }
}

/// Why a send or a lookup did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// Nothing was sent (the provider refused for now: 5xx, 429, its breaker open): try again
    /// later.
    #[error("the SMS provider refused for now: {detail}")]
    Refused {
        /// What the provider said.
        detail: String,
    },
    /// Nothing was sent and trying again will not help (credentials, a refused number or text).
    #[error("the SMS provider refused the message: {detail}")]
    Rejected {
        /// What the provider said.
        detail: String,
    },
    /// The answer never came (a timeout, a broken connection): the message may have been sent.
    #[error("the SMS provider's answer did not come: {detail}")]
    Unknown {
        /// What happened.
        detail: String,
    },
}

/// What the provider knows of a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Not on the handset yet (READY, PROCESSING).
    Pending,
    /// The provider reports it delivered.
    Delivered,
    /// The provider gave up on it; why.
    Failed(String),
}

/// Who carries the messages, as `WinnerNotification.provider` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsProviderInfo {
    /// `kem.common.v1.ProviderKind` number: 1 external, 2 local.
    pub kind: i32,
    /// Stable provider name (`naver-sens`, `local`).
    pub name: String,
}

/// The SMS port: SENS or the local stand-in.
#[tonic::async_trait]
pub trait SmsSender: Send + Sync + fmt::Debug {
    /// Who this is.
    fn info(&self) -> SmsProviderInfo;

    /// Sends `message`; the provider's request id when accepted.
    async fn send(&self, message: &SmsMessage) -> Result<String, SmsError>;

    /// The request id of `message` if the provider accepted it within the last day (to settle a
    /// send whose answer never came, before sending again); `None` when it did not.
    async fn find(&self, message: &SmsMessage) -> Result<Option<String>, SmsError>;

    /// Where the messages of the send `request_id` stand.
    async fn delivery(&self, request_id: &str) -> Result<Delivery, SmsError>;
}

/// The SMS sender a service runs with.
pub type Sms = Arc<dyn SmsSender>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_euc_kr_bytes_and_pick_the_kind() {
        assert_eq!(euc_kr_len("abc"), 3);
        assert_eq!(euc_kr_len("당첨"), 4);
        assert_eq!(SmsKind::for_text(&"가".repeat(45)), SmsKind::Sms);
        assert_eq!(SmsKind::for_text(&"가".repeat(46)), SmsKind::Lms);
        assert_eq!(euc_kr_prefix("가나다", 5), "가나");
    }

    #[test]
    fn characters_euc_kr_lacks_are_left_out() {
        assert_eq!(carrier_text("[카페 🎉 온기] 당첨!"), "[카페 온기] 당첨!");
        assert_eq!(carrier_text("줄1\n줄2"), "줄1\n줄2");
    }
}
