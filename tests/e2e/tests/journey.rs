//! The whole participant loop on the whole platform, in a real browser, with the real provider
//! clients talking to contract servers of Instagram's Graph API and NAVER Cloud SENS:
//!
//! an owner publishes an auto-draw event to Instagram → the participant opens the link from the
//! caption Instagram received and enters through the hosted page → the event ends on its own at
//! the end of its period → the scheduler draws → the winner gets exactly one SMS with a claim
//! code → the winner claims on the claim page with phone and code → the public winners page shows
//! the claimed prize and an audit anyone can check (here: the snapshot hash of the one entry).
//!
//! Screenshots of every step go to `target/e2e-artifacts/journey-*.png`.

use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, Locator};
use kem::Role;
use kem::platform::ServiceConfigs;
use kem_kit::Secret;
use kem_testkit::contracts::instagram::{self, IgServer};
use kem_testkit::contracts::sens::{SensAccount, SensServer};
use kem_testkit::roles::TestPlatform;
use serde_json::json;

use crate::entry_page::{Chromedriver, assert_same_origin_only, enter, screenshot, text};
use crate::support::Rest;

/// The participant's phone, as typed and as SENS receives it.
const PHONE: &str = "010-3456-7890";
const PHONE_DIGITS: &str = "01034567890";
/// How long the event stays open: long enough to publish (local AI and images, in a debug build
/// on two shared cores) and to enter once in the browser.
const OPEN_FOR: time::Duration = time::Duration::seconds(25);

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).expect("format a time")
}

/// Distribution with the real Instagram client pointed at `ig`, at test speed.
fn distribution(ig: &IgServer, origin: &str) -> kem_distribution::DistributionConfig {
    let mut config = kem_distribution::DistributionConfig { public_base_url: origin.to_owned(), ..Default::default() };
    // The Meta app's Instagram Login: the owner connects their own account below.
    crate::channels::instagram_login(&mut config, ig, origin);
    config.instagram.settings.api_version = instagram::VERSION.into();
    config.instagram.settings.container_poll = Duration::from_millis(50);
    config.instagram.settings.processing_poll = Duration::from_millis(50);
    config.scan_interval = Duration::from_millis(100);
    config
}

/// Participation with the real SENS SMS client pointed at `sens`, notifying at test speed.
fn participation(sens: &SensServer) -> kem_participation::ParticipationConfig {
    let account = sens.account();
    let mut config = kem_participation::ParticipationConfig {
        sms: Some(kem_participation::infra::sms::sens::SensSettings {
            base_url: sens.base_url(),
            access_key: account.access_key.clone(),
            secret_key: Secret::new(account.secret_key.clone()),
            service_id: account.service_id.clone(),
            from: account.from.clone(),
            timeout: Duration::from_secs(3),
        }),
        require_sms: true,
        ..Default::default()
    };
    config.notifier.interval = Duration::from_millis(200);
    config.notifier.lookup_interval = Duration::from_millis(300);
    config.event_cache_ttl = Duration::from_millis(500);
    config
}

