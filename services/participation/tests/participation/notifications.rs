//! Winner notices by SMS through the SENS contract server: exactly one message per winner with a
//! claim code that works, refused sends retried then delivered (or given up with a reason),
//! a hung SENS never causing a second message, and two notifiers never sending twice.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::Secret;
use kem_participation::ParticipationApi;
use kem_participation::ParticipationConfig;
use kem_participation::app::{NotifierSettings, NotifyReport};
use kem_participation::infra::sms::sens::SensSettings;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use kem_testkit::contracts::sens::{SensAccount, SensMode, SensServer, SentSms};
use kem_testkit::eventually;
use tonic::Request;

use crate::support::*;

/// The test settings on `server`: the notifier ticks only when a test says so (its background
/// loop waits an hour), retries and lookups are due at once, three sends at most, 500 ms per
/// SENS call.
pub fn sens_config(server: &SensServer) -> ParticipationConfig {
    let account = server.account();
    ParticipationConfig {
        sms: Some(SensSettings {
            base_url: server.base_url(),
            access_key: account.access_key.clone(),
            secret_key: Secret::new(account.secret_key.clone()),
            service_id: account.service_id.clone(),
            from: account.from.clone(),
            timeout: Duration::from_millis(500),
        }),
        notifier: NotifierSettings {
            interval: Duration::from_secs(3_600),
            retry_base: Duration::ZERO,
            lookup_interval: Duration::ZERO,
            max_attempts: 3,
        },
        ..test_config()
    }
}

/// One notifier tick of `api` as `worker`.
pub async fn tick(api: &ParticipationApi, worker: &str) -> NotifyReport {
    api.core().run_notifications(worker).await.expect("notifier tick")
}

/// An ENDED event of 3 winners with `entrants` entries (phones `phone(0..)`), drawn.
pub async fn drawn_event(h: &Harness, entrants: usize) -> (String, pb::DrawWinnersResponse) {
    let event_id = h.add(event(EventStatus::Published));
    h.enter_many(&event_id, entrants).await;
    h.events.set_status(&event_id, EventStatus::Ended);
    h.close(&event_id).await.expect("close");
    let drawn = h.draw(OWNER, draw_request(&event_id, 0)).await.expect("draw");
    (event_id, drawn)
}

/// `+821012345678` → `01012345678`.
pub fn national(e164: &str) -> String {
    format!("0{}", e164.trim_start_matches("+82"))
}

/// The claim code in a winner notice.
pub fn claim_code(sms: &SentSms) -> String {
    let at = sms.content.find("당첨 코드: ").expect("the notice carries the claim code") + "당첨 코드: ".len();
    sms.content[at..at + 9].to_owned()
}

/// ClaimPrize as the public calls it.
pub async fn claim(
    api: &ParticipationApi,
    event_id: &str,
    phone: &str,
    code: &str,
) -> Result<pb::ClaimPrizeResponse, tonic::Status> {
    let request =
        pb::ClaimPrizeRequest { event_id: event_id.to_owned(), phone: phone.to_owned(), claim_code: code.to_owned() };
    Ok(api.claim_prize(Request::new(request)).await?.into_inner())
}

fn states(winners: &pb::ListWinnersResponse) -> Vec<i32> {
    winners.winners.iter().flat_map(|w| w.notifications.iter().map(|n| n.state)).collect()
}

const SENT: i32 = pb::NotificationState::Sent as i32;
const DELIVERED: i32 = pb::NotificationState::Delivered as i32;
const PENDING: i32 = pb::NotificationState::Pending as i32;
const FAILED: i32 = pb::NotificationState::Failed as i32;

