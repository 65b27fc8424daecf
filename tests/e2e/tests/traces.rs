//! One trace per user action, end to end: a REST request carrying the client's `traceparent`
//! is one connected trace through the edge, the event service, the job's queue message, the ai
//! worker and its report back to the event service — each span under its role's `service.name`.

use std::collections::HashMap;
use std::time::Duration;

use kem_mesh::telemetry::trace::{self, ServiceNames};
use kem_testkit::eventually;
use kem_testkit::otlp::{Collector, Exported};
use kem_testkit::roles::TestPlatform;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::Value;

use crate::hostile::{new_event, sign_up};

/// The client's own trace and span (the caller of the edge, e.g. a browser's instrumentation).
const CLIENT_TRACE: &str = "7a3f5c0e9b1d4e2fa6c8b0d2e4f60718";
const CLIENT_SPAN: &str = "b7ad6b7169203331";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommend_request_is_one_trace_from_the_edge_through_the_queue_to_the_ai_worker_and_back() {
    let (collector, endpoint) = Collector::start().await;
    // As `kem up` exports: one `service.name` per role.
    let names = ServiceNames::PerRole { prefix: "kem-".to_owned(), fallback: "kem".to_owned() };
    let export = trace::install_otlp_with(&endpoint, names).expect("OTLP export");
    let platform = TestPlatform::start_all().await;
    let edge = crate::support::Rest::new(platform.http_addr());
    let owner = sign_up(&edge, "traced@example.com").await;
    let id = owner.post("/api/v1/events", new_event("추적 이벤트")).await.expect(200).str("/event/eventId");

    // The client's request, with its trace context.
    let http = reqwest::Client::new();
    let response = http
        .post(format!("http://{}/api/v1/events/{id}:recommend", platform.http_addr()))
        .bearer_auth(owner.token().expect("signed in"))
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .header("tracestate", "client=1")
        .body("{}")
        .send()
        .await
        .expect("recommend");
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    let job = body.pointer("/job/jobId").and_then(Value::as_str).expect("job id").to_owned();
    owner
        .poll(&format!("/api/v1/jobs/{job}"), |b| {
            b.pointer("/job/state").and_then(Value::as_str) == Some("JOB_STATE_SUCCEEDED")
        })
        .await;

    // Spans are exported in batches: flush until the ai worker's report back is in.
    let report_received = |s: &Exported| {
        s.service == "kem-event" && s.kind() == SpanKind::Server && s.span.name.ends_with("/ReportJobResult")
    };
    eventually("the whole trace reaches the collector", Duration::from_secs(10), || {
        let (flushing, collector) = (export.clone(), collector.clone());
        async move {
            tokio::task::spawn_blocking(move || flushing.flush()).await.expect("flush");
            let spans = collector.trace(CLIENT_TRACE);
            spans.iter().any(report_received) && spans.iter().any(|s| s.kind() == SpanKind::Consumer)
        }
    })
    .await;
    let spans = collector.trace(CLIENT_TRACE);
    let shown = summary(&spans);

    // One connected trace: every span's parent is in it, except the edge's, whose parent is the
    // client's span.
    let by_id: HashMap<String, &Exported> = spans.iter().map(|s| (s.span_id(), s)).collect();
    let roots: Vec<_> = spans.iter().filter(|s| !by_id.contains_key(&s.parent_span_id())).collect();
    assert_eq!(roots.len(), 1, "one root:\n{shown}");
    let edge_span = roots[0];
    assert_eq!(edge_span.parent_span_id(), CLIENT_SPAN, "the edge continues the client's span:\n{shown}");
    assert_eq!(
        (edge_span.service.as_str(), edge_span.kind(), edge_span.span.name.as_str()),
        ("kem-gateway", SpanKind::Server, "POST /api/v1/events/{id}:recommend"),
        "{shown}"
    );
    // `a` is an ancestor of `b`.
    let descends = |b: &Exported, a: &Exported| {
        let mut at = b.parent_span_id();
        while let Some(parent) = by_id.get(&at) {
            if parent.span_id() == a.span_id() {
                return true;
            }
            at = parent.parent_span_id();
        }
        false
    };
    let find = |what: &str, test: &dyn Fn(&Exported) -> bool| -> &Exported {
        spans.iter().find(|s| test(s)).unwrap_or_else(|| panic!("no {what} span in the trace:\n{shown}"))
    };
    // edge → event: the edge's client call and the event service's server span.
    let edge_call = find("edge client", &|s| {
        s.service == "kem-gateway" && s.kind() == SpanKind::Client && s.span.name.ends_with("/RequestRecommendations")
    });
    assert_eq!(edge_call.parent_span_id(), edge_span.span_id(), "{shown}");
    let recommend = find("event server", &|s| {
        s.service == "kem-event" && s.kind() == SpanKind::Server && s.span.name.ends_with("/RequestRecommendations")
    });
    assert_eq!(recommend.parent_span_id(), edge_call.span_id(), "{shown}");
    // event → queue → ai: the message the request enqueued carries its trace to the consumer.
    let consumed = find("ai consumer", &|s| {
        s.service == "kem-ai" && s.kind() == SpanKind::Consumer && s.span.name == "process ai-event-generation"
    });
    assert_eq!(consumed.parent_span_id(), recommend.span_id(), "{shown}");
    // ai → event: the job's result is reported inside the consumer's span.
    let report_call = find("ai report client", &|s| {
        s.service == "kem-ai" && s.kind() == SpanKind::Client && s.span.name.ends_with("/ReportJobResult")
    });
    assert!(descends(report_call, consumed), "{shown}");
    let reports: Vec<_> = spans.iter().filter(|s| report_received(s)).collect();
    assert!(reports.iter().all(|r| by_id[&r.parent_span_id()].service == "kem-ai"), "{shown}");
    assert!(reports.iter().all(|r| descends(r, consumed)), "{shown}");
    // Every span is its role's; none falls back to the process name.
    assert!(spans.iter().all(|s| s.service.starts_with("kem-")), "{shown}");
    assert_eq!(edge_span.span.trace_state, "client=1", "the client's tracestate is kept");

    // A malformed `traceparent` is ignored, never an error: the request is answered as usual and
    // its edge span starts a new trace.
    let list = format!("http://{}/api/v1/events", platform.http_addr());
    let long = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01{}", "-0".repeat(3_000));
    let hostile: Vec<Vec<u8>> = vec![
        long.into_bytes(),
        format!("ff-{CLIENT_TRACE}-{CLIENT_SPAN}-01").into_bytes(),
        format!("00-{}-{CLIENT_SPAN}-01", "0".repeat(32)).into_bytes(),
        format!("00-{CLIENT_TRACE}-{}-01", "0".repeat(16)).into_bytes(),
        format!("00-{}-{CLIENT_SPAN}-01", CLIENT_TRACE.to_uppercase()).into_bytes(),
        format!("00-{CLIENT_TRACE}\t-{CLIENT_SPAN}-01").into_bytes(),
        [format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-0").as_bytes(), &[0xff]].concat(),
        b"00-1-2-01".to_vec(),
    ];
    for value in &hostile {
        let value = reqwest::header::HeaderValue::from_bytes(value).expect("a sendable header value");
        let response = http
            .get(&list)
            .bearer_auth(owner.token().expect("signed in"))
            .header("traceparent", value)
            .header("tracestate", reqwest::header::HeaderValue::from_bytes(b"k=\xff").expect("obs-text"))
            .send()
            .await
            .expect("list events");
        assert_eq!(response.status(), 200);
    }
    let new_roots = |c: &Collector| {
        c.spans()
            .into_iter()
            .filter(|s| s.span.name == "GET /api/v1/events" && s.kind() == SpanKind::Server)
            .collect::<Vec<_>>()
    };
    eventually("the hostile requests' edge spans reach the collector", Duration::from_secs(10), || {
        let (flushing, collector) = (export.clone(), collector.clone());
        async move {
            tokio::task::spawn_blocking(move || flushing.flush()).await.expect("flush");
            new_roots(&collector).len() >= 8
        }
    })
    .await;
    let roots = new_roots(&collector);
    assert!(roots.iter().all(|s| s.parent_span_id().is_empty() && s.trace_id() != CLIENT_TRACE), "{}", summary(&roots));

    platform.stop().await;
    tokio::task::spawn_blocking(move || export.shutdown()).await.expect("shutdown");
}

/// The trace as lines `service kind name span<-parent`, for failure messages.
fn summary(spans: &[Exported]) -> String {
    spans
        .iter()
        .map(|s| format!("{} {:?} {} {}<-{}", s.service, s.kind(), s.span.name, s.span_id(), s.parent_span_id()))
        .collect::<Vec<_>>()
        .join("\n")
}
