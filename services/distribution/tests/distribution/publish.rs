//! Publishing to every channel: all succeed; one fails; one is retried; one hangs; Naver without
//! a cafe waits for the owner.

use std::time::{Duration, Instant};

use kem_distribution::config::DistributionConfig;
use kem_distribution::domain::Channel;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::distribution::v1 as pb;
use kem_proto::kem::messaging::v1 as msg;

use kem_kit::media::MediaVariant;

use crate::support::instagram::ContainerScript;
use crate::support::media::{assert_media_link, image_id};
use crate::support::*;

#[tokio::test]
async fn all_six_channels_publish_through_their_providers() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let base = providers.images.base_url();
    let h = Harness::start(config).await;

    h.publish("evt-all", &Channel::ALL).await;
    let status = h.settled("evt-all").await;

    assert_eq!(status.state, pb::DistributionState::Completed as i32, "{status:#?}");
    assert_eq!(status.deliveries.len(), 6);
    let order: Vec<i32> = status.deliveries.iter().map(|d| d.channel).collect();
    assert_eq!(order, vec![1, 2, 3, 4, 5, 6], "deliveries are in Channel enum order");
    for d in &status.deliveries {
        assert_eq!(d.state, pb::DeliveryState::Published as i32, "{d:#?}");
        assert_eq!(d.attempts, 1, "{d:#?}");
        assert!(!d.external_id.is_empty(), "{d:#?}");
        assert!(d.last_error.is_none() && d.published_time.is_some() && d.next_attempt_time.is_none(), "{d:#?}");
        let provider = d.provider.clone().expect("provider");
        assert_eq!(provider.kind, common::ProviderKind::External as i32, "{d:#?}");
    }
    let ig = delivery(&status, Channel::Instagram);
    assert_eq!(ig.permalink, "https://www.instagram.com/p/m-1/");
    assert_eq!(ig.provider.map(|p| (p.name, p.model)), Some(("instagram-graph".into(), "v21.0".into())));
    let naver = delivery(&status, Channel::NaverBlog);
    assert_eq!(naver.permalink, "https://cafe.naver.com/kemcafe/1");
    assert!(naver.manual_post.is_none(), "the article went to the cafe");
    let kakao = delivery(&status, Channel::KakaoChannel);
    assert_eq!(kakao.external_id, "RSENS-1");
    for channel in [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv] {
        let d = delivery(&status, channel);
        assert!(d.external_id.starts_with("pj-"), "{d:#?}");
        assert!(["SCHEDULED", "LIVE"].contains(&d.provider_status.as_str()), "{d:#?}");
        assert_eq!(d.provider.map(|p| p.name), Some("kt-partner".into()));
        assert_eq!(providers.partner(channel).state.jobs_created(), 1);
        // A TV spot shows the stored image with a QR code of the channel's entry link (a viewer
        // cannot click a screen); 링고비즈 is a spoken (TTS) spot, no image.
        let assets = providers.partner(channel).asset_urls();
        if channel == Channel::RingoBiz {
            assert!(assets.is_empty(), "{assets:?}");
        } else {
            assert_eq!(assets.len(), 1, "{channel}: {assets:?}");
            assert_media_link(&assets[0], &base, "evt-all", channel, MediaVariant::PartnerQr);
        }
    }

    // What reached the providers is what the event asked for.
    {
        let ig = providers.instagram.state();
        assert_eq!(ig.image_urls.len(), 1, "{:?}", ig.image_urls);
        let jpeg = ig.image_urls[0].clone();
        assert_media_link(&jpeg, &base, "evt-all", Channel::Instagram, MediaVariant::InstagramFeed);
        // Meta's fetch of it got a feed-sized JPEG, for real.
        assert_eq!(ig.fetches.len(), 1, "{:?}", ig.fetches);
        assert_eq!(
            (ig.fetches[0].url.as_str(), ig.fetches[0].status, ig.fetches[0].jpeg),
            (jpeg.as_str(), Some(200), true)
        );
        assert_eq!((ig.fetches[0].content_type.as_str(), ig.fetches[0].dimensions), ("image/jpeg", Some((1080, 1350))));
        // The job has no entry links (an older publisher's): built from the public base URL.
        let tail = format!("#점심 #역삼카페\n\n참여하기 👉 {base}/e/evt-all?ch=instagram");
        assert!(ig.captions[0].ends_with(&tail), "{:?}", ig.captions);
        assert_eq!((ig.containers_created, ig.publishes), (1, 1));
    }
    {
        let sens = providers.sens.state();
        assert_eq!(sens.accepted.len(), 1);
        let message = &sens.accepted[0]["messages"][0];
        assert_eq!(message["to"], "01012345678");
        assert!(message["content"].as_str().is_some_and(|c| c.contains("아메리카노 1잔")), "{message}");
    }
    {
        let articles = providers.naver.articles();
        assert_eq!(articles.len(), 1);
        let (subject, content) = (&articles[0].subject, &articles[0].content);
        assert_eq!(subject, "평일 점심 스탬프 이벤트");
        assert_eq!(articles[0].member_id, providers.naver.default_member().id, "posted as the connected owner");
        let src = content
            .split("<img src=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("the article shows an image: {content}"));
        // The article shows the stored image as it is, lossless.
        assert_media_link(src, &base, "evt-all", Channel::NaverBlog, MediaVariant::Original);
    }
    assert_eq!(h.users.lookups(), 1, "the owner profile is looked up once and cached");

    // One analytics outcome per channel, each PUBLISHED, with its provider.
    let outcomes = h.outcomes("evt-all").await;
    assert_eq!(outcomes.len(), 6, "{outcomes:#?}");
    for channel in Channel::ALL {
        let id = format!("dist:evt-all:{}:1", channel.slug());
        let (_, outcome) = outcomes.iter().find(|(i, _)| *i == id).unwrap_or_else(|| panic!("no outcome {id}"));
        assert_eq!(outcome.result, msg::DeliveryResult::Published as i32);
        assert_eq!(outcome.attempts, 1);
        assert!(outcome.failure_reason.is_empty() && outcome.failure_code.is_empty());
        assert_eq!(outcome.provider.as_ref().map(|p| p.kind), Some(common::ProviderKind::External as i32));
    }
    let kakao = outcomes.iter().find(|(_, o)| o.channel == Channel::KakaoChannel.number()).map(|(_, o)| o.reach);
    assert_eq!(kakao, Some(Some(1)), "SENS reports how many recipients it accepted");
    h.cleanup().await;
}