#[tokio::test]
async fn every_winner_gets_exactly_one_sms_with_a_code_that_claims_the_prize() {
    let server = SensServer::start(SensAccount::default()).await;
    let h = Harness::with_config(sens_config(&server)).await;
    let (event_id, drawn) = drawn_event(&h, 5).await;
    let listed = h.winners(OWNER, &event_id).await.expect("winners");
    assert_eq!(states(&listed), vec![PENDING; 3], "queued with the draw");
    let deadline = drawn.audit.as_ref().and_then(|a| a.draw_time).map(|t| t.seconds + 7 * 86_400);
    assert!(listed.winners.iter().all(|w| w.claim_deadline.map(|d| d.seconds) == deadline), "draw + 7 days");
    assert!(listed.winners.iter().all(|w| w.claim_state == pb::ClaimState::Unclaimed as i32));

    assert_eq!(tick(&h.api, "w").await.sent, 3);
    let sent = server.sent();
    assert_eq!(sent.len(), 3, "one SMS per winner");
    for winner in &drawn.winners {
        let to_winner = server.sent_to(&national(&winner.phone));
        assert_eq!(to_winner.len(), 1, "exactly one message to each winner");
        let sms = &to_winner[0];
        assert_eq!((sms.content_type.as_str(), sms.truncated, sms.encodable), ("COMM", false, true));
        assert!(sms.content.contains("카페 온기") && sms.content.contains("점심 이벤트"), "{}", sms.content);
        assert!(sms.content.contains(&format!("https://kem.example/e/{event_id}/claim")), "{}", sms.content);
        assert_eq!(sms.kind, "LMS", "the notice is longer than 90 EUC-KR bytes");
    }
    assert_eq!(states(&h.winners(OWNER, &event_id).await.expect("winners")), vec![SENT; 3]);
    // READY, PROCESSING, then COMPLETED success: one lookup per tick.
    for _ in 0..3 {
        tick(&h.api, "w").await;
    }
    let listed = h.winners(OWNER, &event_id).await.expect("winners");
    assert_eq!(states(&listed), vec![DELIVERED; 3]);
    let provider = listed.winners[0].notifications[0].provider.clone().unwrap_or_default();
    assert_eq!((provider.kind, provider.name.as_str()), (1, "naver-sens"));
    assert_eq!(server.sent().len(), 3, "lookups send nothing");

    // The code from the SMS claims the prize; claiming again answers the first claim.
    let winner = &drawn.winners[0];
    let code = claim_code(&server.sent_to(&national(&winner.phone))[0]);
    let first = claim(&h.api, &event_id, &winner.phone, &code.to_lowercase()).await.expect("claim");
    assert_eq!((first.rank, first.prize.as_ref().map(|p| p.name.as_str())), (1, Some("아메리카노 1잔")));
    let again = claim(&h.api, &event_id, &winner.phone, &code).await.expect("claim again");
    assert_eq!(again.claim_time, first.claim_time);
    let public = h.public_winners(&event_id).await.expect("public winners");
    assert_eq!(public.winners[0].claim_state, pb::ClaimState::Claimed as i32);
    assert_eq!(public.draws.len(), 1);
    // Another winner's code does not work with this phone.
    let other = claim_code(&server.sent_to(&national(&drawn.winners[1].phone))[0]);
    let refused = claim(&h.api, &event_id, &winner.phone, &other).await.expect_err("not this phone's code");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    assert_eq!(reason(&refused), "CLAIM_NOT_FOUND");
    h.cleanup().await;
}

#[tokio::test]
async fn refused_sends_are_retried_then_delivered_and_given_up_with_a_reason() {
    let server = SensServer::start(SensAccount::default()).await;
    let h = Harness::with_config(sens_config(&server)).await;
    server.set_mode(SensMode::Down);
    let (event_id, _) = drawn_event(&h, 3).await;
    assert_eq!(tick(&h.api, "w").await.later, 3);
    let listed = h.winners(OWNER, &event_id).await.expect("winners");
    let notice = &listed.winners[0].notifications[0];
    assert_eq!((notice.state, notice.attempts), (PENDING, 1));
    assert!(notice.last_error.contains("HTTP 500"), "{}", notice.last_error);
    server.set_mode(SensMode::Quota);
    tick(&h.api, "w").await;
    assert_eq!(h.winners(OWNER, &event_id).await.expect("winners").winners[0].notifications[0].attempts, 2);
    server.set_mode(SensMode::Normal);
    assert_eq!(tick(&h.api, "w").await.sent, 3);
    assert_eq!(server.sent().len(), 3, "refused sends sent nothing; the accepted one went once");
    // The refusals opened SENS's circuit breaker for a moment: lookups resume once it lets calls
    // through again.
    eventually("the notices are delivered", Duration::from_secs(30), || async {
        tick(&h.api, "w").await;
        states(&h.winners(OWNER, &event_id).await.expect("winners")) == vec![DELIVERED; 3]
    })
    .await;
    assert_eq!(server.sent().len(), 3);

    // A SENS that keeps refusing: three sends, then FAILED with a reason.
    let (failing, _) = drawn_event(&h, 3).await;
    server.set_mode(SensMode::Down);
    for _ in 0..4 {
        tick(&h.api, "w").await;
    }
    let listed = h.winners(OWNER, &failing).await.expect("winners");
    assert_eq!(states(&listed), vec![FAILED; 3]);
    let notice = &listed.winners[0].notifications[0];
    assert_eq!(notice.attempts, 3);
    assert!(notice.last_error.contains("Gave up after 3"), "{}", notice.last_error);
    h.cleanup().await;
}

