//! The self-service quota route (`GET G/virtual-keys/quota`): authenticated
//! by the virtual key alone, under both prefixes, with governance.md §1's
//! headers and errors — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use chrono::Duration;
use common::{LEGACY, PREFIXES, assert_error, deprecated};
use heimdall_testkit::{ADMIN_TOKEN, Reply, TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

async fn quota_with(s: &TestServer, prefix: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = s.client.get(s.url(&format!("{prefix}/virtual-keys/quota")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Reply::read(req.send().await.expect("request sent")).await
}

fn assert_message(r: &Reply, needle: &str) {
    let m = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(m.contains(needle), "message should say {needle:?}: {m:?}");
}

store_test!(
    the_quota_route_needs_no_admin_credentials_under_either_prefix,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let value = assert_key_value(&ks[0]["value"]);
        for prefix in PREFIXES {
            let auth = format!("Bearer {value}");
            let lower = format!("bearer {value}");
            for headers in [
                vec![("authorization", auth.as_str())],
                vec![("authorization", lower.as_str())],
                vec![("x-bf-vk", value.as_str())],
                vec![("x-api-key", value.as_str())],
                vec![("x-goog-api-key", value.as_str())],
                vec![("api-key", value.as_str())],
            ] {
                let r = quota_with(&s, prefix, &headers).await;
                assert_eq!(r.status, 200, "{headers:?} under {prefix}: {}", r.text);
                assert_eq!(r.body["user_id"], ann.as_str());
                assert_eq!(deprecated(&r), prefix == LEGACY);
            }
        }
        // The body: the key, and each live copy with its budgets and rate limit.
        let r = quota(&s, &value).await;
        let b = &r.body;
        assert_eq!(b["virtual_key_name"], ks[0]["name"]);
        assert_eq!(b["is_active"], true);
        let ap = &b["access_profiles"][0];
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(ap["id"], c["id"]);
        assert_eq!(ap["parent_profile_id"], p);
        assert_eq!(ap["name"], "Eng");
        let budgets = ap["budgets"].as_array().unwrap();
        assert_eq!(
            budgets.len(),
            2,
            "profile-wide and provider budgets: {budgets:?}"
        );
        assert_eq!(budgets[0]["scope"], "total");
        assert_eq!(budgets[0]["id"], c["budgets"][0]["id"]);
        assert_eq!(budgets[1]["scope"], "provider:openai");
        assert_eq!(
            budgets[1]["id"],
            c["provider_configs"][0]["budgets"][0]["id"]
        );
        for bud in budgets {
            for f in [
                "reset_duration",
                "max_limit",
                "effective_max_limit",
                "current_usage",
                "last_reset",
                "next_reset_at",
            ] {
                assert!(!bud[f].is_null(), "budget field {f}: {bud}");
            }
            assert_eq!(
                at(&bud["next_reset_at"]) - at(&bud["last_reset"]),
                Duration::days(1)
            );
        }
        let rl = &ap["rate_limit"];
        assert_eq!(rl["token_max_limit"], 1000);
        assert_eq!(rl["token_current_usage"], 0);
        assert_eq!(rl["request_max_limit"], 60);
        assert_eq!(rl["request_current_usage"], 0);
        assert!(rl["token_next_reset_at"].is_string());
        assert!(rl["request_next_reset_at"].is_string());
        assert!(b.get("rotated_value").is_none());
        s.stop().await;
    }
);

store_test!(
    no_key_is_401_virtual_key_required,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let admin = format!("Bearer {ADMIN_TOKEN}");
        for prefix in PREFIXES {
            for headers in [
                vec![],
                // The admin token is not a virtual key.
                vec![("authorization", admin.as_str())],
                // Without the sk-bf- prefix these headers do not carry a key.
                vec![("authorization", "Bearer abc")],
                vec![("x-api-key", "sk-openai-123")],
            ] {
                let r = quota_with(&s, prefix, &headers).await;
                assert_error(&r, 401, "virtual_key_required");
            }
        }
        s.stop().await;
    }
);

store_test!(
    an_unknown_key_is_401_virtual_key_not_found,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (_ann, ks) = user(&s, "Ann", Some(eng)).await;
        let value = assert_key_value(&ks[0]["value"]);
        let unknown = format!("sk-bf-{}", "A".repeat(40));
        for prefix in PREFIXES {
            for headers in [
                vec![("authorization", format!("Bearer {unknown}"))],
                // x-bf-vk always counts, whatever it looks like.
                vec![("x-bf-vk", "not-a-key".to_string())],
                // The value is hashed exactly as sent.
                vec![("x-bf-vk", value.to_uppercase())],
                vec![("x-bf-vk", format!("{value}x"))],
            ] {
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let r = quota_with(&s, prefix, &h).await;
                assert_error(&r, 401, "virtual_key_not_found");
            }
        }
        // x-bf-vk wins over Authorization.
        let auth = format!("Bearer {value}");
        let r = quota_with(
            &s,
            G,
            &[
                ("x-bf-vk", unknown.as_str()),
                ("authorization", auth.as_str()),
            ],
        )
        .await;
        assert_error(&r, 401, "virtual_key_not_found");
        s.stop().await;
    }
);

