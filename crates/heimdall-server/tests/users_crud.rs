//! Users over HTTP: create (with validation and unique emails), read, list
//! with search and paging, delete with every copy and key — on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use common::{LEGACY, PREFIXES, assert_error, deprecated};
use heimdall_testkit::{TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

store_test!(
    create_and_get_a_user_under_both_prefixes,
    |db: TestDb| async move {
        let (s, _clock) = clocked(&db, "0s").await;
        for prefix in PREFIXES {
            let email = format!("ann{}@example.com", prefix.len());
            let r = s
                .post(
                    &format!("{prefix}/users"),
                    json!({"name": " Ann Lee ", "email": format!(" {email} "), "role_id": 2}),
                )
                .await;
            assert_eq!(
                r.status, 200,
                "create answers 200 as Bifrost does: {}",
                r.text
            );
            assert_eq!(deprecated(&r), prefix == LEGACY);
            let u = r.body["user"].clone();
            let id = u["id"].as_str().unwrap().to_string();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
            assert_eq!(u["name"], "Ann Lee");
            assert_eq!(u["email"], email.as_str());
            assert_eq!(u["role_id"], 2);
            assert_eq!(
                u["role"],
                json!({"id": 2, "name": "Developer", "description": u["role"]["description"], "is_system_role": true})
            );
            assert_eq!(at(&u["created_at"]), t0());
            assert_eq!(at(&u["updated_at"]), t0());
            assert_eq!(
                r.body["virtual_keys"],
                json!([]),
                "Developer has no default"
            );

            let got = s.get(&format!("{prefix}/users/{id}")).await;
            assert_eq!(got.status, 200, "{}", got.text);
            assert_eq!(got.body["user"], u);
        }
        s.stop().await;
    }
);

store_test!(a_user_may_have_no_role, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let r = create_user(&s, "Ann", "ann@example.com", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["role_id"], Value::Null);
    assert_eq!(r.body["user"]["role"], Value::Null);
    assert_eq!(r.body["virtual_keys"], json!([]));
    let r = s
        .post(
            &g("/users"),
            json!({"name": "Bob", "email": "bob@example.com", "role_id": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["role_id"], Value::Null);
    s.stop().await;
});

store_test!(create_validates_name_and_email, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let long_email = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long_email.len(), 255);
    let bad = [
        json!({"email": "a@example.com"}),
        json!({"name": "", "email": "a@example.com"}),
        json!({"name": "   ", "email": "a@example.com"}),
        json!({"name": "Ann"}),
        json!({"name": "Ann", "email": ""}),
        json!({"name": "Ann", "email": "ann"}),
        json!({"name": "Ann", "email": "ann@example"}),
        json!({"name": "Ann", "email": "@example.com"}),
        json!({"name": "Ann", "email": "ann@@example.com"}),
        json!({"name": "Ann", "email": "ann@x@example.com"}),
        json!({"name": "Ann", "email": "a nn@example.com"}),
        json!({"name": "Ann", "email": long_email}),
        json!({"name": "Ann", "email": 5}),
        json!({"name": "Ann", "email": "ann@example.com", "role_id": "2"}),
        json!({"name": "Ann", "email": "ann@example.com", "admin": true}),
    ];
    for body in bad {
        let r = s.post(&g("/users"), body.clone()).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = s.raw("POST", &g("/users"), b"[1,2".to_vec()).await;
    assert_error(&r, 400, "invalid_request");
    // 254 characters is the longest allowed.
    let ok_email = format!("{}@example.com", "a".repeat(242));
    assert_eq!(ok_email.len(), 254);
    let r = create_user(&s, "Ann", &ok_email, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get(&g("/users")).await.body["total_count"], 1);
    s.stop().await;
});

store_test!(emails_are_unique_ignoring_case, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let r = create_user(&s, "Ann", "Ann.Lee@Example.com", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["user"]["email"], "Ann.Lee@Example.com",
        "stored as given"
    );
    for email in [
        "ann.lee@example.com",
        "ANN.LEE@EXAMPLE.COM",
        " Ann.Lee@Example.com ",
    ] {
        let r = create_user(&s, "Other", email, None).await;
        assert_error(&r, 409, "conflict");
    }
    assert_eq!(s.get(&g("/users")).await.body["total_count"], 1);
    s.stop().await;
});

store_test!(an_unknown_role_is_404, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let r = create_user(&s, "Ann", "ann@example.com", Some(99)).await;
    assert_error(&r, 404, "not_found");
    assert_eq!(s.get(&g("/users")).await.body["total_count"], 0);
    s.stop().await;
});

store_test!(unknown_users_are_404, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let ghost = uuid::Uuid::new_v4();
    for path in [
        format!("/users/{ghost}"),
        format!("/users/{ghost}/access-profiles"),
        format!("/users/{ghost}/virtual-keys"),
        "/users/not-a-uuid".to_string(),
    ] {
        assert_error(&s.get(&g(&path)).await, 404, "not_found");
    }
    assert_error(
        &s.delete(&g(&format!("/users/{ghost}"))).await,
        404,
        "not_found",
    );
    let r = s
        .put(&g(&format!("/users/{ghost}/role")), json!({"role_id": 2}))
        .await;
    assert_error(&r, 404, "not_found");
    s.stop().await;
});