#[tokio::test]
async fn from_the_instagram_caption_to_a_claimed_prize_on_a_schedule() {
    let ig = IgServer::start().await;
    let sens = Arc::new(SensServer::start(SensAccount::default()).await);
    let port = kem_testkit::net::free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let event = kem_event::EventConfig {
        public_base_url: origin.clone(),
        scheduler_interval: Duration::from_millis(200),
        auto_draw_delay: Duration::from_secs(1),
        cache_ttl: Duration::from_millis(500),
        ..kem_event::EventConfig::default()
    };
    let configs = ServiceConfigs {
        user: Some(kem_user::UserConfig::for_tests()),
        event: Some(event),
        participation: Some(participation(&sens)),
        distribution: Some(distribution(&ig, &origin)),
        ..ServiceConfigs::default()
    };
    let platform =
        TestPlatform::start_backed_adjusted(&Role::all(), configs, |settings| settings.http_port = port).await;
    let edge = Rest::new(platform.http_addr());

    // The owner publishes an auto-draw event whose period ends in OPEN_FOR.
    let owner = crate::hostile::sign_up(&edge, "journey@example.com").await;
    // Instagram publishes through the owner's own professional account, connected through the edge.
    let shop = ig.add_account("journey_cafe");
    crate::channels::connect_instagram(&ig, &owner, &shop).await;
    let now = time::OffsetDateTime::now_utc();
    let end = now + OPEN_FOR;
    let id = crate::hostile::publish_new_event(
        &owner,
        json!({
            "title": "점심 커피 추첨",
            "objective": "EVENT_OBJECTIVE_NEW_CUSTOMERS",
            "period": {"startTime": rfc3339(now - time::Duration::minutes(1)), "endTime": rfc3339(end)},
            "prize": {"name": "아메리카노 1잔", "winnerCount": 1},
            "participationMethod": "PARTICIPATION_METHOD_DRAW",
            "autoDraw": true,
            "claimDays": 3,
        }),
    )
    .await;

    // Instagram received a caption ending with the event's Instagram link.
    let caption = {
        let ig = &ig;
        kem_testkit::eventually("Instagram receives the post", Duration::from_secs(30), || async move {
            !ig.state().captions.is_empty()
        })
        .await;
        ig.state().captions.last().cloned().expect("a caption")
    };
    let link = caption
        .split_whitespace()
        .find(|word| word.starts_with("http"))
        .unwrap_or_else(|| panic!("no link in the caption: {caption}"))
        .to_owned();
    assert_eq!(link, format!("{origin}/e/{id}?ch=instagram"), "the caption links the entry page: {caption}");
    // Before creating the container, Instagram fetched the event image the way Meta's crawler
    // does — no login — from the edge's signed public media link, and got the feed JPEG
    // (Instagram takes no other format).
    let fetches = ig.fetches();
    let fetch = fetches.last().unwrap_or_else(|| panic!("Instagram fetched no image: {fetches:?}"));
    assert!(fetch.url.starts_with(&format!("{origin}/media/")), "the public media link: {fetch:?}");
    assert_eq!(fetch.dimensions.map(|d| d.0), Some(1080), "Instagram's feed width: {fetch:?}");
    assert_eq!(
        (fetch.status, fetch.content_type.as_str(), fetch.jpeg),
        (Some(200), "image/jpeg", true),
        "the edge served a JPEG: {fetch:?}"
    );
    assert!(fetch.size > 1_000, "a real image, not an error page: {fetch:?}");
    // The public image route (the entry page's) keeps the stored PNG; a hostile `format` is a 400.
    let image_id = owner.get(&format!("/api/v1/events/{id}")).await.expect(200).str("/event/selectedImageId");
    let stored_path = format!("/api/v1/public/images/{image_id}");
    let (status, png) = edge.get_bytes(&stored_path).await;
    assert_eq!((status, png.get(..4)), (200, Some(&b"\x89PNG"[..])), "{stored_path}");
    for hostile in ["IMAGE_FORMAT_GIF", "%00", "1e9", &"J".repeat(5_000)] {
        let (status, _) = edge.get_bytes(&format!("{stored_path}?format={hostile}")).await;
        assert_eq!(status, 400, "format={}", hostile.chars().take(20).collect::<String>());
    }

    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;
    let steps =
        Steps { browser: browser.clone(), origin: origin.clone(), id: id.clone(), owner, edge, sens: sens.clone() };
    let journey = tokio::spawn(steps.run(link)).await;
    let closed = browser.close().await;
    driver.stop();
    if let Err(failure) = journey {
        std::panic::resume_unwind(failure.into_panic());
    }
    closed.expect("close the browser session");
    assert_eq!(sens.sent().len(), 1, "exactly one SMS in all: {:?}", sens.sent());
    platform.stop().await;
    drop((ig, sens));
}

struct Steps {
    browser: Client,
    origin: String,
    id: String,
    owner: Rest,
    edge: Rest,
    sens: Arc<SensServer>,
}

