//! Reservations under concurrency (governance.md §4): a request limit of K under N concurrent requests admits exactly min(N, K); a dollar budget or a token limit under a burst stops at the limit plus at most one request's estimate, not one request per concurrent caller — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod governance {
    pub use super::governance_support::*;
    pub use heimdall_testkit::mock::MockOptions;
    pub use heimdall_testkit::{Reply, TestDb, store_test};
    pub use serde_json::json;

    const MINI: &str = "openai/gpt-4o-mini";

    /// The mock answers slowly enough that a burst is in flight together.
    fn slow_mock() -> MockOptions {
        MockOptions {
            latency_ms: 100,
            ..mock_options()
        }
    }

    /// Sends `n` chat requests at once with `key`; returns every reply.
    async fn burst(env: &Env, key: &str, n: usize) -> Vec<Reply> {
        let body = chat_body(MINI);
        let url = env.server.url("/v1/chat/completions");
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let req = env
                .server
                .client
                .post(url.clone())
                .bearer_auth(key)
                .json(&body);
            set.spawn(async move { Reply::read(req.send().await.unwrap()).await });
        }
        let mut out = Vec::with_capacity(n);
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap());
        }
        out
    }

    fn count(replies: &[Reply], status: u16) -> usize {
        replies.iter().filter(|r| r.status == status).count()
    }

    store_test!(
        a_request_limit_of_10_under_100_concurrent_requests_admits_exactly_10,
        |db: TestDb| async move {
            let env = start_with(db, slow_mock(), |_| {}).await;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Ten",
                        json!({"rate_limit": {"request_max_limit": 10, "request_reset_duration": "1h"}}),
                    ),
                )
                .await;
            let replies = burst(&env, &m.key, 100).await;
            assert_eq!(count(&replies, 200), 10, "admitted");
            assert_eq!(count(&replies, 429), 90, "refused");
            for r in replies.iter().filter(|r| r.status != 200) {
                let msg = assert_denial(r, 429, "request_limited");
                assert!(msg.contains("10 of 10"), "{msg}");
                assert!(retry_after(r) > 0);
            }
            assert_eq!(env.upstream_chats(), 10, "calls that reached the provider");
            assert_eq!(env.requests_used(&m).await, 10);
            // The limit holds after the burst too.
            assert_denial(&env.chat(&m.key, MINI).await, 429, "request_limited");
            env.server.stop().await;
        }
    );

    store_test!(
        a_provider_request_limit_and_a_profile_limit_hold_together_under_a_burst,
        |db: TestDb| async move {
            let env = start_with(db, slow_mock(), |_| {}).await;
            let m = env
                .member(
                    "Ann",
                    json!({
                        "name": "Both",
                        "provider_configs": [{"provider_name": "openai", "all_models_allowed": true,
                            "rate_limit": {"request_max_limit": 7, "request_reset_duration": "1h"}}],
                        "rate_limit": {"request_max_limit": 12, "request_reset_duration": "1h"}
                    }),
                )
                .await;
            let replies = burst(&env, &m.key, 60).await;
            assert_eq!(
                count(&replies, 200),
                7,
                "the provider limit is the tighter one"
            );
            assert_eq!(count(&replies, 429), 53);
            assert_eq!(env.upstream_chats(), 7);
            let c = env.copy(&m.user, m.profile).await;
            assert_eq!(c["rate_limit"]["request_current_usage"], 7);
            assert_eq!(
                c["provider_configs"][0]["rate_limit"]["request_current_usage"],
                7
            );
            env.server.stop().await;
        }
    );

    store_test!(
        a_dollar_budget_under_50_concurrent_requests_stops_at_the_limit_plus_one_estimate,
        |db: TestDb| async move {
            let env = start_with(db, slow_mock(), |_| {}).await;
            env.test_price("openai", "gpt-4o-mini").await;
            let limit = 0.5;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Half",
                        json!({"budgets": [{"max_limit": limit, "reset_duration": "1d"}]}),
                    ),
                )
                .await;
            let estimate = cost_estimate(&chat_body(MINI));
            assert!(estimate >= ANSWER_USD, "the estimate covers one answer");

            let replies = burst(&env, &m.key, 50).await;
            let ok = count(&replies, 200);
            assert!(ok >= 1, "some requests pass");
            assert_eq!(ok + count(&replies, 402), 50, "the rest are 402");
            for r in replies.iter().filter(|r| r.status != 200) {
                assert_denial(r, 402, "budget_exceeded");
            }
            let used = env.budget_used(&m, 0).await;
            // Settled usage is exactly the answers that went through…
            assert_usd(used, ok as f64 * ANSWER_USD, "usage after the burst");
            assert_eq!(env.upstream_chats(), ok);
            // …and stops at the limit plus at most one request's estimate
            // (check-then-charge would have let all 50 through: $2.50).
            assert!(
                used <= limit + estimate + 1e-9,
                "overshoot: {used} USD against a {limit} USD budget (estimate {estimate})"
            );

            // One at a time, spending reaches the limit and stops below limit + one answer.
            let mut more = 0;
            loop {
                let r = env.chat(&m.key, MINI).await;
                if r.status != 200 {
                    assert_denial(&r, 402, "budget_exceeded");
                    break;
                }
                more += 1;
                assert!(more <= 20, "the budget never ran out");
            }
            let used = env.budget_used(&m, 0).await;
            assert!(used >= limit - 1e-9, "spending reached the limit: {used}");
            assert!(used < limit + ANSWER_USD, "at most one answer over: {used}");
            env.server.stop().await;
        }
    );

    store_test!(
        a_token_limit_under_50_concurrent_requests_stops_at_the_limit_plus_one_estimate,
        |db: TestDb| async move {
            let env = start_with(db, slow_mock(), |_| {}).await;
            let limit: i64 = 300;
            let m = env
                .member(
                    "Ann",
                    openai_profile(
                        "Tokens",
                        json!({"rate_limit": {"token_max_limit": limit, "token_reset_duration": "1h"}}),
                    ),
                )
                .await;
            let estimate = token_estimate(&chat_body(MINI), MAX_TOKENS) as i64;
            let replies = burst(&env, &m.key, 50).await;
            let ok = count(&replies, 200) as i64;
            assert!(ok >= 1);
            for r in replies.iter().filter(|r| r.status != 200) {
                assert_denial(r, 429, "token_limited");
            }
            let used = env.tokens_used(&m).await;
            assert_eq!(used, ok * TOKENS, "every answer's tokens, nothing else");
            assert!(
                used <= limit + estimate,
                "overshoot: {used} tokens against {limit} (estimate {estimate})"
            );
            env.server.stop().await;
        }
    );
}
