//! Headers of successful governed answers (governance.md §4): `x-ratelimit-*` for the tightest request and token limits, resets written as OpenAI writes them, `x-heimdall-budget-remaining`, kinds that do not exist left out; and the estimates behind them (`max_tokens`, the default output, 0 for embeddings) — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod governance {
    pub use super::governance_support::*;
    pub use chrono::Duration;
    pub use heimdall_testkit::{TestDb, store_test};
    pub use reqwest::header::HeaderMap;
    pub use serde_json::json;

    const MINI: &str = "openai/gpt-4o-mini";
    const RATE_HEADERS: [&str; 6] = [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ];
    const BUDGET_HEADER: &str = "x-heimdall-budget-remaining";

    fn h<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        header(headers, name).unwrap_or_else(|| panic!("no {name}: {headers:?}"))
    }

    fn num(headers: &HeaderMap, name: &str) -> i64 {
        h(headers, name).parse().unwrap()
    }

    fn usd(headers: &HeaderMap) -> f64 {
        h(headers, BUDGET_HEADER).parse().unwrap()
    }

    /// A profile-wide and a provider level of every kind; the provider ones
    /// are tighter for requests and budget, the profile one for tokens.
    fn layered() -> serde_json::Value {
        json!({
            "name": "Layered",
            "provider_configs": [{
                "provider_name": "openai", "all_models_allowed": true,
                "budgets": [{"max_limit": 1, "reset_duration": "1d"}],
                "rate_limit": {"request_max_limit": 5, "request_reset_duration": "1m",
                               "token_max_limit": 50000, "token_reset_duration": "1d"}
            }],
            "budgets": [{"max_limit": 10, "reset_duration": "1d"}],
            "rate_limit": {"request_max_limit": 60, "request_reset_duration": "1m",
                           "token_max_limit": 10000, "token_reset_duration": "1h"}
        })
    }

    store_test!(
        success_headers_show_the_tightest_limit_of_each_kind,
        |db: TestDb| async move {
            let env = start(db).await;
            env.test_price("openai", "gpt-4o-mini").await;
            let m = env.member("Ann", layered()).await;
            let body = chat_body(MINI);
            let tok_est = token_estimate(&body, MAX_TOKENS) as i64;
            let usd_est = cost_estimate(&body);

            let r = env.chat(&m.key, MINI).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let hs = &r.headers;
            assert_eq!(num(hs, "x-ratelimit-limit-requests"), 5);
            assert_eq!(num(hs, "x-ratelimit-remaining-requests"), 4);
            assert_eq!(h(hs, "x-ratelimit-reset-requests"), "1m0s");
            assert_eq!(num(hs, "x-ratelimit-limit-tokens"), 10000);
            // Remaining counts this request's reservation (its estimate).
            assert_eq!(num(hs, "x-ratelimit-remaining-tokens"), 10000 - tok_est);
            assert_eq!(h(hs, "x-ratelimit-reset-tokens"), "1h0m0s");
            assert!(
                (usd(hs) - (1.0 - usd_est)).abs() < 1e-6,
                "budget remaining {} (estimate {usd_est})",
                h(hs, BUDGET_HEADER)
            );

            env.advance(Duration::seconds(1));
            let r = env.chat(&m.key, MINI).await;
            let hs = &r.headers;
            assert_eq!(num(hs, "x-ratelimit-remaining-requests"), 3);
            assert_eq!(h(hs, "x-ratelimit-reset-requests"), "59s");
            assert_eq!(
                num(hs, "x-ratelimit-remaining-tokens"),
                10000 - TOKENS - tok_est
            );
            assert_eq!(h(hs, "x-ratelimit-reset-tokens"), "59m59s");
            assert!((usd(hs) - (1.0 - ANSWER_USD - usd_est)).abs() < 1e-6);

            // Streams and the Anthropic route carry them too.
            let mut sbody = chat_body(MINI);
            sbody["stream"] = json!(true);
            let (status, hs, _) = env.stream("/v1/chat/completions", &m.key, &sbody).await;
            assert_eq!(status, 200);
            assert_eq!(num(&hs, "x-ratelimit-remaining-requests"), 2);
            assert!(hs.get(BUDGET_HEADER).is_some());
            let r = env
                .call(
                    "/anthropic/v1/messages",
                    Some(&m.key),
                    &messages_body("openai/gpt-4o-mini"),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(num(&r.headers, "x-ratelimit-remaining-requests"), 1);
            assert_eq!(num(&r.headers, "x-ratelimit-limit-tokens"), 10000);
            env.server.stop().await;
        }
    );

    store_test!(
        headers_of_limit_kinds_that_do_not_exist_are_left_out,
        |db: TestDb| async move {
            let env = start(db).await;
            env.test_price("openai", "gpt-4o-mini").await;
            let only_budget = env
                .member(
                    "Ann",
                    openai_profile(
                        "Budget",
                        json!({"budgets": [{"max_limit": 2, "reset_duration": "1w"}]}),
                    ),
                )
                .await;
            let r = env.chat(&only_budget.key, MINI).await;
            assert_eq!(r.status, 200, "{}", r.text);
            for name in RATE_HEADERS {
                assert!(r.headers.get(name).is_none(), "{name}: {:?}", r.headers);
            }
            assert!(usd(&r.headers) > 1.9);

            let only_requests = env
                .member(
                    "Bob",
                    openai_profile(
                        "Requests",
                        json!({"rate_limit": {"request_max_limit": 3, "request_reset_duration": "1h"}}),
                    ),
                )
                .await;
            let r = env.chat(&only_requests.key, MINI).await;
            assert_eq!(num(&r.headers, "x-ratelimit-limit-requests"), 3);
            assert_eq!(num(&r.headers, "x-ratelimit-remaining-requests"), 2);
            assert_eq!(h(&r.headers, "x-ratelimit-reset-requests"), "1h0m0s");
            for name in &RATE_HEADERS[3..] {
                assert!(r.headers.get(*name).is_none(), "{name}: {:?}", r.headers);
            }
            assert!(r.headers.get(BUDGET_HEADER).is_none());

            let only_tokens = env
                .member(
                    "Cid",
                    openai_profile(
                        "Tokens",
                        json!({"rate_limit": {"token_max_limit": 1000, "token_reset_duration": "90s"}}),
                    ),
                )
                .await;
            let r = env.chat(&only_tokens.key, MINI).await;
            assert_eq!(num(&r.headers, "x-ratelimit-limit-tokens"), 1000);
            assert_eq!(h(&r.headers, "x-ratelimit-reset-tokens"), "1m30s");
            for name in &RATE_HEADERS[..3] {
                assert!(r.headers.get(*name).is_none(), "{name}: {:?}", r.headers);
            }
            assert!(r.headers.get(BUDGET_HEADER).is_none());

            let no_limits = env.member("Dee", openai_profile("Open", json!({}))).await;
            let r = env.chat(&no_limits.key, MINI).await;
            assert_eq!(r.status, 200, "{}", r.text);
            for name in RATE_HEADERS.iter().chain([&BUDGET_HEADER]) {
                assert!(r.headers.get(*name).is_none(), "{name}: {:?}", r.headers);
            }
            env.server.stop().await;
        }
    );

    store_test!(
        token_estimates_use_max_tokens_the_default_output_and_zero_for_embeddings,
        |db: TestDb| async move {
            let env = start_with(db, mock_options(), |c| {
                c.governance.default_output_tokens = 300;
            })
            .await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Tokens",
                        json!({"rate_limit": {"token_max_limit": 100000, "token_reset_duration": "1d"}}),
                    ),
                )
                .await;
            let remaining =
                |r: &heimdall_testkit::Reply| num(&r.headers, "x-ratelimit-remaining-tokens");
            let prompt = |b: &serde_json::Value| token_estimate(b, 0) as i64;

            // No max_tokens: governance.default_output_tokens.
            let mut used = 0;
            let body = json!({"model": MINI, "messages": [{"role": "user", "content": "hi"}]});
            let r = env.call("/v1/chat/completions", Some(&m.key), &body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(remaining(&r), 100000 - used - (prompt(&body) + 300));
            used += TOKENS;

            // max_completion_tokens wins over max_tokens.
            let body = json!({"model": MINI, "max_tokens": 999, "max_completion_tokens": 7,
                "messages": [{"role": "user", "content": "hi"}]});
            let r = env.call("/v1/chat/completions", Some(&m.key), &body).await;
            assert_eq!(remaining(&r), 100000 - used - (prompt(&body) + 7));
            used += TOKENS;

            // Embeddings reserve their input only.
            let body =
                json!({"model": "openai/text-embedding-3-small", "input": "some words to embed"});
            let r = env.call("/v1/embeddings", Some(&m.key), &body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(remaining(&r), 100000 - used - prompt(&body));
            used += PROMPT as i64; // the mock reports prompt tokens only
            assert_eq!(env.tokens_used(&m).await, used);
            env.server.stop().await;
        }
    );
}
