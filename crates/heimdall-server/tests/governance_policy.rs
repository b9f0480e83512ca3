//! Which policy governs a request over HTTP (governance.md §3–§5): template changes reach copies only when propagated (with or without `reset_usage`), budget overrides raise the limit at admission, the earliest admitting copy governs, `/v1/models` lists only what the caller's copies grant, and fallbacks pass governance entry by entry — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod governance {
    pub use super::governance_support::*;
    pub use chrono::Duration;
    pub use heimdall_testkit::{Reply, TestDb, store_test};
    pub use serde_json::{Value, json};
    pub use std::collections::BTreeSet;

    const MINI: &str = "openai/gpt-4o-mini";
    const HAIKU: &str = "anthropic/claude-3-5-haiku";

    async fn update_template(env: &Env, id: i64, body: Value) {
        let r = env
            .server
            .put(&g(&format!("/access-profiles/{id}")), body)
            .await;
        assert_eq!(r.status, 200, "update template {id}: {}", r.text);
    }

    async fn propagate(env: &Env, id: i64, body: Value) -> Value {
        let r = env
            .server
            .post(&g(&format!("/access-profiles/{id}/propagate")), body)
            .await;
        assert_eq!(r.status, 200, "propagate {id}: {}", r.text);
        r.body
    }

    /// Sends chats until one is refused; returns how many passed and the refusal.
    async fn until_refused(env: &Env, key: &str, model: &str) -> (usize, Reply) {
        for n in 0..50 {
            let r = env.chat(key, model).await;
            if r.status != 200 {
                return (n, r);
            }
        }
        panic!("never refused");
    }

    store_test!(
        a_template_change_reaches_copies_only_when_propagated,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = env
                .member(
                    "Ann",
                    json!({
                        "name": "Eng",
                        "provider_configs": [{"provider_name": "openai", "all_models_allowed": false,
                            "allowed_models": ["gpt-4o-mini", "gpt-4.1"]}],
                        "rate_limit": {"request_max_limit": 2, "request_reset_duration": "1h"}
                    }),
                )
                .await;
            let (n, r) = until_refused(&env, &m.key, MINI).await;
            assert_eq!(n, 2);
            assert_denial(&r, 429, "request_limited");

            // The template now allows 5 a hour and no longer gpt-4.1.
            update_template(
                &env,
                m.profile,
                json!({
                    "rate_limit": {"request_max_limit": 5, "request_reset_duration": "1h"},
                    "provider_configs": [{"provider_name": "openai", "all_models_allowed": false,
                        "allowed_models": ["gpt-4o-mini"]}]
                }),
            )
            .await;
            let c = env.copy(&m.user, m.profile).await;
            assert_eq!(c["rate_limit"]["request_max_limit"], 2);
            assert_eq!(c["rate_limit"]["request_current_usage"], 2);
            let msg = assert_denial(&env.chat(&m.key, MINI).await, 429, "request_limited");
            assert!(
                msg.contains("2 of 2"),
                "the copy's own limit still applies: {msg}"
            );
            // gpt-4.1 is still the copy's to use (a denial of limits, not of access).
            assert_denial(
                &env.chat(&m.key, "openai/gpt-4.1").await,
                429,
                "request_limited",
            );

            // Propagated: the new limit applies, the matched half keeps its usage.
            let out = propagate(&env, m.profile, json!({"fields": ["rate_limit"]})).await;
            assert_eq!(out["affected_users"], 1);
            let c = env.copy(&m.user, m.profile).await;
            assert_eq!(c["rate_limit"]["request_max_limit"], 5);
            assert_eq!(c["rate_limit"]["request_current_usage"], 2);
            let (n, r) = until_refused(&env, &m.key, MINI).await;
            assert_eq!(n, 3);
            let msg = assert_denial(&r, 429, "request_limited");
            assert!(msg.contains("5 of 5"), "{msg}");
            // Access was not propagated: gpt-4.1 is still granted (and limited).
            assert_denial(
                &env.chat(&m.key, "openai/gpt-4.1").await,
                429,
                "request_limited",
            );
            propagate(&env, m.profile, json!({"fields": ["provider_configs"]})).await;
            assert_denial(
                &env.chat(&m.key, "openai/gpt-4.1").await,
                403,
                "model_blocked",
            );
            env.server.stop().await;
        }
    );

    store_test!(
        propagation_with_reset_usage_zeroes_the_live_counter,
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
                            "rate_limit": {"request_max_limit": 3, "request_reset_duration": "1h"}
                        }),
                    ),
                )
                .await;
            let (n, r) = until_refused(&env, &m.key, MINI).await;
            assert_eq!(n, 2);
            assert_denial(&r, 402, "budget_exceeded");

            // Dry run first: nothing moves.
            let out = propagate(
                &env,
                m.profile,
                json!({"fields": ["budgets"], "reset_usage": true, "dry_run": true}),
            )
            .await;
            assert_eq!(out["applied"], false);
            assert_denial(&env.chat(&m.key, MINI).await, 402, "budget_exceeded");

            propagate(
                &env,
                m.profile,
                json!({"fields": ["budgets"], "reset_usage": true}),
            )
            .await;
            let c = env.copy(&m.user, m.profile).await;
            assert_eq!(c["budgets"][0]["current_usage"], 0.0);
            // Only the propagated field was reset: requests keep their count.
            assert_eq!(c["rate_limit"]["request_current_usage"], 2);
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_usd(env.budget_used(&m, 0).await, ANSWER_USD, "after reset");
            assert_denial(&env.chat(&m.key, MINI).await, 429, "request_limited");

            propagate(
                &env,
                m.profile,
                json!({"fields": ["rate_limit"], "reset_usage": true}),
            )
            .await;
            assert_eq!(env.requests_used(&m).await, 0);
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            // The reset is kept by the store as well.
            let env = env.restart().await;
            assert_eq!(env.requests_used(&m).await, 1);
            assert_usd(env.budget_used(&m, 0).await, 0.1, "after restart");
            env.server.stop().await;
        }
    );

    store_test!(
        a_budget_override_raises_the_effective_limit_at_admission,
        |db: TestDb| async move {
            let env = start(db).await;
            env.test_price("openai", "gpt-4o-mini").await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Eng",
                        json!({"budgets": [{"max_limit": 0.1, "reset_duration": "1d"}]}),
                    ),
                )
                .await;
            let budget = env.copy(&m.user, m.profile).await["budgets"][0]["id"]
                .as_str()
                .unwrap()
                .to_string();
            let path = g(&format!(
                "/users/{}/access-profiles/{}/budgets/{budget}/override",
                m.user, m.profile
            ));
            let (n, _) = until_refused(&env, &m.key, MINI).await;
            assert_eq!(n, 2);

            let r = env
                .server
                .put(&path, json!({"amount": 0.1, "mode": "forever"}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["effective_max_limit"], 0.2);
            let (n, r) = until_refused(&env, &m.key, MINI).await;
            assert_eq!(n, 2, "two more answers fit under the raised limit");
            let msg = assert_denial(&r, 402, "budget_exceeded");
            assert!(msg.contains("0.2000 of 0.2000 USD"), "{msg}");
            let q = env.quota(&m.key).await;
            assert_eq!(
                q.body["access_profiles"][0]["budgets"][0]["effective_max_limit"],
                0.2
            );

            // Removed: back to the template's limit.
            let r = env.server.delete(&path).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let msg = assert_denial(&env.chat(&m.key, MINI).await, 402, "budget_exceeded");
            assert!(msg.contains("of 0.1000 USD"), "{msg}");

            // One cycle: the current window only.
            let r = env
                .server
                .put(
                    &path,
                    json!({"amount": 0.05, "mode": "cycles", "cycles": 1}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["effective_max_limit"], 0.15);
            env.advance(Duration::days(1));
            let (n, r) = until_refused(&env, &m.key, MINI).await;
            assert_eq!(n, 2, "the override ended with its window");
            let msg = assert_denial(&r, 402, "budget_exceeded");
            assert!(msg.contains("0.1000 of 0.1000 USD"), "{msg}");
            env.server.stop().await;
        }
    );

    store_test!(
        the_earliest_copy_whose_limits_admit_governs_the_request,
        |db: TestDb| async move {
            let env = start(db).await;
            let first = env
                .template(openai_profile(
                    "First",
                    json!({"rate_limit": {"request_max_limit": 1, "request_reset_duration": "1h"}}),
                ))
                .await;
            let second = env
                .template(json!({
                    "name": "Second",
                    "provider_configs": [
                        {"provider_name": "openai", "all_models_allowed": true},
                        {"provider_name": "anthropic", "all_models_allowed": true}
                    ],
                    "rate_limit": {"request_max_limit": 2, "request_reset_duration": "1h"}
                }))
                .await;
            let user = env.user("Ann").await;
            let (key, _) = env.assign(&user, first).await;
            env.advance(Duration::seconds(5));
            env.assign(&user, second).await;
            let used = |p: i64| {
                let user = user.clone();
                let env = &env;
                async move { env.copy(&user, p).await["rate_limit"]["request_current_usage"].clone() }
            };

            // Anthropic: only the second copy grants it.
            assert_eq!(env.chat(&key, HAIKU).await.status, 200);
            assert_eq!(
                (used(first).await, used(second).await),
                (json!(0), json!(1))
            );
            // OpenAI: the first copy, until its limit is spent.
            assert_eq!(env.chat(&key, MINI).await.status, 200);
            assert_eq!(
                (used(first).await, used(second).await),
                (json!(1), json!(1))
            );
            assert_eq!(env.chat(&key, MINI).await.status, 200);
            assert_eq!(
                (used(first).await, used(second).await),
                (json!(1), json!(2))
            );
            // None admits: the earliest granting copy's error.
            let msg = assert_denial(&env.chat(&key, MINI).await, 429, "request_limited");
            assert!(msg.contains("\"First\"") && msg.contains("1 of 1"), "{msg}");
            env.server.stop().await;
        }
    );

    async fn model_ids(env: &Env, key: Option<&str>) -> (Reply, BTreeSet<String>) {
        let r = env.get_with_key("/v1/models", key).await;
        let ids = r.body["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        (r, ids)
    }

    store_test!(
        models_lists_only_what_the_callers_copies_grant,
        |db: TestDb| async move {
            let env = start(db).await;
            let wide = env
                .member(
                    "Ann",
                    json!({
                        "name": "Wide",
                        "provider_configs": [
                            {"provider_name": "openai", "all_models_allowed": false,
                             "allowed_models": ["gpt-4o-mini", "regex:gpt-4\\.1.*"]},
                            {"provider_name": "anthropic", "all_models_allowed": true}
                        ]
                    }),
                )
                .await;
            let (r, ids) = model_ids(&env, Some(&wide.key)).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let openai: BTreeSet<&str> = ids
                .iter()
                .filter_map(|i| i.strip_prefix("openai/"))
                .collect();
            assert_eq!(
                openai,
                BTreeSet::from(["gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o-mini"]),
                "exact entries and the price table's models matching the regex"
            );
            for shipped in ["claude-3-5-haiku", "claude-sonnet-4-5", "claude-opus-4-1"] {
                assert!(ids.contains(&format!("anthropic/{shipped}")), "{ids:?}");
            }
            assert!(
                ids.iter()
                    .all(|i| i.starts_with("openai/") || i.starts_with("anthropic/")),
                "no provider without a provider config: {ids:?}"
            );

            // Two copies, one expired: only the live one counts.
            let narrow = env
                .template(json!({
                    "name": "Narrow",
                    "provider_configs": [{"provider_name": "openai", "all_models_allowed": false,
                        "allowed_models": ["gpt-4o-mini"]}]
                }))
                .await;
            let groq = env
                .template(json!({
                    "name": "Groq",
                    "provider_configs": [{"provider_name": "groq", "all_models_allowed": true}]
                }))
                .await;
            let bob = env.user("Bob").await;
            let (key, _) = env.assign(&bob, narrow).await;
            env.assign(&bob, groq).await;
            let r = env
                .server
                .put(
                    &g(&format!("/users/{bob}/access-profiles/{groq}")),
                    json!({"expires_at": secs(t0() + Duration::minutes(1))}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let (_, ids) = model_ids(&env, Some(&key)).await;
            assert!(ids.contains("openai/gpt-4o-mini"));
            assert!(ids.iter().any(|i| i.starts_with("groq/")), "{ids:?}");
            env.advance(Duration::minutes(1));
            let (_, ids) = model_ids(&env, Some(&key)).await;
            assert_eq!(ids, BTreeSet::from(["openai/gpt-4o-mini".to_string()]));

            // The key rules apply to the list too.
            let (r, _) = model_ids(&env, None).await;
            assert_denial(&r, 401, "virtual_key_required");
            let (r, _) = model_ids(&env, Some("sk-bf-notakeynotakeynotakeynotakey00")).await;
            assert_denial(&r, 401, "virtual_key_not_found");
            env.server.stop().await;
        }
    );

    store_test!(
        fallbacks_the_caller_may_not_use_are_skipped,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = env
                .member(
                    "Ann",
                    json!({
                        "name": "Eng",
                        "provider_configs": [
                            {"provider_name": "openai", "all_models_allowed": false,
                             "allowed_models": ["gpt-4o-mini", "gpt-4.1"],
                             "rate_limit": {"request_max_limit": 3, "request_reset_duration": "1h"}},
                            {"provider_name": "anthropic", "all_models_allowed": true}
                        ],
                        "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1h"}
                    }),
                )
                .await;
            let with = |model: &str, fallbacks: Value| {
                let mut b = chat_body(model);
                b["fallbacks"] = fallbacks;
                b
            };
            let path = "/v1/chat/completions";

            // A blocked primary and a blocked fallback are skipped; the next answers.
            let before = env.upstream_chats();
            let r = env
                .call(
                    path,
                    Some(&m.key),
                    &with("groq/llama", json!(["openai/gpt-4o", MINI])),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(header(&r.headers, "x-heimdall-provider"), Some(MINI));
            assert_eq!(
                env.upstream_chats(),
                before + 1,
                "nothing blocked was tried"
            );
            assert!(r.headers.get("x-ratelimit-limit-requests").is_some());

            // Nothing usable: the first denial.
            let r = env
                .call(
                    path,
                    Some(&m.key),
                    &with("groq/llama", json!(["openai/gpt-4o"])),
                )
                .await;
            let msg = assert_denial(&r, 403, "provider_blocked");
            assert!(msg.contains("\"groq\""), "{msg}");

            // A failing primary falls back past a blocked entry to a usable one;
            // only the answering attempt is counted.
            env.mock.fail_next(1, 500);
            let r = env
                .call(
                    path,
                    Some(&m.key),
                    &with(MINI, json!(["groq/llama", "openai/gpt-4.1"])),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(
                header(&r.headers, "x-heimdall-provider"),
                Some("openai/gpt-4.1")
            );
            assert_eq!(env.requests_used(&m).await, 2);

            // A failing primary whose only fallback is blocked: the upstream error.
            env.mock.fail_next(1, 500);
            let r = env
                .call(path, Some(&m.key), &with(MINI, json!(["groq/llama"])))
                .await;
            assert_eq!(r.status, 500, "{}", r.text);
            assert_eq!(r.body["type"], "provider_error");
            assert_eq!(env.requests_used(&m).await, 2);

            // Limits count too: the OpenAI provider limit (3) is spent now, so
            // OpenAI entries are skipped and Anthropic answers.
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_denial(&env.chat(&m.key, MINI).await, 429, "request_limited");
            let r = env
                .call(path, Some(&m.key), &with(MINI, json!([HAIKU])))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(header(&r.headers, "x-heimdall-provider"), Some(HAIKU));
            let c = env.copy(&m.user, m.profile).await;
            assert_eq!(
                c["provider_configs"][0]["rate_limit"]["request_current_usage"],
                3
            );
            assert_eq!(c["rate_limit"]["request_current_usage"], 4);
            env.server.stop().await;
        }
    );
}
