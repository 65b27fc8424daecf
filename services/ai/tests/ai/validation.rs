//! Hostile text and ids over the mesh: NUL and other control or bidi characters in any string
//! field of GetTrends and GenerateRecommendations are INVALID_ARGUMENT naming the field (not
//! silently stripped into a cache key or a prompt), and no status quotes more than a short
//! excerpt of a huge input (an oversized trailer would break the HTTP/2 stream).

use kem_proto::kem::ai::v1::{GenerateRecommendationsRequest, GetTrendsRequest};
use kem_proto::kem::common::v1 as common;
use tonic::Status;

use kem_testkit::status::expect_invalid_field;

use crate::support::{Harness, recommendations_request, test_config};

const HOSTILE: [&str; 5] = ["\u{0}", "\u{1b}", "\u{7f}", "\u{2028}", "\u{202e}"];

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    expect_invalid_field(result, field);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_and_ids_are_invalid_arguments_naming_the_field() {
    let h = Harness::start(test_config()).await;
    let mut gateway = h.gateway_client();
    for bad in HOSTILE.iter().map(|b| format!("서울{b} 강남구")).chain(["x".repeat(16_000), "서울\n강남구".into()])
    {
        let request = GetTrendsRequest { category: common::BusinessCategory::Cafe as i32, region: bad };
        assert_invalid(gateway.get_trends(Harness::as_owner(request, "owner-1")).await, "region");
    }

    let mut event = h.event_client();
    type Set = fn(&mut GenerateRecommendationsRequest, &str);
    let fields: [(&str, Set); 5] = [
        ("store.store_name", |r, bad| r.store.get_or_insert_default().store_name = format!("카페{bad}온기")),
        ("store.region", |r, bad| r.store.get_or_insert_default().region = format!("서울{bad}")),
        ("target_audience", |r, bad| r.target_audience = format!("직장인{bad}")),
        ("additional_instructions", |r, bad| r.additional_instructions = format!("평일{bad}점심")),
        ("event_id", |r, bad| r.event_id = format!("event{bad}")),
    ];
    for (field, set) in fields {
        for bad in HOSTILE {
            let mut request = recommendations_request(300_000);
            set(&mut request, bad);
            assert_invalid(event.generate_recommendations(request).await, field);
        }
    }
    for event_id in ["x".repeat(16_000), "../../etc".to_owned(), "%00".to_owned()] {
        let request = GenerateRecommendationsRequest { event_id, ..recommendations_request(300_000) };
        assert_invalid(event.generate_recommendations(request).await, "event_id");
    }
    let huge = GenerateRecommendationsRequest {
        target_audience: "가".repeat(16_000),
        additional_instructions: "나".repeat(16_000),
        ..recommendations_request(300_000)
    };
    assert_invalid(event.generate_recommendations(huge).await, "additional_instructions");

    // Instructions are prose: line breaks and tabs are fine there.
    let multi_line = GenerateRecommendationsRequest {
        additional_instructions: "평일 점심 위주로\n\t주말은 제외".into(),
        ..recommendations_request(300_000)
    };
    event.generate_recommendations(multi_line).await.expect("multi-line instructions are prose");
    h.cleanup().await;
}