store_test!(
    list_pages_with_defaults_and_clamps,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let mut ids = Vec::new();
        for i in 0..25 {
            let (id, _) = user(&s, &format!("User {i:02}"), None).await;
            ids.push(id);
            clock.advance(chrono::Duration::seconds(1));
        }
        for prefix in PREFIXES {
            let r = s.get(&format!("{prefix}/users")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["limit"], 20, "default limit");
            assert_eq!(r.body["offset"], 0);
            assert_eq!(r.body["count"], 20);
            assert_eq!(r.body["total_count"], 25);
            let got: Vec<&str> = r.body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap())
                .collect();
            assert_eq!(
                got,
                ids[..20].iter().map(String::as_str).collect::<Vec<_>>()
            );
        }

        let r = s.get(&g("/users?limit=10&offset=20")).await;
        assert_eq!(r.body["count"], 5);
        assert_eq!(r.body["limit"], 10);
        assert_eq!(r.body["offset"], 20);
        assert_eq!(r.body["users"][0]["id"], ids[20].as_str());
        assert_eq!(r.body["total_count"], 25);

        let r = s.get(&g("/users?limit=0")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["limit"], 1, "clamped into 1..=100");
        assert_eq!(r.body["count"], 1);
        let r = s.get(&g("/users?limit=1000")).await;
        assert_eq!(r.body["limit"], 100);
        assert_eq!(r.body["count"], 25);
        let r = s.get(&g("/users?offset=100")).await;
        assert_eq!(r.body["count"], 0);
        assert_eq!(r.body["users"], json!([]));
        assert_eq!(r.body["total_count"], 25);

        for q in ["limit=-1", "limit=abc", "offset=-5", "offset=1.5"] {
            let r = s.get(&g(&format!("/users?{q}"))).await;
            assert_error(&r, 400, "invalid_request");
        }
        s.stop().await;
    }
);

store_test!(
    list_searches_name_or_email_ignoring_case,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        // Users are listed by creation time: one second apart, so the
        // expected order is certain.
        for (name, email, role) in [
            ("Ann Lee", "ann@alpha.io", None),
            ("Bob Stone", "bob@beta.io", Some(2)),
            ("Carl Annson", "carl@gamma.io", None),
        ] {
            assert_eq!(create_user(&s, name, email, role).await.status, 200);
            clock.advance(chrono::Duration::seconds(1));
        }
        let names = |r: &heimdall_testkit::Reply| -> Vec<String> {
            r.body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["name"].as_str().unwrap().to_string())
                .collect()
        };
        let r = s.get(&g("/users?search=ANN")).await;
        assert_eq!(names(&r), vec!["Ann Lee", "Carl Annson"]);
        assert_eq!(r.body["total_count"], 2);
        let r = s.get(&g("/users?search=BETA.io")).await;
        assert_eq!(names(&r), vec!["Bob Stone"]);
        assert_eq!(r.body["users"][0]["role"]["name"], "Developer");
        let r = s.get(&g("/users?search=zzz")).await;
        assert_eq!(r.body["total_count"], 0);
        assert_eq!(r.body["users"], json!([]));
        let r = s.get(&g("/users?search=ann&limit=1&offset=1")).await;
        assert_eq!(names(&r), vec!["Carl Annson"]);
        assert_eq!(r.body["total_count"], 2);
        s.stop().await;
    }
);

store_test!(
    delete_removes_the_user_with_copies_and_keys,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let managed = assert_key_value(&ks[0]["value"]);
        let r = s
            .post(
                &g(&format!("/users/{ann}/virtual-keys")),
                json!({"name": "ci"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let extra = assert_key_value(&r.body["virtual_key"]["value"]);
        let (bob, bob_keys) = user(&s, "Bob", Some(eng)).await;
        let bob_value = assert_key_value(&bob_keys[0]["value"]);

        for prefix in PREFIXES {
            let r = s.delete(&format!("{prefix}/users/{ann}")).await;
            if prefix == PREFIXES[0] {
                assert_eq!(r.status, 200, "{}", r.text);
                assert!(r.body["message"].as_str().unwrap().len() > 5);
            } else {
                assert_error(&r, 404, "not_found");
            }
        }
        assert_error(&s.get(&g(&format!("/users/{ann}"))).await, 404, "not_found");
        assert_error(&quota(&s, &managed).await, 401, "virtual_key_not_found");
        assert_error(&quota(&s, &extra).await, 401, "virtual_key_not_found");
        assert_eq!(get_template(&s, p).await.body["user_count"], 1);
        // Bob is untouched.
        assert_eq!(quota(&s, &bob_value).await.status, 200);
        assert_eq!(copies(&s, &bob).await.len(), 1);
        // The template can go once Bob's copy goes too.
        let r = s.delete(&g(&format!("/users/{bob}"))).await;
        assert_eq!(r.status, 200);
        let r = s.delete(&g(&format!("/access-profiles/{p}"))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // The email is free again.
        let r = create_user(&s, "Ann", "ann@example.com", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        s.stop().await;
    }
);

store_test!(
    deleting_a_user_is_audited_on_each_template_held,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let q = template(&s, policy_body("Research")).await;
        activate(&s, q).await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        assign(&s, &ann, q).await;
        let (_bob, _) = user(&s, "Bob", Some(eng)).await;
        assert_eq!(s.delete(&g(&format!("/users/{ann}"))).await.status, 200);
        for t in [p, q] {
            let d = audit_entries(&s, t, "detach_user").await;
            assert_eq!(d.len(), 1, "template {t}: {d:?}");
            assert_eq!(d[0]["user_id"], ann.as_str());
            assert_eq!(json_field(&d[0]["metadata"])["reason"], "user_deleted");
        }
        // A user without copies leaves no trace on any template.
        let (carl, _) = user(&s, "Carl", None).await;
        let before = s.get(&g("/access-profiles/audit-logs")).await.body["total_count"].clone();
        assert_eq!(s.delete(&g(&format!("/users/{carl}"))).await.status, 200);
        assert_eq!(
            s.get(&g("/access-profiles/audit-logs")).await.body["total_count"],
            before
        );
        s.stop().await;
    }
);
