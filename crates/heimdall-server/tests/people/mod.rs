//! Helpers for the people-side integration tests (roles, users, copies,
//! virtual keys, propagation): creating roles and users, attaching roles,
//! calling the quota route with a virtual key, a server with a manual clock,
//! and assertions on key values and masks.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use heimdall_core::clock::ManualClock;
use heimdall_testkit::{Reply, TestDb, TestServer};
use serde_json::{Value, json};

/// The governance prefix (same as `common::G`, repeated to keep this module
/// independent of the template tests' helpers).
pub const G: &str = "/api/governance";

/// The instant a manual clock starts at.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// A server whose clock starts at [`t0`] and moves only when told to;
/// `grace` is `governance.vk_rotation_grace`.
pub async fn clocked(db: &TestDb, grace: &str) -> (TestServer, Arc<ManualClock>) {
    let mut config = TestServer::config(db);
    config.governance.vk_rotation_grace = grace.into();
    let clock = Arc::new(ManualClock::new(t0()));
    let s = TestServer::start_with(config, Some(clock.clone())).await;
    (s, clock)
}

/// Parses an RFC 3339 timestamp from the wire.
pub fn at(v: &Value) -> DateTime<Utc> {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a timestamp, got {v}"));
    assert!(t.ends_with('Z'), "timestamps are UTC: {t}");
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {t}"))
        .with_timezone(&Utc)
}

/// `{G}{path}`.
pub fn g(path: &str) -> String {
    format!("{G}{path}")
}

/// Creates a custom role; returns its id.
pub async fn role(s: &TestServer, name: &str) -> i64 {
    let r = s.post(&g("/rbac/roles"), json!({ "name": name })).await;
    assert_eq!(r.status, 200, "create role {name}: {}", r.text);
    r.body["role"]["id"].as_i64().expect("role id")
}

/// Creates a template (201) and returns its id.
pub async fn template(s: &TestServer, body: Value) -> i64 {
    let r = s.post(&g("/access-profiles"), body).await;
    assert_eq!(r.status, 201, "create template: {}", r.text);
    r.body["access_profile"]["id"].as_i64().expect("id")
}

/// A template with a profile-wide daily budget, an OpenAI provider config
/// with its own daily budget, and a rate limit.
pub fn policy_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": format!("{name} policy"),
        "provider_configs": [{
            "provider_name": "openai",
            "all_models_allowed": true,
            "budgets": [{"max_limit": 5, "reset_duration": "1d"}],
            "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1m"}
        }],
        "budgets": [{"max_limit": 10, "reset_duration": "1d"}],
        "rate_limit": {
            "token_max_limit": 1000, "token_reset_duration": "1h",
            "request_max_limit": 60, "request_reset_duration": "1m"
        }
    })
}

/// Reads a template (200).
pub async fn get_template(s: &TestServer, id: i64) -> Reply {
    let r = s.get(&g(&format!("/access-profiles/{id}"))).await;
    assert_eq!(r.status, 200, "get template {id}: {}", r.text);
    r
}

/// `POST G/access-profiles/{id}/roles`.
pub async fn attach(
    s: &TestServer,
    profile: i64,
    roles: &[i64],
    is_default: bool,
    apply_to_existing: bool,
) -> Reply {
    s.post(
        &g(&format!("/access-profiles/{profile}/roles")),
        json!({
            "role_ids": roles,
            "is_default": is_default,
            "apply_to_existing": apply_to_existing,
        }),
    )
    .await
}

/// Attaches and asserts 200; returns `users_applied`.
pub async fn attach_ok(
    s: &TestServer,
    profile: i64,
    roles: &[i64],
    is_default: bool,
    apply_to_existing: bool,
) -> i64 {
    let r = attach(s, profile, roles, is_default, apply_to_existing).await;
    assert_eq!(r.status, 200, "attach: {}", r.text);
    r.body["users_applied"].as_i64().expect("users_applied")
}

/// A template that is the (active) default of a new role; returns
/// `(template id, role id)`.
pub async fn default_of_new_role(
    s: &TestServer,
    template_name: &str,
    role_name: &str,
) -> (i64, i64) {
    let p = template(s, policy_body(template_name)).await;
    let r = role(s, role_name).await;
    assert_eq!(attach_ok(s, p, &[r], true, false).await, 0);
    (p, r)
}

/// `POST G/users`.
pub async fn create_user(s: &TestServer, name: &str, email: &str, role_id: Option<i64>) -> Reply {
    let mut body = json!({ "name": name, "email": email });
    if let Some(r) = role_id {
        body["role_id"] = json!(r);
    }
    s.post(&g("/users"), body).await
}

/// Creates a user (200); returns `(user id, virtual_keys of the response)`.
pub async fn user(s: &TestServer, name: &str, role_id: Option<i64>) -> (String, Vec<Value>) {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    let r = create_user(s, name, &email, role_id).await;
    assert_eq!(r.status, 200, "create user {name}: {}", r.text);
    let id = r.body["user"]["id"].as_str().expect("user id").to_string();
    let keys = r.body["virtual_keys"]
        .as_array()
        .expect("virtual_keys")
        .clone();
    (id, keys)
}

