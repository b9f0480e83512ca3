//! Every route of roles, users, copies and keys sits behind admin
//! credentials (a virtual key is not one), answers under both prefixes, and
//! the legacy prefix adds `Deprecation: true` — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use common::{G, LEGACY, PREFIXES, assert_error, deprecated};
use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

/// (method, path after the prefix, body) for every admin route of the issue.
fn routes(
    p: i64,
    role: i64,
    user: &str,
    key: &str,
    budget: &str,
) -> Vec<(&'static str, String, Value)> {
    vec![
        ("GET", "/rbac/roles".into(), Value::Null),
        ("POST", "/rbac/roles".into(), json!({"name": "Fresh"})),
        ("GET", format!("/rbac/roles/{role}"), Value::Null),
        (
            "PUT",
            format!("/rbac/roles/{role}"),
            json!({"description": "d"}),
        ),
        ("DELETE", "/rbac/roles/99".into(), Value::Null),
        (
            "POST",
            format!("/access-profiles/{p}/roles"),
            json!({"role_ids": [3]}),
        ),
        (
            "DELETE",
            format!("/access-profiles/{p}/roles/3"),
            Value::Null,
        ),
        (
            "POST",
            format!("/access-profiles/{p}/propagate"),
            json!({"fields": ["budgets"], "dry_run": true}),
        ),
        ("GET", "/users".into(), Value::Null),
        (
            "POST",
            "/users".into(),
            json!({"name": "Z", "email": "z@example.com"}),
        ),
        ("GET", format!("/users/{user}"), Value::Null),
        (
            "DELETE",
            format!("/users/{}", uuid::Uuid::nil()),
            Value::Null,
        ),
        (
            "PUT",
            format!("/users/{user}/role"),
            json!({"role_id": role}),
        ),
        ("GET", format!("/users/{user}/access-profiles"), Value::Null),
        (
            "POST",
            format!("/users/{user}/access-profiles"),
            json!({"access_profile_id": 999}),
        ),
        (
            "PUT",
            format!("/users/{user}/access-profiles/{p}"),
            json!({"is_active": true}),
        ),
        (
            "DELETE",
            format!("/users/{user}/access-profiles/999"),
            Value::Null,
        ),
        (
            "PUT",
            format!("/users/{user}/access-profiles/{p}/budgets/{budget}/override"),
            json!({"amount": 1, "mode": "forever"}),
        ),
        (
            "DELETE",
            format!("/users/{user}/access-profiles/{p}/budgets/{budget}/override"),
            Value::Null,
        ),
        ("GET", format!("/users/{user}/virtual-keys"), Value::Null),
        ("POST", format!("/users/{user}/virtual-keys"), json!({})),
        (
            "DELETE",
            format!("/users/{user}/virtual-keys/{}", uuid::Uuid::nil()),
            Value::Null,
        ),
        (
            "POST",
            format!("/users/{user}/access-profiles/{p}/virtual-keys"),
            json!({}),
        ),
        (
            "PUT",
            format!("/virtual-keys/{key}"),
            json!({"description": "d"}),
        ),
        (
            "POST",
            format!("/virtual-keys/{}/rotate", uuid::Uuid::nil()),
            json!({}),
        ),
    ]
}

async fn send(s: &TestServer, method: &str, path: &str, body: &Value, auth: Option<&str>) -> Reply {
    let mut req = s.client.request(method.parse().unwrap(), s.url(path));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if !body.is_null() {
        req = req.json(body);
    }
    Reply::read(req.send().await.unwrap()).await
}

store_test!(
    every_route_needs_admin_credentials_and_a_virtual_key_is_not_one,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, role) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(role)).await;
        let value = assert_key_value(&ks[0]["value"]);
        let key = ks[0]["id"].as_str().unwrap().to_string();
        let budget = copy_of(&s, &ann, p).await["budgets"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let vk_bearer = format!("Bearer {value}");
        for prefix in PREFIXES {
            for (method, path, body) in routes(p, role, &ann, &key, &budget) {
                let url = format!("{prefix}{path}");
                for auth in [None, Some(vk_bearer.as_str()), Some("Bearer wrong-token")] {
                    let r = send(&s, method, &url, &body, auth).await;
                    assert_eq!(r.status, 401, "{method} {url} with {auth:?}: {}", r.text);
                    assert_error(&r, 401, "unauthorized");
                }
            }
        }
        // Nothing changed: the user still has one copy and one key.
        assert_eq!(copies(&s, &ann).await.len(), 1);
        assert_eq!(keys(&s, &ann).await.len(), 1);
        assert_eq!(s.get(&g("/users")).await.body["total_count"], 1);
        s.stop().await;
    }
);

store_test!(
    every_route_answers_under_both_prefixes_and_legacy_is_deprecated,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, role) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(role)).await;
        let key = ks[0]["id"].as_str().unwrap().to_string();
        let budget = copy_of(&s, &ann, p).await["budgets"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let token = format!("Bearer {}", heimdall_testkit::ADMIN_TOKEN);
        for prefix in PREFIXES {
            for (method, path, body) in routes(p, role, &ann, &key, &budget) {
                let url = format!("{prefix}{path}");
                let r = send(&s, method, &url, &body, Some(&token)).await;
                // Each route is reached: an answer of the route itself, not
                // the router's "no route" (404 with "no route") or 405.
                assert_ne!(r.status, 401, "{method} {url}: {}", r.text);
                assert_ne!(r.status, 405, "{method} {url}: {}", r.text);
                let msg = r.body["error"]["message"].as_str().unwrap_or("");
                assert!(!msg.starts_with("no route"), "{method} {url}: {}", r.text);
                assert_eq!(deprecated(&r), prefix == LEGACY, "{method} {url}");
                // Repeatable creations need fresh names under the second prefix.
                if method == "POST" && path == "/rbac/roles" {
                    assert_eq!(r.status, if prefix == G { 200 } else { 409 });
                }
            }
        }
        s.stop().await;
    }
);
