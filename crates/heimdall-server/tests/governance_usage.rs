//! Settlement and usage over HTTP (governance.md §4, §5, §7): streams charged in both formats, failed calls free, disconnects charged for what was generated, usage live in management reads and the quota route, windows resetting when the clock passes them, and usage kept across a restart — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod governance {
    pub use super::governance_support::*;
    pub use chrono::Duration;
    pub use futures::StreamExt;
    pub use heimdall_testkit::{TestDb, store_test};
    pub use serde_json::{Value, json};

    const MINI: &str = "openai/gpt-4o-mini";
    const HAIKU: &str = "anthropic/claude-3-5-haiku";

    /// Budget $10 a day, 100 requests a minute, 10000 tokens an hour, on
    /// OpenAI and Anthropic.
    fn metered(name: &str) -> Value {
        json!({
            "name": name,
            "provider_configs": [
                {"provider_name": "openai", "all_models_allowed": true},
                {"provider_name": "anthropic", "all_models_allowed": true,
                 "budgets": [{"max_limit": 5, "reset_duration": "1d"}]}
            ],
            "budgets": [{"max_limit": 10, "reset_duration": "1d"}],
            "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1m",
                           "token_max_limit": 10000, "token_reset_duration": "1h"}
        })
    }

    async fn priced(env: &Env) {
        env.test_price("openai", "gpt-4o-mini").await;
        env.test_price("anthropic", "claude-3-5-haiku").await;
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

    fn assert_usage(got: (f64, i64, i64), answers: i64) {
        assert_usd(got.0, answers as f64 * ANSWER_USD, "budget usage");
        assert_eq!(got.1, answers * TOKENS, "token usage");
        assert_eq!(got.2, answers, "request usage");
    }

    store_test!(
        openai_format_streams_are_charged_tokens_cost_and_a_request,
        |db: TestDb| async move {
            let env = start(db).await;
            priced(&env).await;
            let m = env.member("Ann", metered("Eng")).await;

            // Usage chunk not asked for: Heimdall asks for it, charges, hides it.
            let mut body = chat_body(MINI);
            body["stream"] = json!(true);
            let (status, _, text) = env.stream("/v1/chat/completions", &m.key, &body).await;
            assert_eq!(status, 200);
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
            assert!(data_events(&text).iter().all(|e| e["usage"].is_null()));
            assert_usage(usage(&env, &m).await, 1);

            // Asked for: charged the same.
            body["stream_options"] = json!({"include_usage": true});
            let (_, _, text) = env.stream("/v1/chat/completions", &m.key, &body).await;
            let last = data_events(&text).pop().unwrap();
            assert_eq!(last["usage"]["completion_tokens"], COMPLETION);
            assert_usage(usage(&env, &m).await, 2);

            // An OpenAI-format stream served by an Anthropic provider.
            let mut body = chat_body(HAIKU);
            body["stream"] = json!(true);
            let (status, _, text) = env.stream("/v1/chat/completions", &m.key, &body).await;
            assert_eq!(status, 200, "{text}");
            assert_usage(usage(&env, &m).await, 3);
            let c = env.copy(&m.user, m.profile).await;
            assert_usd(
                c["provider_configs"][1]["budgets"][0]["current_usage"]
                    .as_f64()
                    .unwrap(),
                ANSWER_USD,
                "the Anthropic provider budget counts Anthropic spend only",
            );
            env.server.stop().await;
        }
    );

    store_test!(
        anthropic_streams_are_charged_tokens_cost_and_a_request,
        |db: TestDb| async move {
            let env = start(db).await;
            priced(&env).await;
            let m = env.member("Ann", metered("Eng")).await;
            let mut body = messages_body("claude-3-5-haiku");
            body["stream"] = json!(true);
            let (status, headers, text) = env.stream("/anthropic/v1/messages", &m.key, &body).await;
            assert_eq!(status, 200, "{text}");
            assert!(text.contains("event: message_stop"), "{text}");
            assert!(headers.get("x-ratelimit-limit-tokens").is_some());
            assert_usage(usage(&env, &m).await, 1);

            // An Anthropic-format stream served by an OpenAI provider.
            let mut body = messages_body(MINI);
            body["stream"] = json!(true);
            let (status, _, text) = env.stream("/anthropic/v1/messages", &m.key, &body).await;
            assert_eq!(status, 200, "{text}");
            assert_usage(usage(&env, &m).await, 2);
            env.server.stop().await;
        }
    );

    store_test!(
        failed_upstream_calls_cost_nothing_and_release_their_reservation,
        |db: TestDb| async move {
            let env = start(db).await;
            priced(&env).await;
            let m = env
                .member(
                    "Ann",
                    json!({
                        "name": "One",
                        "provider_configs": [{"provider_name": "openai", "all_models_allowed": true}],
                        "budgets": [{"max_limit": 10, "reset_duration": "1d"}],
                        "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1m",
                                       "token_max_limit": 10000, "token_reset_duration": "1h"}
                    }),
                )
                .await;
            for path in ["/v1/chat/completions", "/anthropic/v1/messages"] {
                let r = env
                    .call_with(
                        path,
                        Some(&m.key),
                        &chat_body(MINI),
                        &[("x-mock-status", "500")],
                    )
                    .await;
                assert_eq!(r.status, 500, "{}", r.text);
                assert_eq!(r.body["error"]["type"], "provider_error", "{}", r.text);
                assert_usage(usage(&env, &m).await, 0);
            }
            let mut body = chat_body(MINI);
            body["stream"] = json!(true);
            let (status, _, _) = {
                let resp = env
                    .server
                    .client
                    .post(env.server.url("/v1/chat/completions"))
                    .bearer_auth(&m.key)
                    .header("x-mock-status", "503")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), (), resp.text().await.unwrap())
            };
            assert_eq!(status, 503);
            assert_usage(usage(&env, &m).await, 0);
            // The single request of the limit is still there to use.
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_usage(usage(&env, &m).await, 1);
            assert_denial(&env.chat(&m.key, MINI).await, 429, "request_limited");
            env.server.stop().await;
        }
    );

    store_test!(
        a_client_that_disconnects_mid_stream_is_charged_for_what_was_generated,
        |db: TestDb| async move {
            let env = start(db).await;
            priced(&env).await;
            let m = env.member("Ann", metered("Eng")).await;
            let mut body = chat_body(MINI);
            body["stream"] = json!(true);
            let resp = env
                .server
                .client
                .post(env.server.url("/v1/chat/completions"))
                .bearer_auth(&m.key)
                .header("x-mock-chunk-delay-ms", "100")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            // Read until some text has arrived, then go away.
            let mut chunks = resp.bytes_stream();
            let mut seen = String::new();
            while !seen.contains("\"content\":\"Mock") {
                let bytes = chunks.next().await.unwrap().unwrap();
                seen.push_str(&String::from_utf8_lossy(&bytes));
            }
            drop(chunks);
            // The server notices at its next write; then it settles.
            eventually("the cut stream to settle", || async {
                usage(&env, &m).await.2 > 0
            })
            .await;
            // No usage came from the provider: the prompt estimate and an
            // estimate of the text streamed so far, ceil(bytes / 4).
            let prompt = token_estimate(&body, 0) as i64;
            let (cost, tokens, requests) = usage(&env, &m).await;
            assert_eq!(requests, 1);
            assert!(
                tokens > prompt && tokens < prompt + COMPLETION as i64,
                "charged for the part generated: {tokens} tokens (prompt estimate {prompt})"
            );
            let expected =
                prompt as f64 * INPUT_PER_M / 1e6 + (tokens - prompt) as f64 * OUTPUT_PER_M / 1e6;
            assert_usd(cost, expected, "cost of the cut stream");
            env.server.stop().await;
        }
    );

    store_test!(
        an_anthropic_stream_left_midway_is_charged_at_least_the_text_streamed,
        |db: TestDb| async move {
            let env = start(db).await;
            priced(&env).await;
            let m = env.member("Ann", metered("Eng")).await;
            let mut body = messages_body("claude-3-5-haiku");
            body["stream"] = json!(true);
            let resp = env
                .server
                .client
                .post(env.server.url("/anthropic/v1/messages"))
                .bearer_auth(&m.key)
                .header("x-mock-chunk-delay-ms", "100")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            // message_start reports the input (and one output token); read
            // three words of text, then go away.
            let mut chunks = resp.bytes_stream();
            let mut seen = String::new();
            while seen.matches("\"text_delta\"").count() < 3 {
                let bytes = chunks.next().await.unwrap().unwrap();
                seen.push_str(&String::from_utf8_lossy(&bytes));
            }
            drop(chunks);
            eventually("the cut stream to settle", || async {
                usage(&env, &m).await.2 > 0
            })
            .await;
            // "Mock answer from" is 16 bytes: at least 4 output tokens.
            let (cost, tokens, _) = usage(&env, &m).await;
            let output = tokens - PROMPT as i64;
            assert!(
                (4..COMPLETION as i64).contains(&output),
                "charged {output} output tokens for at least three streamed words"
            );
            let expected = PROMPT as f64 * INPUT_PER_M / 1e6 + output as f64 * OUTPUT_PER_M / 1e6;
            assert_usd(cost, expected, "cost of the cut stream");
            env.server.stop().await;
        }
    );

    store_test!(
        usage_is_live_in_copies_and_quota_and_windows_reset_as_the_clock_passes_them,
        |db: TestDb| async move {
            let env = start(db).await;
            priced(&env).await;
            let m = env.member("Ann", metered("Eng")).await;
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_eq!(env.chat(&m.key, HAIKU).await.status, 200);

            // Read without any flush: live counters.
            let c = env.copy(&m.user, m.profile).await;
            let b = &c["budgets"][0];
            assert_usd(b["current_usage"].as_f64().unwrap(), 0.1, "total budget");
            assert_eq!(at(&b["last_reset"]), t0());
            assert_eq!(at(&b["next_reset_at"]), t0() + Duration::days(1));
            let pb = &c["provider_configs"][1]["budgets"][0];
            assert_usd(
                pb["current_usage"].as_f64().unwrap(),
                0.05,
                "anthropic budget",
            );
            let rl = &c["rate_limit"];
            assert_eq!(rl["request_current_usage"], 2);
            assert_eq!(rl["token_current_usage"], 2 * TOKENS);
            assert_eq!(at(&rl["request_last_reset"]), t0());
            assert_eq!(
                at(&rl["request_next_reset_at"]),
                t0() + Duration::minutes(1)
            );
            assert_eq!(at(&rl["token_next_reset_at"]), t0() + Duration::hours(1));

            let q = env.quota(&m.key).await;
            assert_eq!(q.status, 200, "{}", q.text);
            let ap = &q.body["access_profiles"][0];
            assert_eq!(ap["budgets"][0]["scope"], "total");
            assert_usd(
                ap["budgets"][0]["current_usage"].as_f64().unwrap(),
                0.1,
                "quota total",
            );
            assert_eq!(
                at(&ap["budgets"][0]["next_reset_at"]),
                t0() + Duration::days(1)
            );
            assert_eq!(ap["budgets"][1]["scope"], "provider:anthropic");
            assert_usd(
                ap["budgets"][1]["current_usage"].as_f64().unwrap(),
                0.05,
                "quota anthropic",
            );
            assert_eq!(ap["rate_limit"]["request_current_usage"], 2);
            assert_eq!(ap["rate_limit"]["token_current_usage"], 2 * TOKENS);
            assert_eq!(
                at(&ap["rate_limit"]["request_next_reset_at"]),
                t0() + Duration::minutes(1)
            );

            // A minute later the request window has reset, nothing else.
            env.advance(Duration::minutes(1));
            let (cost, tokens, requests) = usage(&env, &m).await;
            assert_eq!((tokens, requests), (2 * TOKENS, 0));
            assert_usd(cost, 0.1, "budget after a minute");
            let c = env.copy(&m.user, m.profile).await;
            assert_eq!(
                at(&c["rate_limit"]["request_last_reset"]),
                t0() + Duration::minutes(1)
            );
            assert_eq!(
                at(&c["rate_limit"]["request_next_reset_at"]),
                t0() + Duration::minutes(2)
            );
            // New usage lands in the new window.
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            let (_, tokens, requests) = usage(&env, &m).await;
            assert_eq!((tokens, requests), (3 * TOKENS, 1));

            env.advance(Duration::hours(1));
            let (cost, tokens, requests) = usage(&env, &m).await;
            assert_eq!((tokens, requests), (0, 0));
            assert_usd(cost, 0.15, "budget after an hour");
            let q = env.quota(&m.key).await;
            assert_eq!(
                q.body["access_profiles"][0]["rate_limit"]["token_current_usage"],
                0
            );

            env.advance(Duration::days(1));
            let c = env.copy(&m.user, m.profile).await;
            assert_eq!(c["budgets"][0]["current_usage"], 0.0);
            assert_eq!(at(&c["budgets"][0]["last_reset"]), t0() + Duration::days(1));
            assert_eq!(
                at(&c["budgets"][0]["next_reset_at"]),
                t0() + Duration::days(2)
            );
            let q = env.quota(&m.key).await;
            assert_eq!(
                q.body["access_profiles"][0]["budgets"][0]["current_usage"],
                0.0
            );
            assert_eq!(
                q.body["access_profiles"][0]["budgets"][1]["current_usage"],
                0.0
            );
            env.server.stop().await;
        }
    );

    store_test!(
        usage_is_written_behind_in_batches_of_what_changed,
        |db: TestDb| async move {
            // A long interval: only this test flushes.
            let env = start_with(db, mock_options(), |c| {
                c.governance.flush_interval = "1h".into();
            })
            .await;
            priced(&env).await;
            let m = env.member("Ann", metered("Eng")).await;
            let state = &env.server.state;
            let flush = || heimdall_server::governance::flush_now(state, false);
            flush().await.unwrap();
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            // Budget, tokens and requests of the copy: three counters, once.
            assert_eq!(flush().await.unwrap(), 3);
            assert_eq!(flush().await.unwrap(), 0, "nothing changed since");
            // A crash now loses nothing already flushed: a new node on the
            // same store (without the graceful flush) reads the two answers.
            let mut config = heimdall_testkit::TestServer::config(&env.db);
            config.governance.flush_interval = "1h".into();
            let other =
                heimdall_testkit::TestServer::start_with(config, Some(env.clock.clone())).await;
            let r = other
                .get(&g(&format!("/users/{}/access-profiles", m.user)))
                .await;
            let c = &r.body["access_profiles"][0];
            assert_eq!(c["rate_limit"]["request_current_usage"], 2, "{}", r.text);
            assert_eq!(c["rate_limit"]["token_current_usage"], 2 * TOKENS);
            assert_usd(
                c["budgets"][0]["current_usage"].as_f64().unwrap(),
                0.1,
                "flushed budget",
            );
            other.stop().await;
            env.server.stop().await;
        }
    );

    store_test!(
        a_restart_keeps_usage_and_still_enforces_it,
        |db: TestDb| async move {
            let env = start(db).await;
            priced(&env).await;
            let m = env
                .member(
                    "Ann",
                    json!({
                        "name": "Three",
                        "provider_configs": [{"provider_name": "openai", "all_models_allowed": true}],
                        "budgets": [{"max_limit": 10, "reset_duration": "1d"}],
                        "rate_limit": {"request_max_limit": 3, "request_reset_duration": "1h",
                                       "token_max_limit": 10000, "token_reset_duration": "1h"}
                    }),
                )
                .await;
            for _ in 0..2 {
                assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            }
            env.advance(Duration::minutes(10));
            let before = env.copy(&m.user, m.profile).await;

            let env = env.restart().await;
            let after = env.copy(&m.user, m.profile).await;
            assert_eq!(after["budgets"], before["budgets"]);
            assert_eq!(after["rate_limit"], before["rate_limit"]);
            assert_usage(usage(&env, &m).await, 2);
            // The price override is in the store too: the next answer costs the same.
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_usage(usage(&env, &m).await, 3);
            let r = env.chat(&m.key, MINI).await;
            let msg = assert_denial(&r, 429, "request_limited");
            assert!(msg.contains("3 of 3"), "{msg}");
            // The window kept its place: it resets an hour after it started.
            assert_eq!(retry_after(&r), 50 * 60);

            // A second restart, then the hour passes: the window resets.
            let env = env.restart().await;
            assert_usage(usage(&env, &m).await, 3);
            env.advance(Duration::minutes(50));
            let (cost, tokens, requests) = usage(&env, &m).await;
            assert_eq!((tokens, requests), (0, 0));
            assert_usd(cost, 0.15, "the daily budget keeps its usage");
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            env.server.stop().await;
        }
    );
}
