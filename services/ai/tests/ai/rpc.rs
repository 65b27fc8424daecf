//! GetTrends and GenerateRecommendations over the mesh: provider labels, the 24 h cache keyed by
//! input hash, validation and access rules.

use std::collections::HashSet;

use kem_proto::kem::ai::v1::GetTrendsRequest;
use kem_proto::kem::common::v1 as common;
use prost::Message;
use tonic::{Code, Request};

use crate::claude::{ClaudeServer, Kind};
use crate::support::{Harness, claude_config, recommendations_request, test_config};

fn cafe_trends(region: &str) -> GetTrendsRequest {
    GetTrendsRequest { category: common::BusinessCategory::Cafe as i32, region: region.to_owned() }
}

fn seconds(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map(|t| t.seconds).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stand_in_answers_labelled_and_cached() {
    let h = Harness::start(test_config()).await;
    let mut gateway = h.gateway_client();
    let trends = gateway
        .get_trends(Harness::as_owner(cafe_trends("서울 강남구"), "owner-1"))
        .await
        .expect("GetTrends")
        .into_inner()
        .trend_analysis
        .expect("analysis");
    let provider = trends.provider.clone().expect("provider");
    assert_eq!(provider.kind, common::ProviderKind::Local as i32);
    assert_eq!(
        (provider.name.as_str(), provider.model.as_str(), provider.cached),
        ("local:claude", "kem-local-v1", false)
    );
    assert_eq!(trends.region, "서울특별시 강남구");
    assert_eq!(seconds(&trends.expire_time) - seconds(&trends.generate_time), 24 * 3_600);
    assert!(trends.summary.contains("강남구") && !trends.best_days.is_empty(), "{}", trends.summary);
    let again = gateway
        .get_trends(Harness::as_owner(cafe_trends("서울특별시  강남구 역삼동"), "owner-1"))
        .await
        .expect("GetTrends")
        .into_inner()
        .trend_analysis
        .expect("analysis");
    assert!(again.provider.as_ref().expect("provider").cached, "the normalised query hits the cache");
    assert_eq!(again.generate_time, trends.generate_time);

    let mut event = h.event_client();
    let first = event.generate_recommendations(recommendations_request(300_000)).await.expect("generate").into_inner();
    assert_eq!(first.recommendations.len(), 3);
    let ids: HashSet<&str> = first.recommendations.iter().map(|r| r.recommendation_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "unique ids");
    for rec in &first.recommendations {
        let copied: Vec<i32> = rec.channel_copies.iter().map(|c| c.channel).collect();
        assert_eq!(copied, rec.recommended_channels, "one copy per recommended channel");
        let prize = rec.prize_suggestion.as_ref().expect("prize");
        let total = i64::from(prize.winner_count) * prize.unit_value.as_ref().map_or(0, |m| m.amount_krw);
        assert!(total <= 300_000, "prizes fit the budget");
        assert_eq!(
            rec.expected_cost_per_entry.as_ref().map(|m| m.amount_krw),
            Some((300_000 + rec.expected_participants / 2) / rec.expected_participants)
        );
    }
    assert_eq!(first.input_hash.len(), 64);
    assert_eq!(first.provider.as_ref().map(|p| (p.kind, p.cached)), Some((common::ProviderKind::Local as i32, false)));
    let second = event.generate_recommendations(recommendations_request(300_000)).await.expect("generate").into_inner();
    assert_eq!(second.provider.as_ref().map(|p| p.cached), Some(true));
    assert_eq!(
        (second.input_hash.as_str(), second.recommendations.clone()),
        (first.input_hash.as_str(), first.recommendations.clone())
    );
    let other = event.generate_recommendations(recommendations_request(500_000)).await.expect("generate").into_inner();
    assert_ne!(other.input_hash, first.input_hash);
    assert_eq!(h.metric("kem_ai_results_total{task=\"recommendations\",source=\"cache\"}"), 1.0);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_validated_and_each_method_has_its_callers() {
    let h = Harness::start(test_config()).await;
    let mut gateway = h.gateway_client();
    let anonymous = gateway.get_trends(Request::new(cafe_trends("서울"))).await.expect_err("no owner");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let no_category = gateway
        .get_trends(Harness::as_owner(GetTrendsRequest { category: 0, region: "서울".into() }, "o"))
        .await
        .expect_err("no category");
    assert_eq!(no_category.code(), Code::InvalidArgument);
    let details = kem_proto::status::details(&no_category).expect("details");
    let bad = kem_proto::google::rpc::BadRequest::decode(details.details[0].value.as_slice()).expect("BadRequest");
    assert_eq!(bad.field_violations[0].field, "category");
    let long =
        gateway.get_trends(Harness::as_owner(cafe_trends(&"가".repeat(101)), "o")).await.expect_err("long region");
    assert_eq!(long.code(), Code::InvalidArgument);

    let mut event = h.event_client();
    let empty = event
        .generate_recommendations(kem_proto::kem::ai::v1::GenerateRecommendationsRequest::default())
        .await
        .expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let details = kem_proto::status::details(&empty).expect("details");
    let bad = kem_proto::google::rpc::BadRequest::decode(details.details[0].value.as_slice()).expect("BadRequest");
    let fields: Vec<&str> = bad.field_violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["store.business_category", "objective", "period"]);

    // GenerateRecommendations is internal (caller: event); GetTrends is for the edge only.
    let denied = gateway.generate_recommendations(recommendations_request(1)).await.expect_err("gateway");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = event.get_trends(Harness::as_owner(cafe_trends("서울"), "o")).await.expect_err("event");
    assert_eq!(denied.code(), Code::PermissionDenied);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_never_call_the_model_twice() {
    let claude = ClaudeServer::start().await;
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    let mut event = h.event_client();
    let first = event.generate_recommendations(recommendations_request(300_000)).await.expect("generate").into_inner();
    assert_eq!((claude.count(Kind::Trends), claude.count(Kind::Recommendations)), (1, 1));
    let provider = first.provider.clone().expect("provider");
    assert_eq!(provider.kind, common::ProviderKind::External as i32);
    assert_eq!(
        (provider.name.as_str(), provider.model.as_str(), provider.cached),
        ("claude", "claude-haiku-4-5", false)
    );
    assert!(provider.request_id.starts_with("req_"), "{}", provider.request_id);
    let titles: Vec<&str> = first.recommendations.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(titles, ["테스트 이벤트 1", "테스트 이벤트 2", "테스트 이벤트 3"]);

    // The same inputs for another event: the event id is not part of the key.
    let mut same = recommendations_request(300_000);
    same.event_id = "event-2".to_owned();
    let second = event.generate_recommendations(same).await.expect("generate").into_inner();
    assert_eq!(second.provider.as_ref().map(|p| p.cached), Some(true));
    assert_eq!(second.recommendations, first.recommendations);
    // The trend analysis the recommendations used is GetTrends' cache entry too.
    let trends = h
        .gateway_client()
        .get_trends(Harness::as_owner(cafe_trends("서울 강남구"), "owner-1"))
        .await
        .expect("trends")
        .into_inner();
    assert_eq!(trends.trend_analysis.and_then(|t| t.provider).map(|p| p.cached), Some(true));
    assert_eq!(claude.total(), 2, "no further provider call");

    // The results live in Redis (they survive a restart of the service), under the input hash.
    let keys = h.svc.redis.keys().await;
    assert!(
        keys.iter().any(|k| k.ends_with(&format!("recommendations:v1:claude:claude-haiku-4-5:{}", first.input_hash))),
        "{keys:?}"
    );
    assert!(h.metric("kem_ai_tokens_total{provider=\"claude\",model=\"claude-haiku-4-5\",kind=\"input\"}") > 0.0);
    assert!(h.metric("kem_ai_tokens_total{provider=\"claude\",model=\"claude-haiku-4-5\",kind=\"output\"}") > 0.0);
    assert_eq!(h.metric("kem_external_requests_total{provider=\"claude\",outcome=\"ok\"}"), 2.0);
    assert_eq!(
        h.metric("kem_ai_model_calls_total{provider=\"claude\",model=\"claude-haiku-4-5\",task=\"recommendations\"}"),
        1.0
    );
    h.cleanup().await;
}