store_test!(an_inactive_key_is_403_blocked, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
    let (_ann, ks) = user(&s, "Ann", Some(eng)).await;
    let value = assert_key_value(&ks[0]["value"]);
    let id = ks[0]["id"].as_str().unwrap();
    let r = s
        .put(
            &g(&format!("/virtual-keys/{id}")),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["virtual_key"]["is_active"], false);
    for prefix in PREFIXES {
        let r = quota_at(&s, prefix, &value).await;
        assert_error(&r, 403, "virtual_key_blocked");
        assert_message(&r, "inactive");
    }
    let r = s
        .put(
            &g(&format!("/virtual-keys/{id}")),
            json!({"is_active": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(quota(&s, &value).await.status, 200);
    s.stop().await;
});

store_test!(an_expired_key_is_403_blocked, |db: TestDb| async move {
    let (s, clock) = clocked(&db, "0s").await;
    let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
    let (_ann, ks) = user(&s, "Ann", Some(eng)).await;
    let value = assert_key_value(&ks[0]["value"]);
    let id = ks[0]["id"].as_str().unwrap();
    let r = s
        .put(
            &g(&format!("/virtual-keys/{id}")),
            json!({"expires_at": "2026-03-02T10:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    clock.advance(Duration::minutes(59));
    assert_eq!(quota(&s, &value).await.status, 200);
    clock.advance(Duration::minutes(1));
    let r = quota(&s, &value).await;
    assert_error(&r, 403, "virtual_key_blocked");
    assert_message(&r, "expired");
    let r = quota_vk(&s, &value).await;
    assert_error(&r, 403, "virtual_key_blocked");

    // Inactive is checked before expired.
    s.put(
        &g(&format!("/virtual-keys/{id}")),
        json!({"is_active": false}),
    )
    .await;
    let r = quota(&s, &value).await;
    assert_error(&r, 403, "virtual_key_blocked");
    assert_message(&r, "inactive");

    // Clearing the expiry and reactivating unblocks it.
    s.put(
        &g(&format!("/virtual-keys/{id}")),
        json!({"is_active": true, "expires_at": null}),
    )
    .await;
    assert_eq!(quota(&s, &value).await.status, 200);
    s.stop().await;
});

store_test!(
    quota_lists_only_live_copies_of_every_kind,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let q = template(&s, json!({"name": "Bare"})).await;
        activate(&s, q).await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        assign(&s, &ann, q).await;
        let value = assert_key_value(&ks[0]["value"]);
        let r = quota(&s, &value).await;
        let parents: Vec<Value> = r.body["access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["parent_profile_id"].clone())
            .collect();
        assert_eq!(
            parents,
            vec![json!(p), json!(q)],
            "a key covers all of the user's copies"
        );
        assert_eq!(r.body["access_profiles"][1]["budgets"], json!([]));
        assert_eq!(r.body["access_profiles"][1]["rate_limit"], Value::Null);
        s.put(
            &g(&format!("/users/{ann}/access-profiles/{p}")),
            json!({"is_active": false}),
        )
        .await;
        let r = quota(&s, &value).await;
        assert_eq!(r.status, 200, "the key is still valid: {}", r.text);
        assert_eq!(r.body["access_profiles"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["access_profiles"][0]["parent_profile_id"], q);
        s.stop().await;
    }
);
