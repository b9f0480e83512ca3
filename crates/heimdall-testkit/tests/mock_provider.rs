//! Behaviour of the mock provider itself: formats, usage, forced errors, recording.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heimdall_testkit::mock::{MockOptions, MockProvider};
use serde_json::{Value, json};

#[tokio::test]
async fn openai_chat_reports_usage_from_options_and_body() {
    let m = MockProvider::start(MockOptions {
        tokens: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let body =
        json!({"model": "x", "messages": [{"role": "user", "content": "hello"}]}).to_string();
    let resp: Value = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", m.base_url))
        .header("authorization", "Bearer sk-upstream")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["usage"]["completion_tokens"], 5);
    assert_eq!(
        resp["usage"]["prompt_tokens"],
        (body.len() as u64).div_ceil(4)
    );
    let last = m.last_request().unwrap();
    assert_eq!(
        last.header("authorization").as_deref(),
        Some("Bearer sk-upstream")
    );
    assert_eq!(last.json()["model"], "x");
}

#[tokio::test]
async fn stream_sends_usage_chunk_only_when_asked() {
    let m = MockProvider::start(MockOptions {
        tokens: 4,
        chunks: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    for (ask, expect) in [(false, false), (true, true)] {
        let text = client
            .post(format!("{}/v1/chat/completions", m.base_url))
            .json(&json!({"model": "x", "messages": [], "stream": true, "stream_options": {"include_usage": ask}}))
            .send().await.unwrap().text().await.unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert_eq!(text.contains("\"choices\":[]"), expect);
        assert_eq!(text.matches("\"content\":\"").count(), 3); // role chunk + 2 content chunks
    }
    assert_eq!(m.completed_streams(), 2);
}

#[tokio::test]
async fn forced_status_and_scripted_failures() {
    let m = MockProvider::start(MockOptions::default()).await.unwrap();
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/messages", m.base_url))
        .header("x-mock-status", "529")
        .json(&json!({"model": "c", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 529);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "overloaded_error"
    );
    m.fail_next(1, 503);
    let url = format!("{}/v1/models", m.base_url);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(m.request_count(), 3);
}

#[tokio::test]
async fn anthropic_stream_has_the_full_event_sequence() {
    let m = MockProvider::start(MockOptions::default()).await.unwrap();
    let text = reqwest::Client::new()
        .post(format!("{}/v1/messages", m.base_url))
        .json(&json!({"model": "c", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send().await.unwrap().text().await.unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"message_delta"));
}

#[tokio::test]
async fn cut_stream_breaks_the_connection() {
    let m = MockProvider::start(MockOptions::default()).await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", m.base_url))
        .header("x-mock-cut-after", "2")
        .json(&json!({"model": "x", "messages": [], "stream": true}))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.is_err());
}
