//! Changing a user's role (`PUT G/users/{id}/role`): the old role's copies go
//! with their keys, the new role's default arrives with its key value in the
//! response, direct copies stay — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use common::{PREFIXES, assert_error};
use heimdall_testkit::{TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

async fn change_role(s: &TestServer, user: &str, role_id: Value) -> heimdall_testkit::Reply {
    s.put(
        &g(&format!("/users/{user}/role")),
        json!({ "role_id": role_id }),
    )
    .await
}

store_test!(
    moving_a_user_swaps_role_copies_and_deletes_their_keys,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let (eng_p, eng) = default_of_new_role(&s, "Engineering", "Engineers").await;
        let (ops_p, ops) = default_of_new_role(&s, "Operations", "Ops").await;
        let applied = template(&s, policy_body("Applied")).await;
        let direct = template(&s, policy_body("Direct")).await;
        activate(&s, direct).await;

        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let eng_value = assert_key_value(&ks[0]["value"]);
        assert_eq!(attach_ok(&s, applied, &[eng], false, true).await, 1);
        let applied_key = copy_of(&s, &ann, applied).await["virtual_key_ids"][0].clone();
        let direct_body = assign(&s, &ann, direct).await;
        let direct_value = assert_key_value(&direct_body["virtual_key"]["value"]);
        let r = s
            .post(
                &g(&format!("/users/{ann}/virtual-keys")),
                json!({"name": "laptop"}),
            )
            .await;
        let extra_value = assert_key_value(&r.body["virtual_key"]["value"]);
        assert_eq!(copies(&s, &ann).await.len(), 3);
        assert_eq!(keys(&s, &ann).await.len(), 4);

        clock.advance(chrono::Duration::hours(1));
        let r = change_role(&s, &ann, json!(ops)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["message"].as_str().unwrap().len() > 5);
        assert_eq!(r.body["user"]["role_id"], ops);
        assert_eq!(r.body["user"]["role"]["name"], "Ops");
        assert_eq!(
            at(&r.body["user"]["updated_at"]),
            t0() + chrono::Duration::hours(1)
        );
        let new_keys = r.body["virtual_keys"].as_array().unwrap();
        assert_eq!(new_keys.len(), 1, "{}", r.text);
        assert_eq!(new_keys[0]["access_profile_id"], ops_p);
        let ops_value = assert_key_value(&new_keys[0]["value"]);

        let cs = copies(&s, &ann).await;
        let parents: Vec<i64> = cs
            .iter()
            .map(|c| c["parent_profile_id"].as_i64().unwrap())
            .collect();
        assert_eq!(
            parents,
            vec![direct, ops_p],
            "oldest first; role copies gone"
        );
        let ops_copy = &cs[1];
        assert_eq!(ops_copy["source"], "role_default");
        assert_eq!(ops_copy["role_id"], ops);
        assert_eq!(
            at(&ops_copy["assigned_at"]),
            t0() + chrono::Duration::hours(1)
        );

        // The old role's keys are gone; the direct and the extra key stay.
        assert_error(&quota(&s, &eng_value).await, 401, "virtual_key_not_found");
        assert_eq!(quota(&s, &ops_value).await.status, 200);
        assert_eq!(quota(&s, &direct_value).await.status, 200);
        assert_eq!(quota(&s, &extra_value).await.status, 200);
        let ids: Vec<Value> = keys(&s, &ann)
            .await
            .iter()
            .map(|k| k["id"].clone())
            .collect();
        assert!(
            !ids.contains(&applied_key),
            "the role_apply copy's key went too"
        );
        assert_eq!(ids.len(), 3);

        // Audit: one detach_user for each removed copy, assign_user for the new.
        for p in [eng_p, applied] {
            let d = audit_entries(&s, p, "detach_user").await;
            assert_eq!(d.len(), 1, "template {p}");
            assert_eq!(d[0]["user_id"], ann.as_str());
        }
        assert_eq!(audit_entries(&s, ops_p, "assign_user").await.len(), 1);
        assert_eq!(get_template(&s, eng_p).await.body["user_count"], 0);
        s.stop().await;
    }
);