#[tokio::test]
async fn an_instagram_container_error_fails_only_instagram() {
    let providers = Providers::start().await;
    providers.instagram.script(ContainerScript::Error("ERROR: Media download has failed. (2207052)".into()));
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;

    h.publish("evt-ig-error", &Channel::ALL).await;
    let status = h.settled("evt-ig-error").await;

    assert_eq!(status.state, pb::DistributionState::PartiallyFailed as i32, "{status:#?}");
    let ig = delivery(&status, Channel::Instagram);
    assert_eq!(ig.state, pb::DeliveryState::Failed as i32);
    let error = ig.last_error.expect("the error is reported");
    assert_eq!(error.reason, "INVALID_CONTENT");
    assert_eq!(error.provider_code, "2207052");
    assert!(!error.retryable && error.message.contains("Media download has failed"), "{error:#?}");
    assert_eq!(ig.attempts, 1, "a refused container is not retried");
    assert_eq!(providers.instagram.publishes(), 0);
    for channel in Channel::ALL.into_iter().filter(|c| *c != Channel::Instagram) {
        assert_eq!(state_of(&status, channel), pb::DeliveryState::Published, "{channel}");
    }
    let outcomes = h.outcomes("evt-ig-error").await;
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.result == msg::DeliveryResult::Failed as i32).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "dist:evt-ig-error:instagram:1");
    assert_eq!(failed[0].1.failure_code, "INVALID_CONTENT");
    assert!(failed[0].1.failure_reason.contains("2207052"));
    h.cleanup().await;
}

