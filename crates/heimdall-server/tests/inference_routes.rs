//! The inference routes end to end against the mock provider: both dialects,
//! both provider kinds, streaming and not, tool calls, what goes upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod inference_support;

use inference_support::{chat, data_events, start, weather_tool};
use serde_json::{Value, json};

#[tokio::test]
async fn openai_chat_passes_through_and_says_who_answered() {
    let env = start(json!({})).await;
    let mut body = chat("openai/gpt-4o-mini");
    body["seed"] = json!(42); // unknown to Heimdall: must reach the upstream
    body["fallbacks"] = json!(["anthropic/claude"]);
    let r = env
        .post_with(
            "/v1/chat/completions",
            body,
            &[
                ("authorization", "Bearer sk-client-own"),
                ("x-api-key", "zzz"),
                ("x-goog-api-key", "g"),
                ("api-key", "a"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["x-heimdall-provider"], "openai/gpt-4o-mini");
    assert_eq!(
        r.body["extra_fields"],
        json!({"provider": "openai", "model_requested": "openai/gpt-4o-mini", "model_used": "gpt-4o-mini"})
    );
    assert!(
        r.body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 3
    );
    assert_eq!(r.body["usage"]["completion_tokens"], 16);
    let up = env.last("/v1/chat/completions");
    let sent = up.json();
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["seed"], 42);
    assert!(sent.get("fallbacks").is_none());
    assert_eq!(
        up.header("authorization").as_deref(),
        Some("Bearer sk-openai-upstream-key-1")
    );
    for h in ["x-api-key", "x-goog-api-key", "api-key", "x-bf-vk"] {
        assert!(up.header(h).is_none(), "{h} went upstream");
    }
}

#[tokio::test]
async fn openai_stream_asks_for_usage_and_hides_it_unless_asked() {
    let env = start(json!({})).await;
    let mut body = chat("openai/gpt-4o-mini");
    body["stream"] = json!(true);
    let (status, text) = env.stream("/v1/chat/completions", body.clone(), &[]).await;
    assert_eq!(status, 200);
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        env.last("/v1/chat/completions").json()["stream_options"]["include_usage"],
        true
    );
    let events = data_events(&text);
    assert!(
        events
            .iter()
            .all(|e| !e["choices"].as_array().unwrap().is_empty()),
        "usage chunk leaked"
    );
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(content.starts_with("Mock answer"));

    body["stream_options"] = json!({"include_usage": true});
    let (_, text) = env.stream("/v1/chat/completions", body, &[]).await;
    let last = data_events(&text).pop().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 16);
}

