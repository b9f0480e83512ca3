//! Streams that do not go as planned, over real HTTP, with their charges
//! read back through the management API (governance.md §4): an upstream
//! that answers a stream request with a whole JSON answer (streamed and
//! charged), with JSON that is no answer or with no events at all (502 or an
//! error event, free), and streams the upstream cuts or the timeout ends
//! after text was sent (charged for what was generated) — on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod streams {
    pub use super::governance_support::*;
    pub use heimdall_testkit::{TestDb, store_test};
    pub use serde_json::{Value, json};

    const MINI: &str = "openai/gpt-4o-mini";
    const HAIKU: &str = "anthropic/claude-3-5-haiku";

    /// A budget, a request limit and a token limit on every provider.
    fn metered() -> Value {
        let all = |p: &str| json!({"provider_name": p, "all_models_allowed": true});
        json!({
            "name": "Eng",
            "provider_configs": [all("openai"), all("anthropic"), all("slowai"), all("weird"), all("weirdant"), all("html")],
            "budgets": [{"max_limit": 10, "reset_duration": "1d"}],
            "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1m",
                           "token_max_limit": 100000, "token_reset_duration": "1h"}
        })
    }

    /// (budget USD, tokens, requests) of the member's copy.
    async fn usage(env: &Env, m: &Member) -> (f64, i64, i64) {
        let c = env.copy(&m.user, m.profile).await;
        (
            c["budgets"][0]["current_usage"].as_f64().unwrap(),
            c["rate_limit"]["token_current_usage"].as_i64().unwrap(),
            c["rate_limit"]["request_current_usage"].as_i64().unwrap(),
        )
    }

    /// An upstream on 127.0.0.1:0 that answers every request with 200,
    /// `content_type` and `body`.
    async fn fixed_upstream(content_type: &'static str, body: &'static str) -> String {
        let app = axum::Router::new()
            .fallback(move || async move { ([("content-type", content_type)], body) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// The governance set-up plus `slowai` (OpenAI kind, 1 s timeout, on the
    /// mock) and providers on upstreams that answer streams wrongly.
    async fn env_on(db: TestDb) -> Env {
        let json_no_answer = fixed_upstream("application/json", r#"{"foo": 1}"#).await;
        let html = fixed_upstream("text/html", "<html><body>hello</body></html>").await;
        let env = start_with(db, mock_options(), |c| {
            let mock = c.providers["openai"]["network_config"]["base_url"].clone();
            c.providers.insert(
                "slowai".into(),
                json!({"kind": "openai", "network_config": {"base_url": mock, "default_request_timeout_in_seconds": 1}}),
            );
            c.providers.insert(
                "weird".into(),
                json!({"kind": "openai", "network_config": {"base_url": json_no_answer}}),
            );
            c.providers.insert(
                "weirdant".into(),
                json!({"kind": "anthropic", "network_config": {"base_url": json_no_answer}}),
            );
            c.providers.insert(
                "html".into(),
                json!({"kind": "openai", "network_config": {"base_url": html}}),
            );
        })
        .await;
        for (p, m) in [
            ("openai", "gpt-4o-mini"),
            ("anthropic", "claude-3-5-haiku"),
            ("slowai", "gpt-4o-mini"),
            ("weird", "m"),
            ("weirdant", "m"),
            ("html", "m"),
        ] {
            env.test_price(p, m).await;
        }
        env
    }

    fn stream_body(model: &str) -> Value {
        let mut b = chat_body(model);
        b["stream"] = json!(true);
        b
    }

    fn anthropic_stream_body(model: &str) -> Value {
        let mut b = messages_body(model);
        b["stream"] = json!(true);
        b
    }

    /// Text of the OpenAI-format chunks of an SSE answer.
    fn chunk_text(text: &str) -> String {
        data_events(text)
            .iter()
            .filter_map(|e| {
                e["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Text of the `text_delta`s of an Anthropic SSE answer.
    fn delta_text(text: &str) -> String {
        data_events(text)
            .iter()
            .filter(|e| e["type"] == "content_block_delta")
            .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
            .collect()
    }

    store_test!(
        a_json_answer_to_a_stream_request_is_streamed_and_charged,
        |db: TestDb| async move {
            let env = env_on(db).await;
            let m = env.member("Ann", metered()).await;
            let ignore = [("x-mock-ignore-stream", "1")];
            // OpenAI format from an OpenAI-kind and from an Anthropic-kind upstream
            for model in [MINI, HAIKU] {
                let r = env
                    .call_with(
                        "/v1/chat/completions",
                        Some(&m.key),
                        &stream_body(model),
                        &ignore,
                    )
                    .await;
                assert_eq!(r.status, 200, "{model}: {}", r.text);
                assert_eq!(
                    header(&r.headers, "content-type"),
                    Some("text/event-stream")
                );
                assert!(r.text.ends_with("data: [DONE]\n\n"), "{}", r.text);
                assert!(
                    chunk_text(&r.text).starts_with("Mock answer"),
                    "{model}: {}",
                    r.text
                );
                // the usage chunk was not asked for: hidden
                assert!(
                    data_events(&r.text).iter().all(|e| e["usage"].is_null()),
                    "{}",
                    r.text
                );
            }
            // Anthropic format from both kinds
            for model in [HAIKU, MINI] {
                let r = env
                    .call_with(
                        "/anthropic/v1/messages",
                        Some(&m.key),
                        &anthropic_stream_body(model),
                        &ignore,
                    )
                    .await;
                assert_eq!(r.status, 200, "{model}: {}", r.text);
                assert!(
                    delta_text(&r.text).starts_with("Mock answer"),
                    "{model}: {}",
                    r.text
                );
                assert!(r.text.contains("event: message_stop"), "{}", r.text);
                let delta = data_events(&r.text)
                    .into_iter()
                    .find(|e| e["type"] == "message_delta")
                    .unwrap();
                assert_eq!(delta["usage"]["output_tokens"], COMPLETION, "{}", r.text);
            }
            // four answers, each charged its reported usage
            let (cost, tokens, requests) = usage(&env, &m).await;
            assert_eq!(requests, 4);
            assert_eq!(tokens, 4 * TOKENS);
            assert_usd(cost, 4.0 * ANSWER_USD, "budget usage");
        }
    );

    store_test!(
        a_stream_answer_that_is_no_answer_is_a_502_and_free,
        |db: TestDb| async move {
            let env = env_on(db).await;
            let m = env.member("Ann", metered()).await;
            // JSON that is not a chat completion: a 502 before any event
            for model in ["weird/m", "weirdant/m"] {
                let r = env
                    .call("/v1/chat/completions", Some(&m.key), &stream_body(model))
                    .await;
                assert_eq!(r.status, 502, "{model}: {}", r.text);
                assert_eq!(r.body["type"], "provider_error", "{}", r.text);
                assert_eq!(r.body["status_code"], 502);
                assert!(
                    r.body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("JSON"),
                    "{}",
                    r.text
                );
                let r = env
                    .call(
                        "/anthropic/v1/messages",
                        Some(&m.key),
                        &anthropic_stream_body(model),
                    )
                    .await;
                assert_eq!(r.status, 502, "{model}: {}", r.text);
                assert_eq!(r.body["type"], "error", "{}", r.text);
                assert_eq!(r.body["error"]["type"], "provider_error", "{}", r.text);
            }
            // a body that is not an event stream at all: never an empty success
            let r = env
                .call("/v1/chat/completions", Some(&m.key), &stream_body("html/m"))
                .await;
            let events = data_events(&r.text);
            assert_eq!(events.len(), 1, "{}", r.text);
            assert_eq!(events[0]["type"], "provider_error", "{}", r.text);
            assert_eq!(events[0]["status_code"], 502, "{}", r.text);
            let r = env
                .call(
                    "/anthropic/v1/messages",
                    Some(&m.key),
                    &anthropic_stream_body("html/m"),
                )
                .await;
            assert!(r.text.starts_with("event: error\n"), "{}", r.text);
            assert!(!r.text.contains("message_stop"), "{}", r.text);
            assert_eq!(usage(&env, &m).await, (0.0, 0, 0));
        }
    );

    store_test!(
        a_stream_the_upstream_cuts_is_charged_for_what_was_sent,
        |db: TestDb| async move {
            let env = env_on(db).await;
            let m = env.member("Ann", metered()).await;
            let body = stream_body(MINI);
            let r = env
                .call_with(
                    "/v1/chat/completions",
                    Some(&m.key),
                    &body,
                    &[("x-mock-cut-after", "3")],
                )
                .await;
            assert_eq!(r.status, 200);
            let last = data_events(&r.text).pop().unwrap();
            assert_eq!(last["type"], "provider_error", "{}", r.text);
            let sent = chunk_text(&r.text);
            assert!(!sent.is_empty(), "{}", r.text);
            // no usage came: the prompt estimate and the text sent, ceil(bytes / 4)
            let prompt = token_estimate(&body, 0);
            let completion = (sent.len() as u64).div_ceil(4);
            let (cost, tokens, requests) = usage(&env, &m).await;
            assert_eq!(tokens, (prompt + completion) as i64);
            assert_usd(
                cost,
                prompt as f64 * INPUT_PER_M / 1e6 + completion as f64 * OUTPUT_PER_M / 1e6,
                "budget usage",
            );
            // a failed upstream call is not counted as a request
            assert_eq!(requests, 0);

            // Anthropic format: the upstream reported the input at the start
            let r = env
                .call_with(
                    "/anthropic/v1/messages",
                    Some(&m.key),
                    &anthropic_stream_body(HAIKU),
                    // message_start, ping, content_block_start, two deltas
                    &[("x-mock-cut-after", "5")],
                )
                .await;
            assert!(r.text.contains("event: error\n"), "{}", r.text);
            let sent = delta_text(&r.text);
            assert!(!sent.is_empty(), "{}", r.text);
            let (_, after, _) = usage(&env, &m).await;
            let charged = after - tokens;
            let floor = PROMPT + (sent.len() as u64).div_ceil(4);
            assert!(
                charged >= floor as i64 && charged < TOKENS,
                "charged {charged}, expected at least {floor}: {}",
                r.text
            );
        }
    );

    store_test!(
        an_endless_stream_ended_by_the_timeout_is_charged_for_what_was_sent,
        |db: TestDb| async move {
            let env = env_on(db).await;
            let m = env.member("Ann", metered()).await;
            let body = stream_body("slowai/gpt-4o-mini");
            let r = env
                .call_with(
                    "/v1/chat/completions",
                    Some(&m.key),
                    &body,
                    &[("x-mock-tokens", "20000"), ("x-mock-chunk-delay-ms", "2")],
                )
                .await;
            assert_eq!(r.status, 200);
            let last = data_events(&r.text).pop().unwrap();
            assert_eq!(last["type"], "provider_timeout", "{}", r.text);
            let sent = chunk_text(&r.text);
            assert!(sent.len() > 100, "{}", sent.len());
            let prompt = token_estimate(&body, 0);
            let completion = (sent.len() as u64).div_ceil(4);
            let (cost, tokens, _) = usage(&env, &m).await;
            assert_eq!(tokens, (prompt + completion) as i64);
            assert!(cost > 0.0);
        }
    );
}
