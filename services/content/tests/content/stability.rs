//! The Stability AI client against its contract server: success (fitted to exact sizes), 429 with
//! and without Retry-After, 5xx then success, timeouts, moderation refusals (partial results),
//! refused credentials and the breaker opening under repeated failure.

use std::time::{Duration, Instant};

use kem_content::ContentConfig;
use kem_content::infra::imaging::decode_png;
use kem_content::infra::stability;
use kem_kit::Secret;
use kem_kit::external::{Backoff, ProviderMode};
use kem_mesh::breaker::BreakerConfig;
use kem_proto::google::rpc::RetryInfo;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::content::v1 as content;
use prost::Message;
use tonic::Code;

use crate::contracts::{API_KEY, Reply, StabilityServer};
use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);

/// The real client pointed at `server`, with test-sized timings.
pub fn stability_config(server: &StabilityServer, key: &str) -> ContentConfig {
    let mut provider = stability::provider_config(server.base_url());
    provider.timeout = Duration::from_millis(1_500);
    provider.deadline = Duration::from_secs(10);
    provider.backoff = Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) };
    let mut config = test_config();
    config.stability = ProviderMode::select(provider, Some(Secret::new(key)));
    config.image_budget = Duration::from_secs(10);
    config
}

fn one(job: &str, event: &str, style: common::ImageStyle) -> kem_proto::kem::messaging::v1::GenerateImages {
    let mut message = request(job, event, OWNER);
    message.sizes = vec![size(common::Channel::Instagram, 108, 108)];
    message.styles = styles(&[style]);
    message
}

#[tokio::test]
async fn provider_images_are_fitted_to_each_exact_size() {
    let server = StabilityServer::start().await;
    let h = Harness::start(stability_config(&server, API_KEY)).await;
    let mut job = request("job-sd", "event-sd", OWNER);
    job.sizes = vec![
        size(common::Channel::Instagram, 108, 108),
        size(common::Channel::Instagram, 108, 135),
        size(common::Channel::GenieTv, 192, 108),
    ];
    h.send(&job).await;
    let images = h.outcome("job-sd", WAIT).await.images().clone();
    assert_eq!(images.image_ids.len(), 9);
    let provider = images.provider.expect("provider");
    assert_eq!(
        (provider.kind, provider.name.as_str(), provider.model.as_str(), provider.cached),
        (common::ProviderKind::External as i32, "stability-ai", "stable-image-core", false)
    );

    let calls = server.calls();
    assert_eq!(calls.len(), 9, "one generation per style and aspect ratio");
    assert!(server.bad_requests().is_empty(), "{:?}", server.bad_requests());
    let mut aspects: Vec<&str> = calls.iter().map(|c| c.aspect_ratio.as_str()).collect();
    aspects.sort();
    assert_eq!(aspects, vec!["16:9", "16:9", "16:9", "1:1", "1:1", "1:1", "4:5", "4:5", "4:5"]);
    let mut presets: Vec<&str> = calls.iter().map(|c| c.style_preset.as_str()).collect();
    presets.sort();
    presets.dedup();
    assert_eq!(presets, vec!["cinematic", "digital-art", "photographic"]);
    for call in &calls {
        assert_eq!(call.output_format, "png");
        assert!(call.prompt.is_ascii() && call.prompt.contains("cozy cafe"), "{}", call.prompt);
        assert!(call.prompt.contains("Americano 1+1"), "the owner's ASCII words are kept: {}", call.prompt);
        assert!(call.negative_prompt.contains("text"));
        let seed: u64 = call.seed.parse().expect("numeric seed");
        assert!((1..=4_294_967_294).contains(&seed));
    }

    let listed = h.list(OWNER, "event-sd").await.expect("list");
    for image in &listed.images {
        let bytes = h.bytes(OWNER, &image.image_id).await.expect("bytes");
        let png = decode_png(&bytes.data).expect("png");
        assert_eq!((png.width as i32, png.height as i32), (image.width, image.height), "fitted exactly");
        let provider = image.provider.clone().expect("provider");
        assert!(provider.request_id.starts_with("req-"), "the provider's x-request-id is kept");
        assert!(image.seed > 0);
    }
    h.cleanup().await;
}

