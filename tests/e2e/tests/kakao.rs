//! Per-owner Kakao Talk Channel (#21) through the whole platform — REST edge → gateway → mesh →
//! event, participation and distribution → PostgreSQL/Redis — with distribution on the real SENS
//! Biz Message client against the contract server (kem-testkit's `sens_biz`):
//!
//! - participants enter an owner's first event through the hosted entry page, some agreeing to the
//!   store's marketing messages; the owner connects their own channel through the edge (at once,
//!   no browser); their next event published to Kakao goes out as one 친구톡 request from that
//!   channel to exactly the people who agreed, with a button to the event's Kakao entry link; a
//!   person who agreed but is not a friend of the channel is asked for and not reached.
//! - the connection route under attack (a channel another owner holds, an unregistered one,
//!   malformed ids, no token, twenty identical connects at once) while well-behaved clients keep
//!   being served.

use std::time::Duration;

use kem_distribution::DistributionConfig;
use kem_kit::Secret;
use kem_testkit::contracts::sens_biz::{self, SensBizServer};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::channels::{
    BOUND, CONNECTIONS, Platform, START, assert_not_connected, connection, delivery, publish, ready_event, reason,
    settled, state,
};
use crate::hostile::{Victims, assert_field, sign_up};
use crate::support::{Reply, Rest};

/// The owner's Kakao Talk Channel, a registered sender profile of the platform's SENS service.
const SHOP: &str = "@e2eshop";
const KAKAO: &str = "CHANNEL_KAKAO_CHANNEL";
/// The channel the first events are published to: a partner channel, which needs no connection.
const PARTNER: &str = "CHANNEL_GENIE_TV";
/// `google.rpc.Code` numbers in the edge's error bodies.
const INVALID_ARGUMENT: i64 = 3;
const FAILED_PRECONDITION: i64 = 9;

/// Entrants of the first event, as typed on the page and as SENS receives them.
const AGREES: (&str, &str) = ("010-4000-0001", "01040000001");
const DECLINES: (&str, &str) = ("010-4000-0002", "01040000002");
const AGREES_NOT_FRIEND: (&str, &str) = ("010-4000-0003", "01040000003");
/// Agrees to another owner's marketing only.
const OTHER_OWNERS: (&str, &str) = ("010-4000-0009", "01040000009");

/// Puts `config`'s Kakao on the real SENS Biz Message client against `base_url`, with the
/// platform's SENS credentials.
fn kakao_on(config: &mut DistributionConfig, base_url: &str) {
    let mut provider = kem_distribution::infra::channels::kakao::provider_config(base_url.to_owned());
    provider.timeout = Duration::from_secs(2);
    provider.deadline = Duration::from_secs(5);
    config.kakao.mode =
        kem_kit::external::ProviderMode::Real { config: provider, credentials: Secret::new(sens_biz::SECRET) };
    config.kakao.settings.access_key = sens_biz::ACCESS_KEY.into();
    config.kakao.settings.service_id = sens_biz::SERVICE_ID.into();
}

/// The contract server with [`SHOP`] registered ACTIVE, and the platform using it.
async fn start() -> (SensBizServer, Platform) {
    let sens = SensBizServer::start().await;
    sens.register(SHOP, "이투이 상점");
    let base = sens.base_url();
    let p = Platform::start_adjusted(move |config| kakao_on(config, &base)).await;
    (sens, p)
}

async fn connect_kakao(owner: &Rest, channel_id: &str) -> Reply {
    owner.post(START, json!({"channel": KAKAO, "kakaoChannelId": channel_id})).await
}

/// The value of the hidden input `name` in `page`.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in the page: {page:.2000}")) + marker.len();
    page[at..].split('"').next().unwrap_or_default().to_owned()
}

