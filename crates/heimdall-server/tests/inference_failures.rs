//! Failure paths of the inference edge: fallbacks, retries, timeouts,
//! unreachable upstreams, disconnects, cut streams and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod inference_support;

use futures::StreamExt;
use heimdall_testkit::mock::MockOptions;
use inference_support::{chat, data_events, eventually, start, start_with};
use serde_json::json;

#[tokio::test]
async fn falls_back_after_a_500_and_after_a_429() {
    let env = start(json!({
        "broken": {"network_config": {"extra_headers": {"x-mock-status": "500"}}},
        "limited": {"network_config": {"extra_headers": {"x-mock-status": "429"}}},
    }))
    .await;
    let mut body = chat("broken/m1");
    body["fallbacks"] = json!(["limited/m2", "anthropic/m3"]);
    let r = env.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["x-heimdall-provider"], "anthropic/m3");
    assert_eq!(r.body["extra_fields"]["provider"], "anthropic");
    assert_eq!(r.body["extra_fields"]["model_used"], "m3");
    assert_eq!(r.body["extra_fields"]["model_requested"], "broken/m1");

    // every attempt fails: the client gets the last upstream error
    body["fallbacks"] = json!(["limited/m2"]);
    let r = env.post("/v1/chat/completions", body).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["type"], "provider_error");
    assert_eq!(r.body["is_bifrost_error"], false);
    assert_eq!(r.body["extra_fields"]["provider"], "limited");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("429"));
}

#[tokio::test]
async fn a_client_error_does_not_fall_back() {
    let env =
        start(json!({"bad": {"network_config": {"extra_headers": {"x-mock-status": "400"}}}}))
            .await;
    let mut body = chat("bad/m");
    body["fallbacks"] = json!(["openai/m"]);
    let r = env.post("/v1/chat/completions", body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["type"], "provider_error");
}

#[tokio::test]
async fn retries_with_another_key_then_succeeds() {
    let env = start(json!({"retrying": {
        "network_config": {"max_retries": 2, "retry_backoff_initial": 1, "retry_backoff_max": 5},
        "keys": [{"name": "a", "value": "sk-retry-key-aaaaaaaa"}, {"name": "b", "value": "sk-retry-key-bbbbbbbb"}]
    }}))
    .await;
    // let the background model-list fetches (one per provider) pass first
    eventually("model lists fetched", || {
        env.mock
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/models")
            .count()
            == 3
    })
    .await;
    env.mock.fail_next(2, 503);
    let before = env
        .mock
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .count();
    let r = env.post("/v1/chat/completions", chat("retrying/m")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let calls: Vec<String> = env
        .mock
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .skip(before)
        .map(|r| r.header("authorization").unwrap())
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_ne!(calls[0], calls[1], "a retry should prefer another key");
}

#[tokio::test]
async fn upstream_errors_keep_their_status_without_retries() {
    let env = start(json!({})).await;
    let r = env
        .post_with(
            "/v1/chat/completions",
            chat("openai/m"),
            &[("x-mock-status", "503")],
        )
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["type"], "provider_error");
    assert!(r.body["event_id"].as_str().unwrap().len() > 10);
    let r = env
        .post_with(
            "/anthropic/v1/messages",
            json!({"model": "c", "max_tokens": 5, "messages": []}),
            &[("x-mock-status", "529")],
        )
        .await;
    assert_eq!(r.status, 529);
    assert_eq!(r.body["type"], "error");
    assert_eq!(r.body["error"]["type"], "provider_error");
}