#[tokio::test]
async fn rate_limits_are_honoured_with_retry_after_and_reported_without_it() {
    let server = StabilityServer::start().await;
    server.script(|call| match (call.style_preset.as_str(), call.n_for_preset) {
        ("photographic", 0) => Reply::Error(429, "rate_limit_exceeded", vec![("retry-after", "1".to_owned())]),
        ("digital-art", _) => Reply::Error(429, "rate_limit_exceeded", Vec::new()),
        // The JSON answer mode (`{"image": <base64>, ...}`) is read as well.
        _ => Reply::Json,
    });
    let h = Harness::start(stability_config(&server, API_KEY)).await;
    let started = Instant::now();
    h.send(&one("job-429", "event-429", common::ImageStyle::Simple)).await;
    assert_eq!(h.outcome("job-429", WAIT).await.images().image_ids.len(), 1);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited the Retry-After");
    assert_eq!(server.count_preset("photographic"), 2);

    // Without Retry-After the provider's 60 s lock-out is longer than the image's budget: no
    // retry, and the style fails RESOURCE_EXHAUSTED with the advice to come back in 60 s.
    h.send(&one("job-429b", "event-429b", common::ImageStyle::Trendy)).await;
    let failure = h.outcome("job-429b", WAIT).await.failure().clone();
    assert_eq!(failure.code, Code::ResourceExhausted as i32);
    assert_eq!(reason(&failure), "kem.content/PROVIDER_RATE_LIMITED");
    let retry = failure
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.RetryInfo"))
        .map(|d| RetryInfo::decode(d.value.as_slice()).expect("retry info"))
        .expect("RetryInfo");
    assert_eq!(retry.retry_delay.map(|d| d.seconds), Some(60));
    assert_eq!(server.count_preset("digital-art"), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = StabilityServer::start().await;
    server.script(|call| if call.n < 2 { Reply::Error(500, "internal_error", Vec::new()) } else { Reply::Png });
    let h = Harness::start(stability_config(&server, API_KEY)).await;
    h.send(&one("job-5xx", "event-5xx", common::ImageStyle::Fancy)).await;
    let images = h.outcome("job-5xx", WAIT).await.images().clone();
    assert_eq!(images.image_ids.len(), 1);
    assert_eq!(server.count(), 3, "two failures, then the image");
    assert_eq!(images.provider.expect("provider").request_id, "req-2");
    h.cleanup().await;
}

#[tokio::test]
async fn a_hanging_provider_times_out_within_the_budget() {
    let server = StabilityServer::start().await;
    server.script(|_| Reply::Slow(Duration::from_secs(5)));
    let mut config = stability_config(&server, API_KEY);
    if let ProviderMode::Real { config: provider, .. } = &mut config.stability {
        provider.timeout = Duration::from_millis(300);
        provider.max_attempts = 2;
    }
    let h = Harness::start(config).await;
    let started = Instant::now();
    h.send(&one("job-slow", "event-slow", common::ImageStyle::Simple)).await;
    let failure = h.outcome("job-slow", WAIT).await.failure().clone();
    assert_eq!(failure.code, Code::DeadlineExceeded as i32);
    assert_eq!(reason(&failure), "kem.content/PROVIDER_TIMEOUT");
    assert_eq!(server.count(), 2, "the timeout is retried once (max attempts 2)");
    assert!(started.elapsed() < Duration::from_secs(5), "never waited for the hanging answer");
    let states = h.list(OWNER, "event-slow").await.expect("list").style_states;
    assert_eq!(states[0].state, content::GenerationState::Failed as i32);
    h.cleanup().await;
}

#[tokio::test]
async fn moderation_refusals_fail_only_their_style() {
    let server = StabilityServer::start().await;
    server.script(|call| match call.style_preset.as_str() {
        "cinematic" => Reply::Error(403, "content_moderation", Vec::new()),
        "digital-art" => Reply::Filtered,
        _ => Reply::Png,
    });
    let h = Harness::start(stability_config(&server, API_KEY)).await;
    let mut job = request("job-mod", "event-mod", OWNER);
    job.sizes = vec![size(common::Channel::Instagram, 108, 108)];
    h.send(&job).await;
    let images = h.outcome("job-mod", WAIT).await.images().clone();
    assert_eq!(images.image_ids.len(), 1, "the simple style succeeded");
    assert_eq!(images.failed_styles, styles(&[common::ImageStyle::Fancy, common::ImageStyle::Trendy]));
    let by_style: Vec<(i32, usize, Option<String>)> = images
        .style_results
        .iter()
        .map(|r| (r.style, r.image_ids.len(), r.error.as_ref().map(|e| format!("{} {}", e.code, reason(e)))))
        .collect();
    let moderated = Some(format!("{} kem.content/CONTENT_MODERATED", Code::FailedPrecondition as i32));
    assert_eq!(
        by_style,
        vec![
            (common::ImageStyle::Simple as i32, 1, None),
            (common::ImageStyle::Fancy as i32, 0, moderated.clone()),
            (common::ImageStyle::Trendy as i32, 0, moderated),
        ]
    );
    let states = h.list(OWNER, "event-mod").await.expect("list").style_states;
    let states: Vec<(i32, i32)> = states.iter().map(|s| (s.style, s.state)).collect();
    assert_eq!(
        states,
        vec![
            (common::ImageStyle::Simple as i32, content::GenerationState::Succeeded as i32),
            (common::ImageStyle::Fancy as i32, content::GenerationState::Failed as i32),
            (common::ImageStyle::Trendy as i32, content::GenerationState::Failed as i32),
        ]
    );
    assert_eq!(server.count(), 3, "moderation is final: no retry");
    h.cleanup().await;
}

#[tokio::test]
async fn refused_credentials_fail_the_job_without_leaking_the_key() {
    let server = StabilityServer::start().await;
    let h = Harness::start(stability_config(&server, "sk-wrong-key")).await;
    h.send(&one("job-auth", "event-auth", common::ImageStyle::Simple)).await;
    let failure = h.outcome("job-auth", WAIT).await.failure().clone();
    assert_eq!(failure.code, Code::Internal as i32);
    assert_eq!(reason(&failure), "kem.content/PROVIDER_MISCONFIGURED");
    assert!(!failure.message.contains("sk-wrong-key"));
    assert_eq!(server.count(), 0, "the server refused the key before counting a generation");
    h.cleanup().await;
}

#[tokio::test]
async fn the_breaker_opens_under_repeated_failure_and_stops_the_calls() {
    let server = StabilityServer::start().await;
    server.script(|_| Reply::Error(503, "service_unavailable", Vec::new()));
    let mut config = stability_config(&server, API_KEY);
    config.parallelism = 1;
    if let ProviderMode::Real { config: provider, .. } = &mut config.stability {
        provider.max_attempts = 1;
        provider.breaker = BreakerConfig {
            failure_rate_threshold: 0.5,
            minimum_calls: 3,
            window: Duration::from_secs(60),
            window_buckets: 6,
            open_duration: Duration::from_secs(60),
            half_open_probes: 1,
        };
    }
    let h = Harness::start(config).await;
    let mut job = request("job-breaker", "event-breaker", OWNER);
    job.sizes = vec![
        size(common::Channel::Instagram, 108, 108),
        size(common::Channel::Instagram, 108, 135),
        size(common::Channel::GenieTv, 192, 108),
    ];
    job.styles = styles(&[common::ImageStyle::Simple, common::ImageStyle::Fancy]);
    h.send(&job).await;
    let failure = h.outcome("job-breaker", WAIT).await.failure().clone();
    assert_eq!(failure.code, Code::Unavailable as i32);
    assert_eq!(reason(&failure), "kem.content/PROVIDER_UNAVAILABLE", "the first style's failure");
    assert_eq!(server.count(), 3, "after 3 failures the breaker opened and nothing more was sent");
    let states = h.list(OWNER, "event-breaker").await.expect("list").style_states;
    let fancy = states.iter().find(|s| s.style == common::ImageStyle::Fancy as i32).expect("fancy state");
    let error = fancy.error.clone().expect("error");
    assert_eq!(
        (error.code, reason(&error)),
        (Code::Unavailable as i32, "kem.content/PROVIDER_CIRCUIT_OPEN".to_owned())
    );

    // While open, a new job fails fast without reaching the provider.
    h.send(&one("job-breaker-2", "event-breaker-2", common::ImageStyle::Trendy)).await;
    let failure = h.outcome("job-breaker-2", WAIT).await.failure().clone();
    assert_eq!(reason(&failure), "kem.content/PROVIDER_CIRCUIT_OPEN");
    assert_eq!(server.count(), 3);
    h.cleanup().await;
}
