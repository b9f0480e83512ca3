//! Helpers shared by the management-API integration tests: prefixes, request
//! bodies, and assertions on the error envelope and on what the store holds.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heimdall_testkit::{Reply, TestServer};
use serde_json::{Value, json};

/// The governance prefix.
pub const G: &str = "/api/governance";
/// The legacy prefix (answers carry `Deprecation: true`).
pub const LEGACY: &str = "/api";
/// Both prefixes, for tests that must hold under each.
pub const PREFIXES: [&str; 2] = [G, LEGACY];

/// `{G}/access-profiles{rest}`.
pub fn profiles(rest: &str) -> String {
    format!("{G}/access-profiles{rest}")
}

/// The smallest valid create body.
pub fn minimal(name: &str) -> Value {
    json!({ "name": name })
}

/// A profile that sets every policy field.
pub fn rich(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Everything set",
        "tags": ["team", "eng"],
        "provider_configs": [
            {
                "provider_name": "openai",
                "all_models_allowed": false,
                "allowed_models": ["gpt-4o-mini", "regex:gpt-4\\.1.*"],
                "budgets": [{"max_limit": 5, "reset_duration": "1d"}],
                "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1m"}
            },
            {
                "provider_name": "anthropic",
                "all_models_allowed": true,
                "allowed_models": [],
                "budgets": [],
                "rate_limit": null
            }
        ],
        "budgets": [
            {"max_limit": 10.5, "reset_duration": "1d"},
            {"max_limit": 100, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 4}}
        ],
        "rate_limit": {
            "token_max_limit": 1000, "token_reset_duration": "1h",
            "request_max_limit": 60, "request_reset_duration": "1m"
        },
        "calendar_aligned": true,
        "timezone": "Europe/Berlin",
        "auto_rotation_interval": "30d",
        "mcp_tool_groups": [{"tool_group_id": 7}],
        "mcp_servers": [{"mcp_server_id": "github"}],
        "mcp_tool_overrides": [
            {"mcp_client_id": "jira", "tool_name": "delete_issue", "action": "exclude"}
        ]
    })
}

/// Creates a profile and returns it (asserts 201).
pub async fn create(s: &TestServer, body: Value) -> Value {
    let r = s.post(&profiles(""), body).await;
    assert_eq!(r.status, 201, "create failed: {}", r.text);
    r.body["access_profile"].clone()
}

/// The id of a profile object.
pub fn id_of(p: &Value) -> i64 {
    p["id"].as_i64().expect("profile id")
}

/// Reads one profile (asserts 200).
pub async fn get_profile(s: &TestServer, id: i64) -> Value {
    let r = s.get(&profiles(&format!("/{id}"))).await;
    assert_eq!(r.status, 200, "get {id} failed: {}", r.text);
    r.body["access_profile"].clone()
}

/// `total_count` of the unfiltered profile list.
pub async fn profile_count(s: &TestServer) -> i64 {
    let r = s.get(&profiles("")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["total_count"].as_i64().expect("total_count")
}

/// `total_count` of the global audit log.
pub async fn audit_count(s: &TestServer) -> i64 {
    let r = s.get(&profiles("/audit-logs")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["total_count"].as_i64().expect("total_count")
}

/// The audit log of one profile, newest first.
pub async fn audit_of(s: &TestServer, id: i64) -> Vec<Value> {
    let r = s.get(&profiles(&format!("/{id}/audit-logs"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["audit_logs"].as_array().expect("audit_logs").clone()
}

/// The versions of one profile, newest first.
pub async fn versions_of(s: &TestServer, id: i64) -> Vec<Value> {
    let r = s.get(&profiles(&format!("/{id}/versions"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["versions"].as_array().expect("versions").clone()
}

/// Parses a field that the API sends as a JSON string.
pub fn json_string(v: &Value) -> Value {
    let text = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a JSON string, got {v}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts that `r` is the error envelope with this status and type.
pub fn assert_error(r: &Reply, status: u16, kind: &str) {
    assert_eq!(
        r.status, status,
        "expected {status} {kind}, got: {}",
        r.text
    );
    let b = &r.body;
    assert!(b.is_object(), "error body is not JSON: {:?}", r.text);
    assert_eq!(b["type"], kind, "{}", r.text);
    assert_eq!(b["status_code"], status, "{}", r.text);
    assert_eq!(b["is_bifrost_error"], true, "{}", r.text);
    assert_eq!(b["error"]["type"], kind, "{}", r.text);
    assert_eq!(b["error"]["code"], kind, "{}", r.text);
    let msg = b["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.len() >= 10,
        "error.message must be a useful sentence: {}",
        r.text
    );
    assert!(b["error"].get("param").is_some(), "{}", r.text);
    assert!(b["extra_fields"].is_object(), "{}", r.text);
    let event = b["event_id"].as_str().unwrap_or("");
    assert!(
        uuid::Uuid::parse_str(event).is_ok(),
        "event_id is not a UUID: {}",
        r.text
    );
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(ct.starts_with("application/json"), "content-type {ct}");
}

/// Asserts a 400 `invalid_request` whose message mentions every `needle`.
pub fn assert_invalid(r: &Reply, needles: &[&str]) {
    assert_error(r, 400, "invalid_request");
    let msg = r.body["error"]["message"].as_str().unwrap_or("");
    for n in needles {
        assert!(msg.contains(n), "message should mention {n:?}: {msg:?}");
    }
}

/// True when the response carries `Deprecation: true`.
pub fn deprecated(r: &Reply) -> bool {
    r.headers
        .get("deprecation")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "true")
}