/// The user's copies (200).
pub async fn copies(s: &TestServer, user: &str) -> Vec<Value> {
    let r = s.get(&g(&format!("/users/{user}/access-profiles"))).await;
    assert_eq!(r.status, 200, "copies of {user}: {}", r.text);
    r.body["access_profiles"]
        .as_array()
        .expect("access_profiles")
        .clone()
}

/// The user's copy of template `profile`.
pub async fn copy_of(s: &TestServer, user: &str, profile: i64) -> Value {
    copies(s, user)
        .await
        .into_iter()
        .find(|c| c["parent_profile_id"] == profile)
        .unwrap_or_else(|| panic!("user {user} holds no copy of {profile}"))
}

/// The user's keys (200, masked).
pub async fn keys(s: &TestServer, user: &str) -> Vec<Value> {
    let r = s.get(&g(&format!("/users/{user}/virtual-keys"))).await;
    assert_eq!(r.status, 200, "keys of {user}: {}", r.text);
    r.body["virtual_keys"]
        .as_array()
        .expect("virtual_keys")
        .clone()
}

/// Directly assigns a template (201); returns the response body.
pub async fn assign(s: &TestServer, user: &str, profile: i64) -> Value {
    let r = s
        .post(
            &g(&format!("/users/{user}/access-profiles")),
            json!({ "access_profile_id": profile }),
        )
        .await;
    assert_eq!(r.status, 201, "assign {profile} to {user}: {}", r.text);
    r.body
}

/// Activates a template (200).
pub async fn activate(s: &TestServer, id: i64) {
    let r = s
        .put(&g(&format!("/access-profiles/{id}/activate")), json!({}))
        .await;
    assert_eq!(r.status, 200, "activate {id}: {}", r.text);
}

/// `GET {prefix}/virtual-keys/quota` with `Authorization: Bearer <value>`
/// and no admin credentials.
pub async fn quota_at(s: &TestServer, prefix: &str, value: &str) -> Reply {
    let resp = s
        .client
        .get(s.url(&format!("{prefix}/virtual-keys/quota")))
        .bearer_auth(value)
        .send()
        .await
        .expect("request sent");
    Reply::read(resp).await
}

/// The quota route under `G` with a Bearer key.
pub async fn quota(s: &TestServer, value: &str) -> Reply {
    quota_at(s, G, value).await
}

/// The quota route under `G` with the key in `x-bf-vk`.
pub async fn quota_vk(s: &TestServer, value: &str) -> Reply {
    let resp = s
        .client
        .get(s.url(&g("/virtual-keys/quota")))
        .header("x-bf-vk", value)
        .send()
        .await
        .expect("request sent");
    Reply::read(resp).await
}

/// Asserts that `v` is a full key value: `sk-bf-` and at least 32 base62
/// characters (`^sk-bf-[0-9A-Za-z]{32,}$`).
pub fn assert_key_value(v: &Value) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("key value is not a string: {v}"));
    let rest = s
        .strip_prefix("sk-bf-")
        .unwrap_or_else(|| panic!("key value lacks the sk-bf- prefix: {s}"));
    assert!(
        rest.len() >= 32 && rest.bytes().all(|b| b.is_ascii_alphanumeric()),
        "key value is not sk-bf- + 32 or more base62 characters: {s}"
    );
    s.to_string()
}

/// Asserts that `masked` is the mask of `full`: `sk-bf-****` + last 4.
pub fn assert_mask_of(masked: &Value, full: &str) {
    let last4 = &full[full.len() - 4..];
    assert_eq!(
        masked.as_str(),
        Some(format!("sk-bf-****{last4}").as_str()),
        "mask of {full}"
    );
}

/// Asserts that no response text contains `value`.
pub fn assert_never_shown(texts: &[&Reply], value: &str) {
    for r in texts {
        assert!(
            !r.text.contains(value),
            "a full key value appears in a later response: {}",
            r.text
        );
        // Not even its random part without the prefix.
        assert!(
            !r.text.contains(&value["sk-bf-".len()..]),
            "a key's random part appears in a later response: {}",
            r.text
        );
    }
}

/// The actions of a template's audit log, oldest first.
pub async fn actions(s: &TestServer, profile: i64) -> Vec<String> {
    let r = s
        .get(&g(&format!(
            "/access-profiles/{profile}/audit-logs?limit=500"
        )))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut v: Vec<String> = r.body["audit_logs"]
        .as_array()
        .expect("audit_logs")
        .iter()
        .map(|e| e["action"].as_str().expect("action").to_string())
        .collect();
    v.reverse();
    v
}

/// Audit entries of a template with `action`, newest first.
pub async fn audit_entries(s: &TestServer, profile: i64, action: &str) -> Vec<Value> {
    let r = s
        .get(&g(&format!(
            "/access-profiles/{profile}/audit-logs?action={action}&limit=500"
        )))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["audit_logs"].as_array().expect("audit_logs").clone()
}

/// Parses an audit JSON-string field.
pub fn json_field(v: &Value) -> Value {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a JSON string, got {v}"));
    serde_json::from_str(t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

/// Direct access to the test's database, for what HTTP cannot show yet
/// (usage counter rows).
pub async fn raw_db(s: &TestServer) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&s.store_url)
        .await
        .expect("connect to the test database")
}
