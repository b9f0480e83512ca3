//! Propagation with real traffic: usage spent through the inference routes
//! (on the mock provider) is kept on matched budgets and rate-limit halves,
//! zeroed by `reset_usage`, untouched by a dry run, and a reset survives a
//! restart — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

use chrono::Duration;
use governance_support::{ANSWER_USD, Env, TOKENS, g, openai_profile, start};
use heimdall_testkit::{TestDb, store_test};
use serde_json::{Value, json};

const MODEL: &str = "openai/gpt-4o-mini";

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

fn policy() -> Value {
    openai_profile(
        "Eng",
        json!({
            "budgets": [{"max_limit": 10, "reset_duration": "1d"}],
            "rate_limit": {
                "token_max_limit": 10000, "token_reset_duration": "1h",
                "request_max_limit": 100, "request_reset_duration": "1h"
            }
        }),
    )
}

/// Prices, a template, Ann and Bob with direct copies; Ann spends three
/// answers, Bob one. Returns (template, ann, ann's key, bob, bob's key).
async fn spend(env: &Env) -> (i64, String, String, String, String) {
    env.test_price("openai", "gpt-4o-mini").await;
    let p = env.template(policy()).await;
    let ann = env.user("Ann").await;
    let (ann_key, _) = env.assign(&ann, p).await;
    let bob = env.user("Bob").await;
    let (bob_key, _) = env.assign(&bob, p).await;
    for _ in 0..3 {
        let r = env.chat(&ann_key, MODEL).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = env.chat(&bob_key, MODEL).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = env.copy(&ann, p).await;
    assert!(
        close(&c["budgets"][0]["current_usage"], 3.0 * ANSWER_USD),
        "{c}"
    );
    assert_eq!(c["rate_limit"]["request_current_usage"], 3);
    assert_eq!(c["rate_limit"]["token_current_usage"], 3 * TOKENS);
    (p, ann, ann_key, bob, bob_key)
}

async fn propagate(env: &Env, p: i64, body: Value) -> Value {
    let r = env
        .server
        .post(&g(&format!("/access-profiles/{p}/propagate")), body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

store_test!(
    usage_is_kept_on_matched_limits_and_zeroed_by_reset_usage,
    |db: TestDb| async move {
        let env = start(db).await;
        let (p, ann, ann_key, bob, _) = spend(&env).await;
        let before = env.copy(&ann, p).await;
        env.advance(Duration::minutes(5));
        // Raise the daily budget, add a weekly one, raise the token half,
        // and change the request half's duration (so it does not match).
        let r = env
            .server
            .put(
                &g(&format!("/access-profiles/{p}")),
                json!({
                    "budgets": [
                        {"max_limit": 20, "reset_duration": "1d"},
                        {"max_limit": 50, "reset_duration": "1w"}
                    ],
                    "rate_limit": {
                        "token_max_limit": 20000, "token_reset_duration": "1h",
                        "request_max_limit": 200, "request_reset_duration": "2h"
                    }
                }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);

        let body = propagate(&env, p, json!({"fields": ["budgets", "rate_limit"]})).await;
        assert_eq!(body["affected_users"], 2);
        let c = env.copy(&ann, p).await;
        assert_eq!(c["budgets"][0]["id"], before["budgets"][0]["id"]);
        assert_eq!(c["budgets"][0]["max_limit"], 20.0);
        assert!(
            close(&c["budgets"][0]["current_usage"], 3.0 * ANSWER_USD),
            "{c}"
        );
        assert!(close(&c["budgets"][1]["current_usage"], 0.0), "{c}");
        assert_eq!(c["rate_limit"]["id"], before["rate_limit"]["id"]);
        assert_eq!(
            c["rate_limit"]["token_current_usage"],
            3 * TOKENS,
            "matched half"
        );
        assert_eq!(
            c["rate_limit"]["request_current_usage"], 0,
            "re-created half"
        );
        let q = env.quota(&ann_key).await;
        assert!(close(
            &q.body["access_profiles"][0]["budgets"][0]["current_usage"],
            3.0 * ANSWER_USD
        ));

        // Spending goes on from there.
        assert_eq!(env.chat(&ann_key, MODEL).await.status, 200);
        let c = env.copy(&ann, p).await;
        assert!(
            close(&c["budgets"][0]["current_usage"], 4.0 * ANSWER_USD),
            "{c}"
        );
        assert!(close(&c["budgets"][1]["current_usage"], ANSWER_USD), "{c}");
        assert_eq!(c["rate_limit"]["request_current_usage"], 1);
        assert_eq!(c["rate_limit"]["token_current_usage"], 4 * TOKENS);

        // reset_usage for Ann only: her matched counters go to zero.
        let body = propagate(
            &env,
            p,
            json!({"fields": ["budgets", "rate_limit"], "reset_usage": true, "user_ids": [ann]}),
        )
        .await;
        assert_eq!(body["user_ids"], json!([ann]));
        let c = env.copy(&ann, p).await;
        assert_eq!(c["budgets"][0]["id"], before["budgets"][0]["id"]);
        for i in 0..2 {
            assert!(close(&c["budgets"][i]["current_usage"], 0.0), "{c}");
        }
        assert_eq!(c["rate_limit"]["request_current_usage"], 0);
        assert_eq!(c["rate_limit"]["token_current_usage"], 0);
        // Bob's usage is his own and stays.
        let b = env.copy(&bob, p).await;
        assert!(close(&b["budgets"][0]["current_usage"], ANSWER_USD), "{b}");

        assert_eq!(env.chat(&ann_key, MODEL).await.status, 200);
        let c = env.copy(&ann, p).await;
        assert!(close(&c["budgets"][0]["current_usage"], ANSWER_USD), "{c}");

        // After a restart the reset still holds (nothing old comes back).
        let env = env.restart().await;
        let c = env.copy(&ann, p).await;
        assert!(close(&c["budgets"][0]["current_usage"], ANSWER_USD), "{c}");
        assert_eq!(c["rate_limit"]["request_current_usage"], 1);
        assert_eq!(c["rate_limit"]["token_current_usage"], TOKENS);
        let b = env.copy(&bob, p).await;
        assert!(close(&b["budgets"][0]["current_usage"], ANSWER_USD), "{b}");
        env.server.stop().await;
    }
);

store_test!(a_dry_run_leaves_usage_alone, |db: TestDb| async move {
    let env = start(db).await;
    let (p, ann, _, _, _) = spend(&env).await;
    let before = env.copy(&ann, p).await;
    let r = env
        .server
        .put(
            &g(&format!("/access-profiles/{p}")),
            json!({"budgets": [{"max_limit": 99, "reset_duration": "1d"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let body = propagate(
        &env,
        p,
        json!({"fields": ["budgets", "rate_limit"], "reset_usage": true, "dry_run": true}),
    )
    .await;
    assert_eq!(body["applied"], false);
    assert_eq!(body["affected_users"], 2);
    assert_eq!(env.copy(&ann, p).await, before);
    env.server.stop().await;
});

store_test!(
    a_rate_limit_half_with_a_new_duration_starts_at_zero_at_once,
    |db: TestDb| async move {
        // Propagated at the very instant of the spending (the clock does not
        // move): the re-created half must not show the old half's usage.
        let env = start(db).await;
        let (p, ann, ann_key, _, _) = spend(&env).await;
        let r = env
            .server
            .put(
                &g(&format!("/access-profiles/{p}")),
                json!({"rate_limit": {
                    "token_max_limit": 10000, "token_reset_duration": "1h",
                    "request_max_limit": 100, "request_reset_duration": "2h"
                }}),
            )
            .await;
        assert_eq!(r.status, 200);
        propagate(&env, p, json!({"fields": ["rate_limit"]})).await;
        let c = env.copy(&ann, p).await;
        assert_eq!(c["rate_limit"]["token_current_usage"], 3 * TOKENS);
        assert_eq!(c["rate_limit"]["request_current_usage"], 0, "{c}");
        let q = env.quota(&ann_key).await;
        assert_eq!(
            q.body["access_profiles"][0]["rate_limit"]["request_current_usage"],
            0
        );
        env.server.stop().await;
    }
);
