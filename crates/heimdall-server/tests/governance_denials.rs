//! Every governance denial over HTTP with the mock provider (governance.md §1–§4, §8): status, types, messages naming the limit, usage and reset, `Retry-After`, the order of checks, and Anthropic's error shape — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod governance {
    pub use super::governance_support::*;
    pub use chrono::Duration;
    pub use heimdall_server::config::UnpricedModels;
    pub use heimdall_testkit::{TestDb, store_test};
    pub use serde_json::json;

    const MINI: &str = "openai/gpt-4o-mini";

    /// Posts raw bytes as a chat request, with a Bearer key when given.
    async fn raw_chat(env: &Env, key: Option<String>, body: Vec<u8>) -> heimdall_testkit::Reply {
        let s = &env.server;
        let mut req = s
            .client
            .post(s.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        heimdall_testkit::Reply::read(req.send().await.unwrap()).await
    }

    /// A member limited to two requests a minute.
    async fn two_a_minute(env: &Env) -> Member {
        env.member(
            "Ann",
            openai_profile(
                "Eng",
                json!({"rate_limit": {"request_max_limit": 2, "request_reset_duration": "1m"}}),
            ),
        )
        .await
    }

    store_test!(
        no_key_is_401_virtual_key_required,
        |db: TestDb| async move {
            let env = start(db).await;
            two_a_minute(&env).await;
            let body = chat_body(MINI);
            for headers in [
                vec![],
                // A client's own provider key is not a virtual key.
                vec![("authorization", "Bearer sk-openai-client-own-key")],
                vec![("x-api-key", "sk-ant-client-own")],
            ] {
                let r = env
                    .call_with("/v1/chat/completions", None, &body, &headers)
                    .await;
                let msg = assert_denial(&r, 401, "virtual_key_required");
                assert!(msg.contains("x-bf-vk") && msg.contains("Bearer"), "{msg}");
            }
            assert_eq!(env.upstream_chats(), 0);
            env.server.stop().await;
        }
    );

    store_test!(
        without_require_virtual_key_a_keyless_request_is_not_governed,
        |db: TestDb| async move {
            let env = start_with(db, mock_options(), |c| {
                c.governance.require_virtual_key = false;
            })
            .await;
            let r = env
                .call("/v1/chat/completions", None, &chat_body(MINI))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            for h in [
                "x-ratelimit-limit-requests",
                "x-ratelimit-limit-tokens",
                "x-heimdall-budget-remaining",
            ] {
                assert!(r.headers.get(h).is_none(), "{h} on an ungoverned answer");
            }
            // A key that is sent is still checked.
            let r = env
                .call(
                    "/v1/chat/completions",
                    Some("sk-bf-doesnotexist0000000000000000000"),
                    &chat_body(MINI),
                )
                .await;
            assert_denial(&r, 401, "virtual_key_not_found");
            env.server.stop().await;
        }
    );

    store_test!(
        unknown_deleted_and_rotated_away_keys_are_401_virtual_key_not_found,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = two_a_minute(&env).await;
            let s = &env.server;
            let body = chat_body(MINI);

            let unknown = format!("sk-bf-{}", "Z".repeat(40));
            let r = env
                .call("/v1/chat/completions", Some(&unknown), &body)
                .await;
            let msg = assert_denial(&r, 401, "virtual_key_not_found");
            assert!(msg.contains("not found"), "{msg}");
            // x-bf-vk always counts as a key, whatever it looks like.
            let r = env
                .call_with(
                    "/v1/chat/completions",
                    None,
                    &body,
                    &[("x-bf-vk", "anything")],
                )
                .await;
            assert_denial(&r, 401, "virtual_key_not_found");

            // An extra key works, then is deleted.
            let r = s
                .post(
                    &g(&format!("/users/{}/virtual-keys", m.user)),
                    json!({"name": "ci"}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let extra = r.body["virtual_key"]["value"].as_str().unwrap().to_string();
            let extra_id = r.body["virtual_key"]["id"].as_str().unwrap().to_string();
            assert_eq!(env.chat(&extra, MINI).await.status, 200);
            let r = s
                .delete(&g(&format!("/users/{}/virtual-keys/{extra_id}", m.user)))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_denial(&env.chat(&extra, MINI).await, 401, "virtual_key_not_found");

            // Rotation without grace: the old value is gone, the new one works.
            let r = s
                .post(&g(&format!("/virtual-keys/{}/rotate", m.key_id)), json!({}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let new = r.body["virtual_key"]["value"].as_str().unwrap().to_string();
            assert_denial(&env.chat(&m.key, MINI).await, 401, "virtual_key_not_found");
            assert_eq!(env.chat(&new, MINI).await.status, 200);
            env.server.stop().await;
        }
    );

    store_test!(
        inactive_and_expired_keys_are_403_virtual_key_blocked,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = two_a_minute(&env).await;
            let s = &env.server;
            let key_path = g(&format!("/virtual-keys/{}", m.key_id));

            let r = s.put(&key_path, json!({"is_active": false})).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let msg = assert_denial(&env.chat(&m.key, MINI).await, 403, "virtual_key_blocked");
            assert!(msg.contains("inactive"), "{msg}");

            let r = s
                .put(
                    &key_path,
                    json!({"is_active": true, "expires_at": secs(t0() + Duration::hours(1))}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);

            env.advance(Duration::hours(1));
            let msg = assert_denial(&env.chat(&m.key, MINI).await, 403, "virtual_key_blocked");
            assert!(msg.contains("expired"), "{msg}");

            // Inactive is checked before expired.
            s.put(&key_path, json!({"is_active": false})).await;
            let msg = assert_denial(&env.chat(&m.key, MINI).await, 403, "virtual_key_blocked");
            assert!(
                msg.contains("inactive") && !msg.contains("expired"),
                "{msg}"
            );
            assert_eq!(env.upstream_chats(), 1);
            env.server.stop().await;
        }
    );

    store_test!(
        a_user_whose_only_copy_expired_or_was_deactivated_is_403_virtual_key_blocked,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = two_a_minute(&env).await;
            let s = &env.server;
            let copy_path = g(&format!("/users/{}/access-profiles/{}", m.user, m.profile));
            let r = s
                .put(
                    &copy_path,
                    json!({"expires_at": secs(t0() + Duration::minutes(30))}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);

            env.advance(Duration::minutes(30));
            let msg = assert_denial(&env.chat(&m.key, MINI).await, 403, "virtual_key_blocked");
            assert!(msg.contains("no active access profile"), "{msg}");
            let r = env
                .call(
                    "/anthropic/v1/messages",
                    Some(&m.key),
                    &messages_body("claude-3-5-haiku"),
                )
                .await;
            assert_anthropic_denial(&r, 403, "virtual_key_blocked");

            // Lifting the expiry brings it back; deactivating the copy blocks again.
            let r = s.put(&copy_path, json!({"expires_at": null})).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            let r = s.put(&copy_path, json!({"is_active": false})).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let msg = assert_denial(&env.chat(&m.key, MINI).await, 403, "virtual_key_blocked");
            assert!(msg.contains("no active access profile"), "{msg}");
            assert_eq!(env.upstream_chats(), 2);
            env.server.stop().await;
        }
    );

    store_test!(
        a_provider_no_copy_configures_is_403_provider_blocked,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = two_a_minute(&env).await;
            for (model, provider) in [
                ("anthropic/claude-3-5-haiku", "anthropic"),
                ("groq/meta-llama/llama-3.1-8b", "groq"),
            ] {
                let msg = assert_denial(&env.chat(&m.key, model).await, 403, "provider_blocked");
                assert!(msg.contains(&format!("\"{provider}\"")), "{msg}");
            }
            assert_eq!(env.upstream_chats(), 0);
            env.server.stop().await;
        }
    );

    store_test!(
        models_outside_exact_and_regex_rules_are_403_model_blocked,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = env
                .member(
                    "Ann",
                    json!({
                        "name": "Narrow",
                        "provider_configs": [
                            {"provider_name": "openai", "all_models_allowed": false,
                             "allowed_models": ["gpt-4o-mini", "regex:gpt-4\\.1(-mini)?"]},
                            {"provider_name": "anthropic", "all_models_allowed": false, "allowed_models": []}
                        ]
                    }),
                )
                .await;
            for model in ["gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "GPT-4.1-MINI"] {
                let r = env.chat(&m.key, &format!("openai/{model}")).await;
                assert_eq!(r.status, 200, "{model} is granted: {}", r.text);
            }
            for model in [
                "gpt-4o",        // not listed
                "GPT-4o-mini",   // exact entries are case-sensitive
                "gpt-4.1-nano",  // the regex must match the whole name
                "xgpt-4.1",      // …from the start
                "gpt-4o-mini-2", // exact means exact
            ] {
                let r = env.chat(&m.key, &format!("openai/{model}")).await;
                let msg = assert_denial(&r, 403, "model_blocked");
                assert!(msg.contains(&format!("\"{model}\"")), "{msg}");
                assert!(msg.contains("\"openai\""), "{msg}");
            }
            // A provider config with no models grants none of them.
            let r = env.chat(&m.key, "anthropic/claude-3-5-haiku").await;
            assert_denial(&r, 403, "model_blocked");
            assert_eq!(env.upstream_chats(), 4);
            env.server.stop().await;
        }
    );

    store_test!(
        an_unpriced_model_is_403_model_unpriced_under_deny_for_budgeted_copies,
        |db: TestDb| async move {
            let env = start_with(db, mock_options(), |c| {
                c.governance.unpriced_models = UnpricedModels::Deny;
            })
            .await;
            let budgeted = env
                .member(
                    "Ann",
                    openai_profile(
                        "Budgeted",
                        json!({"budgets": [{"max_limit": 10, "reset_duration": "1d"}]}),
                    ),
                )
                .await;
            let r = env.chat(&budgeted.key, "openai/mock-model").await;
            let msg = assert_denial(&r, 403, "model_unpriced");
            assert!(msg.contains("openai/mock-model"), "{msg}");
            // A priced model (shipped price) passes.
            assert_eq!(env.chat(&budgeted.key, MINI).await.status, 200);
            // A price set by the admin makes the model usable.
            env.test_price("openai", "mock-model").await;
            assert_eq!(
                env.chat(&budgeted.key, "openai/mock-model").await.status,
                200
            );

            // A provider budget counts too; a copy without any budget is not
            // concerned by the policy.
            let provider_budget = env
                .member(
                    "Bob",
                    json!({"name": "ProviderBudget", "provider_configs": [{
                        "provider_name": "openai", "all_models_allowed": true,
                        "budgets": [{"max_limit": 1, "reset_duration": "1d"}]}]}),
                )
                .await;
            let r = env.chat(&provider_budget.key, "openai/other-model").await;
            assert_denial(&r, 403, "model_unpriced");
            let unbudgeted = env
                .member(
                    "Cid",
                    openai_profile(
                        "RateOnly",
                        json!({"rate_limit": {"request_max_limit": 5, "request_reset_duration": "1m"}}),
                    ),
                )
                .await;
            let r = env.chat(&unbudgeted.key, "openai/other-model").await;
            assert_eq!(r.status, 200, "{}", r.text);
            env.server.stop().await;
        }
    );

    store_test!(
        an_exhausted_budget_is_402_budget_exceeded_with_the_spec_message,
        |db: TestDb| async move {
            let env = start(db).await;
            env.test_price("openai", "gpt-4o-mini").await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Engineering",
                        json!({"budgets": [{"max_limit": 0.1, "reset_duration": "1d"}]}),
                    ),
                )
                .await;
            // $0.05 per answer: two fit, the third finds the budget spent.
            for _ in 0..2 {
                assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            }
            let r = env.chat(&m.key, MINI).await;
            let msg = assert_denial(&r, 402, "budget_exceeded");
            assert_eq!(
                msg,
                "budget exceeded: profile \"Engineering\" total 1d budget 0.1000 of 0.1000 USD used, resets 2026-03-03T09:00:00Z"
            );
            assert_eq!(env.upstream_chats(), 2);

            // Calendar-aligned in a time zone: resets at the next local midnight.
            let c = env
                .member(
                    "Bob",
                    json!({
                        "name": "Berlin",
                        "calendar_aligned": true,
                        "timezone": "Europe/Berlin",
                        "provider_configs": [{
                            "provider_name": "openai", "all_models_allowed": true,
                            "budgets": [{"max_limit": 0.05, "reset_duration": "1d"}]
                        }]
                    }),
                )
                .await;
            assert_eq!(env.chat(&c.key, MINI).await.status, 200);
            let msg = assert_denial(&env.chat(&c.key, MINI).await, 402, "budget_exceeded");
            assert_eq!(
                msg,
                "budget exceeded: profile \"Berlin\" provider openai 1d budget 0.0500 of 0.0500 USD used, resets 2026-03-02T23:00:00Z"
            );
            env.server.stop().await;
        }
    );

    store_test!(
        an_exhausted_request_limit_is_429_request_limited_with_retry_after,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = two_a_minute(&env).await;
            for _ in 0..2 {
                assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            }
            let r = env.chat(&m.key, MINI).await;
            let msg = assert_denial(&r, 429, "request_limited");
            assert_eq!(retry_after(&r), 60);
            for part in [
                "request limit",
                "\"Eng\"",
                "2 of 2",
                "1m",
                "resets 2026-03-02T09:01:00Z",
            ] {
                assert!(msg.contains(part), "message should name {part:?}: {msg}");
            }
            env.advance(Duration::seconds(45));
            let r = env.chat(&m.key, MINI).await;
            assert_denial(&r, 429, "request_limited");
            assert_eq!(retry_after(&r), 15);
            // The window ends: requests pass again.
            env.advance(Duration::seconds(15));
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_eq!(env.upstream_chats(), 3);
            env.server.stop().await;
        }
    );

    store_test!(
        an_exhausted_token_limit_is_429_token_limited,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Eng",
                        json!({"rate_limit": {
                            "token_max_limit": 50, "token_reset_duration": "1h",
                            "request_max_limit": 5, "request_reset_duration": "1m"}}),
                    ),
                )
                .await;
            // 30 tokens per answer: 0 → 30 → 60.
            for _ in 0..2 {
                assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            }
            let r = env.chat(&m.key, MINI).await;
            let msg = assert_denial(&r, 429, "token_limited");
            assert_eq!(retry_after(&r), 3600);
            for part in [
                "token limit",
                "50 of 50",
                "1h",
                "resets 2026-03-02T10:00:00Z",
            ] {
                assert!(msg.contains(part), "message should name {part:?}: {msg}");
            }
            assert!(!msg.contains("request limit"), "{msg}");
            env.server.stop().await;
        }
    );

    store_test!(
        both_halves_exhausted_is_429_rate_limited,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Eng",
                        json!({"rate_limit": {
                            "token_max_limit": 50, "token_reset_duration": "1h",
                            "request_max_limit": 2, "request_reset_duration": "1m"}}),
                    ),
                )
                .await;
            for _ in 0..2 {
                assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            }
            let r = env.chat(&m.key, MINI).await;
            let msg = assert_denial(&r, 429, "rate_limited");
            // Both must reset before a request can pass: the later one.
            assert_eq!(retry_after(&r), 3600);
            for part in [
                "request limit",
                "2 of 2",
                "token limit",
                "50 of 50",
                "resets 2026-03-02T09:01:00Z",
                "resets 2026-03-02T10:00:00Z",
            ] {
                assert!(msg.contains(part), "message should name {part:?}: {msg}");
            }
            // After a minute only the token half is left.
            env.advance(Duration::minutes(1));
            let r = env.chat(&m.key, MINI).await;
            assert_denial(&r, 429, "token_limited");
            assert_eq!(retry_after(&r), 3540);
            env.server.stop().await;
        }
    );

    store_test!(
        a_budget_denial_wins_over_a_rate_limit_denial,
        |db: TestDb| async move {
            let env = start(db).await;
            env.test_price("openai", "gpt-4o-mini").await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Eng",
                        json!({
                            "budgets": [{"max_limit": 0.1, "reset_duration": "1d"}],
                            "rate_limit": {"request_max_limit": 2, "request_reset_duration": "1m"}
                        }),
                    ),
                )
                .await;
            for _ in 0..2 {
                assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            }
            let r = env.chat(&m.key, MINI).await;
            let msg = assert_denial(&r, 402, "budget_exceeded");
            assert!(msg.starts_with("budget exceeded: "), "{msg}");
            env.server.stop().await;
        }
    );

    store_test!(
        identity_and_body_and_access_are_checked_before_limits,
        |db: TestDb| async move {
            let env = start_with(db, mock_options(), |c| {
                c.server.max_body_bytes = 4096;
            })
            .await;
            env.test_price("openai", "gpt-4o-mini").await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Eng",
                        json!({
                            "budgets": [{"max_limit": 0.05, "reset_duration": "1d"}],
                            "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1m"}
                        }),
                    ),
                )
                .await;
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_denial(&env.chat(&m.key, MINI).await, 402, "budget_exceeded");
            let s = &env.server;
            let raw = |key: Option<String>, body: Vec<u8>| raw_chat(&env, key, body);

            // 1. size before the key; 2. the key before the body.
            let big = vec![b' '; 5000];
            let r = raw(None, big).await;
            assert_eq!(r.status, 413, "{}", r.text);
            let r = raw(None, b"{not json".to_vec()).await;
            assert_denial(&r, 401, "virtual_key_required");
            // 3. the body (and the provider) before access and limits.
            let r = raw(Some(m.key.clone()), b"{not json".to_vec()).await;
            assert_eq!(r.status, 400, "{}", r.text);
            assert_eq!(r.body["type"], "invalid_request");
            let r = env.chat(&m.key, "nowhere/some-model").await;
            assert_eq!(r.status, 400, "{}", r.text);
            assert_eq!(r.body["type"], "invalid_request");
            // 4. access before limits: the exhausted user learns nothing of them.
            let r = env.chat(&m.key, "anthropic/claude-3-5-haiku").await;
            assert_denial(&r, 403, "provider_blocked");
            assert!(r.headers.get("retry-after").is_none());

            // A revoked key never learns about limits.
            s.put(
                &g(&format!("/virtual-keys/{}", m.key_id)),
                json!({"is_active": false}),
            )
            .await;
            let r = env.chat(&m.key, MINI).await;
            let msg = assert_denial(&r, 403, "virtual_key_blocked");
            for word in ["budget", "limit", "USD", "resets"] {
                assert!(!msg.contains(word), "a revoked key learns {word:?}: {msg}");
            }
            assert!(r.headers.get("retry-after").is_none());
            assert!(r.headers.get("x-heimdall-budget-remaining").is_none());
            s.delete(&g(&format!("/users/{}", m.user))).await;
            let r = env.chat(&m.key, MINI).await;
            let msg = assert_denial(&r, 401, "virtual_key_not_found");
            assert!(!msg.contains("budget"), "{msg}");

            // The active copies are step 4: after the body's 400s.
            let n = env
                .member(
                    "Bob",
                    openai_profile(
                        "Short",
                        json!({"rate_limit": {"request_max_limit": 1, "request_reset_duration": "1m"}}),
                    ),
                )
                .await;
            s.put(
                &g(&format!("/users/{}/access-profiles/{}", n.user, n.profile)),
                json!({"is_active": false}),
            )
            .await;
            let r = raw(Some(n.key.clone()), b"{not json".to_vec()).await;
            assert_eq!(r.status, 400, "{}", r.text);
            let r = env.chat(&n.key, MINI).await;
            assert_denial(&r, 403, "virtual_key_blocked");
            assert_eq!(env.upstream_chats(), 1);
            env.server.stop().await;
        }
    );

    store_test!(
        anthropic_route_denials_use_anthropic_error_shape,
        |db: TestDb| async move {
            let env = start(db).await;
            env.test_price("anthropic", "claude-3-5-haiku").await;
            let m = env
                .member(
                    "Ann",
                    json!({
                        "name": "Claude",
                        "provider_configs": [{"provider_name": "anthropic", "all_models_allowed": false,
                            "allowed_models": ["claude-3-5-haiku"]}],
                        "budgets": [{"max_limit": 0.1, "reset_duration": "1d"}],
                        "rate_limit": {"request_max_limit": 3, "request_reset_duration": "1m"}
                    }),
                )
                .await;
            let path = "/anthropic/v1/messages";
            let body = messages_body("claude-3-5-haiku");
            let r = env.call(path, None, &body).await;
            assert_anthropic_denial(&r, 401, "virtual_key_required");
            let r = env
                .call_with(
                    path,
                    None,
                    &body,
                    &[("x-api-key", "sk-bf-unknownunknownunknownunknown00")],
                )
                .await;
            assert_anthropic_denial(&r, 401, "virtual_key_not_found");
            let r = env
                .call_with(
                    path,
                    None,
                    &messages_body("claude-opus-4"),
                    &[("x-api-key", &m.key)],
                )
                .await;
            assert_anthropic_denial(&r, 403, "model_blocked");
            let r = env
                .call(path, Some(&m.key), &messages_body("openai/gpt-4o-mini"))
                .await;
            assert_anthropic_denial(&r, 403, "provider_blocked");
            // The Anthropic SDK sends its key in x-api-key.
            for _ in 0..2 {
                let r = env
                    .call_with(path, None, &body, &[("x-api-key", &m.key)])
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
            }
            let r = env.call(path, Some(&m.key), &body).await;
            let msg = assert_anthropic_denial(&r, 402, "budget_exceeded");
            assert_eq!(
                msg,
                "budget exceeded: profile \"Claude\" total 1d budget 0.1000 of 0.1000 USD used, resets 2026-03-03T09:00:00Z"
            );

            // A 429 keeps its Retry-After in Anthropic's shape too.
            let n = env
                .member(
                    "Bob",
                    json!({
                        "name": "OneAMinute",
                        "provider_configs": [{"provider_name": "anthropic", "all_models_allowed": true}],
                        "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1m"}
                    }),
                )
                .await;
            assert_eq!(env.call(path, Some(&n.key), &body).await.status, 200);
            let r = env.call(path, Some(&n.key), &body).await;
            let msg = assert_anthropic_denial(&r, 429, "request_limited");
            assert!(msg.contains("1 of 1"), "{msg}");
            assert_eq!(retry_after(&r), 60);
            env.server.stop().await;
        }
    );

    store_test!(
        keys_are_found_in_every_header_and_never_sent_upstream,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Eng",
                        json!({"rate_limit": {"request_max_limit": 100, "request_reset_duration": "1m"}}),
                    ),
                )
                .await;
            let bearer = format!("Bearer {}", m.key);
            let lower = format!("bEaReR {}", m.key);
            let body = chat_body(MINI);
            let mut sent = 0;
            for headers in [
                vec![("authorization", bearer.as_str())],
                vec![("authorization", lower.as_str())],
                vec![("x-bf-vk", m.key.as_str())],
                vec![("x-api-key", m.key.as_str())],
                vec![("x-goog-api-key", m.key.as_str())],
                vec![("api-key", m.key.as_str())],
                // A provider key in Authorization is skipped; the next header counts.
                vec![
                    ("authorization", "Bearer sk-openai-own"),
                    ("api-key", m.key.as_str()),
                ],
            ] {
                let r = env
                    .call_with("/v1/chat/completions", None, &body, &headers)
                    .await;
                assert_eq!(r.status, 200, "{headers:?}: {}", r.text);
                sent += 1;
                let up = env
                    .mock
                    .requests()
                    .into_iter()
                    .rev()
                    .find(|r| r.path == "/v1/chat/completions")
                    .unwrap();
                assert_eq!(
                    up.header("authorization").as_deref(),
                    Some("Bearer sk-openai-upstream-key-1")
                );
                for h in ["x-bf-vk", "x-api-key", "x-goog-api-key", "api-key"] {
                    assert!(up.header(h).is_none(), "{h} went upstream");
                }
                assert!(!format!("{:?}", up.headers).contains(&m.key));
            }
            assert_eq!(env.requests_used(&m).await, sent);
            // x-bf-vk wins over a valid key elsewhere.
            let r = env
                .call_with(
                    "/v1/chat/completions",
                    Some(&m.key),
                    &body,
                    &[("x-bf-vk", "sk-bf-not-a-real-key")],
                )
                .await;
            assert_denial(&r, 401, "virtual_key_not_found");
            env.server.stop().await;
        }
    );
}