#[tokio::test]
async fn a_hung_sens_never_causes_a_second_message() {
    let server = SensServer::start(SensAccount::default()).await;
    let h = Harness::with_config(sens_config(&server)).await;
    let (event_id, drawn) = drawn_event(&h, 1).await;
    // SENS accepts the message and the answer never comes: the outcome is unknown here.
    server.set_mode(SensMode::Hang);
    let report = tick(&h.api, "w").await;
    assert_eq!((report.sent, report.later), (0, 1));
    assert_eq!(server.sent().len(), 1);
    let listed = h.winners(OWNER, &event_id).await.expect("winners");
    assert_eq!(states(&listed), vec![PENDING]);
    // SENS answers again: the notifier searches before sending, and finds its message.
    server.set_mode(SensMode::Normal);
    assert_eq!(tick(&h.api, "w").await.sent, 1);
    for _ in 0..3 {
        tick(&h.api, "w").await;
    }
    assert_eq!(states(&h.winners(OWNER, &event_id).await.expect("winners")), vec![DELIVERED]);
    assert_eq!(server.sent_to(&national(&drawn.winners[0].phone)).len(), 1, "never sent twice");
    assert_eq!(server.send_calls(), 1, "not even tried twice");
    h.cleanup().await;
}

#[tokio::test]
async fn two_notifiers_never_send_twice() {
    let server = SensServer::start(SensAccount::default()).await;
    let config = sens_config(&server);
    let h = Harness::with_config(config.clone()).await;
    let other = Arc::new(h.replica(config).await);
    let event_id = h.add(GetEvent::with_winners(20));
    h.enter_many(&event_id, 25).await;
    h.events.set_status(&event_id, EventStatus::Ended);
    h.close(&event_id).await.expect("close");
    h.draw(OWNER, draw_request(&event_id, 0)).await.expect("draw");
    for _ in 0..3 {
        let (a, b) = tokio::join!(tick(&h.api, "replica-a"), tick(&other, "replica-b"));
        assert!(a.sent + b.sent <= 20);
    }
    let sent = server.sent();
    assert_eq!(sent.len(), 20, "every winner told");
    let mut recipients: Vec<&str> = sent.iter().map(|s| s.to.as_str()).collect();
    recipients.sort_unstable();
    recipients.dedup();
    assert_eq!(recipients.len(), 20, "nobody told twice");
    h.cleanup().await;
}

#[tokio::test]
async fn the_local_stand_in_sends_nothing_and_says_so() {
    let h = Harness::with_config(ParticipationConfig {
        notifier: NotifierSettings { interval: Duration::from_secs(3_600), ..NotifierSettings::default() },
        ..test_config()
    })
    .await;
    let (event_id, _) = drawn_event(&h, 2).await;
    assert_eq!(tick(&h.api, "w").await.sent, 2);
    let listed = h.winners(OWNER, &event_id).await.expect("winners");
    let provider = listed.winners[0].notifications[0].provider.clone().unwrap_or_default();
    assert_eq!((provider.kind, provider.name.as_str()), (2, "local"), "labelled LOCAL");
    h.cleanup().await;
}

/// Test events with another winner count.
pub struct GetEvent;

impl GetEvent {
    /// A published event of [`OWNER`] with `n` winners.
    pub fn with_winners(n: i32) -> kem_proto::kem::event::v1::GetEventForParticipationResponse {
        let mut e = event(EventStatus::Published);
        if let Some(prize) = e.prize.as_mut() {
            prize.winner_count = n;
        }
        e
    }
}