/// Publishes `event` to Instagram alone and checks that it failed for good with Graph error
/// 9004/`subcode` at container creation, after one fetch of the image, and published nothing.
async fn instagram_refuses_the_image(config: DistributionConfig, providers: &Providers, event: &str, subcode: &str) {
    let h = Harness::start(config).await;
    h.publish(event, &[Channel::Instagram]).await;
    let status = h.settled(event).await;
    let ig = delivery(&status, Channel::Instagram);
    assert_eq!(ig.state, pb::DeliveryState::Failed as i32, "{status:#?}");
    let error = ig.last_error.expect("the error is reported");
    assert_eq!(error.reason, "INVALID_CONTENT", "{error:#?}");
    assert_eq!(error.provider_code, format!("9004/{subcode}"), "{error:#?}");
    assert!(!error.retryable, "the same URL would fail again: {error:#?}");
    assert_eq!(ig.attempts, 1);
    assert_eq!(providers.instagram.publishes(), 0);
    {
        let state = providers.instagram.state();
        assert_eq!(state.containers_created, 0, "no container for an image Meta could not use");
        assert_eq!(state.fetches.len(), 1, "{:?}", state.fetches);
    }
    h.cleanup().await;
}

#[tokio::test]
async fn instagram_fails_with_the_graph_fetch_error_when_the_image_url_is_unreachable() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    // Nothing listens on port 1: Meta's crawler cannot fetch the image (as with the owner-only
    // route, or a public base URL it cannot reach).
    config.public_base_url = "http://127.0.0.1:1".into();
    providers.allow_callback("http://127.0.0.1:1");
    instagram_refuses_the_image(config, &providers, "evt-ig-unreachable", "2207052").await;
    let fetch = providers.instagram.fetches().remove(0);
    assert_media_link(
        &fetch.url,
        "http://127.0.0.1:1",
        "evt-ig-unreachable",
        Channel::Instagram,
        MediaVariant::InstagramFeed,
    );
    assert!(fetch.status.is_none() && fetch.error.is_some(), "{fetch:?}");
}

#[tokio::test]
async fn instagram_fails_with_the_graph_format_error_when_the_image_is_a_png() {
    let providers = Providers::start().await;
    // An edge that ignores `format` serves the stored PNG, which Instagram does not take.
    providers.images.serve_stored_only();
    let mut config = fast_config();
    providers.configure(&mut config);
    instagram_refuses_the_image(config, &providers, "evt-ig-png", "2207005").await;
    let fetch = providers.instagram.fetches().remove(0);
    assert_eq!((fetch.status, fetch.content_type.as_str(), fetch.jpeg), (Some(200), "image/png", false), "{fetch:?}");
    assert_eq!(providers.images.requests(), vec![image_id("evt-ig-png")], "the feed link was fetched, and granted");
}

#[tokio::test]
async fn kakao_5xx_is_retried_until_sens_accepts_and_sends_once() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;

    // One 500: the client's own retry of a refused send gets it through in the first attempt.
    providers.sens.fail_next(1);
    h.publish("evt-kakao-1", &[Channel::KakaoChannel, Channel::Instagram]).await;
    let status = h.settled("evt-kakao-1").await;
    let kakao = delivery(&status, Channel::KakaoChannel);
    assert_eq!((kakao.state, kakao.attempts), (pb::DeliveryState::Published as i32, 1), "{kakao:#?}");
    assert_eq!((providers.sens.calls(), providers.sens.sent()), (2, 1));

    // Four 500s: the first attempt gives up after 3 tries, the delivery is retried with backoff,
    // and the second attempt succeeds. Still exactly one message.
    providers.sens.fail_next(4);
    h.publish("evt-kakao-2", &[Channel::KakaoChannel]).await;
    let status = h.settled("evt-kakao-2").await;
    let kakao = delivery(&status, Channel::KakaoChannel);
    assert_eq!((kakao.state, kakao.attempts), (pb::DeliveryState::Published as i32, 2), "{kakao:#?}");
    let error = kakao.last_error.expect("the failed first attempt stays visible");
    assert_eq!((error.reason.as_str(), error.provider_code.as_str()), ("PROVIDER_UNAVAILABLE", "500"));
    assert_eq!((providers.sens.calls(), providers.sens.sent()), (2 + 5, 2));
    let outcomes = h.outcomes("evt-kakao-2").await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].1.attempts, 2);
    h.cleanup().await;
}

