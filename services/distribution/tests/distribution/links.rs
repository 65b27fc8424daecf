//! The entry link in every post (`ChannelDelivery.entry_url`): what each provider's contract
//! server receives — the last line of the Instagram caption, a 친구톡 web-link button and the
//! message's last line, an `<a href>` showing the URL in the Naver article — escaped for JSON and
//! HTML; and the link distribution builds from its own public base URL for a job that has none (a
//! publisher older than the field) or one that is not a plain web URL.

use kem_distribution::domain::Channel;
use kem_proto::kem::distribution::v1 as pb;
use serde_json::json;

use crate::support::*;

/// The link the event service would send for `channel`, with characters that must be escaped in
/// JSON and HTML (the event service's own are plain, but nothing here may rely on that).
fn sent_link(event_id: &str, channel: Channel) -> String {
    format!("https://kem.example/e/{event_id}?ch={}&utm=\"post\"<b>", channel.slug())
}

#[tokio::test]
async fn every_post_carries_its_channels_entry_link() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;

    let id = "evt-link";
    let channels = [Channel::Instagram, Channel::KakaoChannel, Channel::NaverBlog];
    let mut job = job(id, OWNER, &channels);
    for delivery in &mut job.deliveries {
        let channel = Channel::from_number(delivery.channel).expect("a known channel");
        delivery.entry_url = sent_link(id, channel);
    }
    h.events.publish(id, OWNER, &channels, SystemClock.now_ms());
    h.send(&job, &format!("dist:{id}")).await;
    let status = h.settled(id).await;
    assert_eq!(status.state, pb::DistributionState::Completed as i32, "{status:#?}");

    // Instagram: the caption's last line, after the hashtags (not clickable there; see the docs).
    {
        let ig = providers.instagram.state();
        let link = sent_link(id, Channel::Instagram);
        assert_eq!(ig.captions.len(), 1);
        assert!(ig.captions[0].ends_with(&format!("#점심 #역삼카페\n\n참여하기 👉 {link}")), "{:?}", ig.captions);
    }
    // Kakao: a web-link button, and the URL as the text's last line; SENS parsed the JSON back to
    // exactly the link (quotes and angle brackets escaped on the wire).
    {
        let sens = providers.sens.state();
        let link = sent_link(id, Channel::KakaoChannel);
        let message = &sens.accepted[0]["messages"][0];
        assert_eq!(
            message["buttons"],
            json!([{"type": "WL", "name": "참여하기", "linkMobile": link, "linkPc": link}]),
            "{message}"
        );
        let content = message["content"].as_str().unwrap_or_default();
        assert!(content.ends_with(&format!("\n\n참여하기 👉 {link}")), "{content}");
        assert!(content.contains("아메리카노 1잔"), "the prize is still there: {content}");
    }
    // Naver Cafe: a clickable, visible link, HTML-escaped.
    {
        let articles = providers.naver.articles();
        let content = &articles[0].content;
        let escaped = format!("https://kem.example/e/{id}?ch=naver_blog&amp;utm=&quot;post&quot;&lt;b&gt;");
        let paragraph = format!("<p><strong>참여하기</strong>: <a href=\"{escaped}\">{escaped}</a></p>");
        assert!(content.contains(&paragraph), "{content}");
        assert!(!content.contains("<b>"), "nothing unescaped: {content}");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn a_job_without_links_gets_them_from_the_public_base_url() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    config.naver = None;
    let base = providers.images.base_url();
    let h = Harness::start(config).await;

    // `job` leaves entry_url empty, as a publisher older than the field does; Kakao's link is not
    // a web URL at all and is replaced the same way.
    let id = "evt-old";
    let channels = [Channel::Instagram, Channel::KakaoChannel, Channel::NaverBlog];
    let mut job = job(id, OWNER, &channels);
    for delivery in &mut job.deliveries {
        if delivery.channel == Channel::KakaoChannel.number() {
            delivery.entry_url = "javascript:alert(1)".into();
        }
    }
    h.events.publish(id, OWNER, &channels, SystemClock.now_ms());
    h.send(&job, &format!("dist:{id}")).await;
    let status = h.settled(id).await;
    assert_eq!(status.state, pb::DistributionState::Completed as i32, "{status:#?}");

    // The public base URL is the image host's (Instagram fetches the image from it).
    {
        let ig = providers.instagram.state();
        let caption = &ig.captions[0];
        assert!(caption.ends_with(&format!("\n\n참여하기 👉 {base}/e/{id}?ch=instagram")), "{caption}");
    }
    {
        let sens = providers.sens.state();
        let message = &sens.accepted[0]["messages"][0];
        let link = format!("{base}/e/{id}?ch=kakao_channel");
        assert_eq!(message["buttons"][0]["linkMobile"], json!(link), "{message}");
        assert!(!message.to_string().contains("javascript"), "{message}");
    }
    // Owner-assisted Naver Blog: the ready-to-post article has the link too.
    let naver = delivery(&status, Channel::NaverBlog);
    let post = naver.manual_post.expect("the ready-to-post article");
    let link = format!("{base}/e/{id}?ch=naver_blog");
    assert!(post.html_body.contains(&format!("<a href=\"{link}\">{link}</a>")), "{}", post.html_body);
    h.cleanup().await;
}