#[tokio::test]
async fn openai_request_is_translated_for_an_anthropic_provider() {
    let env = start(json!({})).await;
    let body = json!({
        "model": "anthropic/claude-3-5-haiku", "max_tokens": 100,
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
        ],
        "tools": weather_tool()
    });
    let r = env.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let up = env.last("/v1/messages");
    assert_eq!(
        up.header("x-api-key").as_deref(),
        Some("sk-ant-upstream-key-1")
    );
    assert!(up.header("anthropic-version").is_some());
    let sent = up.json();
    assert_eq!(sent["system"], "sys");
    assert_eq!(
        sent["messages"][0]["content"][1]["source"]["type"],
        "base64"
    );
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    let msg = &r.body["choices"][0];
    assert_eq!(msg["finish_reason"], "tool_calls");
    let call = &msg["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert!(r.body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // streamed: tool call pieces arrive as OpenAI deltas
    let mut streamed = body;
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let (status, text) = env.stream("/v1/chat/completions", streamed, &[]).await;
    assert_eq!(status, 200);
    let events = data_events(&text);
    let args: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(
        events
            .iter()
            .any(|e| e["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert!(
        events.last().unwrap()["usage"]["completion_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn anthropic_request_is_translated_for_an_openai_provider() {
    let env = start(json!({})).await;
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 50, "system": "sys",
        "messages": [{"role": "user", "content": "what's the weather"}], "tools": [
            {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]});
    let r = env.post("/anthropic/v1/messages", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = env.last("/v1/chat/completions").json();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "sys"})
    );
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(r.body["type"], "message");
    assert_eq!(r.body["stop_reason"], "tool_use");
    assert_eq!(r.body["content"][0]["type"], "tool_use");
    assert_eq!(r.body["content"][0]["input"], json!({"city": "Paris"}));
    assert!(r.body["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let mut streamed = body;
    streamed["stream"] = json!(true);
    streamed.as_object_mut().unwrap().remove("tools");
    let (status, text) = env.stream("/anthropic/v1/messages", streamed, &[]).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let deltas: String = data_events(&text)
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert!(deltas.starts_with("Mock answer"));
    let md = data_events(&text)
        .into_iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(md["usage"]["output_tokens"], 16);
}

#[tokio::test]
async fn anthropic_native_passes_through_and_streams_events() {
    let env = start(json!({})).await;
    let body = json!({"model": "claude-3-5-haiku", "max_tokens": 20, "thinking_extra": {"x": 1},
        "messages": [{"role": "user", "content": "hi"}]});
    let r = env
        .post_with(
            "/anthropic/v1/messages",
            body.clone(),
            &[
                ("anthropic-version", "2023-06-01"),
                ("x-api-key", "sk-ant-client"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.headers["x-heimdall-provider"],
        "anthropic/claude-3-5-haiku"
    );
    let up = env.last("/v1/messages");
    assert_eq!(up.json()["thinking_extra"], json!({"x": 1}));
    assert_eq!(
        up.header("x-api-key").as_deref(),
        Some("sk-ant-upstream-key-1")
    );
    assert_eq!(r.body["stop_reason"], "end_turn");
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let (_, text) = env.stream("/anthropic/v1/messages", streamed, &[]).await;
    assert!(text.contains("event: ping"));
    assert!(
        text.trim_end()
            .ends_with("data: {\"type\":\"message_stop\"}")
    );
}

#[tokio::test]
async fn openai_alias_defaults_to_openai_and_embeddings_and_models_work() {
    let env = start(json!({})).await;
    let r = env
        .post("/openai/v1/chat/completions", chat("gpt-4o-mini"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["x-heimdall-provider"], "openai/gpt-4o-mini");
    let r = env
        .post(
            "/v1/embeddings",
            json!({"model": "openai/text-embedding-3-small", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert!(r.body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let r = env
        .post(
            "/v1/embeddings",
            json!({"model": "anthropic/x", "input": "a"}),
        )
        .await;
    assert_eq!(r.status, 400, "anthropic has no embeddings: {}", r.text);
    // model lists are fetched in the background; poll until they arrive
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = env
            .server
            .client
            .get(env.server.url("/v1/models"))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        if ids.contains(&"openai/gpt-4o-mini") && ids.contains(&"anthropic/claude-3-5-haiku-latest")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "models never listed: {ids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bad_bodies_are_400s_that_name_the_field_and_never_reach_the_upstream() {
    let env = start(json!({})).await;
    let cases = [
        // a repeated key is refused rather than silently resolved
        (
            r#"{"model": "openai/gpt-4o-mini", "model": "x", "messages": []}"#,
            Some("model"),
            "duplicate field",
        ),
        (
            r#"[{"model": "openai/gpt-4o-mini"}]"#,
            None,
            "must be a JSON object",
        ),
        (
            r#"{"model": "openai/gpt-4o-mini", "messages": 5}"#,
            Some("messages"),
            "expected shape at messages",
        ),
        (
            r#"{"model": 7, "messages": []}"#,
            Some("model"),
            "must be a string",
        ),
        (
            r#"{"model": "openai/gpt-4o-mini", "fallbacks": [1], "messages": []}"#,
            Some("fallbacks"),
            "fallbacks",
        ),
        (
            r#"{"model": "openai/gpt-4o-mini", "messages": ["#,
            None,
            "not valid JSON",
        ),
    ];
    for (body, param, says) in cases {
        let r = env.post_raw("/v1/chat/completions", body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["type"], "invalid_request", "{body}");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {}",
            r.text
        );
        if let Some(p) = param {
            assert_eq!(r.body["error"]["param"], p, "{body}: {}", r.text);
        }
    }
    assert!(
        env.mock
            .requests()
            .iter()
            .all(|r| r.path != "/v1/chat/completions"),
        "a bad body reached the upstream"
    );
}
