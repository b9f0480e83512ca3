//! The conformance suite every provider kind runs, as a macro.
//!
//! `provider_conformance!(module, kind, start)` expands to tokio tests that
//! drive an `Upstream` of `kind` against a server started by `start` (an
//! async expression giving `(guard, base_url)`; the guard keeps it alive).
//! The server must behave like Heimdall's mock provider: text answers with
//! usage, a tool call when tools are given, and `x-mock-status: N` forcing N.
//! The suite checks behaviour through the canonical types only, so it holds
//! for any kind. It must not depend on a particular server implementation.

/// Expands to the conformance tests for one provider kind. See the module doc.
#[macro_export]
macro_rules! provider_conformance {
    ($module:ident, $kind:expr, $start:expr) => {
        mod $module {
            #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
            use $crate::futures_reexport::StreamExt as _;
            use $crate::types::{ChatRequest, EmbeddingRequest};
            use $crate::{NetworkConfig, ProviderConfig, Upstream};

            async fn upstream() -> (impl Sized, Upstream) {
                let (guard, base_url) = $start.await;
                let config = ProviderConfig {
                    name: "conformance".into(),
                    kind: $kind,
                    network: NetworkConfig { base_url, ..NetworkConfig::default() },
                    keys: vec![],
                };
                (guard, Upstream::new(config).unwrap())
            }

            fn chat(stream: bool, tools: bool) -> ChatRequest {
                let mut body = serde_json::json!({
                    "model": "conformance-model",
                    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
                    "max_tokens": 32,
                    "stream": stream
                });
                if tools {
                    body["tools"] = serde_json::json!([{"type": "function", "function": {
                        "name": "get_weather", "description": "weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
                }
                serde_json::from_value(body).unwrap()
            }

            #[tokio::test]
            async fn chat_returns_text_and_usage() {
                let (_g, up) = upstream().await;
                let resp = up.chat(&chat(false, false), &Default::default()).await.unwrap();
                let text = resp.choices[0].message.content.as_ref().unwrap().text();
                assert!(!text.is_empty());
                assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("stop"));
                let usage = resp.usage.unwrap();
                assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
                assert_eq!(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
            }

            #[tokio::test]
            async fn chat_bytes_are_a_json_answer_with_its_usage() {
                let (_g, up) = upstream().await;
                let answer = up.chat_bytes(&chat(false, false), &Default::default()).await.unwrap();
                let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
                assert!(body["choices"][0]["message"]["content"].is_string());
                let usage = answer.usage.unwrap();
                assert_eq!(body["usage"]["completion_tokens"], usage.completion_tokens);
                assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
                assert!(!answer.has_extra_fields);
            }

            #[tokio::test]
            async fn chat_stream_yields_deltas_then_usage() {
                let (_g, up) = upstream().await;
                let mut s = up.chat_stream(&chat(true, false), &Default::default()).await.unwrap();
                let (mut text, mut usage, mut finish) = (String::new(), None, None);
                while let Some(ev) = s.next().await {
                    let ev = ev.unwrap();
                    for c in &ev.chunk.choices {
                        text.push_str(c.delta.content.as_deref().unwrap_or_default());
                        finish = finish.or(c.finish_reason.clone());
                    }
                    usage = usage.or(ev.chunk.usage.clone());
                }
                assert!(!text.is_empty());
                assert_eq!(finish.as_deref(), Some("stop"));
                assert!(usage.unwrap().completion_tokens > 0);
            }

            #[tokio::test]
            async fn tool_calls_come_back_with_json_arguments() {
                let (_g, up) = upstream().await;
                let resp = up.chat(&chat(false, true), &Default::default()).await.unwrap();
                assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("tool_calls"));
                let call = &resp.choices[0].message.tool_calls.as_ref().unwrap()[0];
                assert_eq!(call.function.name, "get_weather");
                let args: serde_json::Value = serde_json::from_str(&call.function.arguments).unwrap();
                assert!(args.is_object());
            }

            #[tokio::test]
            async fn tool_calls_stream_in_pieces() {
                let (_g, up) = upstream().await;
                let mut s = up.chat_stream(&chat(true, true), &Default::default()).await.unwrap();
                let (mut name, mut args, mut finish) = (None, String::new(), None);
                while let Some(ev) = s.next().await {
                    for c in &ev.unwrap().chunk.choices {
                        for t in c.delta.tool_calls.iter().flatten() {
                            let f = t.function.as_ref().unwrap();
                            name = name.or(f.name.clone());
                            args.push_str(f.arguments.as_deref().unwrap_or_default());
                        }
                        finish = finish.or(c.finish_reason.clone());
                    }
                }
                assert_eq!(name.as_deref(), Some("get_weather"));
                assert!(serde_json::from_str::<serde_json::Value>(&args).unwrap().is_object());
                assert_eq!(finish.as_deref(), Some("tool_calls"));
            }

            #[tokio::test]
            async fn anthropic_dialect_works_both_ways() {
                let (_g, up) = upstream().await;
                let req: $crate::anthropic::wire::MessagesRequest = serde_json::from_value(serde_json::json!({
                    "model": "conformance-model", "max_tokens": 32, "system": "be brief",
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
                })).unwrap();
                let resp = up.messages(&req, &Default::default()).await.unwrap();
                assert_eq!(resp.stop_reason.as_deref(), Some("end_turn"));
                assert!(resp.usage.output_tokens > 0);
                let mut s = up.messages_stream(&req, &Default::default()).await.unwrap();
                let mut names = Vec::new();
                while let Some(ev) = s.next().await {
                    names.push(ev.unwrap().name);
                }
                assert_eq!(names.first().map(String::as_str), Some("message_start"));
                assert_eq!(names.last().map(String::as_str), Some("message_stop"));
                assert!(names.iter().any(|n| n == "content_block_delta"));
            }

            #[tokio::test]
            async fn upstream_error_keeps_its_status() {
                let (_g, up) = upstream().await;
                let mut h = http::HeaderMap::new();
                h.insert("x-mock-status", http::HeaderValue::from_static("429"));
                let err = up.chat(&chat(false, false), &h).await.unwrap_err();
                assert_eq!(err.status(), 429);
                assert_eq!(err.error_type(), "provider_error");
                assert!(!err.to_string().is_empty());
            }

            #[tokio::test]
            async fn unreachable_upstream_is_provider_unavailable() {
                let config = ProviderConfig {
                    name: "gone".into(),
                    kind: $kind,
                    network: NetworkConfig { base_url: "http://127.0.0.1:1".into(), ..NetworkConfig::default() },
                    keys: vec![],
                };
                let err = Upstream::new(config).unwrap().chat(&chat(false, false), &Default::default()).await.unwrap_err();
                assert_eq!(err.status(), 502);
                assert_eq!(err.error_type(), "provider_unavailable");
            }

            #[tokio::test]
            async fn models_or_embeddings_answer_or_refuse_cleanly() {
                let (_g, up) = upstream().await;
                assert!(!up.list_models().await.unwrap().is_empty());
                let req: EmbeddingRequest = serde_json::from_value(serde_json::json!({"model": "e", "input": "hi"})).unwrap();
                match up.embeddings(&req, &Default::default()).await {
                    Ok(r) => assert!(r.usage.unwrap().prompt_tokens > 0),
                    Err(e) => assert_eq!(e.status(), 400),
                }
            }
        }
    };
}
