//! The winner notifier: works through the notices draws queued (PENDING → SENT → DELIVERED or
//! FAILED), one tick at a time ([`ParticipationCore::run_notifications`]; the loop is
//! `infra::notifier`).
//!
//! Several replicas may run it on one database: each notice is claimed with a lease (one
//! conditional UPDATE), and every write afterwards is conditional on holding it. A send is never
//! repeated blindly:
//! - before a send, the attempt is recorded in its own commit (`send_started_at`);
//! - the provider's request id is the first thing recorded after it accepted (SENT);
//! - a refusal (5xx, 429, breaker) sent nothing: retried with exponential backoff up to
//!   [`NotifierSettings::max_attempts`], then FAILED with a reason the owner understands;
//! - an unknown outcome (timeout, a crash after the attempt was recorded) is searched for at the
//!   provider (PROVIDERS.md §8: time window + recipient) before anything is sent again: found →
//!   SENT with that request id; not found → a new attempt.

use std::time::Duration;

use super::{ParticipationCore, Result};
use crate::infra::pii::PiiField;
use crate::infra::repository::{NoticeState, NoticeUpdate, StoredNotice};
use crate::infra::sms::{Delivery, SmsError, SmsMessage};

/// Most notices one tick works on.
const BATCH: u32 = 50;
/// How long a claim on a notice lasts: well beyond one send (SENS's timeout) and its search.
const LEASE_MS: i64 = 120_000;
/// Lookups of a SENT notice before the notifier stops looking (about a day at the default
/// interval): the message stays SENT.
const MAX_LOOKUPS: u32 = 1_440;

/// How the notifier runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifierSettings {
    /// How often a replica looks for due notices.
    pub interval: Duration,
    /// The wait after the first refused send; doubled after each further one.
    pub retry_base: Duration,
    /// The wait between delivery lookups of a SENT message (and before searching for a send
    /// whose outcome is unknown).
    pub lookup_interval: Duration,
    /// Sends tried before a notice is FAILED.
    pub max_attempts: u32,
}