store_test!(
    moving_back_provisions_a_fresh_copy,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (eng_p, eng) = default_of_new_role(&s, "Engineering", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let first_copy = copy_of(&s, &ann, eng_p).await["id"].clone();
        let first = assert_key_value(&ks[0]["value"]);
        let r = change_role(&s, &ann, json!(2)).await;
        assert_eq!(r.body["virtual_keys"], json!([]));
        let r = change_role(&s, &ann, json!(eng)).await;
        assert_eq!(r.status, 200);
        let second = assert_key_value(&r.body["virtual_keys"][0]["value"]);
        assert_ne!(first, second);
        assert_ne!(copy_of(&s, &ann, eng_p).await["id"], first_copy);
        assert_error(&quota(&s, &first).await, 401, "virtual_key_not_found");
        assert_eq!(quota(&s, &second).await.status, 200);
        s.stop().await;
    }
);

store_test!(
    removing_the_role_removes_role_copies_and_orphaned_extra_keys,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (_p, eng) = default_of_new_role(&s, "Engineering", "Engineers").await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        let r = s
            .post(
                &g(&format!("/users/{ann}/virtual-keys")),
                json!({"name": "ci"}),
            )
            .await;
        let extra = assert_key_value(&r.body["virtual_key"]["value"]);
        let r = change_role(&s, &ann, Value::Null).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["user"]["role_id"], Value::Null);
        assert_eq!(r.body["user"]["role"], Value::Null);
        assert_eq!(r.body["virtual_keys"], json!([]));
        assert!(copies(&s, &ann).await.is_empty());
        // An extra key lives only while the user holds a copy.
        assert!(keys(&s, &ann).await.is_empty());
        assert_error(&quota(&s, &extra).await, 401, "virtual_key_not_found");
        s.stop().await;
    }
);

store_test!(
    keeping_the_same_role_changes_nothing,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Engineering", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let value = assert_key_value(&ks[0]["value"]);
        let before = copy_of(&s, &ann, p).await;
        let r = change_role(&s, &ann, json!(eng)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["virtual_keys"], json!([]));
        assert_eq!(copy_of(&s, &ann, p).await, before);
        assert_eq!(quota(&s, &value).await.status, 200);
        s.stop().await;
    }
);

store_test!(role_change_errors, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (p, eng) = default_of_new_role(&s, "Engineering", "Engineers").await;
    let (ann, _) = user(&s, "Ann", Some(eng)).await;
    let r = change_role(&s, &ann, json!(99)).await;
    assert_error(&r, 404, "not_found");
    for body in [
        json!({"role_id": "2"}),
        json!({"role_id": 2, "x": 1}),
        json!({}),
    ] {
        let r = s.put(&g(&format!("/users/{ann}/role")), body).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = s
        .raw("PUT", &g(&format!("/users/{ann}/role")), b"nope".to_vec())
        .await;
    assert_error(&r, 400, "invalid_request");
    // Nothing changed.
    let u = s.get(&g(&format!("/users/{ann}"))).await;
    assert_eq!(u.body["user"]["role_id"], eng);
    assert_eq!(copies(&s, &ann).await.len(), 1);
    assert_eq!(copy_of(&s, &ann, p).await["source"], "role_default");
    s.stop().await;
});

store_test!(
    role_change_answers_under_both_prefixes,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (ann, _) = user(&s, "Ann", None).await;
        for (prefix, role) in PREFIXES.iter().zip([2, 3]) {
            let r = s
                .put(
                    &format!("{prefix}/users/{ann}/role"),
                    json!({ "role_id": role }),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["user"]["role_id"], role);
        }
        s.stop().await;
    }
);
