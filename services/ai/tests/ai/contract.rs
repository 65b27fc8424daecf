//! The contract server refuses what the real API refuses, and answers in the real shapes.

use serde_json::{Value, json};

use crate::claude::{API_KEY, ClaudeServer, VERSION};

async fn post(server: &ClaudeServer, key: Option<&str>, version: Option<&str>, body: &Value) -> (u16, Value) {
    let tls = kem_kit::external::tls_client_config(None).expect("TLS settings");
    let client = reqwest::Client::builder().tls_backend_preconfigured(tls).build().expect("client");
    let mut request = client.post(format!("{}/v1/messages", server.base_url())).json(body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    if let Some(version) = version {
        request = request.header("anthropic-version", version);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

fn body() -> Value {
    json!({
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "system": kem_ai::domain::prompt::TRENDS_TASK,
        "messages": [{"role": "user", "content": "hello\n{}"}]
    })
}

#[tokio::test]
async fn the_contract_server_is_as_strict_as_the_api() {
    let server = ClaudeServer::start().await;
    let (status, error) = post(&server, None, Some(VERSION), &body()).await;
    assert_eq!(status, 401);
    assert_eq!(
        (error["type"].as_str(), error["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );
    let (status, error) = post(&server, Some(API_KEY), None, &body()).await;
    assert_eq!((status, error["error"]["type"].as_str()), (400, Some("invalid_request_error")));
    let mut no_tokens = body();
    no_tokens.as_object_mut().expect("object").remove("max_tokens");
    assert_eq!(post(&server, Some(API_KEY), Some(VERSION), &no_tokens).await.0, 400);
    let mut assistant_first = body();
    assistant_first["messages"] = json!([{"role": "assistant", "content": "x"}]);
    assert_eq!(post(&server, Some(API_KEY), Some(VERSION), &assistant_first).await.0, 400);
    assert_eq!(server.total(), 0, "refused requests are not counted as model calls");

    let (status, message) = post(&server, Some(API_KEY), Some(VERSION), &body()).await;
    assert_eq!(status, 200);
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["type"], "text");
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["usage"]["input_tokens"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(server.total(), 1);
}
