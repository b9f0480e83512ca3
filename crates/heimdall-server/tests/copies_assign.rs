//! A user's copies over HTTP: direct assignment, listing, updating
//! (`is_active`, `expires_at`), detaching with the keys, and what copies mean
//! for their template (delete refused, edits not applied until propagated) —
//! on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use chrono::Duration;
use common::{PREFIXES, assert_error};
use heimdall_testkit::{TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

fn copy_path(user: &str, profile: i64) -> String {
    g(&format!("/users/{user}/access-profiles/{profile}"))
}

store_test!(
    direct_assignment_provisions_a_copy_and_a_key,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let p = template(&s, policy_body("Research")).await;
        activate(&s, p).await;
        let (ann, _) = user(&s, "Ann", None).await;
        clock.advance(Duration::minutes(3));
        let expires = t0() + Duration::days(30);
        let r = s
            .post(
                &g(&format!("/users/{ann}/access-profiles")),
                json!({"access_profile_id": p, "expires_at": "2026-04-01T09:00:00Z"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let c = &r.body["access_profile"];
        assert_eq!(c["source"], "direct");
        assert_eq!(c["role_id"], Value::Null);
        assert_eq!(c["parent_profile_id"], p);
        assert_eq!(c["user_id"], ann.as_str());
        assert_eq!(c["name"], "Research");
        assert_eq!(at(&c["assigned_at"]), t0() + Duration::minutes(3));
        assert_eq!(at(&c["expires_at"]), expires);
        let vk = &r.body["virtual_key"];
        let value = assert_key_value(&vk["value"]);
        assert_eq!(c["virtual_key_ids"], json!([vk["id"]]));
        assert_mask_of(&c["virtual_key_values"][vk["id"].as_str().unwrap()], &value);
        assert!(!vk["name"].as_str().unwrap().is_empty());

        let listed = copies(&s, &ann).await;
        assert_eq!(listed, vec![c.clone()]);
        let q = quota(&s, &value).await;
        assert_eq!(q.status, 200, "{}", q.text);
        assert_eq!(q.body["access_profiles"][0]["id"], c["id"]);

        let e = &audit_entries(&s, p, "assign_user").await[0];
        assert_eq!(e["user_id"], ann.as_str());
        assert_eq!(json_field(&e["new_values"])["source"], "direct");

        // Both prefixes answer; the second assignment of the same template is 409.
        let (bob, _) = user(&s, "Bob", None).await;
        let r = s
            .post(
                &format!("{}/users/{bob}/access-profiles", PREFIXES[1]),
                json!({ "access_profile_id": p }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = s
            .post(
                &g(&format!("/users/{bob}/access-profiles")),
                json!({ "access_profile_id": p }),
            )
            .await;
        assert_error(&r, 409, "conflict");
        assert_eq!(keys(&s, &bob).await.len(), 1);
        s.stop().await;
    }
);

store_test!(
    direct_assignment_of_an_inactive_template_is_409,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = template(&s, policy_body("Draft")).await;
        let (ann, _) = user(&s, "Ann", None).await;
        let path = g(&format!("/users/{ann}/access-profiles"));
        let r = s.post(&path, json!({ "access_profile_id": p })).await;
        assert_error(&r, 409, "conflict");
        // Deactivated after being active: still refused.
        activate(&s, p).await;
        s.put(&g(&format!("/access-profiles/{p}/deactivate")), json!({}))
            .await;
        let r = s.post(&path, json!({ "access_profile_id": p })).await;
        assert_error(&r, 409, "conflict");
        assert!(copies(&s, &ann).await.is_empty());
        assert!(keys(&s, &ann).await.is_empty());
        assert!(audit_entries(&s, p, "assign_user").await.is_empty());
        s.stop().await;
    }
);

store_test!(
    a_copy_held_through_a_role_blocks_direct_assignment,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        let r = s
            .post(
                &g(&format!("/users/{ann}/access-profiles")),
                json!({ "access_profile_id": p }),
            )
            .await;
        assert_error(&r, 409, "conflict");
        s.stop().await;
    }
);

store_test!(direct_assignment_errors, |db: TestDb| async move {
    let (s, _clock) = clocked(&db, "0s").await;
    let p = template(&s, policy_body("Research")).await;
    activate(&s, p).await;
    let (ann, _) = user(&s, "Ann", None).await;
    let path = g(&format!("/users/{ann}/access-profiles"));
    let ghost = uuid::Uuid::new_v4();
    let r = s
        .post(
            &g(&format!("/users/{ghost}/access-profiles")),
            json!({ "access_profile_id": p }),
        )
        .await;
    assert_error(&r, 404, "not_found");
    let r = s.post(&path, json!({"access_profile_id": 999})).await;
    assert_error(&r, 404, "not_found");
    for body in [
        json!({}),
        json!({"access_profile_id": "1"}),
        json!({"access_profile_id": p, "expires_at": "tomorrow"}),
        json!({"access_profile_id": p, "expires_at": "2026-03-02T08:59:59Z"}),
        json!({"access_profile_id": p, "expires_at": "2026-03-02T09:00:00Z"}),
        json!({"access_profile_id": p, "source": "role_default"}),
    ] {
        let r = s.post(&path, body.clone()).await;
        assert_error(&r, 400, "invalid_request");
    }
    assert!(copies(&s, &ann).await.is_empty());
    s.stop().await;
});

store_test!(copies_are_listed_oldest_first, |db: TestDb| async move {
    let (s, clock) = clocked(&db, "0s").await;
    let a = template(&s, policy_body("A")).await;
    let b = template(&s, policy_body("B")).await;
    let c = template(&s, policy_body("C")).await;
    for p in [a, b, c] {
        activate(&s, p).await;
    }
    let (ann, _) = user(&s, "Ann", None).await;
    for p in [c, a, b] {
        assign(&s, &ann, p).await;
        clock.advance(Duration::seconds(1));
    }
    let order: Vec<i64> = copies(&s, &ann)
        .await
        .iter()
        .map(|c| c["parent_profile_id"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![c, a, b]);
    let legacy = s.get(&format!("/api/users/{ann}/access-profiles")).await;
    assert_eq!(legacy.status, 200);
    assert_eq!(legacy.body["access_profiles"].as_array().unwrap().len(), 3);
    let (bob, _) = user(&s, "Bob", None).await;
    assert!(copies(&s, &bob).await.is_empty());
    s.stop().await;
});

store_test!(
    updating_a_copy_sets_activity_and_expiry,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let p = template(&s, policy_body("Research")).await;
        activate(&s, p).await;
        let (ann, _) = user(&s, "Ann", None).await;
        let body = assign(&s, &ann, p).await;
        let value = assert_key_value(&body["virtual_key"]["value"]);

        let r = s
            .put(&copy_path(&ann, p), json!({"is_active": false}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["access_profile"]["is_active"], false);
        let q = quota(&s, &value).await;
        assert_eq!(q.status, 200, "{}", q.text);
        assert_eq!(
            q.body["access_profiles"],
            json!([]),
            "an inactive copy grants nothing"
        );

        let r = s
            .put(
                &copy_path(&ann, p),
                json!({"is_active": true, "expires_at": "2026-03-02T10:00:00Z"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["access_profile"]["is_active"], true);
        assert_eq!(
            at(&r.body["access_profile"]["expires_at"]),
            t0() + Duration::hours(1)
        );
        assert_eq!(
            quota(&s, &value).await.body["access_profiles"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        clock.advance(Duration::hours(1));
        assert_eq!(
            quota(&s, &value).await.body["access_profiles"],
            json!([]),
            "an expired copy grants nothing"
        );

        // Clearing the expiry; an omitted field keeps its value.
        let r = s
            .put(&copy_path(&ann, p), json!({"expires_at": null}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["access_profile"]["expires_at"], Value::Null);
        assert_eq!(r.body["access_profile"]["is_active"], true);
        assert_eq!(copy_of(&s, &ann, p).await, r.body["access_profile"]);
        assert_eq!(
            quota(&s, &value).await.body["access_profiles"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        let ghost = uuid::Uuid::new_v4();
        assert_error(
            &s.put(
                &copy_path(&ghost.to_string(), p),
                json!({"is_active": true}),
            )
            .await,
            404,
            "not_found",
        );
        let other = template(&s, policy_body("Other")).await;
        assert_error(
            &s.put(&copy_path(&ann, other), json!({"is_active": true}))
                .await,
            404,
            "not_found",
        );
        for body in [
            json!({"is_active": "no"}),
            json!({"expires_at": "soon"}),
            json!({"name": "x"}),
        ] {
            assert_error(
                &s.put(&copy_path(&ann, p), body).await,
                400,
                "invalid_request",
            );
        }
        s.stop().await;
    }
);

store_test!(
    detaching_a_copy_deletes_its_keys_and_the_last_one_the_extra_keys,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let a = template(&s, policy_body("Alpha")).await;
        let b = template(&s, policy_body("Beta")).await;
        activate(&s, a).await;
        activate(&s, b).await;
        let (ann, _) = user(&s, "Ann", None).await;
        let a_body = assign(&s, &ann, a).await;
        let a_value = assert_key_value(&a_body["virtual_key"]["value"]);
        let a_name = a_body["virtual_key"]["name"].as_str().unwrap().to_string();
        let b_body = assign(&s, &ann, b).await;
        let b_value = assert_key_value(&b_body["virtual_key"]["value"]);
        let b_name = b_body["virtual_key"]["name"].as_str().unwrap().to_string();
        let mut extras = Vec::new();
        for name in ["ci", "laptop"] {
            let r = s
                .post(
                    &g(&format!("/users/{ann}/virtual-keys")),
                    json!({ "name": name }),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            extras.push(assert_key_value(&r.body["virtual_key"]["value"]));
        }

        // Not the last copy: only its own key goes.
        let r = s.delete(&copy_path(&ann, a)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["message"].as_str().unwrap().len() > 5);
        assert_eq!(r.body["deleted_vk_names"], json!([a_name]));
        assert_eq!(r.body["deleted_vk_count"], 1);
        assert_error(&quota(&s, &a_value).await, 401, "virtual_key_not_found");
        for v in extras.iter().chain([&b_value]) {
            assert_eq!(quota(&s, v).await.status, 200);
        }
        assert_eq!(keys(&s, &ann).await.len(), 3);

        // The last copy: its key and every extra key go, all counted.
        let r = s
            .delete(&format!("{}/users/{ann}/access-profiles/{b}", PREFIXES[1]))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let mut names: Vec<String> = r.body["deleted_vk_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        names.sort();
        let mut expected = vec![b_name, "ci".to_string(), "laptop".to_string()];
        expected.sort();
        assert_eq!(names, expected);
        assert_eq!(r.body["deleted_vk_count"], 3);
        assert!(keys(&s, &ann).await.is_empty());
        for v in extras.iter().chain([&b_value]) {
            assert_error(&quota(&s, v).await, 401, "virtual_key_not_found");
        }
        assert!(copies(&s, &ann).await.is_empty());

        // Detaching what is not held is 404.
        assert_error(&s.delete(&copy_path(&ann, a)).await, 404, "not_found");
        assert_error(&s.delete(&copy_path(&ann, 999)).await, 404, "not_found");
        let ghost = uuid::Uuid::new_v4().to_string();
        assert_error(&s.delete(&copy_path(&ghost, a)).await, 404, "not_found");

        for (p, n) in [(a, 1), (b, 3)] {
            let d = audit_entries(&s, p, "detach_user").await;
            assert_eq!(d.len(), 1, "template {p}");
            assert_eq!(d[0]["user_id"], ann.as_str());
            let meta = json_field(&d[0]["metadata"]);
            assert_eq!(meta["deleted_vk_names"].as_array().unwrap().len(), n);
        }
        s.stop().await;
    }
);

store_test!(
    a_template_with_copies_cannot_be_deleted_until_they_are_detached,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        let (bob, _) = user(&s, "Bob", Some(eng)).await;
        let r = s.delete(&g(&format!("/access-profiles/{p}"))).await;
        assert_error(&r, 409, "conflict");
        assert_eq!(s.delete(&copy_path(&ann, p)).await.status, 200);
        let r = s.delete(&g(&format!("/access-profiles/{p}"))).await;
        assert_error(&r, 409, "conflict");
        assert_eq!(get_template(&s, p).await.body["user_count"], 1);
        assert_eq!(s.delete(&copy_path(&bob, p)).await.status, 200);
        let r = s.delete(&g(&format!("/access-profiles/{p}"))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_error(
            &s.get(&g(&format!("/access-profiles/{p}"))).await,
            404,
            "not_found",
        );
        // Its attachment went with it: new users of the role get nothing.
        let (_, ks) = user(&s, "Carl", Some(eng)).await;
        assert!(ks.is_empty());
        s.stop().await;
    }
);

store_test!(
    template_edits_do_not_touch_copies_until_propagated,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        let before = copy_of(&s, &ann, p).await;
        let r = s
            .put(
                &g(&format!("/access-profiles/{p}")),
                json!({
                    "name": "Engineering v2",
                    "budgets": [{"max_limit": 99, "reset_duration": "1w"}],
                    "rate_limit": null,
                    "provider_configs": [],
                    "calendar_aligned": true,
                    "timezone": "Europe/Paris",
                    "mcp_servers": [{"mcp_server_id": "github"}]
                }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(copy_of(&s, &ann, p).await, before);
        // A new user gets the template as it is now.
        let (bob, _) = user(&s, "Bob", Some(eng)).await;
        let fresh = copy_of(&s, &ann, p).await;
        assert_eq!(fresh, before);
        let bobs = copy_of(&s, &bob, p).await;
        assert_eq!(bobs["name"], "Engineering v2");
        assert_eq!(bobs["budgets"][0]["max_limit"], 99.0);
        assert_eq!(bobs["rate_limit"], Value::Null);
        assert_eq!(bobs["timezone"], "Europe/Paris");
        assert_eq!(bobs["mcp_servers"], json!([{"mcp_server_id": "github"}]));
        s.stop().await;
    }
);

store_test!(
    updating_a_copy_is_audited_when_it_changes,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        let path = copy_path(&ann, p);
        let r = s.put(&path, json!({"is_active": false})).await;
        assert_eq!(r.status, 200);
        let e = audit_entries(&s, p, "update").await;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0]["user_id"], ann.as_str());
        assert_eq!(json_field(&e[0]["previous_values"])["is_active"], true);
        assert_eq!(json_field(&e[0]["new_values"])["is_active"], false);
        // The same values again change nothing and add nothing.
        let r = s
            .put(&path, json!({"is_active": false, "expires_at": null}))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(audit_entries(&s, p, "update").await.len(), 1);
        // The template's own version is not touched.
        assert_eq!(
            get_template(&s, p).await.body["access_profile"]["version"],
            1
        );
        s.stop().await;
    }
);

store_test!(
    copies_keep_working_when_their_template_is_deactivated,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let value = assert_key_value(&ks[0]["value"]);
        let r = s
            .put(&g(&format!("/access-profiles/{p}/deactivate")), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let q = quota(&s, &value).await;
        assert_eq!(q.status, 200, "{}", q.text);
        assert_eq!(q.body["access_profiles"][0]["parent_profile_id"], p);
        assert_eq!(copy_of(&s, &ann, p).await["is_active"], true);
        s.stop().await;
    }
);

store_test!(
    moving_into_a_role_whose_default_is_already_held_keeps_the_held_copy,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, _) = user(&s, "Ann", None).await;
        let body = assign(&s, &ann, p).await;
        let value = assert_key_value(&body["virtual_key"]["value"]);
        let r = s
            .put(&g(&format!("/users/{ann}/role")), json!({ "role_id": eng }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["virtual_keys"], json!([]));
        let cs = copies(&s, &ann).await;
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["source"], "direct");
        assert_eq!(quota(&s, &value).await.status, 200);
        // Leaving the role again does not take the direct copy away.
        let r = s
            .put(
                &g(&format!("/users/{ann}/role")),
                json!({ "role_id": null }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(copies(&s, &ann).await.len(), 1);
        assert_eq!(quota(&s, &value).await.status, 200);
        s.stop().await;
    }
);
