//! Roles over HTTP (`G/rbac/roles`): the system roles, create, read, update,
//! delete with its refusals — under both prefixes, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use common::{LEGACY, PREFIXES, assert_error, deprecated};
use heimdall_testkit::{TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

store_test!(
    three_system_roles_exist_from_the_start,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for prefix in PREFIXES {
            let r = s.get(&format!("{prefix}/rbac/roles")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["count"], 3);
            let roles = r.body["roles"].as_array().unwrap();
            let names: Vec<(i64, &str)> = roles
                .iter()
                .map(|r| (r["id"].as_i64().unwrap(), r["name"].as_str().unwrap()))
                .collect();
            assert_eq!(names, vec![(1, "Admin"), (2, "Developer"), (3, "Viewer")]);
            for role in roles {
                assert_eq!(role["is_system_role"], true);
                at(&role["created_at"]);
                at(&role["updated_at"]);
                assert!(role.get("description").is_some());
            }
            assert_eq!(deprecated(&r), prefix == LEGACY);
        }
        s.stop().await;
    }
);

store_test!(create_get_and_list_a_custom_role, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let r = s
        .post(
            &g("/rbac/roles"),
            json!({"name": "  Data Science ", "description": "Notebook people"}),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "create answers 200 as Bifrost does: {}",
        r.text
    );
    let role = r.body["role"].clone();
    assert_eq!(role["id"], 4);
    assert_eq!(role["name"], "Data Science");
    assert_eq!(role["description"], "Notebook people");
    assert_eq!(role["is_system_role"], false);

    let got = s.get(&g("/rbac/roles/4")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["role"], role);
    let legacy = s.get("/api/rbac/roles/4").await;
    assert_eq!(legacy.status, 200);
    assert_eq!(legacy.body["role"], role);
    assert!(deprecated(&legacy));

    let list = s.get(&g("/rbac/roles")).await;
    assert_eq!(list.body["count"], 4);
    assert_eq!(list.body["roles"][3], role);

    // Without a description.
    let r = s.post(&g("/rbac/roles"), json!({"name": "Ops"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["role"]["description"], Value::Null);
    s.stop().await;
});

store_test!(
    role_names_are_unique_ignoring_case,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        role(&s, "Ops").await;
        for name in ["ops", "OPS", " Ops "] {
            let r = s.post(&g("/rbac/roles"), json!({ "name": name })).await;
            assert_error(&r, 409, "conflict");
        }
        // The system roles' names are taken too.
        let r = s.post(&g("/rbac/roles"), json!({"name": "admin"})).await;
        assert_error(&r, 409, "conflict");
        // Renaming another role onto a taken name.
        let other = role(&s, "Sales").await;
        let r = s
            .put(&g(&format!("/rbac/roles/{other}")), json!({"name": "oPs"}))
            .await;
        assert_error(&r, 409, "conflict");
        assert_eq!(
            s.get(&g(&format!("/rbac/roles/{other}"))).await.body["role"]["name"],
            "Sales"
        );
        s.stop().await;
    }
);

store_test!(create_rejects_bad_bodies, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": 5}),
        json!({"name": "x".repeat(256)}),
        json!({"name": "Ok", "colour": "red"}),
    ] {
        let r = s.post(&g("/rbac/roles"), body.clone()).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = s
        .raw("POST", &g("/rbac/roles"), b"{not json".to_vec())
        .await;
    assert_error(&r, 400, "invalid_request");
    assert_eq!(s.get(&g("/rbac/roles")).await.body["count"], 3);
    s.stop().await;
});