#[tokio::test]
async fn a_hanging_channel_delays_no_other_channel() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let deadline = Duration::from_millis(1_500);
    let genie = config.policies.get_mut(&Channel::GenieTv).expect("policy");
    genie.deadline = deadline;
    genie.retry.max_attempts = 1;
    providers.partner(Channel::GenieTv).hang(true);
    let h = Harness::start(config).await;

    let started = Instant::now();
    h.publish("evt-hang", &Channel::ALL).await;
    let others: Vec<Channel> = Channel::ALL.into_iter().filter(|c| *c != Channel::GenieTv).collect();
    let status = h
        .wait_until("evt-hang", Duration::from_secs(10), "the five other channels", |s| {
            others.iter().all(|c| state_of(s, *c) == pb::DeliveryState::Published)
        })
        .await;
    let on_time = started.elapsed();
    assert!(on_time < deadline, "the other channels took {on_time:?}, as long as the hanging one's deadline");
    assert_eq!(state_of(&status, Channel::GenieTv), pb::DeliveryState::Sending, "still hanging: {status:#?}");
    assert_eq!(status.state, pb::DistributionState::InProgress as i32);

    let status = h.settled("evt-hang").await;
    let hung = started.elapsed();
    assert!(hung >= deadline, "the hanging channel was given up after {hung:?}, before its deadline");
    let genie = delivery(&status, Channel::GenieTv);
    assert_eq!(genie.state, pb::DeliveryState::Failed as i32);
    let error = genie.last_error.expect("error");
    assert_eq!(error.reason, "PROVIDER_UNAVAILABLE");
    assert!(error.retryable, "a retry may succeed: {error:#?}");
    assert_eq!(status.state, pb::DistributionState::PartiallyFailed as i32);
    eprintln!("five channels published in {on_time:?}; the hanging one failed after {hung:?} (deadline {deadline:?})");
    h.cleanup().await;
}

#[tokio::test]
async fn a_kakao_send_with_an_unknown_outcome_is_not_repeated() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    config.policies.get_mut(&Channel::KakaoChannel).expect("policy").deadline = Duration::from_millis(1_500);
    providers.sens.hang(true);
    let h = Harness::start(config).await;

    h.publish("evt-kakao-hang", &[Channel::KakaoChannel]).await;
    let status = h.settled("evt-kakao-hang").await;
    let kakao = delivery(&status, Channel::KakaoChannel);
    assert_eq!((kakao.state, kakao.attempts), (pb::DeliveryState::Failed as i32, 1), "{kakao:#?}");
    let error = kakao.last_error.expect("error");
    assert_eq!(error.reason, "PROVIDER_UNAVAILABLE");
    assert!(error.retryable, "the owner may retry after checking: {error:#?}");
    assert!(error.message.contains("not repeated automatically"), "{error:#?}");
    assert_eq!(providers.sens.calls(), 1, "a send that may have gone out is never repeated by itself");
    h.cleanup().await;
}

#[tokio::test]
async fn without_a_cafe_naver_prepares_an_article_for_the_owner() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    config.naver = None;
    let h = Harness::start(config).await;

    h.publish("evt-naver", &[Channel::NaverBlog, Channel::Instagram]).await;
    let status = h.settled("evt-naver").await;
    assert_eq!(status.state, pb::DistributionState::Completed as i32, "AWAITING_OWNER completes: {status:#?}");
    let naver = delivery(&status, Channel::NaverBlog);
    assert_eq!(naver.state, pb::DeliveryState::AwaitingOwner as i32);
    let post = naver.manual_post.expect("the ready-to-post article");
    assert_eq!(post.title, "평일 점심 스탬프 이벤트");
    assert_eq!(post.image_uris.len(), 1, "{:?}", post.image_uris);
    let base = providers.images.base_url();
    assert_media_link(&post.image_uris[0], &base, "evt-naver", Channel::NaverBlog, MediaVariant::Original);
    assert!(post.html_body.contains("<img src=") && post.html_body.contains("아메리카노 1잔"), "{}", post.html_body);
    assert_eq!(post.editor_url, "https://blog.naver.com/GoBlogWrite.naver");
    assert_eq!(
        naver.provider.map(|p| (p.kind, p.name)),
        Some((common::ProviderKind::Unspecified as i32, "naver-blog-assisted".into()))
    );
    assert_eq!(providers.naver.articles().len(), 0);
    let outcomes = h.outcomes("evt-naver").await;
    assert_eq!(outcomes.len(), 1, "waiting for the owner is not an outcome: {outcomes:#?}");
    h.cleanup().await;
}