/// Enters `event` through the hosted entry page as the participant's browser does: the page from
/// a `?ch=genie_tv` link (its hidden request id and terms version), then the form posted from the
/// page's own origin, the marketing box ticked or not. Asserts the receipt page.
async fn enter_on_page(origin: &str, event: &str, phone: &str, marketing: bool) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("an HTTP client");
    let page_url = format!("{origin}/e/{event}");
    let page = http.get(format!("{page_url}?ch=genie_tv")).send().await.expect("the entry page");
    assert_eq!(page.status(), 200, "the entry page of {event}");
    let page = page.text().await.expect("the page's HTML");
    let (rid, terms) = (hidden(&page, "rid"), hidden(&page, "terms_version"));
    let mut form = vec![
        ("name", "홍길동"),
        ("phone", phone),
        ("privacy", "on"),
        ("age14", "on"),
        ("email", ""),
        ("terms_version", terms.as_str()),
        ("ch", "genie_tv"),
        ("rid", rid.as_str()),
        ("action", "enter"),
    ];
    if marketing {
        form.push(("marketing", "on"));
    }
    // reqwest here has no form encoder: the URL's query serializer is the same encoding.
    let mut encoder = reqwest::Url::parse("http://form.invalid/").expect("a URL");
    encoder.query_pairs_mut().extend_pairs(&form);
    let body = encoder.query().unwrap_or_default().to_owned();
    let response = http
        .post(&page_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin)
        .body(body)
        .send()
        .await
        .expect("the entry form's answer");
    let status = response.status().as_u16();
    let html = response.text().await.unwrap_or_default();
    assert!(status == 200 && html.contains("id=\"receipt\""), "{phone} entered {event}: {status} {html:.2000}");
}

/// Takes two events of `owner` to CONTENT_READY at once.
async fn two_ready_events(owner: &Rest, first: &str, second: &str) -> (String, String) {
    tokio::join!(ready_event(owner, first), ready_event(owner, second))
}