store_test!(update_is_partial, |db: TestDb| async move {
    let (s, clock) = clocked(&db, "0s").await;
    let id = role(&s, "Ops").await;
    clock.advance(chrono::Duration::minutes(5));
    let r = s
        .put(
            &g(&format!("/rbac/roles/{id}")),
            json!({"description": "Runs things"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"]["name"], "Ops");
    assert_eq!(r.body["role"]["description"], "Runs things");
    assert_eq!(
        at(&r.body["role"]["updated_at"]),
        t0() + chrono::Duration::minutes(5)
    );
    assert_eq!(at(&r.body["role"]["created_at"]), t0());

    let r = s
        .put(
            &g(&format!("/rbac/roles/{id}")),
            json!({"name": "Operations"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["role"]["name"], "Operations");
    assert_eq!(r.body["role"]["description"], "Runs things");

    // Changing only the case of its own name is allowed.
    let r = s
        .put(
            &g(&format!("/rbac/roles/{id}")),
            json!({"name": "OPERATIONS"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"]["name"], "OPERATIONS");

    let r = s
        .put(
            &g(&format!("/rbac/roles/{id}")),
            json!({"description": null}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["role"]["description"], Value::Null);

    // Sending back what was read is accepted.
    let read = s.get(&g(&format!("/rbac/roles/{id}"))).await.body["role"].clone();
    let r = s.put(&g(&format!("/rbac/roles/{id}")), read.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"], read);

    let r = s
        .put(&g(&format!("/rbac/roles/{id}")), json!({"name": ""}))
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = s
        .put(&g(&format!("/rbac/roles/{id}")), json!({"nickname": "x"}))
        .await;
    assert_error(&r, 400, "invalid_request");
    s.stop().await;
});

store_test!(
    unknown_roles_are_404_and_bad_ids_400,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        assert_error(&s.get(&g("/rbac/roles/99")).await, 404, "not_found");
        assert_error(
            &s.put(&g("/rbac/roles/99"), json!({"name": "X"})).await,
            404,
            "not_found",
        );
        assert_error(&s.delete(&g("/rbac/roles/99")).await, 404, "not_found");
        assert_error(&s.get(&g("/rbac/roles/abc")).await, 400, "invalid_request");
        assert_error(&s.delete(&g("/rbac/roles/0")).await, 400, "invalid_request");
        s.stop().await;
    }
);

store_test!(system_roles_cannot_be_deleted, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for prefix in PREFIXES {
        for id in 1..=3 {
            let r = s.delete(&format!("{prefix}/rbac/roles/{id}")).await;
            assert_error(&r, 403, "forbidden");
        }
    }
    assert_eq!(s.get(&g("/rbac/roles")).await.body["count"], 3);
    s.stop().await;
});

store_test!(
    a_role_held_by_users_cannot_be_deleted,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let ops = role(&s, "Ops").await;
        let (ann, _) = user(&s, "Ann", Some(ops)).await;
        let r = s.delete(&g(&format!("/rbac/roles/{ops}"))).await;
        assert_error(&r, 409, "conflict");
        assert_eq!(s.get(&g(&format!("/rbac/roles/{ops}"))).await.status, 200);

        // Once nobody holds it, it goes.
        let r = s
            .put(&g(&format!("/users/{ann}/role")), json!({"role_id": 2}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = s.delete(&g(&format!("/rbac/roles/{ops}"))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["message"].as_str().unwrap().len() > 5);
        assert_error(
            &s.get(&g(&format!("/rbac/roles/{ops}"))).await,
            404,
            "not_found",
        );
        s.stop().await;
    }
);

store_test!(
    deleting_a_role_removes_its_attachments,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = template(&s, policy_body("Eng")).await;
        let ops = role(&s, "Ops").await;
        attach_ok(&s, p, &[ops, 2], true, false).await;
        assert_eq!(
            get_template(&s, p).await.body["roles"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let r = s.delete(&g(&format!("/rbac/roles/{ops}"))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let roles = get_template(&s, p).await.body["roles"].clone();
        assert_eq!(roles.as_array().unwrap().len(), 1);
        assert_eq!(roles[0]["role_id"], 2);
        // Role ids are not reused.
        assert_eq!(role(&s, "Ops").await, ops + 1);
        s.stop().await;
    }
);
