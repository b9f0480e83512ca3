//! Access-profile templates over HTTP: create, read, list, update, delete,
//! activation — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heimdall_testkit::{TestDb, TestServer, store_test};
use serde_json::{Value, json};

const G: &str = "/api/governance";

fn engineering() -> Value {
    json!({
        "name": "  Engineering  ",
        "description": "For engineers",
        "tags": ["team", " eng ", "team"],
        "provider_configs": [{
            "provider_name": "openai",
            "all_models_allowed": false,
            "allowed_models": ["gpt-4o-mini", "regex:gpt-4\\.1.*"],
            "budgets": [{"max_limit": 5, "reset_duration": "1d"}],
            "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1m"}
        }],
        "budgets": [
            {"max_limit": 10.5, "reset_duration": "1d"},
            {"max_limit": 100, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 4}}
        ],
        "rate_limit": {"token_max_limit": 1000, "token_reset_duration": "1h"},
        "calendar_aligned": true,
        "timezone": "Europe/Berlin",
        "auto_rotation_interval": "30d"
    })
}

store_test!(create_and_get_round_trip, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let r = s.post(&format!("{G}/access-profiles"), engineering()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let p = &r.body["access_profile"];
    assert_eq!(p["id"], 1);
    assert_eq!(p["name"], "Engineering");
    assert_eq!(p["is_active"], false);
    assert_eq!(p["version"], 1);
    assert_eq!(p["tags"], json!(["team", "eng"]));
    assert_eq!(p["timezone"], "Europe/Berlin");
    assert_eq!(p["calendar_aligned"], true);
    assert_eq!(p["auto_rotation_interval"], 30_i64 * 86_400 * 1_000_000_000);
    assert!(p["next_rotation_at"].is_string());
    assert_eq!(p["budgets"][0]["max_limit"], 10.5);
    assert_eq!(p["budgets"][0]["scope"], "total");
    assert_eq!(p["budgets"][0]["current_usage"], 0.0);
    assert_eq!(p["budgets"][1]["reset_config"]["quarter_start_month"], 4);
    assert_eq!(
        p["provider_configs"][0]["budgets"][0]["scope"],
        "provider:openai"
    );
    assert!(p["provider_configs"][0]["id"].as_i64().unwrap() > 0);
    assert!(p["budgets"][0]["id"].as_str().unwrap().len() >= 32);

    let g = s.get(&format!("{G}/access-profiles/1")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["access_profile"], *p);
    assert_eq!(g.body["roles"], json!([]));
    assert_eq!(g.body["user_count"], 0);
    s.stop().await;
});
