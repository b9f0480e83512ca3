//! Prices and governance metrics over HTTP (governance.md §6, issue 5 item 7): `/api/pricing` lists shipped prices, sets and removes overrides (models with `/`), refuses bad prices and callers without admin credentials; prices decide what a request costs (by provider name, then kind; unpriced models cost 0 under `allow`); `/metrics` counts denials, cost and unpriced requests — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod governance {
    pub use super::governance_support::*;
    pub use heimdall_testkit::{ADMIN_TOKEN, Reply, TestDb, TestServer, store_test};
    pub use serde_json::{Value, json};

    const MINI: &str = "openai/gpt-4o-mini";

    async fn prices(s: &TestServer) -> Vec<Value> {
        let r = s.get("/api/pricing").await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["prices"].as_array().unwrap().clone()
    }

    fn row<'a>(rows: &'a [Value], provider: &str, model: &str) -> Vec<&'a Value> {
        rows.iter()
            .filter(|r| r["provider"] == provider && r["model"] == model)
            .collect()
    }

    fn assert_price(v: &Value, input: f64, output: f64, cached: Option<f64>, source: &str) {
        assert_usd(
            v["input_cost_per_million_tokens"].as_f64().unwrap(),
            input,
            "input",
        );
        assert_usd(
            v["output_cost_per_million_tokens"].as_f64().unwrap(),
            output,
            "output",
        );
        match cached {
            Some(c) => assert_usd(
                v["cached_input_cost_per_million_tokens"].as_f64().unwrap(),
                c,
                "cached",
            ),
            None => assert_eq!(
                v["cached_input_cost_per_million_tokens"],
                Value::Null,
                "{v}"
            ),
        }
        assert_eq!(v["source"], source, "{v}");
    }

    /// Sends a request without admin credentials (optionally another bearer).
    async fn anonymous(s: &TestServer, method: &str, path: &str, bearer: Option<&str>) -> Reply {
        let mut req = s
            .client
            .request(method.parse().unwrap(), s.url(path))
            .header("content-type", "application/json")
            .body(r#"{"input_cost_per_million_tokens": 1, "output_cost_per_million_tokens": 1}"#);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    /// The value of a Prometheus sample whose line starts with `name{` and
    /// carries every label in `labels` (0 when absent).
    fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| labels.iter().all(|x| l.contains(x)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn metrics(s: &TestServer) -> String {
        let r = s.get("/metrics").await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.text
    }

    store_test!(
        pricing_lists_shipped_prices_and_overrides_replace_them_until_deleted,
        |db: TestDb| async move {
            let env = start(db).await;
            let s = &env.server;
            let rows = prices(s).await;
            for r in &rows {
                for f in [
                    "provider",
                    "model",
                    "input_cost_per_million_tokens",
                    "output_cost_per_million_tokens",
                    "cached_input_cost_per_million_tokens",
                    "source",
                ] {
                    assert!(r.get(f).is_some(), "{f} missing in {r}");
                }
                assert_eq!(r["source"], "shipped", "nothing overridden yet: {r}");
            }
            let mini = row(&rows, "openai", "gpt-4o-mini");
            assert_eq!(mini.len(), 1);
            assert_price(mini[0], 0.15, 0.6, Some(0.075), "shipped");
            assert_eq!(row(&rows, "anthropic", "claude-3-5-haiku").len(), 1);

            // Override a shipped price.
            let r = s
                .put(
                    "/api/pricing/openai/gpt-4o-mini",
                    json!({"input_cost_per_million_tokens": 1, "output_cost_per_million_tokens": 2}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["provider"], "openai");
            assert_eq!(r.body["model"], "gpt-4o-mini");
            assert_price(&r.body, 1.0, 2.0, None, "override");
            let rows = prices(s).await;
            let mini = row(&rows, "openai", "gpt-4o-mini");
            assert_eq!(mini.len(), 1, "an override replaces the shipped row");
            assert_price(mini[0], 1.0, 2.0, None, "override");

            // A new model whose name contains '/'.
            let path = "/api/pricing/groq/meta-llama/llama-3.1-8b";
            let r = s
                .put(
                    path,
                    json!({"input_cost_per_million_tokens": 0.05, "output_cost_per_million_tokens": 0.08,
                           "cached_input_cost_per_million_tokens": 0.01}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["provider"], "groq");
            assert_eq!(r.body["model"], "meta-llama/llama-3.1-8b");
            assert_price(&r.body, 0.05, 0.08, Some(0.01), "override");
            // Zero is a price.
            let r = s
                .put(
                    "/api/pricing/anthropic/claude-free",
                    json!({"input_cost_per_million_tokens": 0, "output_cost_per_million_tokens": 0}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);

            // Overrides are stored.
            let env = env.restart().await;
            let s = &env.server;
            let rows = prices(s).await;
            assert_price(
                row(&rows, "openai", "gpt-4o-mini")[0],
                1.0,
                2.0,
                None,
                "override",
            );
            assert_price(
                row(&rows, "groq", "meta-llama/llama-3.1-8b")[0],
                0.05,
                0.08,
                Some(0.01),
                "override",
            );

            // Back to the shipped price; a second delete has nothing to remove.
            let r = s.delete("/api/pricing/openai/gpt-4o-mini").await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_price(&r.body, 0.15, 0.6, Some(0.075), "shipped");
            let rows = prices(s).await;
            assert_price(
                row(&rows, "openai", "gpt-4o-mini")[0],
                0.15,
                0.6,
                Some(0.075),
                "shipped",
            );
            let r = s.delete("/api/pricing/openai/gpt-4o-mini").await;
            assert_denial(&r, 404, "not_found");
            let r = s.delete(path).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert!(row(&prices(s).await, "groq", "meta-llama/llama-3.1-8b").is_empty());
            assert_denial(&s.delete(path).await, 404, "not_found");
            // A shipped price that was never overridden has nothing to remove.
            assert_denial(
                &s.delete("/api/pricing/openai/gpt-4o").await,
                404,
                "not_found",
            );
            env.server.stop().await;
        }
    );

    store_test!(
        pricing_refuses_bad_prices_and_callers_without_admin_credentials,
        |db: TestDb| async move {
            let env = start(db).await;
            let s = &env.server;
            let path = "/api/pricing/openai/gpt-4o-mini";
            for (body, field) in [
                (
                    json!({"input_cost_per_million_tokens": -1, "output_cost_per_million_tokens": 1}),
                    "input_cost_per_million_tokens",
                ),
                (
                    json!({"input_cost_per_million_tokens": 1, "output_cost_per_million_tokens": -0.5}),
                    "output_cost_per_million_tokens",
                ),
                (
                    json!({"input_cost_per_million_tokens": 1, "output_cost_per_million_tokens": 1,
                        "cached_input_cost_per_million_tokens": -0.1}),
                    "cached_input_cost_per_million_tokens",
                ),
                (
                    json!({"input_cost_per_million_tokens": 1}),
                    "output_cost_per_million_tokens",
                ),
                (
                    json!({"input_cost_per_million_tokens": "cheap", "output_cost_per_million_tokens": 1}),
                    "input_cost_per_million_tokens",
                ),
            ] {
                let r = s.put(path, body.clone()).await;
                let msg = assert_denial(&r, 400, "invalid_request");
                assert!(msg.contains(field), "{body}: {msg}");
            }
            let r = s
                .put(
                    path,
                    json!({"input_cost_per_million_tokens": 1, "output_cost_per_million_tokens": 1, "currency": "EUR"}),
                )
                .await;
            assert_denial(&r, 400, "invalid_request");
            // Nothing was stored.
            let rows = prices(s).await;
            assert_eq!(row(&rows, "openai", "gpt-4o-mini")[0]["source"], "shipped");

            let m = env.member("Ann", openai_profile("Eng", json!({}))).await;
            for (method, p) in [("GET", "/api/pricing"), ("PUT", path), ("DELETE", path)] {
                for bearer in [None, Some("wrong-token-0123456789"), Some(m.key.as_str())] {
                    let r = anonymous(s, method, p, bearer).await;
                    assert_eq!(r.status, 401, "{method} {p} with {bearer:?}: {}", r.text);
                    assert_eq!(r.body["status_code"], 401, "{}", r.text);
                }
            }
            let rows = prices(s).await;
            assert_eq!(row(&rows, "openai", "gpt-4o-mini")[0]["source"], "shipped");
            // The admin token works on the same request.
            let r = anonymous(s, "PUT", path, Some(ADMIN_TOKEN)).await;
            assert_eq!(r.status, 200, "{}", r.text);
            env.server.stop().await;
        }
    );

    store_test!(
        prices_decide_what_a_request_costs_by_provider_name_then_kind,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = env
                .member(
                    "Ann",
                    json!({
                        "name": "Eng",
                        "provider_configs": [
                            {"provider_name": "openai", "all_models_allowed": true},
                            {"provider_name": "groq", "all_models_allowed": true}
                        ],
                        "budgets": [{"max_limit": 10, "reset_duration": "1d"}]
                    }),
                )
                .await;
            // Shipped: $0.15 / $0.60 per million → 10 × 0.15e-6 + 20 × 0.6e-6.
            let shipped = 10.0 * 0.15e-6 + 20.0 * 0.6e-6;
            let mut spent = 0.0;
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            spent += shipped;
            assert_usd(env.budget_used(&m, 0).await, spent, "shipped price");

            // groq is OpenAI-compatible: OpenAI's price for the same model…
            assert_eq!(env.chat(&m.key, "groq/gpt-4o-mini").await.status, 200);
            spent += shipped;
            assert_usd(env.budget_used(&m, 0).await, spent, "price by kind");
            // …until it carries its own.
            env.test_price("groq", "gpt-4o-mini").await;
            assert_eq!(env.chat(&m.key, "groq/gpt-4o-mini").await.status, 200);
            spent += ANSWER_USD;
            assert_usd(env.budget_used(&m, 0).await, spent, "price by name");

            // An override of the OpenAI price applies to the next request.
            env.price("openai", "gpt-4o-mini", 2000.0, 0.0).await;
            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            spent += 10.0 * 0.002;
            assert_usd(env.budget_used(&m, 0).await, spent, "override");

            // An unpriced model costs 0 under the default `allow`, and is counted.
            let before = sample(
                &metrics(&env.server).await,
                "heimdall_unpriced_requests_total",
                &["provider=\"openai\"", "model=\"no-such-price\""],
            );
            let r = env.chat(&m.key, "openai/no-such-price").await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_usd(env.budget_used(&m, 0).await, spent, "unpriced is free");
            let after = sample(
                &metrics(&env.server).await,
                "heimdall_unpriced_requests_total",
                &["provider=\"openai\"", "model=\"no-such-price\""],
            );
            assert!(
                after > before,
                "unpriced requests are counted: {before} → {after}"
            );
            env.server.stop().await;
        }
    );

    store_test!(
        metrics_count_governance_denials_and_cost,
        |db: TestDb| async move {
            let env = start(db).await;
            env.test_price("openai", "gpt-4o-mini").await;
            let s = &env.server;
            let r = anonymous(s, "GET", "/metrics", None).await;
            assert_eq!(r.status, 401, "{}", r.text);

            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Eng",
                        json!({"budgets": [{"max_limit": 0.05, "reset_duration": "1d"}]}),
                    ),
                )
                .await;
            let text = metrics(s).await;
            let denials = |t: &str, kind: &str| {
                sample(
                    t,
                    "heimdall_governance_denials_total",
                    &[&format!("type=\"{kind}\"")],
                )
            };
            let budget_before = denials(&text, "budget_exceeded");
            let blocked_before = denials(&text, "provider_blocked");
            let required_before = denials(&text, "virtual_key_required");
            let cost_before = sample(
                &text,
                "heimdall_cost_nanodollars_total",
                &["provider=\"openai\"", "model=\"gpt-4o-mini\""],
            );

            assert_eq!(env.chat(&m.key, MINI).await.status, 200);
            assert_denial(&env.chat(&m.key, MINI).await, 402, "budget_exceeded");
            assert_denial(
                &env.chat(&m.key, "anthropic/claude-3-5-haiku").await,
                403,
                "provider_blocked",
            );
            let r = env
                .call("/v1/chat/completions", None, &chat_body(MINI))
                .await;
            assert_denial(&r, 401, "virtual_key_required");

            let text = metrics(s).await;
            assert!(
                text.contains("heimdall_governance_denials_total{type=\"budget_exceeded\"}"),
                "{text}"
            );
            assert!(denials(&text, "budget_exceeded") > budget_before);
            assert!(denials(&text, "provider_blocked") > blocked_before);
            assert!(denials(&text, "virtual_key_required") > required_before);
            let cost = sample(
                &text,
                "heimdall_cost_nanodollars_total",
                &["provider=\"openai\"", "model=\"gpt-4o-mini\""],
            );
            assert!(
                cost - cost_before >= ANSWER_USD * 1e9,
                "cost metric grew by {} nano-dollars",
                cost - cost_before
            );
            // Per-user figures are not metric labels.
            assert!(!text.contains(&m.user), "a user id in a metric label");
            env.server.stop().await;
        }
    );
}