#[tokio::test]
async fn slow_upstream_is_a_504_and_unreachable_a_502() {
    let env = start(json!({
        "slow": {"network_config": {"default_request_timeout_in_seconds": 1}},
        "gone": {"network_config": {"base_url": "http://127.0.0.1:1"}},
    }))
    .await;
    let r = env
        .post_with(
            "/v1/chat/completions",
            chat("slow/m"),
            &[("x-mock-latency-ms", "3000")],
        )
        .await;
    assert_eq!(r.status, 504, "{}", r.text);
    assert_eq!(r.body["type"], "provider_timeout");
    let r = env.post("/v1/chat/completions", chat("gone/m")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(r.body["type"], "provider_unavailable");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let env = start_with(
        MockOptions {
            tokens: 200,
            ..Default::default()
        },
        json!({}),
        |_| {},
    )
    .await;
    let mut body = chat("openai/m");
    body["stream"] = json!(true);
    let resp = env
        .server
        .client
        .post(env.server.url("/v1/chat/completions"))
        .header("x-mock-chunk-delay-ms", "50")
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut bytes = resp.bytes_stream();
    let first = bytes.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(bytes);
    eventually("the mock to see the stream cancelled", || {
        env.mock.cancelled_streams() == 1
    })
    .await;
    assert_eq!(env.mock.completed_streams(), 0);
}

#[tokio::test]
async fn a_stream_cut_half_way_ends_with_an_error_event() {
    let env = start(json!({})).await;
    let mut body = chat("openai/m");
    body["stream"] = json!(true);
    let (status, text) = env
        .stream("/v1/chat/completions", body, &[("x-mock-cut-after", "3")])
        .await;
    assert_eq!(status, 200);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let last = data_events(&text).pop().unwrap();
    assert_eq!(last["type"], "provider_error");
    assert_eq!(last["status_code"], 502);

    let (_, text) = env
        .stream("/anthropic/v1/messages", json!({"model": "c", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]}), &[("x-mock-cut-after", "3")])
        .await;
    assert!(
        text.contains("event: error\ndata: {\"error\":{\"message\""),
        "{text}"
    );
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn bad_input_gets_clear_400s_and_413() {
    let env = start(json!({})).await;
    let url = env.server.url("/v1/chat/completions");
    let send = |body: Vec<u8>| {
        env.server
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = heimdall_testkit::Reply::read(send(b"{not json".to_vec()).await.unwrap()).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{}",
        r.text
    );
    let r = env
        .post("/v1/chat/completions", json!({"messages": []}))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model")
    );
    let r = env
        .post("/v1/chat/completions", json!({"model": 5, "messages": []}))
        .await;
    assert_eq!(r.status, 400);
    let r = env
        .post(
            "/v1/chat/completions",
            json!({"model": "openai/m", "messages": "hi"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected"),
        "{}",
        r.text
    );
    let r = env
        .post(
            "/v1/chat/completions",
            json!({"model": "nope/m", "messages": []}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown provider")
    );
    let r = env
        .post(
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "messages": []}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai/gpt-4o")
    );
    let r = env
        .post("/anthropic/v1/messages", json!({"messages": []}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["type"], "error");
    assert_eq!(r.body["error"]["type"], "invalid_request");

    let mut big = br#"{"model":"openai/m","messages":[{"role":"user","content":""#.to_vec();
    big.resize(40 * 1024 * 1024, b'a');
    big.extend_from_slice(br#""}]}"#);
    match send(big).await {
        Ok(resp) => assert_eq!(resp.status(), 413),
        // the server may close the connection before the client finishes sending
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // and the server still serves
    assert_eq!(
        env.post("/v1/chat/completions", chat("openai/m"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn keys_that_exclude_the_model_give_no_provider_key() {
    let env = start(json!({"picky": {"keys": [{"name": "a", "value": "sk-picky-key-123456", "models": ["only-this"]}]}})).await;
    let r = env.post("/v1/chat/completions", chat("picky/other")).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["type"], "no_provider_key");
    assert_eq!(
        env.post("/v1/chat/completions", chat("picky/only-this"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_virtual_key_is_required_by_default() {
    let env = start_with(MockOptions::default(), json!({}), |c| {
        c.governance.require_virtual_key = true
    })
    .await;
    let r = env.post("/v1/chat/completions", chat("openai/m")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["type"], "virtual_key_required");
    let r = env
        .post("/anthropic/v1/messages", json!({"model": "c"}))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["type"], "virtual_key_required");
    // 413 is checked before the key
    let big = vec![b' '; 33 * 1024 * 1024];
    if let Ok(resp) = env
        .server
        .client
        .post(env.server.url("/v1/chat/completions"))
        .body(big)
        .send()
        .await
    {
        assert_eq!(resp.status(), 413);
    }
}