/// The Kakao channel stats of `event`'s analytics once they report `reach` (bounded: 30 s).
async fn kakao_reach(owner: &Rest, event: &str, reach: &str) -> Value {
    let path = format!("/api/v1/events/{event}/analytics");
    let kakao = |body: &Value| {
        body["analytics"]["channelStats"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["channel"] == KAKAO).cloned())
            .unwrap_or(Value::Null)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = owner.get(&path).await.body;
        if kakao(&body)["reach"] == reach {
            return kakao(&body);
        }
        assert!(tokio::time::Instant::now() < deadline, "analytics never showed Kakao's reach {reach}: {body}");
        // Nothing tells a REST client that analytics counted the outcome: ask again shortly.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_connects_their_kakao_channel_and_the_next_event_reaches_those_who_agreed() {
    tokio::time::timeout(BOUND, async {
        let (sens, p) = start().await;
        // The channel's friends: the one who agrees and the one who declines (so only consent
        // keeps the latter out), not the third.
        sens.set_friends(SHOP, &[AGREES.1.to_owned(), DECLINES.1.to_owned()]);
        let owner = sign_up(&p.edge, "kakao-owner@example.com").await;
        let other = sign_up(&p.edge, "kakao-other@example.com").await;
        let ((a, b), other_event) =
            tokio::join!(two_ready_events(&owner, "첫 이벤트", "카카오 이벤트"), ready_event(&other, "옆 가게"));

        // Event A without Kakao; participants enter it on the hosted page.
        publish(&owner, &a, &[PARTNER]).await.expect(200);
        publish(&other, &other_event, &[PARTNER]).await.expect(200);
        enter_on_page(&p.origin, &a, AGREES.0, true).await;
        enter_on_page(&p.origin, &a, DECLINES.0, false).await;
        enter_on_page(&p.origin, &a, AGREES_NOT_FRIEND.0, true).await;
        // Someone agreeing to the other owner's marketing is none of this owner's recipients.
        enter_on_page(&p.origin, &other_event, OTHER_OWNERS.0, true).await;

        // Not connected yet: listed so, and Kakao is refused up front.
        let before = connection(&owner, KAKAO).await;
        assert_eq!(state(&before), "CONNECTION_STATE_NOT_CONNECTED", "{before}");
        assert_not_connected(&publish(&owner, &b, &[KAKAO]).await, "KAKAO_CHANNEL");

        // Connecting completes at once: the answer carries the connection, no browser step.
        let started = connect_kakao(&owner, SHOP).await.expect(200);
        let connected = &started.body["connection"];
        assert_eq!(state(connected), "CONNECTION_STATE_ACTIVE", "{}", started.body);
        assert_eq!(connected["accountId"], SHOP, "{}", started.body);
        assert_eq!(connected["accountName"], "이투이 상점", "{}", started.body);
        assert_eq!(started.body.get("authorizationUrl").and_then(Value::as_str).unwrap_or_default(), "");
        assert!(started.body.get("expireTime").is_none_or(Value::is_null), "{}", started.body);
        assert_eq!(sens.calls(), 0, "connecting sends nothing");
        let listed = connection(&owner, KAKAO).await;
        assert_eq!((state(&listed), listed["accountId"].as_str()), ("CONNECTION_STATE_ACTIVE", Some(SHOP)), "{listed}");
        let others = connection(&other, KAKAO).await;
        assert_eq!(state(&others), "CONNECTION_STATE_NOT_CONNECTED", "another owner sees nothing of it: {others}");

        // Event B to Kakao: one 친구톡 request from the owner's channel to those who agreed.
        publish(&owner, &b, &[KAKAO]).await.expect(200);
        let status = settled(&owner, &b).await;
        let kakao = delivery(&status, KAKAO);
        assert_eq!(kakao["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        assert!(
            kakao["providerStatus"].as_str().unwrap_or_default().contains("1 not delivered"),
            "the one who is no friend of the channel is counted out: {status}"
        );
        assert_eq!(sens.calls(), 1, "one request");
        let request = sens.state().accepted.first().cloned().unwrap_or(Value::Null);
        assert_eq!(request["plusFriendId"], SHOP, "sent from the owner's own channel: {request}");
        let mut to = sens.recipients();
        to.sort();
        assert_eq!(to, vec![AGREES.1, AGREES_NOT_FRIEND.1], "exactly those who agreed, once each: {request}");

        // The message's button opens event B's entry page from Kakao — the link the public event lists.
        let link = format!("{}/e/{b}?ch=kakao_channel", p.origin);
        let public = p.edge.get(&format!("/api/v1/public/events/{b}")).await.expect(200);
        let listed_link = public.body["event"]["channelLinks"]
            .as_array()
            .and_then(|all| all.iter().find(|l| l["channel"] == KAKAO))
            .map(|l| l["url"].clone())
            .unwrap_or(Value::Null);
        assert_eq!(listed_link, link.as_str(), "{}", public.body);
        for message in request["messages"].as_array().cloned().unwrap_or_default() {
            assert_eq!(
                message["buttons"],
                json!([{"type": "WL", "name": "참여하기", "linkMobile": link, "linkPc": link}]),
                "{message}"
            );
        }

        // Reach: the one friend who agreed.
        kakao_reach(&owner, &b, "1").await;
        p.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kakao_connections_refuse_attacks_and_races_and_hurt_nobody() {
    tokio::time::timeout(BOUND, async {
        let (sens, p) = start().await;
        let alice = sign_up(&p.edge, "alice-kakao@example.com").await;
        let bob = sign_up(&p.edge, "bob-kakao@example.com").await;
        let carol = sign_up(&p.edge, "carol-kakao@example.com").await;
        // Carol reads her event and participants enter it throughout.
        let carols = ready_event(&carol, "캐롤의 이벤트").await;
        publish(&carol, &carols, &[PARTNER]).await.expect(200);
        let terms =
            p.edge.get(&format!("/api/v1/public/events/{carols}")).await.expect(200).str("/event/terms/version");
        let mut victims = Victims::new();
        victims.owner_reading(&carol, &carols);
        victims.participants_entering_from(&p.edge, &carols, &terms, 5_000, PARTNER);

        // Twenty identical connects at once by one owner: all succeed, one connection.
        let mut racers = JoinSet::new();
        for _ in 0..20 {
            let alice = alice.clone();
            // A racer the edge's admission control turns away (503 + Retry-After on a slow shared
            // machine) comes back a second later, as a client told so does; a 503 from the
            // service itself (the storage clash this race once produced) is not retried.
            racers.spawn(async move {
                for _ in 0..10 {
                    let reply = connect_kakao(&alice, SHOP).await;
                    if reply.status != 503 || reply.body.to_string().contains("STORAGE_UNAVAILABLE") {
                        return reply;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                connect_kakao(&alice, SHOP).await
            });
        }
        while let Some(reply) = racers.join_next().await {
            let reply = reply.expect("racer").expect(200);
            assert_eq!(state(&reply.body["connection"]), "CONNECTION_STATE_ACTIVE", "{}", reply.body);
            assert_eq!(reply.body["connection"]["accountId"], SHOP, "{}", reply.body);
        }
        let list = alice.get(CONNECTIONS).await.expect(200);
        let kakaos: Vec<&Value> = list.body["connections"]
            .as_array()
            .map(|all| all.iter().filter(|c| c["channel"] == KAKAO).collect())
            .unwrap_or_default();
        assert_eq!(kakaos.len(), 1, "one connection: {}", list.body);
        assert_eq!((state(kakaos[0]), kakaos[0]["accountId"].as_str()), ("CONNECTION_STATE_ACTIVE", Some(SHOP)));

        // Another owner connecting the same channel: taken, whatever way it is typed.
        for typed in [SHOP, "e2eshop", " @E2EShop "] {
            let taken = connect_kakao(&bob, typed).await;
            assert_eq!((taken.status, reason(&taken)), (400, "ACCOUNT_TAKEN".to_owned()), "{typed:?}: {}", taken.body);
            assert_eq!(taken.body["code"], FAILED_PRECONDITION, "{}", taken.body);
        }
        assert_eq!(state(&connection(&bob, KAKAO).await), "CONNECTION_STATE_NOT_CONNECTED");
        assert_eq!(connection(&alice, KAKAO).await["accountId"], SHOP, "Alice keeps her channel");

        // A channel that is no sender profile of the platform's service.
        let unregistered = connect_kakao(&bob, "@nobody-here").await;
        assert_eq!(unregistered.status, 400, "{}", unregistered.body);
        assert_eq!(unregistered.body["code"], FAILED_PRECONDITION, "{}", unregistered.body);
        assert_eq!(reason(&unregistered), "SENDER_NOT_REGISTERED", "{}", unregistered.body);

        // Malformed ids: 400 naming the field, never looked up at SENS.
        let lists = sens.list_calls();
        let long = format!("@{}", "a".repeat(31));
        let huge = "x".repeat(100_000);
        for hostile in [
            "",
            "@",
            long.as_str(),
            huge.as_str(),
            "@shop\u{0}x",
            "@shop\nx",
            "@shop\u{1b}[2J",
            "@\u{202e}pohs",
            "@shop x",
            "@shop'; DROP TABLE channel_connections; --",
            "@../../channels",
            "@shop%00",
            "@shop?x=1",
            "💣",
        ] {
            let reply = connect_kakao(&bob, hostile).await;
            assert_field(&reply, 400, "kakaoChannelId");
            assert_eq!(reply.body["code"], INVALID_ARGUMENT, "{:.40}: {}", hostile, reply.body);
        }
        // Not a string at all: refused at the edge.
        for body in [
            json!({"channel": KAKAO, "kakaoChannelId": 7}),
            json!({"channel": KAKAO, "kakaoChannelId": ["@e2eshop"]}),
            json!({"channel": KAKAO}),
        ] {
            let reply = bob.post(START, body.clone()).await;
            assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        }
        assert_eq!(sens.list_calls(), lists, "nothing malformed reached SENS");
        assert_eq!(state(&connection(&bob, KAKAO).await), "CONNECTION_STATE_NOT_CONNECTED");

        // No token, or a forged one: 401 before any service.
        let forged = p.edge.signed_in("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
        for caller in [&p.edge, &forged] {
            assert_eq!(connect_kakao(caller, SHOP).await.status, 401);
            assert_eq!(caller.delete(&format!("{CONNECTIONS}/{KAKAO}")).await.status, 401);
        }
        assert_eq!(sens.list_calls(), lists, "nor did an anonymous caller");

        // Bob removing his (absent) Kakao leaves Alice's alone; once Alice removes hers, Bob may.
        bob.delete(&format!("{CONNECTIONS}/{KAKAO}")).await.expect(200);
        assert_eq!(state(&connection(&alice, KAKAO).await), "CONNECTION_STATE_ACTIVE");
        alice.delete(&format!("{CONNECTIONS}/{KAKAO}")).await.expect(200);
        let bobs = connect_kakao(&bob, SHOP).await.expect(200);
        assert_eq!(bobs.body["connection"]["accountId"], SHOP, "{}", bobs.body);
        assert_eq!(sens.calls(), 0, "nothing was sent");

        victims.assert_unharmed().await;
        p.stop().await;
    })
    .await
    .expect("the test finishes in time");
}
