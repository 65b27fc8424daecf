//! The service `start` returns, served over HTTP/2 and called with the generated client: owner
//! metadata and rich error details survive the wire.

use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use kem_testkit::service::TestService;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn start_serves_the_contract_over_grpc() {
    let svc = TestService::new("event").await;
    let service = kem_event::start(svc.ctx.clone(), test_config()).await.expect("start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = svc.ctx.shutdown.clone();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move { shutdown.wait().await }),
    );
    let mut client = EventServiceClient::connect(format!("http://{addr}")).await.expect("connect");

    let request = proto::CreateEventRequest { event: Some(sample_event("원격 생성")), request_id: String::new() };
    let event = client.create_event(req(OWNER, request)).await.expect("create").into_inner().event.unwrap_or_default();
    assert_eq!(event.owner_id, OWNER);

    let get = |owner: &str| req(owner, proto::GetEventRequest { event_id: event.event_id.clone() });
    assert_eq!(client.get_event(get(OWNER)).await.expect("get").into_inner().event, Some(event.clone()));
    let status = expect_code(client.get_event(get(OTHER)).await, Code::NotFound);
    assert_eq!(reason(&status), "EVENT_NOT_FOUND", "ErrorInfo crosses the wire");
    let status = expect_code(
        client.get_event(tonic::Request::new(proto::GetEventRequest { event_id: event.event_id.clone() })).await,
        Code::Unauthenticated,
    );
    assert!(status.message().contains("Bearer"), "{}", status.message());

    let publish =
        proto::PublishEventRequest { event_id: event.event_id.clone(), channels: vec![4], etag: String::new() };
    let status = expect_code(client.publish_event(req(OWNER, publish)).await, Code::FailedPrecondition);
    assert_eq!(
        (reason(&status), metadata(&status, "status")),
        ("INVALID_TRANSITION".into(), "EVENT_STATUS_DRAFT".into())
    );

    let bad = proto::CreateEventRequest { event: Some(proto::Event::default()), request_id: String::new() };
    let status = expect_code(client.create_event(req(OWNER, bad)).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["event.title", "event.objective", "event.period"]);

    svc.ctx.shutdown.trigger();
    let _ = server.await;
    svc.cleanup().await;
}