impl Steps {
    async fn run(self, link: String) {
        let Steps { browser, origin, id, owner, edge, sens } = self;
        // What the winner's phone received so far.
        let sms = || -> Vec<String> { sens.sent_to(PHONE_DIGITS).into_iter().map(|m| m.content).collect() };

        // The participant follows the caption's link and enters.
        browser.goto(&link).await.expect("open the link from the caption");
        screenshot(&browser, "journey-1-entry.png").await;
        enter(&browser, "김민수", PHONE).await;
        browser.wait().for_element(Locator::Id("receipt")).await.expect("the receipt page");
        assert_same_origin_only(&browser, &origin).await;
        screenshot(&browser, "journey-2-receipt.png").await;

        // The period ends and the event ends itself; a second later it is drawn.
        let public = format!("/api/v1/public/events/{id}");
        kem_testkit::eventually("the event ends and is drawn on its own", Duration::from_secs(90), || {
            let (edge, public) = (edge.clone(), public.clone());
            async move { edge.get(&public).await.str("/event/state") == "PUBLIC_EVENT_STATE_DRAWN" }
        })
        .await;
        let event = owner.get(&format!("/api/v1/events/{id}")).await.expect(200);
        assert_eq!(event.str("/event/status"), "EVENT_STATUS_ENDED");

        // Exactly one SMS reaches the winner, with the claim code and the claim page.
        kem_testkit::eventually("the winner's SMS is sent", Duration::from_secs(30), || {
            let sent = !sms().is_empty();
            async move { sent }
        })
        .await;
        let messages = sms();
        assert_eq!(messages.len(), 1, "one SMS per winner: {messages:?}");
        let message = &messages[0];
        assert!(message.contains(&format!("{origin}/e/{id}/claim")), "the claim page is linked: {message}");
        let code = claim_code(message);

        // The owner sees the notification and an unclaimed prize with its deadline. SENS records
        // the message before it answers, so the notifier may not have stored SENT yet: wait for it.
        let path = format!("/api/v1/events/{id}/winners");
        kem_testkit::eventually("the owner sees the SMS as sent", Duration::from_secs(10), || {
            let (owner, path) = (owner.clone(), path.clone());
            async move {
                let state = owner.get(&path).await.str("/winners/0/notifications/0/state");
                matches!(state.as_str(), "NOTIFICATION_STATE_SENT" | "NOTIFICATION_STATE_DELIVERED")
            }
        })
        .await;
        let winners = owner.get(&path).await.expect(200);
        assert_eq!(winners.str("/winners/0/claimState"), "CLAIM_STATE_UNCLAIMED", "{}", winners.body);
        assert!(!winners.str("/winners/0/claimDeadline").is_empty());

        // The winner claims on the claim page.
        browser.goto(&format!("{origin}/e/{id}/claim")).await.expect("open the claim page");
        browser.find(Locator::Id("phone")).await.expect("phone field").send_keys(PHONE).await.expect("type");
        browser.find(Locator::Id("claim-code")).await.expect("code field").send_keys(&code).await.expect("type");
        screenshot(&browser, "journey-3-claim.png").await;
        browser.find(Locator::Css("button[type=submit]")).await.expect("submit").click().await.expect("claim");
        // The click returns while the answer page may still be replacing the form (reading the
        // old page's body then fails as a stale element): read until the new page is there.
        let mut claimed = String::new();
        for _ in 0..50 {
            if let Ok(body) = browser.find(Locator::Css("body")).await
                && let Ok(shown) = body.text().await
            {
                claimed = shown;
                if claimed.contains("아메리카노 1잔") {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(claimed.contains("아메리카노 1잔"), "the prize is confirmed: {claimed}");
        screenshot(&browser, "journey-4-claimed.png").await;
        let winners = owner.get(&format!("/api/v1/events/{id}/winners")).await.expect(200);
        assert_eq!(winners.str("/winners/0/claimState"), "CLAIM_STATE_CLAIMED", "{}", winners.body);

        // The public winners page: the masked winner, claimed, and an audit anyone can check.
        browser.goto(&format!("{origin}/e/{id}/winners")).await.expect("open the winners page");
        let page = text(&browser).await;
        assert!(page.contains("김*수") && page.contains("010-****-7890"), "{page}");
        screenshot(&browser, "journey-5-winners.png").await;
        let public = edge.get(&format!("/api/v1/public/events/{id}/winners")).await.expect(200);
        assert_eq!(public.str("/winners/0/claimState"), "CLAIM_STATE_CLAIMED");
        let entries = owner.get(&format!("/api/v1/events/{id}/participants")).await.expect(200);
        let entry_id = entries.str("/entries/0/entryId");
        let snapshot = kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, entry_id.as_bytes()).as_ref());
        assert_eq!(public.str("/audit/entrySnapshotSha256"), snapshot, "the snapshot is the one entry");
        assert!(page.contains(&snapshot), "the page shows the snapshot hash");
    }
}

/// The claim code in a winner's SMS: the first `XXXX-XXXX` of the receipt alphabet.
fn claim_code(message: &str) -> String {
    const ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let chars: Vec<char> = message.chars().collect();
    chars
        .windows(9)
        .find(|w| w[4] == '-' && w.iter().enumerate().all(|(i, c)| i == 4 || ALPHABET.contains(*c)))
        .map(|w| w.iter().collect())
        .unwrap_or_else(|| panic!("no claim code in the SMS: {message}"))
}

#[test]
fn claim_codes_are_found_in_the_message() {
    assert_eq!(claim_code("[카페] 당첨! 코드 AB23-CD45, 12/10까지"), "AB23-CD45");
}