impl Default for NotifierSettings {
    /// Every 5 s; retries after 30 s, 1 min, 2 min, 4 min (5 sends); lookups every minute.
    fn default() -> Self {
        NotifierSettings {
            interval: Duration::from_secs(5),
            retry_base: Duration::from_secs(30),
            lookup_interval: Duration::from_secs(60),
            max_attempts: 5,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyReport {
    /// Sends accepted by the provider (including searched-and-found ones).
    pub sent: usize,
    /// Notices delivered.
    pub delivered: usize,
    /// Notices given up.
    pub failed: usize,
    /// Notices left for a later tick (retry, lookup, unknown outcome).
    pub later: usize,
}

impl ParticipationCore {
    /// One notifier tick as replica `worker`: every due notice it can claim is sent, searched
    /// for, or looked up. Per-notice provider failures are recorded on the notice; only a failing
    /// database fails the tick.
    pub async fn run_notifications(&self, worker: &str) -> Result<NotifyReport> {
        let mut report = NotifyReport::default();
        let now = self.clock.now_ms();
        for id in self.repo.due_notices(now, BATCH).await? {
            let now = self.clock.now_ms();
            let Some(notice) = self.repo.claim_notice(&id, worker, now, now + LEASE_MS).await? else { continue };
            let update = match notice.state {
                NoticeState::Pending => self.deliver(&notice, worker).await?,
                NoticeState::Sent => self.look_up(&notice).await,
                NoticeState::Delivered | NoticeState::Failed => continue,
            };
            match &update {
                NoticeUpdate::Accepted { .. } => report.sent += 1,
                NoticeUpdate::Delivered => report.delivered += 1,
                NoticeUpdate::Failed { error } => {
                    tracing::warn!(event_id = %notice.event_id, notice = %notice.id, %error, "winner notice failed");
                    report.failed += 1;
                }
                _ => report.later += 1,
            }
            if !self.repo.update_notice(&id, worker, self.clock.now_ms(), update).await? {
                tracing::warn!(notice = %id, %worker, "winner notice updated after this replica's lease expired");
            }
        }
        Ok(report)
    }

    /// The message of `notice`: the winner's phone and the sealed text. `Err(reason)` when there
    /// is nothing to send any more.
    async fn message_of(&self, notice: &StoredNotice) -> Result<Result<SmsMessage, String>> {
        let Some(sealed) = notice.message_sealed.as_deref() else {
            return Ok(Err("보낼 메시지가 없습니다. The message is gone.".to_owned()));
        };
        let text = self.keys.cipher.open(&notice.id, PiiField::Message, sealed)?;
        let phone = match self.repo.entry(&notice.event_id, &notice.entry_id).await? {
            Some(stored) => self.decrypt(stored)?.phone_e164,
            None => None,
        };
        Ok(match phone {
            Some(to_e164) => Ok(SmsMessage { to_e164, text }),
            None => Err("개인정보가 파기되어 보내지 않았습니다. Not sent: the winner's phone was erased.".to_owned()),
        })
    }

    async fn deliver(&self, notice: &StoredNotice, worker: &str) -> Result<NoticeUpdate> {
        let now = self.clock.now_ms();
        let message = match self.message_of(notice).await? {
            Ok(message) => message,
            Err(error) => return Ok(NoticeUpdate::Failed { error }),
        };
        if notice.send_started_at_ms.is_some() {
            // The last send's outcome is unknown: it may be on its way. Search before resending.
            match self.sms.find(&message).await {
                Ok(Some(request_id)) => {
                    tracing::info!(notice = %notice.id, "a send whose answer was lost was found at the provider");
                    return Ok(NoticeUpdate::Accepted {
                        request_id,
                        due_at_ms: now + ms(self.notifier.lookup_interval),
                    });
                }
                Ok(None) => {}
                Err(error) => {
                    return Ok(NoticeUpdate::Unknown {
                        due_at_ms: now + ms(self.notifier.lookup_interval),
                        error: format!(
                            "문자 발송 여부를 확인하는 중입니다. Checking whether the last send went out: {error}"
                        ),
                    });
                }
            }
        }
        if notice.attempts >= self.notifier.max_attempts {
            return Ok(NoticeUpdate::Failed { error: gave_up(notice.attempts, &notice.last_error) });
        }
        if !self.repo.update_notice(&notice.id, worker, now, NoticeUpdate::SendStarted).await? {
            return Ok(NoticeUpdate::LookAgain { due_at_ms: now });
        }
        let attempts = notice.attempts + 1;
        let now = self.clock.now_ms();
        Ok(match self.sms.send(&message).await {
            Ok(request_id) => NoticeUpdate::Accepted { request_id, due_at_ms: now + ms(self.notifier.lookup_interval) },
            Err(SmsError::Refused { detail }) if attempts < self.notifier.max_attempts => {
                let wait = self.notifier.retry_base.saturating_mul(1 << (attempts - 1).min(16));
                NoticeUpdate::RetryAt {
                    due_at_ms: now + ms(wait),
                    error: format!(
                        "문자 발송 서비스가 잠시 받지 않아 다시 보냅니다. The SMS provider refused for now: {detail}"
                    ),
                }
            }
            Err(SmsError::Refused { detail }) => NoticeUpdate::Failed { error: gave_up(attempts, &detail) },
            Err(SmsError::Rejected { detail }) => NoticeUpdate::Failed {
                error: format!("문자 발송이 거부되었습니다. The SMS provider refused the message: {detail}"),
            },
            Err(SmsError::Unknown { detail }) => NoticeUpdate::Unknown {
                due_at_ms: now + ms(self.notifier.lookup_interval),
                error: format!(
                    "문자 발송 결과를 알 수 없어 확인 후 필요하면 다시 보냅니다. The send's outcome is unknown: {detail}"
                ),
            },
        })
    }

    async fn look_up(&self, notice: &StoredNotice) -> NoticeUpdate {
        let now = self.clock.now_ms();
        let later = NoticeUpdate::LookAgain { due_at_ms: now + ms(self.notifier.lookup_interval) };
        let Some(request_id) = notice.request_id.as_deref() else { return later };
        if notice.lookups >= MAX_LOOKUPS {
            // Stays SENT: the provider never said more.
            return NoticeUpdate::LookAgain { due_at_ms: i64::MAX };
        }
        match self.sms.delivery(request_id).await {
            Ok(Delivery::Delivered) => NoticeUpdate::Delivered,
            Ok(Delivery::Failed(reason)) => NoticeUpdate::Failed {
                error: format!("휴대전화로 전달되지 못했습니다. Not delivered to the handset: {reason}"),
            },
            Ok(Delivery::Pending) => later,
            Err(error) => {
                tracing::debug!(notice = %notice.id, %error, "delivery lookup failed; looking again later");
                later
            }
        }
    }
}

fn gave_up(attempts: u32, last: &str) -> String {
    format!(
        "문자 발송 서비스가 {attempts}번 모두 받지 않아 중단했습니다. Gave up after {attempts} refused sends: {last}"
    )
}
